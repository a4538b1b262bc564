"""Snakemake adapter of rule plot_enhancement: Fig. 4 and Table 6 (neuron fine-tuning)."""

from typing import TYPE_CHECKING

from mwork.figures import plot_enhancement_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], tables=list(snakemake.input.fig4))
plot_enhancement_figure(
    list(snakemake.input.fig4),
    list(snakemake.input.table6),
    snakemake.output.pdf,
    snakemake.output.table6,
    findings=snakemake.output.findings,
    table6_findings_path=snakemake.output.table6_findings,
)
