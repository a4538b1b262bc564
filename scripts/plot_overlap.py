"""Snakemake adapter: paper Figs. 5/6 (Eq. 11 overlap of language-specific neurons) + its table.

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "neuron_files": list(snakemake.input.neurons),
    "pairs": [list(p) for p in snakemake.params.pairs],
    "out_pdf": snakemake.output.pdf,
    "out_table": snakemake.output.table,
}
context = {"figure": snakemake.wildcards.overlap_fig, "pairs": job["pairs"]}
sys.exit(run_job("mwork.figures:plot_overlap_figure", job, snakemake.log[0], context=context))
