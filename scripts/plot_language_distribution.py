"""Snakemake adapter of rule plot_language_distribution: lens tables -> Fig. 7."""

from typing import TYPE_CHECKING

from mwork.figures import plot_lens_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], tables=list(snakemake.input.tables))
plot_lens_figure(
    list(snakemake.input.tables),
    snakemake.output.pdf,
    kind="language_distribution",
    drop_layer0=snakemake.params.drop_layer0,
    langs=snakemake.params.langs,
    findings=snakemake.output.findings,
)
