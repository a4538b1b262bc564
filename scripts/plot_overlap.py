"""Snakemake adapter: paper Figs. 5/6 (Eq. 11 overlap of language-specific neurons) + its table."""

from typing import TYPE_CHECKING

from mwork.figures import plot_overlap_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(
    snakemake.log[0], figure=snakemake.wildcards.overlap_fig, pairs=snakemake.params.pairs
)
plot_overlap_figure(
    list(snakemake.input.neurons),
    [tuple(p) for p in snakemake.params.pairs],
    snakemake.output.pdf,
    snakemake.output.table,
)
