"""Snakemake adapter of rule evaluate_condition: English and the mask language, its neurons masked.

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
    "label": w.condition,
    "mask_lang": w.mask_lang,
    "neuron_file": snakemake.input.neurons,
    "task_specs": snakemake.params.specs,
    "outputs": {"en": snakemake.output.english, w.mask_lang: snakemake.output.target},
    "settings": snakemake.params.settings,
}
context = {"model": w.model, "condition": w.condition, "mask_lang": w.mask_lang, "task": w.task}
sys.exit(run_job("mwork.jobs:evaluate", job, snakemake.log[0], context=context))
