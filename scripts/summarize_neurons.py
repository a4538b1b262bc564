"""Snakemake adapter of rule summarize_neurons: per-layer counts of every neuron file of a model."""

from typing import TYPE_CHECKING

from mwork.neuronstats import summarize_files
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model)
summarize_files(list(snakemake.input.neurons), snakemake.output.summary)
