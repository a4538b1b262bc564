"""Every plotting function renders from a small hand-made frame, with labels/titles set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from mwork.errors import MworkError
from mwork.figures import bars, layers, style

LANGS = ["en", "de", "fr", "zh", "es", "ru"]


def lens_frame(models: dict[str, int] | None = None) -> pd.DataFrame:
    """Synthetic lens frame: English dominates the middle layers, the prompt language the ends."""
    rows = []
    for model, n_states in (models or {"vicuna-13b": 41, "bloomz-7b1": 31}).items():
        for prompt_lang in LANGS:
            for layer in range(n_states):
                mid = np.exp(-((layer / (n_states - 1) - 0.55) ** 2) / 0.05)
                en = 0.15 + 0.7 * mid if prompt_lang != "en" else 0.9
                own = (1 - en) * 0.7 if prompt_lang != "en" else 0.0
                rest = (1 - en - own) / (len(LANGS) - (2 if prompt_lang != "en" else 1))
                for lang in LANGS:
                    share = en if lang == "en" else own if lang == prompt_lang else rest
                    rows.append((model, "released", prompt_lang, layer, lang, share, 40))
    return pd.DataFrame(
        rows, columns=["model", "variant", "prompt_lang", "layer", "lang", "share", "n_identified"]
    )


def count_frame(models: tuple[str, ...] = ("mistral-7b",), n_layers: int = 32) -> pd.DataFrame:
    units = {"ffn": 14336, "attn_q": 4096, "attn_k": 1024, "attn_v": 1024}
    rng = np.random.default_rng(0)
    rows = []
    for model in models:
        for lang in LANGS:
            for layer in range(n_layers):
                dip = 0.15 if 10 < layer < 22 else 1.0
                for comp, n in units.items():
                    base = 200 if comp == "ffn" else 45 * dip
                    rows.append(
                        (
                            model,
                            lang,
                            layer,
                            comp,
                            int(rng.poisson(base * (2 if lang == "en" else 1))),
                            n,
                        )
                    )
    return pd.DataFrame(rows, columns=["model", "lang", "layer", "component", "count", "n_units"])


def overlap_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for model in ("mistral-7b", "vicuna-7b"):
        for group in ("attention", "ffn"):
            for y in LANGS:
                for x in LANGS:
                    v = 1.0 if x == y else float(rng.uniform(0.4, 0.95))
                    rows.append((model, group, x, y, v, 100, 100, int(100 * v)))
    return pd.DataFrame(
        rows, columns=["model", "group", "lang_x", "lang_y", "overlap", "n_x", "n_y", "n_both"]
    )


def deactivation_frame() -> pd.DataFrame:
    tables = {
        "Table 2 · XQuAD": {
            "D^R_U": (0.3, -0.1),
            "D^R_All": (0.4, 0.3),
            "D_S": (-15.9, -15.3),
            "D_G": (-0.4, -1.1),
            "D_U": (-0.5, -7.9),
        },
        "Table 3 · MGSM": {
            "D^R_S(A)": (-0.4, -1.8),
            "D^R_S": (-2.0, -1.0),
            "D_S": (-13.2, -9.8),
            "D_U&G": (-2.3, -4.9),
        },
        "Table 4 · X-CSQA": {
            "D^R_S(F)": (-0.3, 0.0),
            "D_S(A)": (-24.1, -9.2),
            "D_S(F)": (-0.3, -2.0),
        },
        "Table 5 · XLSum": {"D^R_G": (0.1, 0.1), "D_G": (0.0, -1.1)},
    }
    rows = []
    for model, scale in (("vicuna-7b", 1.0), ("mistral-7b", 0.6)):
        for table, conds in tables.items():
            for cond, (de, dn) in conds.items():
                d = (de - dn) * scale
                rows.append(
                    (
                        model,
                        table,
                        cond,
                        50 + de,
                        40 + dn,
                        de * scale,
                        dn * scale,
                        d,
                        d - 1.5,
                        d + 1.5,
                    )
                )
    return pd.DataFrame(rows, columns=list(style.DEACTIVATION_COLUMNS))


def _check(fig: Figure, n_axes: int) -> list:
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(axes) == n_axes
    fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
    return axes


def test_english_ratio_heatmap():
    fig = layers.fig_english_ratio(lens_frame())
    axes = _check(fig, 2)
    assert axes[0].get_title(loc="left") == "vicuna-13b (released)"
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["English", "non-English"]
    assert axes[-1].get_xlabel().startswith("layer")
    assert len(fig.axes) == 3  # two heatmaps + one shared colour bar
    assert fig.axes[-1].get_ylabel() == "share of identified tokens"


def test_language_distribution_heatmap_rows_are_languages():
    fig = layers.fig_language_distribution(
        lens_frame({"chinese-llama": 33}), langs=["en", "zh", "es", "ru", "de", "fr"]
    )
    (ax,) = _check(fig, 1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["en", "zh", "es", "ru", "de", "fr"]
    assert ax.get_ylabel() == "language"
    image = ax.get_images()[0].get_array()
    assert image.shape == (6, 33)


def test_drop_layer0_removes_the_embedding_column():
    fig = layers.fig_language_distribution(lens_frame({"m": 5}), drop_layer0=True)
    assert fig.axes[0].get_images()[0].get_array().shape == (6, 4)


def test_neuron_counts_lines():
    fig = layers.fig_neuron_counts(count_frame(("mistral-7b", "vicuna-7b")))
    axes = _check(fig, 2)
    assert axes[0].get_ylabel() == "LS neurons" and axes[-1].get_xlabel() == "layer"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["FFN", "attention (q+k+v)"]
    assert (
        layers.fig_neuron_counts(count_frame(), normalise=True).axes[0].get_ylabel()
        == "% of layer's units"
    )


def test_overlap_heatmaps_grid():
    fig = layers.fig_overlap(overlap_frame())
    axes = _check(fig, 4)
    assert axes[0].get_title() == "mistral-7b · attention"
    assert axes[0].get_xlabel() == "language X" and axes[0].get_ylabel() == "language Y"
    assert fig.axes[-1].get_ylabel().startswith("overlap")


def test_neuron_share_bars():
    fig = bars.fig_neuron_share(count_frame())
    (ax,) = _check(fig, 1)
    assert ax.get_ylabel() == "LS neurons (% of units)" and ax.get_xlabel() == "language"
    assert len(ax.patches) == 6 * 4
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "FFN",
        "attn Q",
        "attn K",
        "attn V",
    ]


def test_deactivation_summary_with_ci():
    fig = bars.fig_deactivation(deactivation_frame())
    axes = _check(fig, 8)
    assert axes[0].get_title(loc="left") == "Table 2 · XQuAD · vicuna-7b"
    assert axes[0].get_ylabel() == "change (points)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "ΔEng",
        "Δn-Eng",
        "Δ = ΔEng − Δn-Eng",
    ]
    assert len(axes[0].patches) == 5 * 3
    assert any(c.__class__.__name__ == "LineCollection" for c in axes[0].collections)  # CI whiskers


def test_grouped_bars_generic_for_enhancement():
    df = pd.DataFrame(
        [(t, m, s) for t in ("MGSM", "XQuAD") for m, s in (("Original", 36.1), ("400", 39.5))],
        columns=["task", "method", "score"],
    )
    fig = bars.grouped_bars(
        df, x="task", hue="method", y="score", ylabel="score", value_labels=True
    )
    (ax,) = _check(fig, 1)
    assert ax.get_ylabel() == "score" and len(ax.patches) == 4


def test_pretty_condition_mathtext():
    from mwork.figures.bars import pretty_condition

    assert pretty_condition("D^R_All") == "$D^R_{All}$"
    assert pretty_condition("D_U&G") == "$D_{U&G}$"
    assert pretty_condition("Dbar_S(A)") == r"$\bar{D}_{S(A)}$"
    assert pretty_condition("Original") == "Original"


def test_missing_columns_is_a_user_error():
    with pytest.raises(MworkError, match="lacks columns"):
        layers.fig_overlap(pd.DataFrame({"model": ["m"]}))


def test_save_figure_writes_pdf_and_png(tmp_path):
    fig = bars.fig_neuron_share(count_frame())
    paths = style.save_figure(fig, tmp_path / "sub" / "share.pdf")
    assert [p.name for p in paths] == ["share.pdf", "share.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["share.pdf", "share.png"]


# --- overlap (Eq. 11) and count frames on hand-made neuron sets ---------------------------------


def _ns(
    lang: str,
    ffn: list[tuple[int, int]],
    q: list[tuple[int, int]] = (),
    k: list[tuple[int, int]] = (),
):
    """A NeuronSet with 2 layers x 4 units per component; lists of selected (layer, index)."""
    import torch

    from mwork.neuronset import NeuronSet

    sel = {c: torch.zeros(2, 4, dtype=torch.bool) for c in ("ffn", "attn_q", "attn_k", "attn_v")}
    for comp, pairs in (("ffn", ffn), ("attn_q", q), ("attn_k", k)):
        for layer, idx in pairs:
            sel[comp][layer, idx] = True
    counts = {c: s.to(torch.int32) for c, s in sel.items()}
    return NeuronSet(selected=sel, doc_counts=counts, meta={"language": lang, "n_docs": "1"})


def test_overlap_matrix_hand_computed():
    from mwork.neuronstats import GROUPS, overlap_matrix

    sets = {
        "en": _ns("en", ffn=[(0, 0), (0, 1), (1, 0), (1, 3)]),  # 4 neurons
        "de": _ns("de", ffn=[(0, 0), (1, 0)]),  # 2 neurons, both also English
        "zh": _ns("zh", ffn=[(0, 1), (1, 1), (1, 2)]),  # 3 neurons, one English
    }
    m = overlap_matrix(sets, GROUPS["ffn"])
    assert m.index.name == "lang_y" and m.columns.name == "lang_x"
    # M.loc[y, x] = |N_x ∩ N_y| / |N_y|
    assert m.loc["de", "en"] == 2 / 2  # all German neurons are English ones
    assert m.loc["en", "de"] == 2 / 4  # asymmetric: normalised by y
    assert m.loc["zh", "en"] == 1 / 3 and m.loc["en", "zh"] == 1 / 4
    assert m.loc["de", "zh"] == 0 and m.loc["zh", "de"] == 0
    assert (np.diag(m.to_numpy()) == 1).all()


def test_overlap_attention_pools_q_k_v_as_distinct_neurons():
    from mwork.neuronstats import GROUPS, overlap_frame, overlap_matrix

    sets = {
        "en": _ns("en", ffn=[], q=[(0, 0)], k=[(0, 0)]),  # same (layer, index), two matrices
        "fr": _ns("fr", ffn=[(0, 0)], q=[(0, 0)]),
    }
    m = overlap_matrix(sets, GROUPS["attention"])
    assert m.loc["en", "fr"] == 1 / 2 and m.loc["fr", "en"] == 1.0
    assert np.isnan(overlap_matrix(sets, GROUPS["ffn"]).loc["en", "fr"])  # empty N_y -> NaN
    tidy = overlap_frame("m", sets)
    row = tidy[(tidy.group == "attention") & (tidy.lang_x == "fr") & (tidy.lang_y == "en")].iloc[0]
    assert (row.n_x, row.n_y, row.n_both, row.overlap) == (1, 2, 1, 0.5)


def test_count_frame_and_summary_adapter():
    from mwork.neuronstats import COUNT_COLUMNS, count_frame, count_frame_from_summary

    frame = count_frame("m", {"en": _ns("en", ffn=[(0, 0), (0, 1), (1, 3)], q=[(1, 2)])})
    assert list(frame.columns) == list(COUNT_COLUMNS)
    ffn = frame[frame.component == "ffn"].set_index("layer")["count"]
    assert ffn.to_dict() == {0: 2, 1: 1} and (frame["n_units"] == 4).all()
    summary = frame.rename(columns={"count": "selected", "n_units": "units"}).assign(
        variant="all", share=0.0
    )
    summary = pd.concat([summary, summary.assign(variant="minus-en")])
    pd.testing.assert_frame_equal(count_frame_from_summary(summary), frame)
    with pytest.raises(MworkError, match="no rows of variant"):
        count_frame_from_summary(summary, "minus-shared")


def test_file_level_builders(tmp_path):
    """mwork.figures: the one call of each plot_* script, on small files."""
    from mwork import figures
    from mwork.neuronset import save_neuron_set

    lens = tmp_path / "lens.csv"
    lens_frame({"m": 5}).to_csv(lens, index=False)
    figures.plot_lens_figure([lens], tmp_path / "f1.pdf", "english_ratio")
    summary = count_frame(("m",), n_layers=3).rename(
        columns={"count": "selected", "n_units": "units"}
    )
    summary.assign(variant="all").to_csv(tmp_path / "summary.csv", index=False)
    figures.plot_neuron_figure([tmp_path / "summary.csv"], tmp_path / "f3.pdf", "counts")
    paths = []
    for lang in ("en", "de"):
        ns = _ns(lang, ffn=[(0, 0), (1, 1)] if lang == "en" else [(0, 0)], q=[(0, 1)])
        ns.meta.update(n_layers="2", units='{"ffn": 4, "attn_q": 4, "attn_k": 4, "attn_v": 4}')
        save_neuron_set(ns, tmp_path / f"{lang}.safetensors")
        paths.append(tmp_path / f"{lang}.safetensors")
    figures.plot_overlap_figure(
        paths, [("m", "en"), ("m", "de")], tmp_path / "f5.pdf", tmp_path / "f5.csv"
    )
    table = pd.read_csv(tmp_path / "f5.csv")
    assert (
        table.query("group == 'ffn' and lang_x == 'de' and lang_y == 'en'")["overlap"].item() == 0.5
    )
    for stem in ("f1", "f3", "f5"):
        assert (tmp_path / f"{stem}.pdf").exists() and (tmp_path / f"{stem}.png").exists()
    with pytest.raises(MworkError, match="unknown lens figure"):
        figures.plot_lens_figure([lens], tmp_path / "x.pdf", "fig9")
