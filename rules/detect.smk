# PLND language-specific neuron detection (GPU), shard merging, App. E variants, summaries.


rule detect_neurons:
    input:
        corpus="resources/corpus/{lang}.jsonl",
        model=get_model_input,
    output:
        neurons="results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors",
    params:
        model_ref=get_model_ref,
        model_spec=lookup(dpath="models/{model}", within=config),
        detection=config["detection"],
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=240,
    log:
        "logs/detect_neurons/{model}/{lang}.{shard}-of-{n}.log",
    benchmark:
        "benchmarks/detect_neurons/{model}/{lang}.{shard}-of-{n}.tsv"
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/detect_neurons.py"


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
