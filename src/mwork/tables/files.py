"""The tables stage: every table from one tidy score CSV, written under fixed names.

`make_tables` writes every table under `TABLE_FILES` names, each as full-precision CSV and a
rounded Markdown view for people (`mwork.tables.views`: the paper's column names, a legend line
that decodes the cells and states the scale, ‡ on baselines at the floor or ceiling; the
per-language Markdown uses the paper's `En-D/L-D (ΔEn/ΔL)` layout of Tables 14-17; an empty
table says which config key would fill it), written atomically.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mwork.atomic import atomic_write_text, write_csv
from mwork.findings import table_findings, write_findings
from mwork.layout import TABLE_FILES
from mwork.scores import SCORE_COLUMNS
from mwork.tables.bootstrap import ScoreStats
from mwork.tables.deactivation import (
    baseline_table,
    per_language_table,
    summary_table,
    sweep_table,
    table1,
)
from mwork.tables.enhancement import EnhancementSettings, fig4_table, table6
from mwork.tables.fidelity import fidelity_cells, task_metrics_only, with_fidelity
from mwork.tables.render import enhancement_wide, fold_ci, per_language_wide
from mwork.tables.views import markdown_view, summary_view


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
    fid_summary, fid_per_lang = fidelity_cells(stats, english, level)
    per_lang_keys = ["model", "task", "condition", "lang"]
    tasks_only = task_metrics_only(stats)
    return {
        "fig4": fig4_table(tasks_only, enhancement, english, level),
        "table6": table6(tasks_only, enhancement, english, level),
        "baseline": baseline_table(stats, english),
        "table1": table1(stats, english=english),
        "per_language": with_fidelity(
            per_language_table(stats, english, level), fid_per_lang, per_lang_keys
        ),
        "summary": with_fidelity(
            summary_table(stats, english, level), fid_summary, ["model", "task", "condition"]
        ),
        "sweep": with_fidelity(sweep_table(stats, english, level), fid_per_lang, per_lang_keys),
    }


def table_paths(out_dir: str | Path) -> list[Path]:
    """Every table file `make_tables` writes into `out_dir` (CSV and Markdown per table; beside
    each also `<stem>.findings.rst`)."""
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
    """Compute every table from a tidy score CSV and write them under `TABLE_FILES` names, each
    with `<stem>.findings.rst`: what this run found in it (`mwork.findings`, for the report).

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
        write_findings(out / f"{stem}.findings.rst", table_findings(key, table), "this table")
        if table.empty:  # the Markdown says which config key would fill it
            atomic_write_text(csv, ",".join(table.columns) + "\n")
            atomic_write_text(md, markdown_view(key, table, table))
            continue
        write_csv(csv, table)
        if key == "summary":
            view = summary_view(table, decimals)
        elif key == "per_language":
            view = per_language_wide(table, decimals)
        elif key in ("fig4", "table6"):
            index = (
                ["model", "task", "metric", "langs", "method"]
                if key == "fig4"
                else ["model", "method"]
            )
            view = enhancement_wide(table, index, decimals)
        else:
            view = fold_ci(table, decimals)
        atomic_write_text(md, markdown_view(key, table, view, decimals))
    return tables
