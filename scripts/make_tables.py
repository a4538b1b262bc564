"""Snakemake adapter of rule make_tables: the paper's tables from the tidy scores of a model.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "scores": snakemake.input.scores,
    "out_dir": str(Path(snakemake.output.tables[0]).parent),
    "settings": snakemake.params.settings,
    "enhancement": snakemake.params.enhancement,
}
context = {"model": snakemake.wildcards.model, "settings": job["settings"]}
sys.exit(run_job("mwork.jobs:tables", job, snakemake.log[0], context=context))
