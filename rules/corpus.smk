# Detection corpora: stream from the hub or read a local file into a deduplicated JSONL pool.
# Package module: mwork.corpus.


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
