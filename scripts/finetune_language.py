"""Snakemake adapter of rule finetune_language: every (kind, N) run of one language, one process."""

from typing import TYPE_CHECKING

from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.runlog import setup_rule_logging
from mwork.settings import ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, lang=w.lang, runs=len(snakemake.params.runs))
runs = snakemake.params.runs
for run, delta, log in zip(runs, snakemake.output.deltas, snakemake.output.logs, strict=True):
    inputs = FinetuneInputs(
        model=ModelSpec.from_mapping(snakemake.params.model),
        docs=snakemake.input.docs,
        out=delta,
        language=w.lang,
        neurons=snakemake.input.neurons or None,
        n_docs=int(run["n"]),
        data_seed=snakemake.params.data_seed,
        log=log,
    )
    finetune_to_file(inputs, FinetuneSettings.from_mapping(run["settings"] | {"progress": False}))
