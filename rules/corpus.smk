# Detection corpora: stream from the hub or read a local file into a deduplicated JSONL pool.
# Package module: mwork.corpus.


def get_corpus_source(wildcards):
    """mwork.corpus.CorpusSource of a language (Plan.check makes sure every language has one)."""
    return config["corpus"]["sources"][wildcards.lang]


def get_corpus_input(wildcards):
    """A local corpus file is an input (so a rule that generates it runs first)."""
    src = get_corpus_source(wildcards)
    return [src["path"]] if "path" in src else []


rule download_corpus:
    input:
        local=get_corpus_input,
    output:
        corpus="resources/corpus/{lang}.jsonl",
    log:
        "logs/download_corpus/{lang}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        source=get_corpus_source,
        settings=pick(config["corpus"], ["pool_size", "min_chars", "max_chars"]),
    script:
        "../scripts/download_corpus.py"
