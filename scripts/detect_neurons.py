"""Snakemake adapter of rule detect_neurons: PLND for one (model, language, document shard).

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
    "corpus": snakemake.input.corpus,
    "lang": w.lang,
    "out": snakemake.output.neurons,
    "settings": snakemake.params.settings,
    "shard": [int(w.shard), int(w.n)],
}
context = {"model": w.model, "lang": w.lang, "shard": f"{w.shard}/{w.n}"}
sys.exit(run_job("mwork.jobs:detect", job, snakemake.log[0], context=context))
