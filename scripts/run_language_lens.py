"""Snakemake adapter of rule run_language_lens: the layer-wise language lens of one model."""

from typing import TYPE_CHECKING

from mwork.lens import lens_to_file
from mwork.runlog import setup_rule_logging
from mwork.settings import LensSettings, ModelSpec

if TYPE_CHECKING:
    from snakemake.script import snakemake

w = snakemake.wildcards
setup_rule_logging(snakemake.log[0], model=w.model, lens_variant=w.lens_variant)
lens_to_file(
    ModelSpec.from_mapping(snakemake.params.model),
    snakemake.output.table,
    list(snakemake.params.candidates),
    [w.lens_variant],
    LensSettings.from_mapping(snakemake.params.settings),
)
