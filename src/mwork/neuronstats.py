"""Statistics of neuron sets: per-layer counts, cross-language overlap (Eq. 11), summaries.

Overlap (paper App. C, Eq. 11): overlap(x, y) = |N_x ∩ N_y| / |N_y|, asymmetric, normalised by
the set of language y. How N_x is pooled for one heatmap is unstated in the paper; mwork pools
(component, layer, index) triples over all layers, so a neuron is one row/column of one matrix:
    "attention" = attn_q ∪ attn_k ∪ attn_v (a q unit and a k unit with the same index are two
                  different neurons), "ffn" = the FFN intermediate units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mwork.atomic import write_csv
from mwork.components import ATTN_COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet, load_neuron_set

GROUPS: dict[str, tuple[str, ...]] = {"attention": ATTN_COMPONENTS, "ffn": ("ffn",)}
COUNT_COLUMNS: tuple[str, ...] = ("model", "lang", "layer", "component", "count", "n_units")
OVERLAP_COLUMNS: tuple[str, ...] = (
    "model",
    "group",
    "lang_x",
    "lang_y",
    "overlap",
    "n_x",
    "n_y",
    "n_both",
)


def _pooled(ns: NeuronSet, components: Sequence[str]) -> np.ndarray:
    """Flat bool mask over (component, layer, index) of the selected neurons."""
    missing = [c for c in components if c not in ns.selected]
    if missing:
        raise MworkError(
            f"neuron set of {ns.meta.get('language', '?')} lacks components {missing}",
            f"it has {sorted(ns.selected)}",
        )
    return np.concatenate([ns.selected[c].ravel() for c in components])


def overlap_matrix(sets: Mapping[str, NeuronSet], components: Sequence[str]) -> pd.DataFrame:
    """Eq. 11 for every ordered language pair.

    Args:
        sets: language -> neuron set (same model: equal shapes).
        components: components pooled into one neuron space, e.g. GROUPS["attention"].

    Returns:
        Square frame M with index "lang_y" (rows) and columns "lang_x", both in `sets` order:
        M.loc[y, x] = |N_x ∩ N_y| / |N_y| (NaN if N_y is empty). The diagonal is 1.
    """
    if not sets:
        raise MworkError("no neuron sets to compare", "pass language -> NeuronSet")
    langs = list(sets)
    masks = np.stack([_pooled(sets[l], components) for l in langs]).astype(np.float64)  # [n, N]
    both = masks @ masks.T  # both[i, j] = |N_i ∩ N_j|
    sizes = masks.sum(axis=1)  # [n]
    with np.errstate(divide="ignore", invalid="ignore"):  # empty N_y: NaN row, set below
        ratio = both / sizes[:, None]  # row y: |N_x ∩ N_y| / |N_y|
    ratio[sizes == 0] = float("nan")
    out = pd.DataFrame(
        ratio, index=pd.Index(langs, name="lang_y"), columns=pd.Index(langs, name="lang_x")
    )
    return out


def overlap_frame(
    model: str, sets: Mapping[str, NeuronSet], groups: Mapping[str, Sequence[str]] = GROUPS
) -> pd.DataFrame:
    """Tidy overlap table (OVERLAP_COLUMNS) of one model for every component group."""
    rows = []
    for group, comps in groups.items():
        masks = {l: _pooled(s, comps) for l, s in sets.items()}
        for y, my in masks.items():
            for x, mx in masks.items():
                n_y, n_x, n_both = int(my.sum()), int(mx.sum()), int((mx & my).sum())
                rows.append(
                    (model, group, x, y, n_both / n_y if n_y else float("nan"), n_x, n_y, n_both)
                )
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def count_frame(model: str, sets: Mapping[str, NeuronSet]) -> pd.DataFrame:
    """Selected neurons per (lang, layer, component), with the layer's unit count (COUNT_COLUMNS)."""
    rows = []
    for lang, ns in sets.items():
        for comp, sel in ns.selected.items():
            per_layer = sel.sum(axis=1).tolist()
            for layer, n in enumerate(per_layer):
                rows.append((model, lang, layer, comp, int(n), int(sel.shape[1])))
    return pd.DataFrame(rows, columns=list(COUNT_COLUMNS))


def count_frame_from_summary(summary: pd.DataFrame, variant: str = "all") -> pd.DataFrame:
    """COUNT_COLUMNS from the neuron summary CSV (`summarize_files`) of one variant."""
    need = ["model", "lang", "layer", "component", "selected", "units"]
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise MworkError(f"neuron summary lacks columns {missing}", "re-run summarize_neurons")
    part = (
        summary[summary["variant"].fillna("all") == variant]
        if "variant" in summary.columns
        else summary
    )
    if part.empty:
        raise MworkError(
            f"neuron summary has no rows of variant {variant!r}",
            f"variants present: {sorted(summary['variant'].dropna().unique())}",
        )
    out = part.rename(columns={"selected": "count", "units": "n_units"})[list(COUNT_COLUMNS)]
    return out.reset_index(drop=True)


def summary_table(ns: NeuronSet) -> pd.DataFrame:
    """pandas DataFrame: layer, component, selected, units, share (of that layer's units)."""
    rows = [
        {
            "layer": i,
            "component": c,
            "selected": int(ns.selected[c][i].sum()),
            "units": n,
            "share": float(ns.selected[c][i].sum()) / n,
        }
        for i in range(ns.n_layers)
        for c, n in ns.units.items()
    ]
    return pd.DataFrame(rows)


def format_summary(ns: NeuronSet, table: pd.DataFrame) -> str:
    """Human-readable summary: header, per-layer counts (components as columns), totals."""
    wide = table.pivot(index="layer", columns="component", values="selected")[list(ns.units)]
    m = ns.meta
    head = (
        f"{m.get('model')} · {m.get('language')} · {m.get('n_docs')} documents · "
        f"importance={m.get('importance')} · min_fraction={m.get('min_fraction')} · variant={m.get('variant')}"
    )
    totals = ", ".join(
        f"{c} {ns.count(c)}/{ns.n_layers * n} ({100 * ns.count(c) / (ns.n_layers * n):.3f}%)"
        for c, n in ns.units.items()
    )
    share = 100 * ns.count() / ns.total_units()
    return f"{head}\n{wide.to_string()}\ntotal: {ns.count()} of {ns.total_units()} neurons ({share:.4f}%): {totals}"


def summarize_files(paths: list[str], out: str | Path) -> None:
    """Tidy CSV over neuron files: model, lang, variant, layer, component, selected, units, share."""
    frames = []
    for p in paths:
        ns = load_neuron_set(p)
        t = summary_table(ns)
        t.insert(0, "variant", ns.meta.get("variant", "all"))
        t.insert(0, "lang", ns.meta.get("language"))
        t.insert(0, "model", ns.meta.get("model"))
        frames.append(t)
    write_csv(out, pd.concat(frames, ignore_index=True))


AGREEMENT_COLUMNS: tuple[str, ...] = (
    "model",
    "lang",
    "layer",
    "n_plnd",
    "n_lape",
    "n_both",
    "overlap_lape",
    "overlap_plnd",
    "jaccard",
)


def detector_agreement(
    model: str, plnd: Mapping[str, NeuronSet], lape: Mapping[str, NeuronSet]
) -> pd.DataFrame:
    """PLND vs LAPE FFN sets per language and layer (layer -1: all layers pooled).

    overlap_lape = Eq. 11 with y = LAPE: |P ∩ L| / |L|; overlap_plnd = |P ∩ L| / |P|;
    jaccard = |P ∩ L| / |P ∪ L| (NaN where the denominator is 0).
    """
    rows = []
    for lang in plnd:
        if lang not in lape:
            continue
        p, q = plnd[lang].selected["ffn"], lape[lang].selected["ffn"]  # [n_layers, d_ffn]
        if p.shape != q.shape:
            raise MworkError(
                f"PLND and LAPE sets of {lang} have FFN shapes {tuple(p.shape)} and "
                f"{tuple(q.shape)}",
                "detect both on the same model",
            )
        for layer in [*range(p.shape[0]), -1]:
            a, b = (p, q) if layer < 0 else (p[layer], q[layer])
            n_p, n_l, both = int(a.sum()), int(b.sum()), int((a & b).sum())
            union = n_p + n_l - both
            nan = float("nan")
            rows.append(
                {
                    "model": model,
                    "lang": lang,
                    "layer": layer,
                    "n_plnd": n_p,
                    "n_lape": n_l,
                    "n_both": both,
                    "overlap_lape": both / n_l if n_l else nan,
                    "overlap_plnd": both / n_p if n_p else nan,
                    "jaccard": both / union if union else nan,
                }
            )
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def agreement_to_file(
    model: str,
    langs: Sequence[str],
    plnd_files: Sequence[str | Path],
    lape_files: Sequence[str | Path],
    out: str | Path,
) -> pd.DataFrame:
    """`detector_agreement` of neuron files (one per language, same order) -> CSV."""
    plnd = {lang: load_neuron_set(p) for lang, p in zip(langs, plnd_files, strict=True)}
    lape = {lang: load_neuron_set(p) for lang, p in zip(langs, lape_files, strict=True)}
    df = detector_agreement(model, plnd, lape)
    write_csv(out, df)
    return df
