# PLND language-specific neuron detection (GPU), shard merging, App. E variants, summaries; LAPE
# as a second detector. Package modules: mwork.detect, mwork.lape, mwork.neuronset.


def get_detection_settings():
    """mwork.settings.DetectionSettings of detect_neurons (not shards, variants, shared_languages)."""
    keys = ["importance", "top_k_ffn", "top_k_attn", "epsilon_ffn", "epsilon_attn"]
    keys += ["min_fraction", "max_tokens", "seed", "n_docs", "batch_size", "qk_budget_mb"]
    keys += ["qk_scoring", "qk_kernel"]
    return pick(DETECTION, keys)


def get_record_settings():
    """DetectionSettings of record_activations (LAPE): sampling and batching only, so PLND's
    importance, selection and Q/K keys never re-run a recording."""
    return pick(DETECTION, ["max_tokens", "seed", "n_docs", "batch_size"])


def shard_files(kind, wildcards, langs):
    """Shard files (detection.shards per language) of one model, language-major."""
    n = DETECTION["shards"]
    return expand(
        "results/{model}/{kind}/shards/{lang}.{shard}-of-{n}.safetensors",
        model=wildcards.model,
        kind=kind,
        lang=langs,
        shard=range(n),
        n=n,
    )


def get_neuron_shards(wildcards):
    return shard_files("neurons", wildcards, [wildcards.lang])


def get_lape_shards(wildcards):
    """Every language's LAPE recording shards of one model (joint selection)."""
    return shard_files("lape", wildcards, ALL_LANGS)


def get_variant_others(wildcards):
    """Neuron files a variant subtracts: English, or every other shared language."""
    langs = PLAN.variant_others(wildcards.variant, wildcards.lang)
    return expand("results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=langs)


def get_summary_inputs(wildcards):
    """Every neuron file of one model (summarize_neurons)."""
    return PLAN.neuron_files(wildcards.model)


rule detect_neurons:
    input:
        corpus="resources/corpus/{lang}.jsonl",
        model=get_model_input,
    output:
        neurons="results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors",
    log:
        "logs/detect_neurons/{model}/{lang}.{shard}-of-{n}.log",
    benchmark:
        "logs/benchmarks/detect_neurons/{model}/{lang}.{shard}-of-{n}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    params:
        model=get_model_load,
        settings=get_detection_settings(),
    script:
        "../scripts/detect_neurons.py"


if DETECTION["method"] == "plnd":

    rule merge_neuron_shards:
        input:
            shards=get_neuron_shards,
        output:
            neurons="results/{model}/neurons/{lang}.safetensors",
        log:
            "logs/merge_neuron_shards/{model}/{lang}.log",
        conda:
            "../envs/mwork.yaml"
        script:
            "../scripts/merge_neuron_shards.py"


# LAPE (mwork.lape; detection.method: lape, or compare_lape: true): FFN activation counts per
# (model, language, shard), then one joint selection over every language per model.
rule record_activations:
    input:
        corpus="resources/corpus/{lang}.jsonl",
        model=get_model_input,
    output:
        recording="results/{model}/lape/shards/{lang}.{shard}-of-{n}.safetensors",
    log:
        "logs/record_activations/{model}/{lang}.{shard}-of-{n}.log",
    benchmark:
        "logs/benchmarks/record_activations/{model}/{lang}.{shard}-of-{n}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    params:
        model=get_model_load,
        settings=get_record_settings(),
    script:
        "../scripts/record_activations.py"


if PLAN.lape_dir:

    rule select_lape_neurons:
        input:
            recordings=get_lape_shards,
        output:
            neurons=expand(
                "results/{{model}}/{dir}/{lang}.safetensors", dir=PLAN.lape_dir, lang=ALL_LANGS
            ),
        log:
            "logs/select_lape_neurons/{model}.log",
        conda:
            "../envs/mwork.yaml"
        params:
            langs=ALL_LANGS,
            settings=dict(DETECTION["lape"]),
        script:
            "../scripts/select_lape_neurons.py"


rule compare_detectors:
    input:
        plnd=expand("results/{{model}}/neurons/{lang}.safetensors", lang=ALL_LANGS),
        lape=expand("results/{{model}}/neurons_lape/{lang}.safetensors", lang=ALL_LANGS),
    output:
        agreement="results/{model}/neurons_lape/agreement.csv",
    log:
        "logs/compare_detectors/{model}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        langs=ALL_LANGS,
    script:
        "../scripts/compare_detectors.py"


rule derive_neuron_variant:
    input:
        neurons="results/{model}/neurons/{lang}.safetensors",
        others=get_variant_others,
    output:
        neurons="results/{model}/neurons/{lang}.{variant}.safetensors",
    log:
        "logs/derive_neuron_variant/{model}/{lang}.{variant}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/derive_neuron_variant.py"


rule summarize_neurons:
    input:
        neurons=get_summary_inputs,
    output:
        summary="results/{model}/neurons/summary.csv",
    log:
        "logs/summarize_neurons/{model}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/summarize_neurons.py"
