"""Snakemake adapter: paper Fig. 3 (language-specific neurons per layer, attention vs FFN)."""

from typing import TYPE_CHECKING

from mwork.figures import plot_neuron_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(
    snakemake.log[0], figure="neuron_counts", summaries=list(snakemake.input.summaries)
)
plot_neuron_figure(
    list(snakemake.input.summaries),
    snakemake.output.pdf,
    "counts",
    normalise=snakemake.params.normalise,
)
