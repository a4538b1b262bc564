"""Snakemake adapter of rule finetune_neurons: train one language's neurons (or a baseline) on N documents.

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
    "docs": snakemake.input.docs,
    "out": snakemake.output.delta,
    "language": w.lang,
    "neurons": snakemake.input.neurons or None,
    "n_docs": int(w.n),
    "data_seed": snakemake.params.data_seed,
    "log": snakemake.output.log,
    "settings": snakemake.params.settings,
}
context = {"model": w.model, "lang": w.lang, "kind": w.kind, "n_docs": w.n}
sys.exit(run_job("mwork.jobs:finetune", job, snakemake.log[0], context=context))
