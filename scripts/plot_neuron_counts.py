"""Snakemake adapter of rule plot_neuron_counts: LS neurons per layer (Fig. 3)."""

from typing import TYPE_CHECKING

from mwork.figures import plot_neuron_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

summaries = list(snakemake.input.summaries)
setup_rule_logging(snakemake.log[0], summaries=summaries)
plot_neuron_figure(
    summaries,
    snakemake.output.pdf,
    kind="counts",
    normalise=snakemake.params.normalise,
    findings=snakemake.output.findings,
    splits=snakemake.params.splits,
)
