"""Snakemake adapter: paper Fig. 7 (per-language share per layer) from lens tables."""

from typing import TYPE_CHECKING

from mwork.figures import plot_lens_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(
    snakemake.log[0], figure="language_distribution", tables=list(snakemake.input.tables)
)
plot_lens_figure(
    list(snakemake.input.tables),
    snakemake.output.pdf,
    "language_distribution",
    drop_layer0=snakemake.params.drop_layer0,
    langs=snakemake.params.langs,
)
