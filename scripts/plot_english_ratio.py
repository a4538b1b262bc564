"""Snakemake adapter: paper Fig. 1 (English vs non-English share per layer) from lens tables."""

from typing import TYPE_CHECKING

from mwork.figures import plot_lens_figure
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], figure="english_ratio", tables=list(snakemake.input.tables))
plot_lens_figure(
    list(snakemake.input.tables),
    snakemake.output.pdf,
    "english_ratio",
    drop_layer0=snakemake.params.drop_layer0,
    langs=snakemake.params.langs,
)
