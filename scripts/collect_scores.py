"""Snakemake adapter of rule collect_scores: every evaluation JSON of a model -> tidy scores."""

from typing import TYPE_CHECKING

from mwork.fidelity import OutputLanguage
from mwork.runlog import setup_rule_logging
from mwork.scores import collect_scores

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, runs=len(snakemake.input))
lid = OutputLanguage(list(snakemake.params.candidates), snakemake.params.lid_backend)
collect_scores(list(snakemake.input.runs), snakemake.output.scores, lid, snakemake.output.languages)
