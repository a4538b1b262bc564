"""Snakemake adapter: evaluation JSONs of one model -> tidy per-item score table."""

from typing import TYPE_CHECKING

from mwork.collect import collect_scores
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, runs=len(snakemake.input.runs))
collect_scores(snakemake.input.runs, snakemake.output.scores)
