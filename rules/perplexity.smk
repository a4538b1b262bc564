# Held-out perplexity with language-specific vs random neurons deactivated (optional section
# `perplexity:` in the config; the embedded demo uses it to show the neurons are language-specific).


def get_ppl_heldout(wildcards):
    return expand(config["perplexity"]["heldout"], lang=ALL_LANGS)


def get_ppl_neurons(wildcards):
    return expand("results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=ALL_LANGS)


def get_ppl_targets():
    if "perplexity" not in config:
        return []
    return expand("results/{model}/ppl/deactivation.md", model=MODELS)


rule measure_deactivation_ppl:
    input:
        neurons=get_ppl_neurons,
        heldout=get_ppl_heldout,
        model=get_model_input,
    output:
        table="results/{model}/ppl/deactivation.csv",
        summary="results/{model}/ppl/deactivation.md",
    params:
        model_ref=get_model_ref,
        model_spec=lookup(dpath="models/{model}", within=config),
        langs=ALL_LANGS,
        settings=lookup(dpath="perplexity", within=config),
    resources:
        gpu=1,
    log:
        "logs/measure_deactivation_ppl/{model}.log",
    benchmark:
        "benchmarks/measure_deactivation_ppl/{model}.tsv"
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/measure_deactivation_ppl.py"
