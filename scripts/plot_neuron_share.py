"""Snakemake adapter: share of each component's units that are language-specific, per language."""

from typing import TYPE_CHECKING

from mwork.figures import plot_neuron_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(
    snakemake.log[0], figure="neuron_share", summaries=list(snakemake.input.summaries)
)
plot_neuron_figure(list(snakemake.input.summaries), snakemake.output.pdf, "share")
