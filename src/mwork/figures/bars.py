"""Grouped bar charts with optional CI whiskers: deactivation summaries, neuron shares, Fig. 4.

`grouped_bars` is the generic building block: the enhancement stage draws Fig. 4 as
`grouped_bars(df, x="task", hue="method", y="score", lo=..., hi=..., value_labels=True)` and
Table 6 as `grouped_bars(df, x="lang", hue="method", y="score")`.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.mathtext import MathTextParser
from matplotlib.patches import Patch

from mwork.figures.style import (
    DEACTIVATION_COLUMNS,
    OKABE_ITO,
    PAGE_WIDTH,
    figure,
    require,
    styled,
)

COMPONENT_LABELS = {"ffn": "FFN", "attn_q": "attn Q", "attn_k": "attn K", "attn_v": "attn V"}
_MATH_PARSER = MathTextParser("path")


def pretty_condition(name: str) -> str:
    """Render names like D^R_All, D_S(A), D_U&G, Dbar_S(A) as mathtext; other names unchanged."""
    m = re.fullmatch(r"([A-Za-z])(bar|\u0304)?(\^[A-Za-z]+)?_([A-Za-z&()]+)", name)
    if not m:
        return name
    base = rf"\bar{{{m.group(1)}}}" if m.group(2) else m.group(1)
    text = f"${base}{m.group(3) or ''}_{{{m.group(4)}}}$"
    try:
        _MATH_PARSER.parse(text)
    except ValueError:
        return name
    return text


def _visible_len(label: str) -> int:
    """Characters a label shows (mathtext markup removed)."""
    return len(re.sub(r"\\[a-z]+|[${}^_]", "", label))


@styled
def grouped_bars(
    df: pd.DataFrame,
    x: str,
    hue: str,
    y: str,
    lo: str | None = None,
    hi: str | None = None,
    panel: str | None = None,
    ncols: int = 2,
    ylabel: str | None = None,
    xlabel: str | None = None,
    title: str | None = None,
    hue_order: Sequence[str] | None = None,
    value_labels: bool = False,
    sharey: bool = True,
    x_labels: dict[str, str] | None = None,
) -> Figure:
    """Bars of `y` per `x` category, one colour per `hue`, one panel per `panel` value.

    Args:
        df: tidy frame, one row per (panel, x, hue).
        lo, hi: columns with the CI bounds of `y`; NaN = no whisker for that bar.
        panel: facet column (panel titles are its values); None = one panel.
        x_labels: display names of x categories (default: as is).
        value_labels: write each bar's value above/below it.

    Returns:
        Figure with one axes per panel; the legend (hue) sits above the panels.
    """
    require(df, [c for c in (x, hue, y, lo, hi, panel) if c], "bar")
    panels = list(dict.fromkeys(df[panel])) if panel else [None]
    hues = list(hue_order or dict.fromkeys(df[hue]))
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    width = PAGE_WIDTH  # every figure is one page wide: the report scales them alike
    fig = figure(width, 1.7 * nrows + 0.45)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    colours = dict(zip(hues, OKABE_ITO * (len(hues) // len(OKABE_ITO) + 1), strict=False))
    bar_w = 0.8 / len(hues)
    for k, p in enumerate(panels):
        ax = axes.flat[k]
        part = df[df[panel] == p] if panel else df
        cats = list(dict.fromkeys(part[x]))
        for j, h in enumerate(hues):
            rows = part[part[hue] == h].set_index(x).reindex(cats)
            pos = np.arange(len(cats)) + (j - (len(hues) - 1) / 2) * bar_w
            vals = rows[y].to_numpy(dtype=float)
            bars = ax.bar(pos, np.nan_to_num(vals), bar_w * 0.92, color=colours[h], label=str(h))
            if lo and hi:
                low, high = rows[lo].to_numpy(dtype=float), rows[hi].to_numpy(dtype=float)
                ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(vals)
                if ok.any():
                    err = np.vstack([vals[ok] - low[ok], high[ok] - vals[ok]])
                    ax.errorbar(
                        pos[ok],
                        vals[ok],
                        yerr=err,
                        fmt="none",
                        ecolor="0.15",
                        elinewidth=0.8,
                        capsize=1.5,
                    )
            if value_labels:
                ax.bar_label(
                    bars,
                    labels=[f"{v:.1f}" if np.isfinite(v) else "" for v in vals],
                    fontsize=5.5,
                    padding=1,
                )
        labels = [(x_labels or {}).get(c, str(c)) for c in cats]
        # upright labels unless they need more than the panel's width (7 pt ticks: ~4 pt a
        # character); then vertical, which never overlap (slanted ones do at this density)
        room = 0.8 * width / ncols * 72 / len(cats)
        crowded = max(_visible_len(s) for s in labels) * 4.2 + 6 > room
        ax.set_xticks(range(len(cats)), labels, rotation=90 if crowded else 0)
        ax.axhline(0, color="0.3", linewidth=0.6)
        ax.tick_params(axis="x", length=0)
        if p is not None:  # wrapped to the panel's width (8 pt: ~4.5 pt a character)
            ax.set_title(textwrap.fill(str(p), int(0.95 * width / ncols * 72 / 4.5)), loc="left")
        if k % ncols == 0:
            ax.set_ylabel(ylabel or y)
        if xlabel and k >= len(panels) - ncols:
            ax.set_xlabel(xlabel)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    handles = [Patch(color=colours[h], label=str(h)) for h in hues]
    # as many legend columns as fit the width (7 pt text: ~4 pt a character, + the patch);
    # with a title, the legend goes below the panels (a title and a top legend collide)
    entry = max(_visible_len(str(h)) for h in hues) * 4.2 + 30
    fit = max(1, min(len(hues), int(0.95 * width * 72 // entry)))
    where = "outside lower center" if title else "outside upper center"
    fig.legend(handles=handles, loc=where, ncols=fit, frameon=False)
    if title:
        fig.suptitle(textwrap.fill(title, int(0.95 * width * 72 / 4.5)))
    return fig


@styled
def fig_neuron_share(counts: pd.DataFrame) -> Figure:
    """LS neurons as % of each component's units (all layers), per language; one panel per model.

    Args:
        counts: count frame (model, lang, layer, component, count, n_units).
    """
    require(counts, ("model", "lang", "layer", "component", "count", "n_units"), "neuron count")
    agg = counts.groupby(["model", "lang", "component"], sort=False, as_index=False)[
        ["count", "n_units"]
    ].sum()
    agg["share"] = 100 * agg["count"] / agg["n_units"]
    agg["component"] = agg["component"].map(lambda c: COMPONENT_LABELS.get(c, c))
    order = [
        COMPONENT_LABELS[c]
        for c in COMPONENT_LABELS
        if COMPONENT_LABELS[c] in set(agg["component"])
    ]
    order += [c for c in dict.fromkeys(agg["component"]) if c not in order]
    return grouped_bars(
        agg,
        x="lang",
        hue="component",
        y="share",
        panel="model",
        ncols=1,
        ylabel="LS neurons (% of units)",
        xlabel="language",
        hue_order=order,
    )


DELTA_LABELS = {"delta_eng": "ΔEng", "delta_n_eng": "Δn-Eng", "delta": "Δ = ΔEng − Δn-Eng"}


VARIANT_LABELS = {"minus-en": "−En", "minus-shared": "−shared"}  # App. E Tables 8/9 neuron sets


def condition_labels(summary: pd.DataFrame) -> dict[str, str]:
    """Display label per condition: the paper notation (column `paper` if present) as mathtext,
    with the label's layer override (n1_6) and App. E neuron-set variant (−En, −shared) beside it,
    so distinct conditions never share a label."""
    out = {}
    for row in summary.drop_duplicates("condition").itertuples():
        cond = str(row.condition)
        paper = str(getattr(row, "paper", "") or "")
        if not paper or paper == "nan":
            out[cond] = pretty_condition(cond)
            continue
        name, _, variant = cond.partition(".")
        parts = [name.split("-", 1)[1]] if "-n" in name else []
        parts += [VARIANT_LABELS.get(variant, variant)] if variant else []
        out[cond] = pretty_condition(paper) + (f" ({', '.join(parts)})" if parts else "")
    return out


def _bound_notes(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (table, model): " ‡ baseline at 0/100: en=100" when a baseline sits at the floor or
    ceiling of its metric (a change can go one way only), else ""."""
    col = summary["baseline_at_bound"] if "baseline_at_bound" in summary else ""
    parts = summary.assign(bound=col)[["table", "model", "bound"]].fillna("")
    rows = []
    for (table, model), g in parts.groupby(["table", "model"], sort=False):
        bounds = sorted({b for v in g["bound"].astype(str) for b in v.split()})
        note = f" ‡ baseline at 0/100: {' '.join(bounds)}" if bounds else ""
        rows.append({"table": table, "model": model, "note": note})
    return pd.DataFrame(rows, columns=["table", "model", "note"])


FIDELITY_LABEL = "Δ answers in the query's language (n-Eng)"
FIDELITY_PANEL = " · output language"


def _fidelity_bars(summary: pd.DataFrame) -> pd.DataFrame:
    """Long rows of the output-language fidelity panels (`mwork.fidelity`): per (table, model)
    with generated answers, Δ share of non-English answers in the query's language, with CI."""
    cols = ["delta_fid_n_eng", "delta_fid_n_eng_lo", "delta_fid_n_eng_hi"]
    if not set(cols) <= set(summary.columns):
        return pd.DataFrame()
    part = summary[summary["delta_fid_n_eng"].notna()]
    return pd.DataFrame(
        {
            "model": part["model"],
            "table": part["table"],
            "condition": part["condition"],
            "value": part[cols[0]],
            "quantity": FIDELITY_LABEL,
            "lo": part[cols[1]],
            "hi": part[cols[2]],
            "panel": part["table"].astype(str) + " · " + part["model"].astype(str) + FIDELITY_PANEL,
        }
    )


@styled
def fig_deactivation(summary: pd.DataFrame) -> Figure:
    """Tables 2-5 as bars: per (table, model) panel, ΔEng, Δn-Eng and Δ per condition, with CIs;
    below each table with generated answers (MGSM, XQuAD, XLSum) and fidelity columns, a panel of
    the change in the share of non-English answers in the query's language (`mwork.fidelity`).

    Args:
        summary: deactivation frame with DEACTIVATION_COLUMNS (delta_lo/delta_hi may be NaN);
            optional columns delta_eng_lo/_hi and delta_n_eng_lo/_hi add whiskers to those bars,
            optional column `paper` (paper notation, e.g. D^R_S(A)) labels the conditions.
    """
    require(summary, DEACTIVATION_COLUMNS, "deactivation summary")
    models = list(dict.fromkeys(summary["model"]))
    long = []
    for col, label in DELTA_LABELS.items():
        part = (
            summary[["model", "table", "condition", col]]
            .rename(columns={col: "value"})
            .assign(quantity=label)
        )
        has_ci = f"{col}_lo" in summary.columns and f"{col}_hi" in summary.columns
        part["lo"] = summary[f"{col}_lo"] if has_ci else np.nan
        part["hi"] = summary[f"{col}_hi"] if has_ci else np.nan
        long.append(part)
    df = pd.concat(long, ignore_index=True)
    df["panel"] = df["table"].astype(str) + " · " + df["model"].astype(str)
    df = df.merge(_bound_notes(summary), on=["table", "model"], how="left")
    df["panel"] = df["panel"] + df["note"].fillna("")
    hues = list(DELTA_LABELS.values())
    fidelity = _fidelity_bars(summary)
    if not fidelity.empty:
        df = pd.concat([df, fidelity], ignore_index=True)
        hues.append(FIDELITY_LABEL)
    notes = _bound_notes(summary).set_index(["table", "model"])["note"].to_dict()
    panel_order = [
        f"{t} · {m}" + (notes.get((t, m), "") if not suffix else suffix)
        for t in dict.fromkeys(summary["table"])
        for suffix in ("", FIDELITY_PANEL)
        for m in models
    ]
    df["panel"] = pd.Categorical(
        df["panel"], [p for p in panel_order if p in set(df["panel"])], ordered=True
    )
    df = df.sort_values("panel", kind="stable")
    df["panel"] = df["panel"].astype(str)
    return grouped_bars(
        df,
        x="condition",
        hue="quantity",
        y="value",
        lo="lo",
        hi="hi",
        panel="panel",
        ncols=len(models),
        ylabel="change (points)",
        hue_order=hues,
        sharey=False,
        x_labels=condition_labels(summary),
    )


@styled
def fig_enhancement(fig4: pd.DataFrame) -> Figure:
    """Fig. 4 (neuron fine-tuning): per task, the score averaged over the high-resource languages
    for Original / Random / [Full] / LS-N, with paired bootstrap CIs; one panel per (model, task)
    when several models are shown.

    Args:
        fig4: `mwork.tables.fig4_table` rows (model, task, lang, method, score(+_lo/_hi)); the
            `lang == "avg"` rows are drawn.
    """
    require(fig4, ("model", "task", "lang", "method", "score", "score_lo", "score_hi"), "Fig. 4")
    avg = fig4[fig4["lang"] == "avg"].copy()
    avg["panel"] = avg["model"] + " · " + avg["task"]
    return grouped_bars(
        avg,
        x="task",
        hue="method",
        y="score",
        lo="score_lo",
        hi="score_hi",
        panel="panel" if avg["model"].nunique() > 1 else None,
        ylabel="score (x100)",
        title="Fig. 4: neuron fine-tuning (mean over high-resource languages)",
        hue_order=list(dict.fromkeys(avg["method"])),
        value_labels=True,
        sharey=False,
    )
