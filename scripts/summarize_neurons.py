"""Snakemake adapter of rule summarize_neurons: per-layer counts of every neuron file of a model.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {"neuron_files": list(snakemake.input.neurons), "out": snakemake.output.summary}
context = {"model": snakemake.wildcards.model}
sys.exit(run_job("mwork.detect:summarize_to_file", job, snakemake.log[0], context=context))
