"""Snakemake adapter of rule generate_demo_world: the seeded demo world's corpora and benchmarks.

Writes results/demo/world/{corpus,wiki,heldout}/{lang}.jsonl, train.jsonl and
bench/{mgsm,xquad,xcsqa,xlsum}/{lang}.jsonl (all under the directory of `train`).
"""

from pathlib import Path
from typing import TYPE_CHECKING

from mwork.demo.emit import write_demo_world
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], seed=snakemake.params.seed)
write_demo_world(
    Path(snakemake.output.train).parent,
    seed=int(snakemake.params.seed),
    languages=list(snakemake.params.languages),
    world=dict(snakemake.params.world),
)
