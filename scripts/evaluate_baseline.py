"""Snakemake adapter of rule evaluate_baseline: the unmasked model on one task and language.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
job = {
    "model": snakemake.params.model,
    "label": "none",
    "mask_lang": "none",
    "neuron_file": None,
    "task_specs": snakemake.params.specs,
    "outputs": {w.eval_lang: snakemake.output.scores},
    "settings": snakemake.params.settings,
}
context = {"model": w.model, "condition": "none", "task": w.task, "eval_lang": w.eval_lang}
sys.exit(run_job("mwork.jobs:evaluate", job, snakemake.log[0], context=context))
