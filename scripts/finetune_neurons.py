"""Snakemake adapter of rule finetune_neurons: train one language's neurons (or a baseline)."""

from typing import TYPE_CHECKING

from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.runlog import setup_rule_logging
from mwork.settings import ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, lang=w.lang, kind=w.kind, n_docs=w.n)
inputs = FinetuneInputs(
    model=ModelSpec.from_mapping(snakemake.params.model),
    docs=snakemake.input.docs,
    out=snakemake.output.delta,
    language=w.lang,
    neurons=snakemake.input.neurons or None,
    n_docs=int(w.n),
    data_seed=snakemake.params.data_seed,
    log=snakemake.output.log,
)
finetune_to_file(
    inputs, FinetuneSettings.from_mapping(snakemake.params.settings | {"progress": False})
)
