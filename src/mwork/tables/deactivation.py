"""Deactivation tables (paper Tables 1-5, 11-17) from bootstrapped score cells.

Derived (paper §2.3, digest §4.1), for condition C and target language L != English:
En-D = En score with N_L deactivated, L-D = L score with N_L deactivated, ΔEn = En-D - En orig,
ΔL = L-D - L orig. Summary: Eng = mean_L En-D, n-Eng = mean_L L-D, ΔEng = mean_L ΔEn,
Δn-Eng = mean_L ΔL, Δ = ΔEng - Δn-Eng. Random conditions are averaged over their seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mwork.languages import lang_sort_key
from mwork.lmeval_tasks import BENCHMARKS
from mwork.runlabel import (
    BASELINE,
    canonical_name,
    condition_table,
    is_finetune_label,
)
from mwork.tables.bootstrap import NAN_STAT, ScoreStats, Stat, with_ci

_MARKS = ("paper", "U", "S-ATTN", "S-FFN", "G", "neurons")


def _targets(stats: ScoreStats, english: str) -> dict[tuple[str, str, str, str], list[str]]:
    """(model, task, metric, condition) -> sorted target languages (mask_lang != none, english)."""
    out: dict[tuple[str, str, str, str], set[str]] = {}
    for model, task, metric, _, cond, mask_lang in stats.cells:
        if is_finetune_label(cond):  # fine-tuned runs have their own tables (fig4, table6)
            continue
        if cond != BASELINE and mask_lang not in ("none", english):
            out.setdefault((model, task, metric, cond), set()).add(mask_lang)
    return {k: sorted(v, key=lang_sort_key) for k, v in out.items()}


def _lang_deltas(
    stats: ScoreStats, english: str
) -> dict[tuple[str, ...], dict[str, dict[str, Stat]]]:
    """(model, task, metric, condition) -> L -> {en_d, l_d, en_orig, l_orig, delta_en, delta_l}."""
    out = {}
    for (model, task, metric, cond), langs in _targets(stats, english).items():
        per = {}
        en_o = stats.baseline(model, task, metric, english)
        for lang in langs:
            l_o = stats.baseline(model, task, metric, lang)
            en_d = stats.get(model, task, metric, english, cond, lang) or NAN_STAT
            l_d = stats.get(model, task, metric, lang, cond, lang) or NAN_STAT
            per[lang] = {
                "en_orig": en_o,
                "l_orig": l_o,
                "en_d": en_d,
                "l_d": l_d,
                "delta_en": en_d - en_o if en_d is not NAN_STAT else NAN_STAT,
                "delta_l": l_d - l_o if l_d is not NAN_STAT else NAN_STAT,
            }
        out[(model, task, metric, cond)] = per
    return out


def _at_bound(named: list[tuple[str, Stat]]) -> str:
    """ "en=100 ru=0": the baselines at the floor (0) or ceiling (100) of their metric, where a
    deactivation can move the score one way only (or not at all)."""
    out = [f"{name}={s.point:.0f}" for name, s in named if s.point in (0.0, 100.0)]
    return " ".join(dict.fromkeys(out))


def per_language_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 14-17: one row per (model, task, metric, condition, target language L).

    Columns: en_orig, l_orig, en_d, l_d, delta_en(+_lo/_hi), delta_l(+_lo/_hi),
    delta = ΔEn - ΔL (+_lo/_hi), n_seeds, n_masked (neurons deactivated, mean over seeds),
    baseline_at_bound ("en=100": baselines at the floor or ceiling of the metric).
    """
    rows = []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        for lang, s in per.items():
            row = {
                "model": model,
                "task": task,
                "metric": metric,
                "condition": cond,
                "lang": lang,
                "n_seeds": max(s["en_d"].n_seeds, s["l_d"].n_seeds),
                "n_masked": stats.n_masked.get((model, task, cond, lang), float("nan")),
                **{k: s[k].point for k in ("en_orig", "l_orig", "en_d", "l_d")},
                "baseline_at_bound": _at_bound([(english, s["en_orig"]), (lang, s["l_orig"])]),
            }
            with_ci(row, "delta_en", s["delta_en"], level)
            with_ci(row, "delta_l", s["delta_l"], level)
            both = (
                s["delta_en"] - s["delta_l"]
                if NAN_STAT not in (s["delta_en"], s["delta_l"])
                else NAN_STAT
            )
            with_ci(row, "delta", both, level)
            rows.append(row)
    return pd.DataFrame(rows)


def summary_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 2-5: per (model, task, metric, condition) Eng, n-Eng, ΔEng, Δn-Eng, Δ with CIs.

    Columns: model, table (PAPER_TABLES label), task, metric, condition, paper, U, S-ATTN, S-FFN,
    G, neurons (from `condition_table`, blank for free-form names), langs, n_seeds, n_masked
    (neurons deactivated, mean over the target languages), eng, n_eng,
    delta_eng(+_lo/_hi), delta_n_eng(+_lo/_hi), delta(+_lo/_hi), baseline_at_bound (the
    English and target-language baselines at 0 or 100, e.g. "en=100 ru=0"); a superset of
    `mwork.plotstyle.DEACTIVATION_COLUMNS`.

    A missing En-D or L-D cell makes the affected means NaN (nothing is silently dropped).
    """
    marks = {r["condition"]: r for r in condition_table()}
    rows = []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        base = stats.labels[cond]["base_condition"]
        row = {
            "model": model,
            "table": BENCHMARKS[task].paper_table if task in BENCHMARKS else task,
            "task": task,
            "metric": metric,
            "condition": cond,
            **{k: marks.get(base, {}).get(k, "") for k in _MARKS},
            "langs": " ".join(per),
            "n_seeds": max(s["en_d"].n_seeds for s in per.values()),
            "n_masked": float(
                np.mean([stats.n_masked.get((model, task, cond, lang), np.nan) for lang in per])
            ),
            "baseline_at_bound": _at_bound(
                [(english, next(iter(per.values()))["en_orig"])]
                + [(lang, s["l_orig"]) for lang, s in per.items()]
            ),
        }
        means = {}
        for key in ("en_d", "l_d", "delta_en", "delta_l"):
            parts = [s[key] for s in per.values()]
            means[key] = NAN_STAT if any(p is NAN_STAT for p in parts) else Stat.mean(parts)
        row["eng"], row["n_eng"] = means["en_d"].point, means["l_d"].point
        with_ci(row, "delta_eng", means["delta_en"], level)
        with_ci(row, "delta_n_eng", means["delta_l"], level)
        ok = NAN_STAT not in (means["delta_en"], means["delta_l"])
        with_ci(row, "delta", means["delta_en"] - means["delta_l"] if ok else NAN_STAT, level)
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 12-13: per-language rows of conditions labelled with N1/N2 overrides (D_U-n1_6, ...)."""
    per = per_language_table(stats, english, level)
    if per.empty:
        return per
    labels = [stats.labels[c] for c in per["condition"]]
    n1 = [None if lab["n1"] < 0 else lab["n1"] for lab in labels]
    n2 = [None if lab["n2"] < 0 else lab["n2"] for lab in labels]
    per = per.assign(
        base=[
            stats.labels[c]["base_condition"] if a is not None or b is not None else ""
            for c, a, b in zip(per["condition"], n1, n2, strict=True)
        ],
        n1=n1,
        n2=n2,
    )
    per = per[per["n1"].notna() | per["n2"].notna()]
    return per.astype({"n1": "Int64", "n2": "Int64"}).reset_index(drop=True)


def baseline_table(stats: ScoreStats, english: str = "en") -> pd.DataFrame:
    """Table 11: baseline score per (model, task, metric) x language; Avg over non-English."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for (model, task, metric, lang, cond, _), s in stats.cells.items():
        if cond == BASELINE:
            rows.setdefault((model, task, metric), {})[lang] = s.point
    langs = sorted({lang for r in rows.values() for lang in r}, key=lang_sort_key)
    out = pd.DataFrame(
        [
            {"model": m, "task": t, "metric": me, **{lang: r.get(lang, np.nan) for lang in langs}}
            for (m, t, me), r in rows.items()
        ]
    )
    non_en = [lang for lang in langs if lang != english]
    if len(out):
        out["Avg"] = out[non_en].mean(axis=1, skipna=True) if non_en else np.nan
    return out


def table1(
    stats: ScoreStats,
    task: str = "xlsum",
    random: str = "R_all",
    ls: str = "D_all",
    english: str = "en",
) -> pd.DataFrame:
    """Table 1: Original / Deactivate Random / Deactivate Lang-Spec scores per non-English language."""
    random, ls = canonical_name(random), canonical_name(ls)
    rows = []
    keys = {(m, me) for (m, t, me, *_rest) in stats.cells if t == task}
    for model, metric in sorted(keys):
        langs = sorted(
            {k[3] for k in stats.cells if k[:3] == (model, task, metric) and k[3] != english},
            key=lang_sort_key,
        )
        methods = (
            ("Original", BASELINE),
            ("Deactivate Random", random),
            ("Deactivate Lang-Spec", ls),
        )
        for method, cond in methods:
            vals = {}
            for lang in langs:
                s = stats.get(model, task, metric, lang, cond, "none" if cond == BASELINE else lang)
                vals[lang] = s.point if s else np.nan
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "method": method,
                    **vals,
                    "Avg": float(np.mean(list(vals.values()))) if vals else np.nan,
                }
            )
    return pd.DataFrame(rows)
