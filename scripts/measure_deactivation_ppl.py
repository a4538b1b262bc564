"""Snakemake adapter: held-out perplexity with N_L vs random neurons deactivated, per language."""

from typing import TYPE_CHECKING

from mwork.perplexity import deactivation_ppl, write_ppl_tables
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

p, spec, langs = snakemake.params.settings, snakemake.params.model_spec, snakemake.params.langs
setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, settings=p)
long = deactivation_ppl(
    snakemake.params.model_ref,
    dict(zip(langs, snakemake.input.neurons)),
    dict(zip(langs, snakemake.input.heldout)),
    n1=spec["n1"], n2=spec["n2"], seeds=p.get("seeds", [0]), n_texts=p.get("n_texts", 200),
    max_tokens=p.get("max_tokens", 256), dtype=spec.get("dtype", "float32"),
)
write_ppl_tables(long, snakemake.output.table, snakemake.output.summary)
