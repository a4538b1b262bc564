"""Snakemake adapter: one tidy CSV of neuron counts for all languages and variants of a model."""

from typing import TYPE_CHECKING

from mwork.neuronset import summarize_files
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model)
summarize_files(list(snakemake.input.neurons), snakemake.output.summary)
