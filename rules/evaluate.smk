# Deactivation experiments (paper §3, Tables 1-5, 11-17): baselines and masked runs (GPU).
# Package module: mwork.evaluate. A masked job loads the model once and scores English and the mask language with the mask
# language's neurons deactivated; it writes one JSON per evaluated language.


rule evaluate_baseline:
    input:
        data=get_eval_data,
        model=get_model_input,
    output:
        scores="results/{model}/eval/none/none/{task}/{eval_lang}.json",
    log:
        "logs/evaluate_baseline/{model}/{task}/{eval_lang}.log",
    benchmark:
        "benchmarks/evaluate_baseline/{model}/{task}/{eval_lang}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    params:
        model=get_model_spec,
        specs=get_eval_specs,
        settings=get_evaluation_settings(),
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
    log:
        "logs/evaluate_condition/{model}/{condition}/{mask_lang}/{task}.log",
    benchmark:
        "benchmarks/evaluate_condition/{model}/{condition}/{mask_lang}/{task}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=480,
    params:
        model=get_model_spec,
        specs=get_eval_specs,
        settings=get_condition_settings,
    script:
        "../scripts/evaluate_condition.py"
