"""What this run found in the per-layer figures: the lens (Figs. 1, 7), where the language-specific
neurons sit (Fig. 3, the share bars) and how they overlap (Figs. 5/6).

Inputs are the frames the figures draw (`mwork.figures`): the lens frame (`mwork.lens`
columns), the count frame (`mwork.neuronstats.count_frame_from_summary`) and the overlap frame
(`mwork.neuronstats.overlap_frame`). These are deterministic counts and shares: no CIs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from mwork.findings.text import AGREES, DISAGREES, INCONCLUSIVE, esc, fmt, layer_ranges

PARTLY = "partly agrees"


def lens_means(lens: pd.DataFrame, drop_layer0: bool = False) -> pd.DataFrame:
    """Mean over the non-English prompt languages of the per-layer language shares, as Figs. 1/7
    draw them: index (model, variant, lang), columns = layers."""
    df = lens[lens["prompt_lang"] != "en"]
    if drop_layer0:
        df = df[df["layer"] > 0]
    mean = df.groupby(["model", "variant", "lang", "layer"], sort=False)["share"].mean()
    return mean.unstack("layer")


def _middle(layers: Sequence[int]) -> list[int]:
    """The middle third of the layers shown (the paper's task-solving region, roughly)."""
    n = len(layers)
    return list(layers[n // 3 : n - n // 3]) if n >= 3 else []


def english_ratio_findings(lens: pd.DataFrame, drop_layer0: bool = False) -> list[str]:
    """Fig. 1: per model and lens variant, the layers where English is over half of the identified
    tokens of non-English prompts, its peak, and whether the middle layers are English-dominant
    (the paper's claim for Vicuna-13b and BLOOMZ-7b1)."""
    out = []
    means = lens_means(lens, drop_layer0)
    for (model, variant), mat in means.groupby(level=[0, 1], sort=False):
        mat = mat.droplevel([0, 1])
        if "en" not in mat.index:
            continue
        en = mat.loc["en"].dropna()
        if en.empty:
            continue
        layers = [int(x) for x in en.index]
        mid = _middle(layers)
        dom = [l for l in layers if en[l] > 0.5]
        peak = int(en.idxmax())
        if any(l in dom for l in mid):
            v = AGREES if peak in mid else PARTLY
        else:
            v = DISAGREES
        out.append(
            f"{esc(model)} ({esc(variant)}): English is over half of the identified tokens in "
            + (f"layers {layer_ranges(dom)}" if dom else "no layer")
            + f" of {layers[0]}-{layers[-1]}; its share peaks at "
            f"{fmt(100 * en[peak], 0, sign=False)}% in layer {peak} (middle third: "
            f"{layer_ranges(mid)}). English-dominant middle layers, as the paper reports: {v}."
        )
    return out


def language_distribution_findings(lens: pd.DataFrame, drop_layer0: bool = False) -> list[str]:
    """Fig. 7: per model and variant, the most frequent language in each middle layer."""
    out = []
    means = lens_means(lens, drop_layer0)
    for (model, variant), mat in means.groupby(level=[0, 1], sort=False):
        mat = mat.droplevel([0, 1]).dropna(axis=1, how="all")
        layers = [int(x) for x in mat.columns]
        mid = _middle(layers)
        if not mid:
            continue
        top = mat[mid].idxmax(axis=0)
        counts = top.value_counts()
        parts = ", ".join(f"{esc(lang)} in {n}" for lang, n in counts.items())
        out.append(
            f"{esc(model)} ({esc(variant)}): the most frequent language of the middle layers "
            f"{layer_ranges(mid)} is {parts} of {len(mid)} layers (the paper's Chinese Llama: "
            "Chinese; an English-centric model: English)."
        )
    return out


def _regions(n_layers: int, split: Sequence[int] | None) -> tuple[dict[str, list[int]], str]:
    if split is not None and len(split) == 2 and split[0] + split[1] <= n_layers:
        n1, n2 = int(split[0]), int(split[1])
        how = f"N1 = {n1}, N2 = {n2}"
    else:
        n1 = n2 = n_layers // 3
        how = "no layer split configured: thirds"
    return {
        "U": list(range(n1)),
        "S": list(range(n1, n_layers - n2)),
        "G": list(range(n_layers - n2, n_layers)),
    }, how


def neuron_count_findings(
    counts: pd.DataFrame, splits: Mapping[str, Sequence[int] | None] | None = None
) -> list[str]:
    """Fig. 3: per model, the share of LS attention (q+k+v) and FFN units in U/S/G (summed over
    languages) and whether attention thins out in the task-solving layers S while FFN does not
    (per-layer mean in S / per-layer mean outside S, attention below FFN and below 1)."""
    out = []
    splits = splits or {}
    for model, part in counts.groupby("model", sort=False):
        n_layers = int(part["layer"].max()) + 1
        regions, how = _regions(n_layers, splits.get(model))
        group = part["component"].where(part["component"] == "ffn", "attention")
        per_layer = part.assign(group=group).groupby(["group", "layer"])["count"].sum()
        shares, ratios = [], {}
        for g in ("attention", "ffn"):
            if g not in per_layer.index.get_level_values(0):
                continue
            layer_counts = per_layer[g].reindex(range(n_layers), fill_value=0)
            total = layer_counts.sum()
            pct = {
                r: 100 * layer_counts[ls].sum() / total if total else float("nan")
                for r, ls in regions.items()
            }
            name = "FFN" if g == "ffn" else "attention"
            shares.append(
                f"{name} {fmt(pct['U'], 0, False)}% / {fmt(pct['S'], 0, False)}% / "
                f"{fmt(pct['G'], 0, False)}%"
            )
            inside = layer_counts[regions["S"]].mean() if regions["S"] else float("nan")
            rest = regions["U"] + regions["G"]
            outside = layer_counts[rest].mean() if rest else float("nan")
            ratios[g] = inside / outside if outside else float("nan")
        a, f = ratios.get("attention", float("nan")), ratios.get("ffn", float("nan"))
        if pd.isna(a) or pd.isna(f):
            v = INCONCLUSIVE
        else:
            v = AGREES if a < 1 and a < f else DISAGREES
        out.append(
            f"{esc(model)} ({n_layers} layers, {how}): of the LS units summed over "
            f"{part['lang'].nunique()} languages, U / S / G hold {'; '.join(shares)}. Per layer, S "
            f"holds {fmt(a, 2, False)}x the attention units of the other layers and "
            f"{fmt(f, 2, False)}x the FFN units; attention thinning out in the task-solving "
            f"layers while FFN does not (the paper, Fig. 3): {v}."
        )
    return out


def neuron_share_findings(counts: pd.DataFrame) -> list[str]:
    """Share bars: the % of all units that are LS, per model (mean and range over languages)."""
    out = []
    for model, part in counts.groupby("model", sort=False):
        per_lang = part.groupby("lang")[["count", "n_units"]].sum()
        pct = 100 * per_lang["count"] / per_lang["n_units"]
        lo, hi = pct.idxmin(), pct.idxmax()
        out.append(
            f"{esc(model)}: {fmt(pct.mean(), 2, False)}% of all attention and FFN units are "
            f"language-specific (mean over {len(pct)} languages; {esc(lo)} "
            f"{fmt(pct[lo], 2, False)}% to {esc(hi)} {fmt(pct[hi], 2, False)}%); the paper "
            "reports ≈0.13% of all neurons with a denominator it does not state."
        )
    return out


def overlap_findings(overlap: pd.DataFrame, english: str = "en") -> list[str]:
    """Figs. 5/6: the mean overlap of the other languages with English (normalised by English's
    set) vs the mean overlap between two non-English languages (the paper: English overlaps
    little with the others)."""
    out = []
    for (model, group), part in overlap.groupby(["model", "group"], sort=False):
        pairs = part[part["lang_x"] != part["lang_y"]].dropna(subset=["overlap"])
        with_en = pairs[(pairs["lang_y"] == english) & (pairs["lang_x"] != english)]["overlap"]
        others = pairs[(pairs["lang_y"] != english) & (pairs["lang_x"] != english)]["overlap"]
        if with_en.empty or others.empty:
            continue
        v = AGREES if with_en.mean() < others.mean() else DISAGREES
        out.append(
            f"{esc(model)}, {esc(group)}: the other languages share on average "
            f"{fmt(with_en.mean(), 2, False)} of English's LS neurons, and two non-English "
            f"languages {fmt(others.mean(), 2, False)} of each other's; English overlapping less "
            f"(the paper): {v}."
        )
    return out
