"""Snakemake adapter of rule compare_detectors: PLND vs LAPE FFN sets per language and layer.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "model": snakemake.wildcards.model,
    "langs": list(snakemake.params.langs),
    "plnd_files": list(snakemake.input.plnd),
    "lape_files": list(snakemake.input.lape),
    "out": snakemake.output.agreement,
}
context = {"model": snakemake.wildcards.model}
sys.exit(run_job("mwork.neuronstats:agreement_to_file", job, snakemake.log[0], context=context))
