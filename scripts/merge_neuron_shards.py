"""Snakemake adapter of rule merge_neuron_shards: a language's document shards -> its neuron file."""

from typing import TYPE_CHECKING

from mwork.neuronfiles import merge_shards_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], shards=list(snakemake.input.shards))
merge_shards_to_file(list(snakemake.input.shards), snakemake.output.neurons)
