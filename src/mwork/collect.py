"""Deactivation run JSONs -> tidy per-item score table -> the paper's tables (CSV + Markdown).

`tidy_scores` reads the JSONs written by `mwork.deactivate.evaluate_condition` and returns one row
per scored item in the `mwork.tables.SCORE_COLUMNS` schema: the run's condition (seed dropped,
variant kept), mask language and seed (-1 for non-random runs), the task and evaluated language
of each task entry, the task's primary metric (the paper's: MGSM/X-CSQA accuracy, XQuAD
answer containment, XLSum ROUGE-L) and its per-item value in [0, 1].

`make_tables` writes every table of `mwork.tables.all_tables` under fixed names (`TABLE_FILES`),
each as full-precision CSV and a rounded Markdown view (CI columns folded into `[lo, hi]`; the
per-language Markdown uses the paper's `En-D/L-D (ΔEn/ΔL)` layout of Tables 14-17).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mwork.atomic import atomic_write_text
from mwork.errors import MworkError
from mwork.tableio import per_language_wide, to_markdown, write_table
from mwork.tables import SCORE_COLUMNS, all_tables

EVAL_SCHEMA = "mwork.deactivation/1"
# all_tables key -> file stem under results/{model}/tables/
TABLE_FILES: dict[str, str] = {
    "baseline": "table11_baselines",
    "table1": "table1_xlsum",
    "per_language": "tables14_17_per_language",
    "summary": "tables2_5_summary",
    "sweep": "tables12_13_sweep",
}


def load_eval_json(path: str | Path) -> dict[str, Any]:
    """Read one run JSON and check its schema."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MworkError(f"cannot read evaluation result {path} ({exc})", "re-run its evaluation job") from None
    if not isinstance(data, dict) or data.get("schema") != EVAL_SCHEMA:
        raise MworkError(f"{path} is not an mwork deactivation result", f"expected schema {EVAL_SCHEMA}")
    return data


def _item_ids(items: dict[str, Any]) -> list[str]:
    """Dataset ids when present and unique, else lm-eval doc ids (stable for a fixed sample)."""
    ids = items.get("id") or []
    if ids and all(i is not None for i in ids) and len(set(map(str, ids))) == len(ids):
        return [str(i) for i in ids]
    return [f"doc{d}" for d in items["doc_id"]]


def run_rows(data: dict[str, Any], source: str = "?") -> list[dict[str, Any]]:
    """Tidy rows (SCORE_COLUMNS) of one run JSON; `source` names it in error messages."""
    rows = []
    seed = -1 if data.get("seed") is None else int(data["seed"])
    for name, task in data["tasks"].items():
        spec, metric_key = task["spec"], task["primary_metric"]
        values = task["items"]["scores"].get(metric_key)
        if values is None:
            raise MworkError(f"{source}: task {name} has no per-item '{metric_key}' scores",
                             "re-run it with the current mwork")
        for item_id, value in zip(_item_ids(task["items"]), values, strict=True):
            if value is None or not math.isfinite(float(value)):
                raise MworkError(f"{source}: task {name} item {item_id} has no {metric_key} score",
                                 "check the task's process_results")
            rows.append({"model": data["model"], "condition": data["condition"], "mask_lang": data["mask_lang"],
                         "task": spec["task"], "eval_lang": spec["lang"], "seed": seed,
                         "metric": metric_key.split(",")[0], "item_id": item_id, "value": float(value)})
    return rows


def tidy_scores(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per scored item over all run JSONs (columns SCORE_COLUMNS, value in [0, 1])."""
    rows = []
    for path in paths:
        rows += run_rows(load_eval_json(path), str(path))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def collect_scores(paths: Iterable[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """Write the tidy score table of `paths` to `out_csv` (atomically) and return it."""
    df = tidy_scores(paths)
    if df.empty:
        raise MworkError("no scored items in the evaluation results", "check the evaluation jobs' logs")
    write_table(df, out_csv)
    return df


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
    return [Path(out_dir) / f"{stem}.{ext}" for stem in TABLE_FILES.values() for ext in ("csv", "md")]


def make_tables(
    tidy_csv: str | Path, out_dir: str | Path, n_boot: int = 1000, seed: int = 0, decimals: int = 1
) -> dict[str, pd.DataFrame]:
    """Compute every table from a tidy score CSV and write them under `TABLE_FILES` names.

    Args:
        tidy_csv: the score table written by `collect_scores`.
        out_dir: output folder (created).
        n_boot: bootstrap resamples for the CIs (0: no CIs).
        seed: bootstrap seed.
        decimals: rounding of the Markdown views (scores are x100).

    Returns:
        {all_tables key: DataFrame}.
    """
    df = pd.read_csv(tidy_csv, keep_default_na=False, dtype={c: str for c in SCORE_COLUMNS[:-1]} | {"seed": int})
    tables = all_tables(df, n_boot=n_boot, seed=seed)
    out = Path(out_dir)
    for key, stem in TABLE_FILES.items():
        table = tables[key]
        csv, md = out / f"{stem}.csv", out / f"{stem}.md"
        if table.empty:
            atomic_write_text(csv, ",".join(table.columns) + "\n")
            atomic_write_text(md, "_No rows: this table's runs are not configured._\n")
            continue
        write_table(table, csv)
        view = per_language_wide(table, decimals) if key == "per_language" else _fold_ci(table, decimals)
        atomic_write_text(md, to_markdown(view, decimals))
    return tables
