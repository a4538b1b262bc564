"""Snakemake adapter for rule generate_demo_world: write the seeded demo world's files.

Inputs:  none.
Params:  seed (int), languages (list of codes, English first), world (sizes; see demo/config.yaml).
Outputs: results/demo/world/{corpus,wiki,heldout}/{lang}.jsonl, train.jsonl,
         bench/{mgsm,xquad,xcsqa,xlsum}/{lang}.jsonl (all under the directory of `train`).
"""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (injected by Snakemake)
logging.basicConfig(
    level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
)

from mwork.demo.emit import write_demo_world  # noqa: E402

write_demo_world(
    Path(snakemake.output.train).parent,  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
    languages=list(snakemake.params.languages),  # noqa: F821
    world=dict(snakemake.params.world),  # noqa: F821
)
