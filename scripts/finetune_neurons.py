"""Snakemake adapter of rule finetune_neurons: one (model, language, N, kind) training run."""

from typing import TYPE_CHECKING

from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.runlog import setup_rule_logging
from mwork.settings import ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
settings = FinetuneSettings.from_mapping({**snakemake.params.settings, "progress": False})
setup_rule_logging(snakemake.log[0], model=w.model, lang=w.lang, kind=w.kind, n_docs=w.n)
finetune_to_file(
    FinetuneInputs(
        model=ModelSpec.from_mapping(snakemake.params.model),
        docs=snakemake.input.docs,
        out=snakemake.output.delta,
        language=w.lang,
        neurons=snakemake.input.neurons or None,
        n_docs=int(w.n),
        data_seed=snakemake.params.data_seed,
        log=snakemake.output.log,
    ),
    settings,
)
