"""PLND vs LAPE agreement: the per-layer table against hand counts, its figure and file builder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mwork import figures
from mwork.errors import MworkError
from mwork.figures import layers
from mwork.neuronset import NeuronSet
from mwork.neuronstats import AGREEMENT_COLUMNS, detector_agreement


def _ffn_set(selected: list[tuple[int, int]], n_layers: int = 3, d_ffn: int = 5) -> NeuronSet:
    sel = torch.zeros(n_layers, d_ffn, dtype=torch.bool)
    for layer, unit in selected:
        sel[layer, unit] = True
    return NeuronSet({"ffn": sel}, {"ffn": sel.to(torch.int32)}, {"n_docs": "1"})


def _agreement() -> pd.DataFrame:
    # en: layer 0 P={0,1} L={1,2}; layer 1 P={3} L={}; layer 2 both empty
    # de: layer 0 P={} L={4}; layer 1 P={0,1,2} L={0,1,2}; layer 2 P={2} L={3}
    plnd = {
        "en": _ffn_set([(0, 0), (0, 1), (1, 3)]),
        "de": _ffn_set([(1, 0), (1, 1), (1, 2), (2, 2)]),
    }
    lape = {
        "en": _ffn_set([(0, 1), (0, 2)]),
        "de": _ffn_set([(0, 4), (1, 0), (1, 1), (1, 2), (2, 3)]),
    }
    return detector_agreement("m", plnd, lape)


def test_agreement_equals_hand_counts():
    df = _agreement()
    assert list(df.columns) == list(AGREEMENT_COLUMNS)
    assert list(df["layer"]) == [0, 1, 2, -1] * 2
    row = df.set_index(["lang", "layer"])
    en0 = row.loc[("en", 0)]
    assert (en0.n_plnd, en0.n_lape, en0.n_both) == (2, 2, 1)
    assert (
        en0.overlap_lape == 0.5 and en0.overlap_plnd == 0.5 and en0.jaccard == pytest.approx(1 / 3)
    )
    en1 = row.loc[("en", 1)]  # LAPE empty: overlap with y = LAPE undefined, the others 0
    assert math.isnan(en1.overlap_lape) and en1.overlap_plnd == 0 and en1.jaccard == 0
    assert row.loc[("en", 2)][["overlap_lape", "overlap_plnd", "jaccard"]].isna().all()
    en_all = row.loc[("en", -1)]  # pooled: P = 3 units, L = 2, both = 1
    assert (en_all.n_plnd, en_all.n_lape, en_all.n_both) == (3, 2, 1)
    assert en_all.jaccard == pytest.approx(1 / 4)
    assert row.loc[("de", 1)].jaccard == 1.0
    de_all = row.loc[("de", -1)]
    assert (de_all.n_plnd, de_all.n_lape, de_all.n_both) == (4, 5, 3)
    assert de_all.overlap_lape == pytest.approx(3 / 5) and de_all.overlap_plnd == pytest.approx(
        3 / 4
    )
    assert de_all.jaccard == pytest.approx(3 / 6)


def test_agreement_rejects_sets_of_different_models():
    with pytest.raises(MworkError, match="FFN shapes"):
        detector_agreement("m", {"en": _ffn_set([], d_ffn=5)}, {"en": _ffn_set([], d_ffn=6)})


def test_figure_panels_show_the_table_values():
    df = pd.concat([_agreement(), _agreement().assign(model="m2")], ignore_index=True)
    fig = layers.fig_detector_agreement(df)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 2 * len(layers.AGREEMENT_METRICS)
    titles = [ax.get_title(loc="left") for ax in axes[:3]]
    assert titles[0].endswith("(Eq. 11, y = LAPE)") and titles[2].startswith("Jaccard")
    assert axes[0].get_ylabel() == "m\nlanguage" and axes[3].get_ylabel() == "m2\nlanguage"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0", "1", "2", "all"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["en", "de"]
    for ax, (metric, _) in zip(axes[:3], layers.AGREEMENT_METRICS, strict=True):
        shown = ax.get_images()[0].get_array()  # masked array [langs, layers + all]
        want = df[df.model == "m"].pivot(index="lang", columns="layer", values=metric)
        want = want.reindex(index=["en", "de"], columns=[0, 1, 2, -1]).to_numpy(dtype=float)
        assert np.array_equal(np.ma.getmaskarray(shown), np.isnan(want))  # undefined cells grey
        assert np.allclose(shown.filled(np.nan), want, equal_nan=True)
    texts = [t.get_text() for t in axes[2].texts]  # annotated: one label per defined cell
    assert len(texts) == int(np.isfinite(df[df.model == "m"]["jaccard"]).sum()) and "0.33" in texts


def test_figure_without_pooled_rows_and_bad_frames():
    df = _agreement()
    fig = layers.fig_detector_agreement(df[df.layer >= 0], annotate=False)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"] and not ax.texts
    with pytest.raises(MworkError, match="lacks columns"):
        layers.fig_detector_agreement(df.drop(columns="jaccard"))
    with pytest.raises(MworkError, match="empty"):
        layers.fig_detector_agreement(df.iloc[:0])


def test_file_builder_writes_figure_and_combined_table(tmp_path):
    paths = []
    for model in ("a", "b"):
        paths.append(tmp_path / f"{model}.csv")
        _agreement().assign(model=model).to_csv(paths[-1], index=False)
    figures.plot_detector_agreement_figure(paths, tmp_path / "agree.pdf", tmp_path / "agree.csv")
    for ext in ("pdf", "png"):
        assert (tmp_path / f"agree.{ext}").stat().st_size > 1000
    table = pd.read_csv(tmp_path / "agree.csv")
    assert list(table.columns) == list(AGREEMENT_COLUMNS) and list(dict.fromkeys(table.model)) == [
        "a",
        "b",
    ]
    pd.testing.assert_frame_equal(
        table, pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    )
    with pytest.raises(MworkError, match="no detector agreement files"):
        figures.plot_detector_agreement_figure([], tmp_path / "x.pdf")
