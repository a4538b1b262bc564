"""Snakemake adapter of rule merge_neuron_shards: sum the document shards of one language.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {"shards": list(snakemake.input.shards), "out": snakemake.output.neurons}
context = {"shards": job["shards"]}
sys.exit(run_job("mwork.detect:merge_shards_to_file", job, snakemake.log[0], context=context))
