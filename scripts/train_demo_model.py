"""Snakemake adapter for rule train_demo_model: train the tiny demo Llama model and its tokenizer.

Inputs:  train (results/demo/world/train.jsonl, a `text` field per line).
Params:  seed (int), train (model size and optimisation settings; see demo/config.yaml).
Outputs: model (directory: HF model + tokenizer + train_log.json).
"""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (injected by Snakemake)
logging.basicConfig(
    level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
)

from mwork.demo.train import train_demo_model  # noqa: E402

train_demo_model(
    snakemake.input.train,  # noqa: F821
    snakemake.output.model,  # noqa: F821
    train=dict(snakemake.params.train),  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
)
