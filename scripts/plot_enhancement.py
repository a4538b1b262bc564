"""Snakemake adapter: paper Fig. 4 (neuron fine-tuning bars) and the Table 6 CSV for the report."""

from typing import TYPE_CHECKING

from mwork.figures import plot_enhancement_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], figure="fig4_enhancement", tables=list(snakemake.input.fig4))
plot_enhancement_figure(
    list(snakemake.input.fig4),
    list(snakemake.input.table6),
    snakemake.output.pdf,
    snakemake.output.table6,
)
