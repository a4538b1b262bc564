"""Snakemake adapter of rule record_activations: LAPE activation counts of one document shard of
one language, or of every language in one model load (detection.group_languages)."""

from typing import TYPE_CHECKING

from mwork.lape import record_to_files
from mwork.runlog import setup_rule_logging
from mwork.settings import DetectionSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w, grouped = snakemake.wildcards, "langs" in snakemake.params.keys()
langs = list(snakemake.params.langs) if grouped else [w.lang]
corpora = list(snakemake.input.corpus) if grouped else [snakemake.input.corpus]
outs = list(snakemake.output.recording) if grouped else [snakemake.output.recording]
setup_rule_logging(snakemake.log[0], model=w.model, lang=" ".join(langs), shard=f"{w.shard}/{w.n}")
record_to_files(
    ModelSpec.from_mapping(snakemake.params.model),
    dict(zip(langs, corpora, strict=True)),
    dict(zip(langs, outs, strict=True)),
    DetectionSettings.from_mapping(snakemake.params.settings),
    shard=(int(w.shard), int(w.n)),
)
