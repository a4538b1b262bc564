"""What THIS run found: plain sentences for the report, computed from each table's or figure's data.

Every report item states what the paper found (its static caption in `report/*.rst`) and what
this run found: the job that makes a table or figure also writes `<stem>.findings.rst` beside it
(`write_findings`), and the caption pulls it in with docutils' ``.. include::`` (the report is
rendered in the workdir, where the job's relative output paths resolve).

Sentences carry the numbers and 95% CIs where the table has them and a verdict word: ``agrees``,
``disagrees``, ``inconclusive`` (CI includes 0, no CI, baseline at the floor/ceiling, too few
items); some items without CIs use ``partly agrees``. Modules:

    text          numbers, CIs, verdicts, reStructuredText escaping (`to_rst`)
    deactivation  Tables 1-5, 11-17 (`summary_findings`, ..., `PAPER_CLAIMS`)
    layers        Figs. 1, 7 (lens), Fig. 3 and the share bars, Figs. 5/6 (overlap)
    enhancement   Fig. 4, Table 6, held-out perplexity, PLND vs LAPE agreement

Torch-free (a light module): only pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mwork.atomic import atomic_write_text
from mwork.findings.deactivation import (
    PAPER_CLAIMS,
    baseline_findings,
    per_language_findings,
    summary_findings,
    sweep_findings,
    table1_findings,
)
from mwork.findings.enhancement import (
    agreement_findings,
    fig4_findings,
    ppl_findings,
    table6_findings,
)
from mwork.findings.layers import (
    english_ratio_findings,
    language_distribution_findings,
    neuron_count_findings,
    neuron_share_findings,
    overlap_findings,
)
from mwork.findings.text import AGREES, DISAGREES, INCONCLUSIVE, to_rst

# mwork.tables.all_tables key -> findings of that table
TABLE_FINDINGS = {
    "baseline": baseline_findings,
    "table1": table1_findings,
    "per_language": per_language_findings,
    "summary": summary_findings,
    "sweep": sweep_findings,
    "fig4": fig4_findings,
    "table6": table6_findings,
}


def findings_path(path: str | Path) -> Path:
    """`results/x/tables/t.findings.rst` beside `results/x/tables/t.csv` (or a figure's PDF)."""
    p = Path(path)
    return p.with_name(p.name.split(".")[0] + ".findings.rst")


def write_findings(path: str | Path, sentences: Sequence[str], source: str = "this item") -> None:
    """Write the findings as a reStructuredText block (atomically) for a caption to include."""
    atomic_write_text(path, to_rst(sentences, source))


def table_findings(key: str, table: pd.DataFrame) -> list[str]:
    """The findings of one `mwork.tables.all_tables` table (empty table: none)."""
    if table.empty or key not in TABLE_FINDINGS:
        return []
    return TABLE_FINDINGS[key](table)


__all__ = [
    "AGREES",
    "DISAGREES",
    "INCONCLUSIVE",
    "PAPER_CLAIMS",
    "TABLE_FINDINGS",
    "agreement_findings",
    "baseline_findings",
    "english_ratio_findings",
    "fig4_findings",
    "findings_path",
    "language_distribution_findings",
    "neuron_count_findings",
    "neuron_share_findings",
    "overlap_findings",
    "per_language_findings",
    "ppl_findings",
    "summary_findings",
    "sweep_findings",
    "table1_findings",
    "table6_findings",
    "table_findings",
    "write_findings",
]
