"""Snakemake adapter of rule run_language_lens: layer-wise language shares of one model/variant.

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
    "out": snakemake.output.table,
    "candidates": list(snakemake.params.candidates),
    "variants": [w.lens_variant],
    "settings": snakemake.params.settings,
}
context = {"model": w.model, "lens_variant": w.lens_variant}
sys.exit(run_job("mwork.jobs:lens", job, snakemake.log[0], context=context))
