"""Deactivation result tables (paper Tables 1-5, 11-17) from tidy per-item scores, with bootstrap CIs.

Input: a tidy DataFrame (`SCORE_COLUMNS`), one row per scored item:

    model      str   model name
    condition  str   condition label (`mwork.conditions`: D_U, R_all, D_U-n1_6, ...); "none" = baseline
    mask_lang  str   language whose neurons are deactivated; "none" for the baseline
    task       str   e.g. xquad, mgsm, xcsqa, xlsum
    eval_lang  str   language the item is evaluated in
    seed       int   random-set seed for random conditions, -1 otherwise
    metric     str   e.g. accuracy, rougeL
    item_id    str   item identifier, the same across conditions (paired design)
    value      float per-item score in [0, 1]; tables show x100 (ROUGE-L too), as the paper

Derived (paper §2.3, digest §4.1), for condition C and target language L != English:
En-D = En score with N_L deactivated, L-D = L score with N_L deactivated, ΔEn = En-D - En orig,
ΔL = L-D - L orig. Summary: Eng = mean_L En-D, n-Eng = mean_L L-D, ΔEng = mean_L ΔEn,
Δn-Eng = mean_L ΔL, Δ = ΔEng - Δn-Eng. Random conditions are averaged over their seeds.

Confidence intervals: paired percentile bootstrap over items. For each (task, eval_lang) one set of
`n_boot` resamples of the item ids (seeded by seed, task, eval_lang) is shared by every condition
and model, so differences and the means over languages are resampled jointly. Seed-to-seed
variation of random sets is not part of the CI (`n_seeds` says how many were averaged).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mwork.conditions import BASELINE, CONDITIONS, canonical_name, condition_table, parse_condition
from mwork.errors import MworkError
from mwork.tableio import LANG_ORDER, lang_sort_key, per_language_wide, to_markdown, write_table

SCORE_COLUMNS: tuple[str, ...] = (
    "model", "condition", "mask_lang", "task", "eval_lang", "seed", "metric", "item_id", "value",
)
# summary-table label per task (the paper's Tables 2-5); other tasks are labelled by their name
PAPER_TABLES: dict[str, str] = {
    "xquad": "Table 2 · XQuAD", "mgsm": "Table 3 · MGSM", "xcsqa": "Table 4 · X-CSQA",
    "xlsum": "Table 5 · XLSum",
}
_GROUP = ["model", "task", "metric"]


def _canonical_label(label: str) -> str:
    try:
        cond, n1, n2 = parse_condition(label)
    except MworkError:
        return label  # a free-form name (e.g. an App.-E variant) is kept as is
    name = BASELINE if cond is None else cond.name
    return name + (f"-n1_{n1}" if n1 is not None else "") + (f"-n2_{n2}" if n2 is not None else "")


def validate_scores(df: pd.DataFrame) -> pd.DataFrame:
    """A checked copy: required columns, types, canonical condition labels, no duplicate items."""
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise MworkError(f"score table lacks columns {missing}", f"expected columns {list(SCORE_COLUMNS)}")
    out = df[list(SCORE_COLUMNS)].copy()
    for c in ("model", "condition", "mask_lang", "task", "eval_lang", "metric", "item_id"):
        out[c] = out[c].astype(str)
    out["seed"] = out["seed"].astype(int)
    out["value"] = out["value"].astype(float)
    out["condition"] = out["condition"].map(_canonical_label)
    key = [c for c in SCORE_COLUMNS if c != "value"]
    dup = out.duplicated(key)
    if dup.any():
        row = out[dup].iloc[0]
        raise MworkError(f"duplicate score rows, e.g. {dict(row[key])}", "score each item once per run")
    bad = out[(out["condition"] == BASELINE) != (out["mask_lang"] == "none")]
    if len(bad):
        raise MworkError(
            f"baseline rows need condition and mask_lang 'none': {dict(bad.iloc[0][key])}",
            "fix the runs' labels",
        )
    return out


@dataclass(frozen=True, eq=False)
class Stat:
    """A score (x scale) and its bootstrap replicates ([n_boot], empty without bootstrap)."""

    point: float
    boot: np.ndarray
    n_seeds: int = 1

    def __sub__(self, other: Stat) -> Stat:
        """Paired difference: points and replicate-by-replicate."""
        return Stat(self.point - other.point, self.boot - other.boot, max(self.n_seeds, other.n_seeds))

    @staticmethod
    def mean(stats: list[Stat]) -> Stat:
        """Mean over languages (points and replicate-by-replicate)."""
        return Stat(float(np.mean([s.point for s in stats])), np.mean([s.boot for s in stats], axis=0),
                    max(s.n_seeds for s in stats))

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Percentile bootstrap interval (NaN without replicates)."""
        if self.boot.size == 0 or np.isnan(self.point):
            return (float("nan"), float("nan"))
        a = (1.0 - level) / 2.0 * 100.0
        lo, hi = np.percentile(self.boot, [a, 100.0 - a])
        return float(lo), float(hi)


class ScoreStats:
    """Per-cell means and bootstrap replicates of a validated score table.

    Cells are keyed (model, task, metric, eval_lang, condition, mask_lang); random conditions are
    averaged over seeds (point and replicates alike).
    """

    def __init__(self, df: pd.DataFrame, n_boot: int = 1000, seed: int = 0, scale: float = 100.0) -> None:
        """Validate `df` (SCORE_COLUMNS) and compute every cell; `scale` multiplies item scores."""
        self.df = validate_scores(df)
        self.n_boot, self.seed, self.scale = n_boot, seed, scale
        self.cells: dict[tuple[str, ...], Stat] = {}
        for (model, task, metric, lang), g in self.df.groupby(_GROUP + ["eval_lang"], sort=False):
            wide = g.pivot(index=["condition", "mask_lang", "seed"], columns="item_id", values="value")
            if wide.isna().any().any():
                cond, mask_lang, _ = wide.index[wide.isna().any(axis=1)][0]
                raise MworkError(
                    f"{model}/{task}/{metric}/{lang}: run {cond} (mask {mask_lang}) lacks items others have",
                    "score every item in every run (paired comparison)",
                )
            vals = wide.to_numpy(dtype=float) * scale  # [n_runs, n_items]
            boot = vals @ self._weights(task, lang, wide.columns).T  # [n_runs, n_boot]
            runs: dict[tuple[str, str], list[int]] = {}
            for r, (cond, mask_lang, _) in enumerate(wide.index):
                runs.setdefault((cond, mask_lang), []).append(r)
            for (cond, mask_lang), rows in runs.items():
                self.cells[(model, task, metric, lang, cond, mask_lang)] = Stat(
                    float(vals[rows].mean(axis=1).mean()), boot[rows].mean(axis=0), len(rows))

    def _weights(self, task: str, lang: str, items: pd.Index) -> np.ndarray:
        """[n_boot, n_items] resampling weights (counts / n) for one (task, eval_lang)."""
        n = len(items)
        rng = np.random.default_rng([self.seed, zlib.crc32(task.encode()), zlib.crc32(lang.encode())])
        order = np.argsort(np.asarray(items, dtype=str), kind="stable")  # draws refer to sorted ids
        idx = order[rng.integers(0, n, size=(self.n_boot, n))]  # [n_boot, n] column positions
        flat = (np.arange(self.n_boot)[:, None] * n + idx).ravel()
        return np.bincount(flat, minlength=self.n_boot * n).reshape(self.n_boot, n) / n

    def get(
        self, model: str, task: str, metric: str, lang: str, condition: str, mask_lang: str
    ) -> Stat | None:
        """The cell's Stat, or None if there are no scores for it."""
        return self.cells.get((model, task, metric, lang, condition, mask_lang))

    def baseline(self, model: str, task: str, metric: str, lang: str) -> Stat:
        """The unmasked score of one (model, task, metric, eval_lang); raises if it is missing."""
        s = self.get(model, task, metric, lang, BASELINE, "none")
        if s is None:
            raise MworkError(f"no baseline scores for {model}/{task}/{metric}/{lang}", "run the unmasked eval")
        return s


_NAN = Stat(float("nan"), np.array([]))
_MARKS = ("paper", "U", "S-ATTN", "S-FFN", "G", "neurons")


def _with_ci(row: dict, name: str, stat: Stat, level: float) -> None:
    row[name] = stat.point
    row[f"{name}_lo"], row[f"{name}_hi"] = stat.ci(level)


def _targets(stats: ScoreStats, english: str) -> dict[tuple[str, str, str, str], list[str]]:
    """(model, task, metric, condition) -> sorted target languages (mask_lang != none, english)."""
    out: dict[tuple[str, str, str, str], set[str]] = {}
    for (model, task, metric, _, cond, mask_lang) in stats.cells:
        if cond != BASELINE and mask_lang not in ("none", english):
            out.setdefault((model, task, metric, cond), set()).add(mask_lang)
    return {k: sorted(v, key=lang_sort_key) for k, v in out.items()}


def _lang_deltas(stats: ScoreStats, english: str) -> dict[tuple[str, ...], dict[str, dict[str, Stat]]]:
    """(model, task, metric, condition) -> L -> {en_d, l_d, en_orig, l_orig, delta_en, delta_l}."""
    out = {}
    for (model, task, metric, cond), langs in _targets(stats, english).items():
        per = {}
        en_o = stats.baseline(model, task, metric, english)
        for lang in langs:
            l_o = stats.baseline(model, task, metric, lang)
            en_d = stats.get(model, task, metric, english, cond, lang) or _NAN
            l_d = stats.get(model, task, metric, lang, cond, lang) or _NAN
            per[lang] = {"en_orig": en_o, "l_orig": l_o, "en_d": en_d, "l_d": l_d,
                         "delta_en": en_d - en_o if en_d is not _NAN else _NAN,
                         "delta_l": l_d - l_o if l_d is not _NAN else _NAN}
        out[(model, task, metric, cond)] = per
    return out


def per_language_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 14-17: one row per (model, task, metric, condition, target language L).

    Columns: en_orig, l_orig, en_d, l_d, delta_en(+_lo/_hi), delta_l(+_lo/_hi),
    delta = ΔEn - ΔL (+_lo/_hi), n_seeds.
    """
    rows = []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        for lang, s in per.items():
            row = {"model": model, "task": task, "metric": metric, "condition": cond, "lang": lang,
                   "n_seeds": max(s["en_d"].n_seeds, s["l_d"].n_seeds),
                   **{k: s[k].point for k in ("en_orig", "l_orig", "en_d", "l_d")}}
            _with_ci(row, "delta_en", s["delta_en"], level)
            _with_ci(row, "delta_l", s["delta_l"], level)
            both = s["delta_en"] - s["delta_l"] if _NAN not in (s["delta_en"], s["delta_l"]) else _NAN
            _with_ci(row, "delta", both, level)
            rows.append(row)
    return pd.DataFrame(rows)


def summary_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 2-5: per (model, task, metric, condition) Eng, n-Eng, ΔEng, Δn-Eng, Δ with CIs.

    Columns: model, table (PAPER_TABLES label), task, metric, condition, paper, U, S-ATTN, S-FFN,
    G, neurons (from `condition_table`, blank for free-form names), langs, n_seeds, eng, n_eng,
    delta_eng(+_lo/_hi), delta_n_eng(+_lo/_hi), delta(+_lo/_hi); a superset of
    `mwork.plotstyle.DEACTIVATION_COLUMNS`.

    A missing En-D or L-D cell makes the affected means NaN (nothing is silently dropped).
    """
    marks = {r["condition"]: r for r in condition_table()}
    rows = []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        base = cond.split("-n")[0].split(".")[0]  # drop layer-split and App.-E variant suffixes
        row = {"model": model, "table": PAPER_TABLES.get(task, task), "task": task, "metric": metric,
               "condition": cond, **{k: marks.get(base, {}).get(k, "") for k in _MARKS},
               "langs": " ".join(per), "n_seeds": max(s["en_d"].n_seeds for s in per.values())}
        means = {}
        for key in ("en_d", "l_d", "delta_en", "delta_l"):
            parts = [s[key] for s in per.values()]
            means[key] = _NAN if any(p is _NAN for p in parts) else Stat.mean(parts)
        row["eng"], row["n_eng"] = means["en_d"].point, means["l_d"].point
        _with_ci(row, "delta_eng", means["delta_en"], level)
        _with_ci(row, "delta_n_eng", means["delta_l"], level)
        ok = _NAN not in (means["delta_en"], means["delta_l"])
        _with_ci(row, "delta", means["delta_en"] - means["delta_l"] if ok else _NAN, level)
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 12-13: per-language rows of conditions labelled with N1/N2 overrides (D_U-n1_6, ...)."""
    per = per_language_table(stats, english, level)
    if per.empty:
        return per
    none = (None, None, None)
    bases = [c.split(".")[0] for c in per["condition"]]  # App.-E variant suffix (e.g. ".minus-en") dropped
    parsed = [parse_condition(b) if b.split("-n")[0] in CONDITIONS else none for b in bases]
    per = per.assign(base=[p[0].name if p[0] else "" for p in parsed],
                     n1=[p[1] for p in parsed], n2=[p[2] for p in parsed])
    per = per[per["n1"].notna() | per["n2"].notna()]
    return per.astype({"n1": "Int64", "n2": "Int64"}).reset_index(drop=True)


def baseline_table(stats: ScoreStats, english: str = "en") -> pd.DataFrame:
    """Table 11: baseline score per (model, task, metric) x language; Avg over non-English."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for (model, task, metric, lang, cond, _), s in stats.cells.items():
        if cond == BASELINE:
            rows.setdefault((model, task, metric), {})[lang] = s.point
    langs = sorted({lang for r in rows.values() for lang in r}, key=lang_sort_key)
    out = pd.DataFrame([{"model": m, "task": t, "metric": me, **{lang: r.get(lang, np.nan) for lang in langs}}
                        for (m, t, me), r in rows.items()])
    non_en = [lang for lang in langs if lang != english]
    if len(out):
        out["Avg"] = out[non_en].mean(axis=1, skipna=True) if non_en else np.nan
    return out


def table1(stats: ScoreStats, task: str = "xlsum", random: str = "R_all", ls: str = "D_all",
           english: str = "en") -> pd.DataFrame:
    """Table 1: Original / Deactivate Random / Deactivate Lang-Spec scores per non-English language."""
    random, ls = canonical_name(random), canonical_name(ls)
    rows = []
    keys = {(m, me) for (m, t, me, *_rest) in stats.cells if t == task}
    for model, metric in sorted(keys):
        langs = sorted({k[3] for k in stats.cells if k[:3] == (model, task, metric) and k[3] != english},
                       key=lang_sort_key)
        methods = (("Original", BASELINE), ("Deactivate Random", random), ("Deactivate Lang-Spec", ls))
        for method, cond in methods:
            vals = {}
            for lang in langs:
                s = stats.get(model, task, metric, lang, cond, "none" if cond == BASELINE else lang)
                vals[lang] = s.point if s else np.nan
            rows.append({"model": model, "metric": metric, "method": method, **vals,
                         "Avg": float(np.mean(list(vals.values()))) if vals else np.nan})
    return pd.DataFrame(rows)


def all_tables(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0, english: str = "en",
               level: float = 0.95) -> dict[str, pd.DataFrame]:
    """Every table from one score table: baseline, table1, per_language, summary, sweep."""
    stats = ScoreStats(df, n_boot=n_boot, seed=seed)
    return {
        "baseline": baseline_table(stats, english), "table1": table1(stats, english=english),
        "per_language": per_language_table(stats, english, level),
        "summary": summary_table(stats, english, level), "sweep": sweep_table(stats, english, level),
    }


__all__ = [
    "LANG_ORDER", "PAPER_TABLES", "SCORE_COLUMNS", "ScoreStats", "Stat", "all_tables", "baseline_table",
    "lang_sort_key", "per_language_table", "per_language_wide", "summary_table", "sweep_table", "table1",
    "to_markdown", "validate_scores", "write_table",
]
