"""Snakemake adapter of rule download_corpus: one language's documents into a JSONL pool."""

from typing import TYPE_CHECKING

from mwork.corpus import CorpusSource, prepare_corpus
from mwork.runlog import setup_rule_logging
from mwork.settings import CorpusSettings

if TYPE_CHECKING:
    from snakemake.script import snakemake

source = snakemake.params.source
log = setup_rule_logging(snakemake.log[0], lang=snakemake.wildcards.lang, source=source)
n = prepare_corpus(
    CorpusSource(**source),
    snakemake.output.corpus,
    CorpusSettings(**snakemake.params.settings),
)
log.info("wrote %d documents to %s", n, snakemake.output.corpus)
