"""Snakemake adapter: paper Fig. 7 (per-language share per layer) from lens tables.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "tables": list(snakemake.input.tables),
    "out_pdf": snakemake.output.pdf,
    "kind": "language_distribution",
    "drop_layer0": snakemake.params.drop_layer0,
    "langs": snakemake.params.langs,
}
context = {"figure": "language_distribution", "tables": job["tables"]}
sys.exit(run_job("mwork.figures:plot_lens_figure", job, snakemake.log[0], context=context))
