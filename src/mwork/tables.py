"""Deactivation result tables (paper Tables 1-5, 11-17) from tidy per-item scores, with bootstrap CIs.

Input: the tidy per-item score table of `mwork.scores` (`SCORE_COLUMNS`, one row per item).

Derived (paper §2.3, digest §4.1), for condition C and target language L != English:
En-D = En score with N_L deactivated, L-D = L score with N_L deactivated, ΔEn = En-D - En orig,
ΔL = L-D - L orig. Summary: Eng = mean_L En-D, n-Eng = mean_L L-D, ΔEng = mean_L ΔEn,
Δn-Eng = mean_L ΔL, Δ = ΔEng - Δn-Eng. Random conditions are averaged over their seeds.

Confidence intervals: paired percentile bootstrap over items. For each (task, eval_lang) one set of
`n_boot` resamples of the item ids (seeded by seed, task, eval_lang) is shared by every condition
and model, so differences and the means over languages are resampled jointly. Seed-to-seed
variation of random sets is not part of the CI (`n_seeds` says how many were averaged).

Output (`make_tables`): every table under fixed names (`TABLE_FILES`), each as full-precision CSV
and a rounded Markdown view (CI columns folded into `[lo, hi]`; the per-language Markdown uses the
paper's `En-D/L-D (ΔEn/ΔL)` layout of Tables 14-17), written atomically.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mwork.atomic import atomic_write_text, write_csv
from mwork.conditions import (
    BASELINE,
    canonical_name,
    condition_table,
    is_finetune_label,
    parse_condition,
)
from mwork.errors import MworkError
from mwork.languages import lang_sort_key
from mwork.lmeval_tasks import BENCHMARKS
from mwork.scores import SCORE_COLUMNS, collect_scores, label_columns
from mwork.settings import schema_default, schema_field

# all_tables key -> file stem under results/{model}/tables/
TABLE_FILES: dict[str, str] = {
    "baseline": "table11_baselines",
    "table1": "table1_xlsum",
    "per_language": "tables14_17_per_language",
    "summary": "tables2_5_summary",
    "sweep": "tables12_13_sweep",
    "fig4": "fig4_enhancement",
    "table6": "table6_low_resource",
}
_GROUP = ["model", "task", "metric"]


def _canonical_label(label: str) -> str:
    try:
        cond, n1, n2 = parse_condition(label)
    except MworkError:
        return label  # a free-form name (e.g. an App.-E variant) is kept as is
    name = BASELINE if cond is None else cond.name
    return name + (f"-n1_{n1}" if n1 is not None else "") + (f"-n2_{n2}" if n2 is not None else "")


def _label_or_free(condition: str) -> dict[str, object]:
    """Label columns of a condition; a free-form name (not a run label) gets neutral values."""
    try:
        return label_columns(condition)
    except MworkError:
        return {"variant": "all", "n1": -1, "n2": -1}


def validate_scores(df: pd.DataFrame) -> pd.DataFrame:
    """A checked copy: required columns, types, canonical condition labels, no duplicate items."""
    df = df.copy()
    derived = [c for c in ("variant", "n1", "n2") if c not in df.columns]
    if derived:  # a score table from elsewhere: derive the label columns from the condition
        labels = {c: _label_or_free(c) for c in df["condition"].astype(str).unique()}
        for col in derived:
            df[col] = [labels[c][col] for c in df["condition"].astype(str)]
    if "n_masked" not in df.columns:  # older score tables: masked count unknown
        df["n_masked"] = -1
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise MworkError(
            f"score table lacks columns {missing}", f"expected columns {list(SCORE_COLUMNS)}"
        )
    out = df[list(SCORE_COLUMNS)].copy()
    for c in ("model", "condition", "mask_lang", "task", "eval_lang", "metric", "item_id"):
        out[c] = out[c].astype(str)
    out["variant"] = out["variant"].astype(str)
    for c in ("seed", "n1", "n2", "n_masked"):
        out[c] = out[c].astype(int)
    out["value"] = out["value"].astype(float)
    out["condition"] = out["condition"].map(_canonical_label)
    key = [c for c in SCORE_COLUMNS if c not in ("value", "n_masked")]
    dup = out.duplicated(key)
    if dup.any():
        row = out[dup].iloc[0]
        raise MworkError(
            f"duplicate score rows, e.g. {dict(row[key])}", "score each item once per run"
        )
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
        return Stat(
            self.point - other.point, self.boot - other.boot, max(self.n_seeds, other.n_seeds)
        )

    @staticmethod
    def mean(stats: list[Stat]) -> Stat:
        """Mean over languages (points and replicate-by-replicate)."""
        return Stat(
            float(np.mean([s.point for s in stats])),
            np.mean([s.boot for s in stats], axis=0),
            max(s.n_seeds for s in stats),
        )

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

    def __init__(
        self, df: pd.DataFrame, n_boot: int = 1000, seed: int = 0, scale: float = 100.0
    ) -> None:
        """Validate `df` (SCORE_COLUMNS) and compute every cell; `scale` multiplies item scores."""
        self.df = validate_scores(df)
        self.n_boot, self.seed, self.scale = n_boot, seed, scale
        # condition -> its label columns (variant, n1, n2): tables group by these, not by parsing
        self.labels: dict[str, dict[str, object]] = (
            self.df.drop_duplicates("condition")
            .set_index("condition")[["variant", "n1", "n2"]]
            .to_dict("index")
        )
        # (model, task, condition, mask_lang) -> neurons masked (mean over seeds; -1 unknown)
        self.n_masked: dict[tuple[str, ...], float] = (
            self.df.groupby(["model", "task", "condition", "mask_lang", "seed"])["n_masked"]
            .first()
            .groupby(level=[0, 1, 2, 3])
            .mean()
            .to_dict()
        )
        self.cells: dict[tuple[str, ...], Stat] = {}
        for (model, task, metric, lang), g in self.df.groupby(_GROUP + ["eval_lang"], sort=False):
            wide = g.pivot(
                index=["condition", "mask_lang", "seed"], columns="item_id", values="value"
            )
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
                    float(vals[rows].mean(axis=1).mean()), boot[rows].mean(axis=0), len(rows)
                )

    def _weights(self, task: str, lang: str, items: pd.Index) -> np.ndarray:
        """[n_boot, n_items] resampling weights (counts / n) for one (task, eval_lang)."""
        n = len(items)
        rng = np.random.default_rng(
            [self.seed, zlib.crc32(task.encode()), zlib.crc32(lang.encode())]
        )
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
            raise MworkError(
                f"no baseline scores for {model}/{task}/{metric}/{lang}", "run the unmasked eval"
            )
        return s


_NAN = Stat(float("nan"), np.array([]))
_MARKS = ("paper", "U", "S-ATTN", "S-FFN", "G", "neurons")


def _base_name(condition: str) -> str:
    """The canonical condition of a table condition (layer split and variant dropped)."""
    try:
        cond, _, _ = parse_condition(condition.split(".")[0])
    except MworkError:
        return condition
    return BASELINE if cond is None else cond.name


def _with_ci(row: dict, name: str, stat: Stat, level: float) -> None:
    row[name] = stat.point
    row[f"{name}_lo"], row[f"{name}_hi"] = stat.ci(level)


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
            en_d = stats.get(model, task, metric, english, cond, lang) or _NAN
            l_d = stats.get(model, task, metric, lang, cond, lang) or _NAN
            per[lang] = {
                "en_orig": en_o,
                "l_orig": l_o,
                "en_d": en_d,
                "l_d": l_d,
                "delta_en": en_d - en_o if en_d is not _NAN else _NAN,
                "delta_l": l_d - l_o if l_d is not _NAN else _NAN,
            }
        out[(model, task, metric, cond)] = per
    return out


def per_language_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 14-17: one row per (model, task, metric, condition, target language L).

    Columns: en_orig, l_orig, en_d, l_d, delta_en(+_lo/_hi), delta_l(+_lo/_hi),
    delta = ΔEn - ΔL (+_lo/_hi), n_seeds, n_masked (neurons deactivated, mean over seeds).
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
            }
            _with_ci(row, "delta_en", s["delta_en"], level)
            _with_ci(row, "delta_l", s["delta_l"], level)
            both = (
                s["delta_en"] - s["delta_l"] if _NAN not in (s["delta_en"], s["delta_l"]) else _NAN
            )
            _with_ci(row, "delta", both, level)
            rows.append(row)
    return pd.DataFrame(rows)


def summary_table(stats: ScoreStats, english: str = "en", level: float = 0.95) -> pd.DataFrame:
    """Tables 2-5: per (model, task, metric, condition) Eng, n-Eng, ΔEng, Δn-Eng, Δ with CIs.

    Columns: model, table (PAPER_TABLES label), task, metric, condition, paper, U, S-ATTN, S-FFN,
    G, neurons (from `condition_table`, blank for free-form names), langs, n_seeds, n_masked
    (neurons deactivated, mean over the target languages), eng, n_eng,
    delta_eng(+_lo/_hi), delta_n_eng(+_lo/_hi), delta(+_lo/_hi); a superset of
    `mwork.plotstyle.DEACTIVATION_COLUMNS`.

    A missing En-D or L-D cell makes the affected means NaN (nothing is silently dropped).
    """
    marks = {r["condition"]: r for r in condition_table()}
    rows = []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        base = _base_name(cond)
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
        }
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
    labels = [stats.labels[c] for c in per["condition"]]
    n1 = [None if lab["n1"] < 0 else lab["n1"] for lab in labels]
    n2 = [None if lab["n2"] < 0 else lab["n2"] for lab in labels]
    per = per.assign(
        base=[
            _base_name(c) if a is not None or b is not None else ""
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


def all_tables(
    df: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
    english: str = "en",
    level: float = 0.95,
    enhancement: EnhancementSettings | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table from one score table: baseline, table1, per_language, summary, sweep, fig4, table6."""
    stats = ScoreStats(df, n_boot=n_boot, seed=seed)
    enhancement = enhancement or EnhancementSettings()
    return {
        "fig4": fig4_table(stats, enhancement, english, level),
        "table6": table6(stats, enhancement, english, level),
        "baseline": baseline_table(stats, english),
        "table1": table1(stats, english=english),
        "per_language": per_language_table(stats, english, level),
        "summary": summary_table(stats, english, level),
        "sweep": sweep_table(stats, english, level),
    }


# --- output: CSV + Markdown views (atomic) ---


def to_markdown(df: pd.DataFrame, decimals: int = 1) -> str:
    """A GitHub Markdown table; floats rounded to `decimals`, NaN shown as '-'."""

    def fmt(v: object) -> str:
        if isinstance(v, float | np.floating):
            return "-" if np.isnan(v) else f"{v:.{decimals}f}"
        return "-" if v is None or v is pd.NA else str(v).replace("|", "\\|")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _signed(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:+.{decimals}f}"


def _plain(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:.{decimals}f}"


def per_language_wide(per_language: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Paper layout of Tables 14-17 from `per_language_table` output.

    Returns:
        One row per (model, task, metric, condition) in input order, one string column per
        target language (paper order), cells `En-D/L-D (ΔEn/ΔL) n=<neurons masked>`; '' where a
        language is absent.
    """
    if per_language.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "condition"])
    masked = (
        per_language["n_masked"] if "n_masked" in per_language else [np.nan] * len(per_language)
    )
    cells = per_language.assign(
        cell=[
            f"{_plain(r.en_d, decimals)}/{_plain(r.l_d, decimals)} "
            f"({_signed(r.delta_en, decimals)}/{_signed(r.delta_l, decimals)})"
            + ("" if pd.isna(n) or n < 0 else f" n={n:.0f}")
            for r, n in zip(per_language.itertuples(index=False), masked, strict=True)
        ]
    )
    langs = sorted(set(cells["lang"]), key=lang_sort_key)
    wide = cells.pivot_table(
        index=["model", "task", "metric", "condition"],
        columns="lang",
        values="cell",
        aggfunc="first",
        sort=False,
    )
    return wide.reindex(columns=langs).fillna("").reset_index().rename_axis(columns=None)


def _fold_ci(df: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Replace each `x_lo`/`x_hi` pair by one `x_ci` string column `[lo, hi]` (Markdown view)."""
    out = df.copy()
    for col in [c for c in df.columns if f"{c}_lo" in df.columns and f"{c}_hi" in df.columns]:
        out[f"{col}_ci"] = [
            "-" if pd.isna(lo) or pd.isna(hi) else f"[{lo:+.{decimals}f}, {hi:+.{decimals}f}]"
            for lo, hi in zip(df[f"{col}_lo"], df[f"{col}_hi"], strict=True)
        ]
        out = out.drop(columns=[f"{col}_lo", f"{col}_hi"])
    return out


def table_paths(out_dir: str | Path) -> list[Path]:
    """Every file `make_tables` writes into `out_dir` (CSV and Markdown per table)."""
    return [
        Path(out_dir) / f"{stem}.{ext}" for stem in TABLE_FILES.values() for ext in ("csv", "md")
    ]


def make_tables(
    tidy_csv: str | Path,
    out_dir: str | Path,
    n_boot: int = 1000,
    seed: int = 0,
    decimals: int = 1,
    enhancement: EnhancementSettings | None = None,
) -> dict[str, pd.DataFrame]:
    """Compute every table from a tidy score CSV and write them under `TABLE_FILES` names.

    Args:
        tidy_csv: the score table written by `mwork.scores.collect_scores`.
        out_dir: output folder (created).
        n_boot: bootstrap resamples for the CIs (0: no CIs).
        seed: bootstrap seed.
        decimals: rounding of the Markdown views (scores are x100).
        enhancement: languages and N of Fig. 4 / Table 6 (config `finetune`).

    Returns:
        {all_tables key: DataFrame}.
    """
    ints = {"seed": int, "n1": int, "n2": int, "n_masked": int}
    dtypes = {c: str for c in SCORE_COLUMNS[:-1] if c not in ints} | ints
    df = pd.read_csv(tidy_csv, keep_default_na=False, dtype=dtypes)
    tables = all_tables(df, n_boot=n_boot, seed=seed, enhancement=enhancement)
    out = Path(out_dir)
    for key, stem in TABLE_FILES.items():
        table = tables[key]
        csv, md = out / f"{stem}.csv", out / f"{stem}.md"
        if table.empty:
            atomic_write_text(csv, ",".join(table.columns) + "\n")
            atomic_write_text(md, "_No rows: this table's runs are not configured._\n")
            continue
        write_csv(csv, table)
        if key == "per_language":
            view = per_language_wide(table, decimals)
        elif key in ("fig4", "table6"):
            index = (
                ["model", "task", "metric", "langs", "method"]
                if key == "fig4"
                else ["model", "method"]
            )
            view = enhancement_wide(table, index, decimals)
        else:
            view = _fold_ci(table, decimals)
        atomic_write_text(md, to_markdown(view, decimals))
    return tables


def collect_scores_file(run_jsons: list[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """rules/tables.smk's first step: every evaluation JSON of a model -> the tidy score CSV."""
    return collect_scores(run_jsons, out_csv)


# --- neuron fine-tuning: Figure 4 and Table 6 (paper §4; run labels ft_{kind}-{N}) ---


@dataclass(frozen=True)
class EnhancementSettings:
    """Which languages and N the enhancement tables show (config `finetune`).

    Attributes:
        high_resource: Fig. 4 languages (per task, averaged over those the task covers).
        low_resource: Table 6 languages (each averaged over the tasks that exist for it).
        n_docs: N of the LS runs (Fig. 4 bars 100/200/400/800).
        baseline_n_docs: N of the random / full baselines and of Table 6's Lang-Spec row.
    """

    high_resource: tuple[str, ...] = field(default=tuple(schema_default("finetune/high_resource")))
    low_resource: tuple[str, ...] = field(default=tuple(schema_default("finetune/low_resource")))
    n_docs: tuple[int, ...] = field(default=tuple(schema_default("finetune/n_docs")))
    baseline_n_docs: int = schema_field("finetune/baseline_n_docs")

    @classmethod
    def from_mapping(cls, values: dict | None) -> EnhancementSettings:
        values = dict(values or {})
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def methods(self) -> list[tuple[str, str, int | None]]:
        """(method name, condition, N) in Fig. 4's bar order; `none` is the original model."""
        n0 = self.baseline_n_docs
        out = [
            ("Original", BASELINE, None),
            (f"Random-{n0}", f"ft_random-{n0}", n0),
            (f"Full-{n0}", f"ft_full-{n0}", n0),
        ]
        return out + [(f"LS-{n}", f"ft_ls-{n}", n) for n in sorted(set(self.n_docs) | {n0})]


def _ft_cell(
    stats: ScoreStats, key: tuple[str, str, str], lang: str, cond: str, mask: str
) -> Stat | None:
    model, task, metric = key
    if cond == BASELINE:
        return stats.get(model, task, metric, lang, BASELINE, "none")
    return stats.get(model, task, metric, lang, cond, mask)


def _ft_langs(stats: ScoreStats, key: tuple[str, str, str], langs: tuple[str, ...]) -> list[str]:
    """Languages of `langs` with an original score and at least one fine-tuned run on this task."""
    have = {k[5] for k in stats.cells if k[:3] == key and is_finetune_label(k[4])}
    return [lang for lang in langs if lang in have and _ft_cell(stats, key, lang, BASELINE, "none")]


def _mean_or_nan(parts: list[Stat | None]) -> Stat:
    return _NAN if not parts or any(p is None for p in parts) else Stat.mean(parts)  # type: ignore[arg-type]


def _method_rows(
    stats: ScoreStats, settings: EnhancementSettings, cells: dict[str, list[tuple]], english: str
) -> list[dict]:
    """Rows per method of averaged scores: `cells` = lang -> [(model, task, metric)] to average."""
    rows = []
    pairs = [(lang, key) for lang, keys in cells.items() for key in keys]
    for method, cond, n in settings.methods():
        if cond != BASELINE and not any(_ft_cell(stats, k, lang, cond, lang) for lang, k in pairs):
            continue  # a kind that is not configured (e.g. full on 7B models)
        for lang, keys in cells.items():
            score = _mean_or_nan([_ft_cell(stats, k, lang, cond, lang) for k in keys])
            orig = _mean_or_nan([_ft_cell(stats, k, lang, BASELINE, "none") for k in keys])
            rows.append(
                {
                    "method": method,
                    "condition": cond,
                    "n_docs": n,
                    "lang": lang,
                    "stat": score,
                    "delta": score - orig if _NAN not in (score, orig) else _NAN,
                }
            )
        en = _mean_or_nan(
            [
                _mean_or_nan([_ft_cell(stats, k, english, cond, lang) for k in keys])
                for lang, keys in cells.items()
            ]
        )
        en_o = _mean_or_nan(
            [
                _mean_or_nan([_ft_cell(stats, k, english, BASELINE, "none") for k in keys])
                for lang, keys in cells.items()
            ]
        )
        rows.append(
            {
                "method": method,
                "condition": cond,
                "n_docs": n,
                "lang": english,
                "stat": en,
                "delta": en - en_o if _NAN not in (en, en_o) else _NAN,
            }
        )
    return rows


def _finish(rows: list[dict], level: float) -> list[dict]:
    out = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("stat", "delta")}
        _with_ci(row, "score", r["stat"], level)
        _with_ci(row, "delta", r["delta"], level)
        out.append(row)
    return out


def fig4_table(
    stats: ScoreStats, settings: EnhancementSettings, english: str = "en", level: float = 0.95
) -> pd.DataFrame:
    """Figure 4's data: per (model, task, metric) and method (Original, Random-N0, [Full-N0], LS-N),
    the score averaged over the high-resource languages the task covers (`lang` = "avg"), and the
    fine-tuned models' English score (`lang` = en, averaged the same way), with paired bootstrap
    CIs of the score and of its difference from the original model (`delta`).

    Columns: model, task, metric, langs, method, condition, n_docs, lang, score(+_lo/_hi),
    delta(+_lo/_hi).
    """
    rows = []
    keys = sorted({k[:3] for k in stats.cells if is_finetune_label(k[4])})
    for key in keys:
        langs = _ft_langs(stats, key, settings.high_resource)
        if not langs:
            continue
        model, task, metric = key
        # the average over languages is one "language" (avg) of len(langs) cells
        per = _method_rows(stats, settings, {lang: [key] for lang in langs}, english)
        grouped: dict[str, dict] = {}
        for r in per:
            if r["lang"] == english:
                grouped.setdefault(r["method"] + "|en", dict(r))
                continue
            g = grouped.setdefault(r["method"] + "|avg", {**r, "lang": "avg", "_s": [], "_d": []})
            g["_s"].append(r["stat"])
            g["_d"].append(r["delta"])
        for g in grouped.values():
            if "_s" in g:
                g["stat"] = _NAN if any(s is _NAN for s in g["_s"]) else Stat.mean(g.pop("_s"))
                g["delta"] = _NAN if any(s is _NAN for s in g["_d"]) else Stat.mean(g.pop("_d"))
                g.pop("_s", None), g.pop("_d", None)
        for r in _finish(list(grouped.values()), level):
            rows.append(
                {"model": model, "task": task, "metric": metric, "langs": " ".join(langs), **r}
            )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    order = {m: i for i, (m, _, _) in enumerate(settings.methods())}
    df["_o"] = df["method"].map(order)
    df["_l"] = (df["lang"] == english).astype(int)
    return (
        df.sort_values(["model", "task", "_l", "_o"], kind="stable")
        .drop(columns=["_o", "_l"])
        .reset_index(drop=True)
    )


def table6(
    stats: ScoreStats, settings: EnhancementSettings, english: str = "en", level: float = 0.95
) -> pd.DataFrame:
    """Table 6: per model and method (Original, Random, [Full], Lang-Spec at baseline_n_docs), each
    low-resource language's score averaged over the tasks that exist for it, and En = the mean over
    the fine-tuned models (each averaged over its language's tasks), with paired bootstrap CIs of
    the score and of the change from the original model.

    Columns: model, method, condition, n_docs, lang, tasks, score(+_lo/_hi), delta(+_lo/_hi).
    """
    n0 = settings.baseline_n_docs
    only = EnhancementSettings(settings.high_resource, settings.low_resource, (n0,), n0)
    names = {
        "Original": "Original",
        f"Random-{n0}": "Random",
        f"Full-{n0}": "Full",
        f"LS-{n0}": "Lang-Spec",
    }
    rows = []
    for model in sorted({k[0] for k in stats.cells if is_finetune_label(k[4])}):
        keys = sorted({k[:3] for k in stats.cells if k[0] == model})
        cells = {}
        for lang in settings.low_resource:
            have = [k for k in keys if lang in _ft_langs(stats, k, (lang,))]
            if have:
                cells[lang] = have
        if not cells:
            continue
        for r in _finish(_method_rows(stats, only, cells, english), level):
            tasks = (
                sorted({k[1] for k in cells.get(r["lang"], [])})
                if r["lang"] != english
                else ["mean"]
            )
            rows.append(
                {
                    "model": model,
                    **r,
                    "method": names.get(r["method"], r["method"]),
                    "tasks": " ".join(tasks),
                }
            )
    return pd.DataFrame(rows)


def enhancement_wide(df: pd.DataFrame, index: list[str], decimals: int = 1) -> pd.DataFrame:
    """Markdown view: one row per `index`, one column per language, cells `score (Δ [lo, hi])`."""
    if df.empty:
        return df
    cells = df.assign(
        cell=[
            f"{_plain(r.score, decimals)}"
            + (
                ""
                if r.method == "Original"
                else f" ({_signed(r.delta, decimals)} [{_signed(r.delta_lo, decimals)}, "
                f"{_signed(r.delta_hi, decimals)}])"
            )
            for r in df.itertuples(index=False)
        ]
    )
    langs = list(dict.fromkeys(cells["lang"]))
    wide = cells.pivot_table(
        index=index, columns="lang", values="cell", aggfunc="first", sort=False
    )
    return wide.reindex(columns=langs).fillna("").reset_index().rename_axis(columns=None)
