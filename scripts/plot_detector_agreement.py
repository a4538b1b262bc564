"""Snakemake adapter: PLND vs LAPE agreement per language and layer (Eq. 11 both ways, Jaccard).

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "agreement_csvs": list(snakemake.input.agreement),
    "out_pdf": snakemake.output.pdf,
    "out_table": snakemake.output.table,
}
context = {"tables": job["agreement_csvs"]}
entry = "mwork.figures:plot_detector_agreement_figure"
sys.exit(run_job(entry, job, snakemake.log[0], context=context))
