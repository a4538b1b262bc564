"""Snakemake adapter of rule collect_scores: every evaluation JSON of a model -> tidy scores.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {"run_jsons": list(snakemake.input.runs), "out_csv": snakemake.output.scores}
context = {"model": snakemake.wildcards.model, "runs": len(job["run_jsons"])}
sys.exit(run_job("mwork.tables:collect_scores_file", job, snakemake.log[0], context=context))
