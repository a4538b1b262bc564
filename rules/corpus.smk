# Detection corpora: stream from the hub or read a local file into a deduplicated JSONL pool.


rule download_corpus:
    input:
        local=get_corpus_input,
    output:
        corpus="resources/corpus/{lang}.jsonl",
    params:
        source=get_corpus_source,
        pool_size=config["corpus"]["pool_size"],
        min_chars=config["corpus"]["min_chars"],
        max_chars=config["corpus"]["max_chars"],
    log:
        "logs/download_corpus/{lang}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/download_corpus.py"
