# Deactivation experiments (paper §3, Tables 1-5, 11-17): baselines, masked runs, tables.
# A masked job loads the model once and scores English and the mask language with the mask
# language's neurons deactivated; it writes one JSON per evaluated language.


rule evaluate_baseline:
    input:
        data=get_eval_data,
        model=get_model_input,
    output:
        scores="results/{model}/eval/none/none/{task}/{eval_lang}.json",
    params:
        model_ref=get_model_ref,
        model_spec=lookup(dpath="models/{model}", within=config),
        specs=get_eval_specs,
        settings=config.get("evaluation"),
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    log:
        "logs/evaluate_baseline/{model}/{task}/{eval_lang}.log",
    benchmark:
        "benchmarks/evaluate_baseline/{model}/{task}/{eval_lang}.tsv"
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/evaluate_baseline.py"


rule evaluate_condition:
    input:
        neurons=get_eval_neurons,
        data=get_eval_data,
        model=get_model_input,
    output:
        english="results/{model}/eval/{condition}/{mask_lang}/{task}/en.json",
        target="results/{model}/eval/{condition}/{mask_lang}/{task}/{mask_lang}.json",
    params:
        model_ref=get_model_ref,
        model_spec=lookup(dpath="models/{model}", within=config),
        specs=get_eval_specs,
        settings=config.get("evaluation"),
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
    log:
        "logs/evaluate_condition/{model}/{condition}/{mask_lang}/{task}.log",
    benchmark:
        "benchmarks/evaluate_condition/{model}/{condition}/{mask_lang}/{task}.tsv"
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/evaluate_condition.py"


rule collect_scores:
    input:
        runs=get_eval_jsons,
    output:
        scores="results/{model}/tables/scores.csv",
    log:
        "logs/collect_scores/{model}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/collect_scores.py"


rule make_tables:
    input:
        scores="results/{model}/tables/scores.csv",
    output:
        tables=expand("results/{{model}}/tables/{name}.{ext}", name=TABLE_NAMES, ext=["csv", "md"]),
    params:
        settings=config.get("evaluation"),
    log:
        "logs/make_tables/{model}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/make_tables.py"
