# Deactivation experiments (paper §3, Tables 1-5, 11-17) and the fine-tuned models' scores (§4).
# Package module: mwork.evaluate. One job per (model, run label, language) loads the model once and
# scores every task of that label: English and the language, with the language's neurons masked
# (evaluate_condition) or its fine-tuning delta applied (evaluate_finetuned); the baseline scores
# one language unmasked (evaluate_baseline). With evaluation.group_languages a job covers every
# language of its label ({lang} = all). Jobs and their tasks: mwork.plan.


JOB_LANGS = "|".join([*ALL_LANGS, ALL])  # a job's language, or all of them (group_languages)


def get_evaluation_settings():
    """mwork.settings.EvaluationSettings of the evaluation jobs (not n_boot, tasks, sweep, ...)."""
    if EVAL is None:  # detection only: the evaluation rules are never planned
        return {}
    out = pick(EVAL, ["batch_size", "limit", "max_gen_toks"])
    return out | {"mask_mode": config["deactivation"]["mask_mode"]}


def get_condition_settings():
    """EvaluationSettings of a masked run: evaluation settings + the deactivation count rule."""
    return get_evaluation_settings() | pick(config["deactivation"], ["count", "attn_n", "ffn_n"])


def job_label(wildcards):
    """The run label of an evaluation job's wildcards."""
    if "kind" in wildcards.keys():
        return f"ft_{wildcards.kind}-{wildcards.n}"
    return wildcards.get("condition", "none")


def get_job_tasks(wildcards):
    """mwork.evaluate.TaskRun mappings of one job (mwork.plan)."""
    return PLAN.job_tasks(wildcards.model, job_label(wildcards), wildcards.lang)


def get_job_sources(wildcards):
    """Language -> neuron (or delta) file of one job."""
    return PLAN.job_sources(wildcards.model, job_label(wildcards), wildcards.lang)


def get_job_data(wildcards):
    """Local task data files of one job (inputs, so a rule generating them runs first)."""
    return PLAN.job_data(wildcards.model, job_label(wildcards), wildcards.lang)


def get_finetuned_model(wildcards):
    """A fine-tuned run is scored on the finetune.eval_dtype base (bf16 rounds a delta away)."""
    return get_model_spec(wildcards) | {"dtype": FT["eval_dtype"]}


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
        gpu=1,
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
        gpu=1,
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
        gpu=1,
        mem_mb=32000,
        runtime=480,
    params:
        model=get_finetuned_model,
        tasks=get_job_tasks,
        sources=get_job_sources,
        settings=get_evaluation_settings(),
    script:
        "../scripts/evaluate_finetuned.py"
