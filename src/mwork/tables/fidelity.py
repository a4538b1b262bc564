"""Output-language fidelity beside the task metric in Tables 2-5 and 14-17 (`mwork.fidelity`).

The score table carries fidelity as one more per-item metric (`FIDELITY`) of the generation tasks,
so its cells, paired bootstrap replicates and deltas come from `ScoreStats` like any score. Here the
fidelity rows of the deactivation tables become columns of the task-metric rows they belong to:

    Tables 2-5 (summary):   fid_eng      share of English answers in English under C (En-D)
                            fid_n_eng    share of L answers in L under C (L-D), mean over L, + CI
                            delta_fid_n_eng  fid_n_eng minus the unmasked share, + CI
    Tables 14-17 (per L):   fid_l_orig, fid_l_d (+ CI), delta_fid_l (+ CI)

All on the tables' x100 scale (percent of answers). Rows without generations (X-CSQA) get NaN.
"""

from __future__ import annotations

import copy

import pandas as pd

from mwork.fidelity import FIDELITY
from mwork.tables.bootstrap import NAN_STAT, ScoreStats, Stat, with_ci
from mwork.tables.deactivation import _lang_deltas

SUMMARY_FIDELITY = ("fid_eng", "fid_n_eng", "delta_fid_n_eng")
PER_LANGUAGE_FIDELITY = ("fid_l_orig", "fid_l_d", "delta_fid_l")


def _columns(names: tuple[str, ...]) -> list[str]:
    """Every fidelity column: points, and _lo/_hi for all but the first."""
    return [names[0]] + [f"{n}{s}" for n in names[1:] for s in ("", "_lo", "_hi")]


def _mean(parts: list[Stat]) -> Stat:
    return NAN_STAT if any(p is NAN_STAT for p in parts) else Stat.mean(parts)


def fidelity_cells(
    stats: ScoreStats, english: str = "en", level: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary cells keyed model, task, condition; per-language cells keyed + lang)."""
    summary, per_lang = [], []
    for (model, task, metric, cond), per in _lang_deltas(stats, english).items():
        if metric != FIDELITY:
            continue
        for lang, s in per.items():
            row = {"model": model, "task": task, "condition": cond, "lang": lang}
            row["fid_l_orig"] = s["l_orig"].point
            with_ci(row, "fid_l_d", s["l_d"], level)
            with_ci(row, "delta_fid_l", s["delta_l"], level)
            per_lang.append(row)
        row = {"model": model, "task": task, "condition": cond}
        row["fid_eng"] = _mean([s["en_d"] for s in per.values()]).point
        with_ci(row, "fid_n_eng", _mean([s["l_d"] for s in per.values()]), level)
        with_ci(row, "delta_fid_n_eng", _mean([s["delta_l"] for s in per.values()]), level)
        summary.append(row)
    return (
        pd.DataFrame(summary, columns=["model", "task", "condition", *_columns(SUMMARY_FIDELITY)]),
        pd.DataFrame(
            per_lang,
            columns=["model", "task", "condition", "lang", *_columns(PER_LANGUAGE_FIDELITY)],
        ),
    )


def task_metrics_only(stats: ScoreStats) -> ScoreStats:
    """A view of `stats` without the fidelity cells (Fig. 4 and Table 6 average task scores)."""
    out = copy.copy(stats)
    out.cells = {k: v for k, v in stats.cells.items() if k[2] != FIDELITY}
    return out


def with_fidelity(table: pd.DataFrame, cells: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`table` without its fidelity-metric rows, the fidelity `cells` joined on `keys` (task
    rows keep their order; rows of tasks without generations get NaN)."""
    if table.empty:
        return table
    rest = table[table["metric"] != FIDELITY].reset_index(drop=True)
    return rest.merge(cells, on=keys, how="left", validate="many_to_one")
