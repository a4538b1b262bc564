"""Snakemake adapter of rule derive_neuron_variant: App. E neuron sets (minus-en, minus-shared).

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "neurons": snakemake.input.neurons,
    "others": list(snakemake.input.others),
    "variant": snakemake.wildcards.variant,
    "out": snakemake.output.neurons,
}
context = {"variant": job["variant"], "others": job["others"]}
sys.exit(run_job("mwork.detect:derive_variant_to_file", job, snakemake.log[0], context=context))
