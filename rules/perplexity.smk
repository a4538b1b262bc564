# Held-out perplexity with language-specific vs random neurons deactivated (optional section
# `perplexity:` in the config; the embedded demo uses it to show the neurons are language-specific).


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
        settings=config.get("perplexity", {}),
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
