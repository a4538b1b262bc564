"""Snakemake adapter of rule plot_neuron_share: share of units per component that are LS."""

from typing import TYPE_CHECKING

from mwork.figures import plot_neuron_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

summaries = list(snakemake.input.summaries)
setup_rule_logging(snakemake.log[0], summaries=summaries)
plot_neuron_figure(
    summaries, snakemake.output.pdf, kind="share", findings=snakemake.output.findings
)
