"""Snakemake adapter of rule evaluate_finetuned: every task of a fine-tuned run, its delta applied."""

from typing import TYPE_CHECKING

from mwork.evaluate import evaluate_job
from mwork.runlabel import RunLabel
from mwork.runlog import setup_rule_logging
from mwork.settings import EvaluationSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
run = RunLabel.finetuned(w.kind, int(w.n))
setup_rule_logging(snakemake.log[0], model=w.model, label=run.text, lang=w.lang)
evaluate_job(
    ModelSpec.from_mapping(snakemake.params.model),
    run,
    w.lang,
    dict(snakemake.params.sources),
    snakemake.params.tasks,
    snakemake.output.scores,
    EvaluationSettings.from_mapping(snakemake.params.settings),
)
