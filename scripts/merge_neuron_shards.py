"""Snakemake adapter of rule merge_neuron_shards: sum the document shards of one language."""

from typing import TYPE_CHECKING

from mwork.detect import merge_shards_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], shards=list(snakemake.input.shards))
merge_shards_to_file(list(snakemake.input.shards), snakemake.output.neurons)
