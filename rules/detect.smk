# PLND language-specific neuron detection (GPU), shard merging, App. E variants, summaries; LAPE
# as a second detector. Package modules: mwork.detect, mwork.lape, mwork.neuronset.


# detection.group_languages: one job per (model, shard) writes every language's shard file (the
# same files, byte for byte, as one job per language; mwork.detect.detect_to_files).
if DETECTION["group_languages"]:

    rule detect_neurons:
        input:
            corpus=expand("resources/corpus/{lang}.jsonl", lang=ALL_LANGS),
            model=get_model_input,
        output:
            neurons=grouped_shards("neurons"),
        log:
            "logs/detect_neurons/{model}/all.{shard}-of-{n}.log",
        benchmark:
            "logs/benchmarks/detect_neurons/{model}/all.{shard}-of-{n}.tsv"
        conda:
            "../envs/mwork.yaml"
        resources:
            gpu=get_model_gpus,
            mem_mb=32000,
            runtime=240 * len(ALL_LANGS),
        params:
            model=get_model_load,
            settings=get_detection_settings(),
            langs=ALL_LANGS,
        script:
            "../scripts/detect_neurons.py"

else:

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
            gpu=get_model_gpus,
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
# (model, language, shard) (or per (model, shard): group_languages), then one joint selection
# over every language per model.
if DETECTION["group_languages"]:

    rule record_activations:
        input:
            corpus=expand("resources/corpus/{lang}.jsonl", lang=ALL_LANGS),
            model=get_model_input,
        output:
            recording=grouped_shards("lape"),
        log:
            "logs/record_activations/{model}/all.{shard}-of-{n}.log",
        benchmark:
            "logs/benchmarks/record_activations/{model}/all.{shard}-of-{n}.tsv"
        conda:
            "../envs/mwork.yaml"
        resources:
            gpu=get_model_gpus,
            mem_mb=32000,
            runtime=240 * len(ALL_LANGS),
        params:
            model=get_model_load,
            settings=get_record_settings(),
            langs=ALL_LANGS,
        script:
            "../scripts/record_activations.py"

else:

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
            gpu=get_model_gpus,
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
