"""Snakemake adapter of rule compare_detectors: PLND vs LAPE FFN sets per language and layer."""

from typing import TYPE_CHECKING

from mwork.neuronstats import agreement_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model)
agreement_to_file(
    model=snakemake.wildcards.model,
    langs=list(snakemake.params.langs),
    plnd_files=list(snakemake.input.plnd),
    lape_files=list(snakemake.input.lape),
    out=snakemake.output.agreement,
)
