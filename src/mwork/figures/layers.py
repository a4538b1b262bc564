"""Per-layer and per-language-pair figures: tidy DataFrame in, matplotlib Figure out.

    fig_english_ratio          Fig. 1  English vs non-English share per layer (lens frame)
    fig_language_distribution  Fig. 7  per-language share per layer (lens frame)
    fig_neuron_counts          Fig. 3  LS neurons per layer, attention vs FFN (count frame)
    fig_overlap                Fig. 5/6 Eq. 11 overlap heatmaps (overlap frame)
    fig_detector_agreement     PLND vs LAPE FFN sets per language and layer (agreement frame)

Frames: lens = mwork.lens.LENS_COLUMNS; count = mwork.neuronstats.COUNT_COLUMNS; overlap =
mwork.neuronstats.OVERLAP_COLUMNS; agreement = mwork.neuronstats.AGREEMENT_COLUMNS (bar charts:
mwork.figures.bars). Style: sizes for a printed page (COLUMN_WIDTH / PAGE_WIDTH inches, 8 pt
text), colour-blind-safe colours (cividis heatmaps, Okabe-Ito categories), constrained layout.
`save_figure` writes PDF + PNG atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mwork.errors import MworkError
from mwork.figures.style import (
    COLUMN_WIDTH,
    DEACTIVATION_COLUMNS,
    HEATMAP_CMAP,
    OKABE_ITO,
    PAGE_WIDTH,
    figure,
    layer_ticks,
    require,
    save_figure,
    styled,
)


def _layer_heatmaps(
    panels: list[tuple[str, pd.DataFrame]], row_label: str, cbar_label: str
) -> Figure:
    """One heatmap per (title, frame rows x layers), stacked, with a shared 0-1 colour bar."""
    heights = [0.22 * len(m) + 0.55 for _, m in panels]
    fig = figure(PAGE_WIDTH, sum(heights) + 0.5)
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    image = None
    same_layers = len({tuple(m.columns) for _, m in panels}) == 1
    for k, (ax, (title, mat)) in enumerate(zip(axes, panels, strict=False)):
        layers = [int(c) for c in mat.columns]
        image = ax.imshow(
            mat.to_numpy(dtype=float),
            aspect="auto",
            cmap=HEATMAP_CMAP,
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(layers[0] - 0.5, layers[-1] + 0.5, len(mat) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(mat)), list(mat.index))
        ax.set_title(title, loc="left")
        ax.set_ylabel(row_label)
        layer_ticks(ax, layers[-1] + 1)
        ax.set_xlim(layers[0] - 0.5, layers[-1] + 0.5)
        ax.tick_params(length=2, labelbottom=not same_layers or k == len(panels) - 1)
    axes[-1].set_xlabel("layer (0 = embeddings)")
    cbar = fig.colorbar(
        image, ax=list(axes), shrink=0.9, aspect=30 if len(panels) > 1 else 12, pad=0.01
    )
    cbar.set_label(cbar_label)
    return fig


def _lens_panels(lens: pd.DataFrame, prompt_langs: Sequence[str] | None, drop_layer0: bool):
    require(lens, ("model", "variant", "prompt_lang", "layer", "lang", "share"), "lens")
    df = (
        lens[lens["prompt_lang"].isin(prompt_langs)]
        if prompt_langs
        else lens[lens["prompt_lang"] != "en"]
    )
    if drop_layer0:
        df = df[df["layer"] > 0]
    if df.empty:
        raise MworkError(
            "no lens rows left for the chosen prompt languages",
            "check prompt_langs / the lens frame",
        )
    # mean over prompt languages of the prompt-mean shares (each prompt language weighs the same)
    mean = df.groupby(["model", "variant", "lang", "layer"], sort=False)["share"].mean()
    return [
        ((m, v), part.droplevel([0, 1]).unstack("layer"))
        for (m, v), part in mean.groupby(level=[0, 1], sort=False)
    ]


@styled
def fig_english_ratio(
    lens: pd.DataFrame, prompt_langs: Sequence[str] | None = None, drop_layer0: bool = False
) -> Figure:
    """Fig. 1: per model/variant, rows "English" and "non-English" (1 − en share) over layers.

    Args:
        lens: lens frame (mwork.lens.LENS_COLUMNS).
        prompt_langs: prompt languages averaged (default: every non-English one).
        drop_layer0: leave out the embedding layer (e.g. when plotting the layer-0 override).
    """
    panels = []
    for (model, variant), mat in _lens_panels(lens, prompt_langs, drop_layer0):
        if "en" not in mat.index:
            raise MworkError(
                f"lens frame of {model} has no 'en' rows", "include en in the candidate languages"
            )
        en = mat.loc["en"]
        panels.append(
            (f"{model} ({variant})", pd.DataFrame([en, 1 - en], index=["English", "non-English"]))
        )
    return _layer_heatmaps(panels, "", "share of identified tokens")


@styled
def fig_language_distribution(
    lens: pd.DataFrame,
    prompt_langs: Sequence[str] | None = None,
    drop_layer0: bool = False,
    langs: Sequence[str] | None = None,
) -> Figure:
    """Fig. 7: per model/variant, rows = identified languages, columns = layers."""
    panels = []
    for (model, variant), mat in _lens_panels(lens, prompt_langs, drop_layer0):
        order = [l for l in (langs or mat.index) if l in mat.index]
        panels.append((f"{model} ({variant})", mat.loc[order]))
    return _layer_heatmaps(panels, "language", "share of identified tokens")


def _group_components(counts: pd.DataFrame) -> pd.DataFrame:
    group = np.where(counts["component"] == "ffn", "FFN", "attention (q+k+v)")
    grouped = counts.assign(group=group).groupby(
        ["model", "lang", "layer", "group"], as_index=False
    )
    return grouped[["count", "n_units"]].sum()


@styled
def fig_neuron_counts(counts: pd.DataFrame, normalise: bool = False) -> Figure:
    """Fig. 3: LS neurons per layer, attention (q+k+v pooled) vs FFN; mean over languages, band = min-max.

    Args:
        counts: count frame (model, lang, layer, component, count, n_units).
        normalise: plot % of the layer's units instead of raw counts.
    """
    require(counts, ("model", "lang", "layer", "component", "count", "n_units"), "neuron count")
    df = _group_components(counts)
    df["value"] = 100 * df["count"] / df["n_units"] if normalise else df["count"]
    models = list(dict.fromkeys(df["model"]))
    fig = figure(PAGE_WIDTH, 1.5 * len(models) + 0.5)  # one page wide, as every figure
    axes = fig.subplots(len(models), 1, squeeze=False, sharex=True)[:, 0]
    for ax, model in zip(axes, models, strict=False):
        for colour, (group, part) in zip(
            OKABE_ITO, df[df["model"] == model].groupby("group", sort=True), strict=False
        ):
            stats = part.groupby("layer")["value"].agg(["mean", "min", "max"])
            ax.fill_between(
                stats.index, stats["min"], stats["max"], color=colour, alpha=0.2, linewidth=0
            )
            ax.plot(
                stats.index,
                stats["mean"],
                color=colour,
                marker="o",
                markersize=2,
                linewidth=1.2,
                label=group,
            )
        ax.set_title(
            f"{model}: mean over {part['lang'].nunique()} languages (band: min–max)", loc="left"
        )
        ax.set_ylabel("% of layer's units" if normalise else "LS neurons")
        ax.set_ylim(bottom=0)
        layer_ticks(ax, int(df["layer"].max()) + 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    axes[-1].set_xlabel("layer")
    return fig


@styled
def fig_overlap(overlap: pd.DataFrame, annotate: bool = True) -> Figure:
    """Fig. 5/6: Eq. 11 heatmaps, rows = models, columns = component groups (attention, ffn).

    Cell (row y, column x) = |N_x ∩ N_y| / |N_y|; x labels on top as in the paper.
    """
    require(overlap, ("model", "group", "lang_x", "lang_y", "overlap"), "overlap")
    models, groups = list(dict.fromkeys(overlap["model"])), list(dict.fromkeys(overlap["group"]))
    langs = list(dict.fromkeys(overlap["lang_y"]))
    vmin = float(np.floor(np.nanmin(overlap["overlap"]) * 10) / 10)
    size = 0.3 * len(langs) + 0.5
    fig = figure(PAGE_WIDTH, size * len(models) + 0.3)  # one page wide, as every figure
    axes = fig.subplots(len(models), len(groups), squeeze=False)
    image = None
    for (i, model), (j, group) in ((a, b) for a in enumerate(models) for b in enumerate(groups)):
        ax = axes[i, j]
        part = overlap[(overlap["model"] == model) & (overlap["group"] == group)]
        mat = part.pivot(index="lang_y", columns="lang_x", values="overlap").reindex(
            index=langs, columns=langs
        )
        image = ax.imshow(mat.to_numpy(dtype=float), cmap=HEATMAP_CMAP, vmin=vmin, vmax=1)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_yticks(range(len(langs)), langs)
        ax.xaxis.tick_top()
        ax.xaxis.set_label_position("top")
        ax.set_xlabel("language X")
        ax.set_ylabel("language Y")
        ax.set_title(f"{model} · {group}", pad=4)
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        if annotate:
            for (y, x), v in np.ndenumerate(mat.to_numpy(dtype=float)):
                if np.isfinite(v):
                    dark = (v - vmin) / max(1e-9, 1 - vmin) < 0.55
                    ax.text(
                        x,
                        y,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if dark else "black",
                    )
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, aspect=25)
    cbar.set_label(r"overlap(X, Y) = $|N_X \cap N_Y|\,/\,|N_Y|$")
    return fig


AGREEMENT_METRICS = (
    ("overlap_lape", r"$|P \cap L|\,/\,|L|$ (Eq. 11, y = LAPE)"),
    ("overlap_plnd", r"$|P \cap L|\,/\,|P|$ (Eq. 11, y = PLND)"),
    ("jaccard", r"Jaccard $|P \cap L|\,/\,|P \cup L|$"),
)


@styled
def fig_detector_agreement(agreement: pd.DataFrame, annotate: bool | None = None) -> Figure:
    """PLND (P) vs LAPE (L) FFN sets: one row of heatmaps per model, one column per measure.

    Heatmap rows = languages, columns = layers plus "all" (layer -1 of the frame: every layer
    pooled). Measures: Eq. 11 overlap both ways and Jaccard (AGREEMENT_METRICS); grey cells are
    undefined (the normalising set is empty).

    Args:
        agreement: agreement frame (model, lang, layer, n_plnd, n_lape, n_both, overlap_lape,
            overlap_plnd, jaccard), as written by mwork.neuronstats.detector_agreement.
        annotate: print each cell's value (default: when a panel has at most 16 layer columns).
    """
    require(agreement, ("model", "lang", "layer", *(m for m, _ in AGREEMENT_METRICS)), "agreement")
    models, langs = list(dict.fromkeys(agreement["model"])), list(dict.fromkeys(agreement["lang"]))
    cmap = mpl.colormaps[HEATMAP_CMAP].with_extremes(bad="#d9d9d9")
    fig = figure(PAGE_WIDTH, (0.22 * len(langs) + 0.75) * len(models) + 0.4)
    axes = fig.subplots(len(models), len(AGREEMENT_METRICS), squeeze=False)
    image = None
    for i, model in enumerate(models):
        part = agreement[agreement["model"] == model]
        layer_cols = sorted(int(v) for v in part["layer"].unique() if v >= 0)
        cols = layer_cols + ([-1] if (part["layer"] < 0).any() else [])
        names = [str(c) if c >= 0 else "all" for c in cols]
        show = annotate if annotate is not None else len(cols) <= 17
        for j, (metric, title) in enumerate(AGREEMENT_METRICS):
            ax = axes[i, j]
            mat = part.pivot(index="lang", columns="layer", values=metric)
            mat = mat.reindex(index=[g for g in langs if g in mat.index], columns=cols)
            values = mat.to_numpy(dtype=float)
            image = ax.imshow(
                np.ma.masked_invalid(values),
                aspect="auto",
                cmap=cmap,
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            step = 1 if len(cols) <= 17 else 4
            ticks = [k for k in range(len(cols)) if k % step == 0 or k == len(cols) - 1]
            ax.set_xticks(ticks, [names[k] for k in ticks])
            ax.set_yticks(range(len(mat)), list(mat.index))
            if len(layer_cols) < len(cols):
                ax.axvline(len(layer_cols) - 0.5, color="white", linewidth=1.5)
            ax.set_title(title, loc="left")
            ax.set_xlabel("layer")
            ax.set_ylabel(f"{model}\nlanguage" if j == 0 else "")
            ax.tick_params(length=2)
            if show:
                for (y, x), v in np.ndenumerate(values):
                    if np.isfinite(v):
                        ax.text(
                            x,
                            y,
                            f"{v:.2f}",
                            ha="center",
                            va="center",
                            fontsize=5,
                            color="white" if v < 0.55 else "black",
                        )
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, aspect=25, pad=0.01)
    cbar.set_label("PLND–LAPE agreement")
    return fig


__all__ = [
    "AGREEMENT_METRICS",
    "COLUMN_WIDTH",
    "DEACTIVATION_COLUMNS",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "fig_detector_agreement",
    "fig_english_ratio",
    "fig_language_distribution",
    "fig_neuron_counts",
    "fig_overlap",
    "save_figure",
]
