# Neuron fine-tuning (paper §4, Fig. 4, Table 6): N nested-sampled Wikipedia documents per language,
# then only the language's neurons (ls), matched random neurons (random) or every parameter (full)
# are trained; rules/evaluate.smk's evaluate_finetuned scores the delta. Package module:
# mwork.finetune. With finetune.group_runs one job per (model, language) trains all of its runs.


rule download_wiki:
    input:
        local=get_wiki_input,
    output:
        corpus="resources/wiki/{lang}.jsonl",
    log:
        "logs/download_wiki/{lang}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        source=get_wiki_source,
        settings=pick(FT["wiki"], ["pool_size", "min_chars", "max_chars"]) if FT else {},
    script:
        "../scripts/download_corpus.py"


if FT and FT["group_runs"]:

    rule finetune_language:
        input:
            docs="resources/wiki/{lang}.jsonl",
            neurons=get_finetune_language_neurons,
            model=get_model_input,
        output:
            deltas=expand(
                "results/{{model}}/finetune/{run}/{{lang}}.delta.safetensors", run=FT_RUN_DIRS
            ),
            logs=expand("results/{{model}}/finetune/{run}/{{lang}}.log.json", run=FT_RUN_DIRS),
        log:
            "logs/finetune_language/{model}/{lang}.log",
        benchmark:
            "logs/benchmarks/finetune_language/{model}/{lang}.tsv"
        conda:
            "../envs/mwork.yaml"
        resources:
            gpu=get_model_gpus,
            mem_mb=64000,
            runtime=960,
        params:
            model=get_model_spec,
            runs=get_finetune_runs,
            data_seed=FT["data_seed"],
        script:
            "../scripts/finetune_language.py"

else:

    rule finetune_neurons:
        input:
            docs="resources/wiki/{lang}.jsonl",
            neurons=get_finetune_neurons,
            model=get_model_input,
        output:
            delta="results/{model}/finetune/{kind}-{n}/{lang}.delta.safetensors",
            log="results/{model}/finetune/{kind}-{n}/{lang}.log.json",
        log:
            "logs/finetune_neurons/{model}/{kind}-{n}/{lang}.log",
        benchmark:
            "logs/benchmarks/finetune_neurons/{model}/{kind}-{n}/{lang}.tsv"
        conda:
            "../envs/mwork.yaml"
        resources:
            gpu=get_model_gpus,
            mem_mb=64000,
            runtime=240,
        params:
            model=get_model_spec,
            settings=get_finetune_settings,
            data_seed=FT["data_seed"] if FT else 0,
        script:
            "../scripts/finetune_neurons.py"
