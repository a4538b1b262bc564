"""Snakemake adapter: paper Fig. 4 (neuron fine-tuning bars) and the Table 6 CSV for the report.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "fig4_csvs": list(snakemake.input.fig4),
    "table6_csvs": list(snakemake.input.table6),
    "out_pdf": snakemake.output.pdf,
    "out_table6": snakemake.output.table6,
}
context = {"figure": "fig4_enhancement", "tables": job["fig4_csvs"]}
sys.exit(run_job("mwork.figures:plot_enhancement_figure", job, snakemake.log[0], context=context))
