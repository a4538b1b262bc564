"""Snakemake adapter of rule train_demo_model: the tiny demo Llama and its tokenizer (CPU)."""

from typing import TYPE_CHECKING

from mwork.demo.train import train_demo_model
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

setup_rule_logging(snakemake.log[0], seed=snakemake.params.seed)
train_demo_model(
    snakemake.input.train,
    snakemake.output.model,
    train=dict(snakemake.params.train),
    seed=int(snakemake.params.seed),
)
