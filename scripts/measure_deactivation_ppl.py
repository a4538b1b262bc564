"""Snakemake adapter of rule measure_deactivation_ppl: held-out perplexity, LS vs random masked."""

from typing import TYPE_CHECKING

from mwork.perplexity import deactivation_ppl, write_ppl_tables
from mwork.runlog import setup_rule_logging
from mwork.settings import ModelSpec, PerplexitySettings

if TYPE_CHECKING:
    from snakemake.script import snakemake

langs, detector = snakemake.params.langs, snakemake.params.detector
setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, detector=detector)
long = deactivation_ppl(
    ModelSpec.from_mapping(snakemake.params.model),
    dict(zip(langs, snakemake.input.neurons, strict=True)),
    dict(zip(langs, snakemake.input.heldout, strict=True)),
    PerplexitySettings.from_mapping(snakemake.params.settings),
    detector=detector,
)
write_ppl_tables(
    long,
    snakemake.output.table,
    snakemake.output.summary,
    detector=detector,
    findings=snakemake.output.findings,
)
