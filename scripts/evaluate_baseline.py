"""Snakemake adapter of rule evaluate_baseline: every task of one language, nothing masked."""

from typing import TYPE_CHECKING

from mwork.evaluate import evaluate_job
from mwork.runlog import setup_rule_logging
from mwork.settings import EvaluationSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, label="none", lang=w.lang)
evaluate_job(
    ModelSpec.from_mapping(snakemake.params.model),
    "none",
    w.lang,
    {},
    snakemake.params.tasks,
    snakemake.output.scores,
    EvaluationSettings.from_mapping(snakemake.params.settings),
)
