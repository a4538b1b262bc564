"""Snakemake adapter of rule derive_neuron_variant: App. E neuron sets (minus-en, minus-shared)."""

from typing import TYPE_CHECKING

from mwork.neuronfiles import derive_variant_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

variant, others = snakemake.wildcards.variant, list(snakemake.input.others)
setup_rule_logging(snakemake.log[0], variant=variant, others=others)
derive_variant_to_file(snakemake.input.neurons, others, variant, snakemake.output.neurons)
