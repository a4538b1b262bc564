"""Snakemake adapter of rule detect_neurons: PLND for one (model, language, document shard)."""

from typing import TYPE_CHECKING

from mwork.detect import detect_to_file
from mwork.runlog import setup_rule_logging
from mwork.settings import DetectionSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, lang=w.lang, shard=f"{w.shard}/{w.n}")
detect_to_file(
    ModelSpec.from_mapping(snakemake.params.model),
    snakemake.input.corpus,
    w.lang,
    snakemake.output.neurons,
    DetectionSettings.from_mapping(snakemake.params.settings),
    shard=(int(w.shard), int(w.n)),
)
