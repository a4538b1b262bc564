"""Snakemake adapter of rule measure_deactivation_ppl: held-out perplexity, N_L vs random neurons.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

langs = snakemake.params.langs
job = {
    "model": snakemake.params.model,
    "neurons": dict(zip(langs, snakemake.input.neurons, strict=True)),
    "heldout": dict(zip(langs, snakemake.input.heldout, strict=True)),
    "settings": snakemake.params.settings,
    "detector": snakemake.params.detector,
    "table": snakemake.output.table,
    "summary": snakemake.output.summary,
}
context = {"model": snakemake.wildcards.model, "detector": snakemake.params.detector}
sys.exit(run_job("mwork.jobs:perplexity", job, snakemake.log[0], context=context))
