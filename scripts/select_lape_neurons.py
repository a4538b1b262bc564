"""Snakemake adapter of rule select_lape_neurons: joint LAPE selection, one file per language.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

langs = list(snakemake.params.langs)
files = list(snakemake.input.recordings)
per = len(files) // len(langs)  # language-major (rules/common.smk get_lape_shards)
job = {
    "shards": {lang: files[i * per : (i + 1) * per] for i, lang in enumerate(langs)},
    "outs": dict(zip(langs, snakemake.output.neurons, strict=True)),
    "settings": snakemake.params.settings,
}
context = {"model": snakemake.wildcards.model, "langs": langs}
sys.exit(run_job("mwork.jobs:select_lape", job, snakemake.log[0], context=context))
