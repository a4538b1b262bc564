"""Snakemake adapter: paper Fig. 3 (language-specific neurons per layer, attention vs FFN).

Runs in the warm worker on local runs (`mwork.worker`: imports shared, results identical).
"""

import sys
from typing import TYPE_CHECKING

from mwork.worker import run_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

job = {
    "summaries": list(snakemake.input.summaries),
    "out_pdf": snakemake.output.pdf,
    "kind": "counts",
    "normalise": snakemake.params.normalise,
}
context = {"figure": "neuron_counts", "summaries": job["summaries"]}
sys.exit(run_job("mwork.figures:plot_neuron_figure", job, snakemake.log[0], context=context))
