"""Snakemake adapter of rule plot_deactivation: Tables 2-5 as bars."""

from typing import TYPE_CHECKING

from mwork.figures import plot_deactivation_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], summaries=list(snakemake.input.summaries))
plot_deactivation_figure(
    list(snakemake.input.summaries), snakemake.output.pdf, findings=snakemake.output.findings
)
