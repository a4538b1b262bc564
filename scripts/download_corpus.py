"""Snakemake adapter: write one language's detection corpus pool (resources/corpus/{lang}.jsonl)."""

from typing import TYPE_CHECKING

from mwork.corpus import CorpusSource, prepare_corpus
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

log = setup_rule_logging(snakemake.log[0], lang=snakemake.wildcards.lang, source=snakemake.params.source)
n = prepare_corpus(
    CorpusSource(**snakemake.params.source),
    snakemake.output.corpus,
    pool_size=snakemake.params.pool_size,
    min_chars=snakemake.params.min_chars,
    max_chars=snakemake.params.max_chars,
)
log.info("wrote %d documents to %s", n, snakemake.output.corpus)
