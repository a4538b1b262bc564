"""Snakemake adapter of rule plot_overlap: Eq. 11 overlaps between languages (Figs. 5/6)."""

from typing import TYPE_CHECKING

from mwork.figures import plot_overlap_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

pairs = [list(p) for p in snakemake.params.pairs]
setup_rule_logging(snakemake.log[0], figure=snakemake.wildcards.overlap_fig, pairs=pairs)
plot_overlap_figure(
    list(snakemake.input.neurons),
    pairs,
    snakemake.output.pdf,
    snakemake.output.table,
    findings=snakemake.output.findings,
)
