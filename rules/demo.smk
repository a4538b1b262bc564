# The embedded demo: a seeded multilingual toy world (corpora, held-out text, training mixture,
# four benchmarks in the real datasets' schemas) and a tiny Llama model trained on it on CPU.


rule generate_demo_world:
    output:
        corpus=expand("results/demo/world/corpus/{lang}.jsonl", lang=config["demo"]["languages"]),
        wiki=expand("results/demo/world/wiki/{lang}.jsonl", lang=config["demo"]["languages"]),
        heldout=expand("results/demo/world/heldout/{lang}.jsonl", lang=config["demo"]["languages"]),
        train="results/demo/world/train.jsonl",
        bench=expand(
            "results/demo/world/bench/{task}/{lang}.jsonl",
            task=["mgsm", "xquad", "xcsqa", "xlsum"],
            lang=config["demo"]["languages"],
        ),
    log:
        "logs/demo/generate_demo_world.log",
    conda:
        "../envs/mwork.yaml"
    params:
        seed=config["demo"]["seed"],
        languages=config["demo"]["languages"],
        world=config["demo"]["world"],
    script:
        "../scripts/generate_demo_world.py"


rule train_demo_model:
    input:
        train="results/demo/world/train.jsonl",
    output:
        model=directory("results/demo/model"),
    log:
        "logs/demo/train_demo_model.log",
    conda:
        "../envs/mwork.yaml"
    params:
        seed=config["demo"]["seed"],
        train=config["demo"]["train"],
    script:
        "../scripts/train_demo_model.py"
