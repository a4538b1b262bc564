"""Snakemake adapter of rule plot_detector_agreement: PLND vs LAPE agreement per layer."""

from typing import TYPE_CHECKING

from mwork.figures import plot_detector_agreement_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], tables=list(snakemake.input.agreement))
plot_detector_agreement_figure(
    list(snakemake.input.agreement),
    snakemake.output.pdf,
    snakemake.output.table,
    findings=snakemake.output.findings,
)
