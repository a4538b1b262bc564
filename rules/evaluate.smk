# Deactivation experiments (paper §3, Tables 1-5, 11-17) and the fine-tuned models' scores (§4).
# Package module: mwork.evaluate. One job per (model, run label, language) loads the model once and
# scores every task of that label: English and the language, with the language's neurons masked
# (evaluate_condition) or its fine-tuning delta applied (evaluate_finetuned); the baseline scores
# one language unmasked (evaluate_baseline). With evaluation.group_languages a job covers every
# language of its label ({lang} = all). Jobs and their tasks: mwork.plan.


rule evaluate_baseline:
    input:
        data=get_job_data,
        model=get_model_input,
    output:
        scores="results/{model}/eval/none/{lang}.json",
    log:
        "logs/evaluate_baseline/{model}/{lang}.log",
    benchmark:
        "logs/benchmarks/evaluate_baseline/{model}/{lang}.tsv"
    wildcard_constraints:
        lang=JOB_LANGS,
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=get_eval_gpus,
        mem_mb=32000,
        runtime=480,
    params:
        model=get_model_spec,
        tasks=get_job_tasks,
        settings=get_evaluation_settings(),
    script:
        "../scripts/evaluate_baseline.py"


rule evaluate_condition:
    input:
        sources=lambda w: list(get_job_sources(w).values()),
        data=get_job_data,
        model=get_model_input,
    output:
        scores="results/{model}/eval/{condition}/{lang}.json",
    log:
        "logs/evaluate_condition/{model}/{condition}/{lang}.log",
    benchmark:
        "logs/benchmarks/evaluate_condition/{model}/{condition}/{lang}.tsv"
    wildcard_constraints:
        lang=JOB_LANGS,
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=get_eval_gpus,
        mem_mb=32000,
        runtime=960,
    params:
        model=get_model_spec,
        tasks=get_job_tasks,
        sources=get_job_sources,
        settings=get_condition_settings(),
    script:
        "../scripts/evaluate_condition.py"


rule evaluate_finetuned:
    input:
        sources=lambda w: list(get_job_sources(w).values()),
        data=get_job_data,
        model=get_model_input,
    output:
        scores="results/{model}/eval/ft_{kind}-{n}/{lang}.json",
    log:
        "logs/evaluate_finetuned/{model}/ft_{kind}-{n}/{lang}.log",
    benchmark:
        "logs/benchmarks/evaluate_finetuned/{model}/ft_{kind}-{n}/{lang}.tsv"
    wildcard_constraints:
        lang=JOB_LANGS,
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=get_eval_gpus,
        mem_mb=32000,
        runtime=480,
    params:
        model=get_finetuned_model,
        tasks=get_job_tasks,
        sources=get_job_sources,
        settings=get_evaluation_settings(),
    script:
        "../scripts/evaluate_finetuned.py"
