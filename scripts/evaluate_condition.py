"""Snakemake adapter of rule evaluate_condition: every task of a label, each language's neurons masked."""

from typing import TYPE_CHECKING

from mwork.evaluate import evaluate_job
from mwork.runlog import setup_rule_logging
from mwork.settings import EvaluationSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, label=w.condition, lang=w.lang)
evaluate_job(
    ModelSpec.from_mapping(snakemake.params.model),
    w.condition,
    w.lang,
    dict(snakemake.params.sources),
    snakemake.params.tasks,
    snakemake.output.scores,
    EvaluationSettings.from_mapping(snakemake.params.settings),
)
