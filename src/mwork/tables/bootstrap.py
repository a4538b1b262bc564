"""Per-item score table -> per-cell means with paired bootstrap replicates (`Stat`, `ScoreStats`).

Input: the tidy per-item score table of `mwork.scores` (`SCORE_COLUMNS`, one row per item).

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

from mwork.errors import MworkError
from mwork.runlabel import BASELINE, parse_condition
from mwork.scores import SCORE_COLUMNS, label_columns

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
        return {"base_condition": condition, "variant": "all", "n1": -1, "n2": -1}


def validate_scores(df: pd.DataFrame) -> pd.DataFrame:
    """A checked copy: required columns, types, canonical condition labels, no duplicate items."""
    df = df.copy()
    derived = [c for c in ("base_condition", "variant", "n1", "n2") if c not in df.columns]
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
    for c in ("base_condition", "variant"):
        out[c] = out[c].astype(str)
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
        # condition -> its label columns (base_condition, variant, n1, n2): tables group by
        # these, not by parsing
        self.labels: dict[str, dict[str, object]] = (
            self.df.drop_duplicates("condition")
            .set_index("condition")[["base_condition", "variant", "n1", "n2"]]
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


NAN_STAT = Stat(float("nan"), np.array([]))


def with_ci(row: dict, name: str, stat: Stat, level: float) -> None:
    row[name] = stat.point
    row[f"{name}_lo"], row[f"{name}_hi"] = stat.ci(level)
