"""Result tables (paper Tables 1-6, 11-17 and Figure 4's data) from tidy per-item scores.

One module per concept:

    bootstrap     per-cell means and paired bootstrap replicates (`Stat`, `ScoreStats`)
    deactivation  deactivation tables: per-language, summary, sweep, baselines, Table 1
    enhancement   neuron fine-tuning tables: Figure 4 and Table 6 (`EnhancementSettings`)
    render        Markdown views (rounding, folded CIs, the paper's wide layouts)
    files         the stage entry `make_tables`: every table as CSV + Markdown (`TABLE_FILES`)

Nothing here imports torch, transformers or lm-eval: the tables job is a light job.
"""

from mwork.tables.bootstrap import ScoreStats, Stat, validate_scores
from mwork.tables.deactivation import (
    baseline_table,
    per_language_table,
    summary_table,
    sweep_table,
    table1,
)
from mwork.tables.enhancement import EnhancementSettings, fig4_table, table6
from mwork.tables.files import TABLE_FILES, all_tables, make_tables, table_paths
from mwork.tables.render import enhancement_wide, per_language_wide, to_markdown

__all__ = [
    "TABLE_FILES",
    "EnhancementSettings",
    "ScoreStats",
    "Stat",
    "all_tables",
    "baseline_table",
    "enhancement_wide",
    "fig4_table",
    "make_tables",
    "per_language_table",
    "per_language_wide",
    "summary_table",
    "sweep_table",
    "table1",
    "table6",
    "table_paths",
    "to_markdown",
    "validate_scores",
]
