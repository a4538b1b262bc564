"""Snakemake adapter: paper Tables 2-5 as bars (ΔEng, Δn-Eng, Δ with CIs per condition).

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {"summary_csvs": list(snakemake.input.summaries), "out_pdf": snakemake.output.pdf}
context = {"figure": "deactivation", "summaries": job["summary_csvs"]}
sys.exit(run_job("mwork.figures:plot_deactivation_figure", job, snakemake.log[0], context=context))
