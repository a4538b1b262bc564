# Held-out perplexity with language-specific vs random neurons deactivated (optional section
# `perplexity:` in the config; the embedded demo uses it to show the neurons are language-specific).
# With detection.compare_lape the LAPE sets (neurons_lape/) get the same table, so each detector's
# set is compared with its own matched random neurons. Package module: mwork.perplexity.


rule measure_deactivation_ppl:
    input:
        neurons=get_ppl_neurons("neurons"),
        heldout=get_ppl_heldout,
        model=get_model_input,
    output:
        table=report(
            "results/{model}/ppl/deactivation.csv",
            caption="../report/ppl_deactivation.rst",
            category=REPORT_SECTIONS["beyond"],
            labels={"model": "{model}", "neurons": DETECTION["method"]},
        ),
        summary="results/{model}/ppl/deactivation.md",
        findings="results/{model}/ppl/deactivation.findings.rst",
    log:
        "logs/measure_deactivation_ppl/{model}.log",
    benchmark:
        "logs/benchmarks/measure_deactivation_ppl/{model}.tsv"
    priority: 1  # a long job that only needs the neurons: start it early, not last (the demo's tail)
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=get_model_gpus,
    params:
        model=get_model_spec,
        langs=ALL_LANGS,
        detector=DETECTION["method"],
        settings=get_perplexity_settings(),
    script:
        "../scripts/measure_deactivation_ppl.py"


use rule measure_deactivation_ppl as measure_deactivation_ppl_lape with:
    input:
        neurons=get_ppl_neurons("neurons_lape"),
        heldout=get_ppl_heldout,
        model=get_model_input,
    output:
        table=report(
            "results/{model}/ppl/deactivation_lape.csv",
            caption="../report/ppl_deactivation.rst",
            category=REPORT_SECTIONS["beyond"],
            labels={"model": "{model}", "neurons": "lape (compare_lape)"},
        ),
        summary="results/{model}/ppl/deactivation_lape.md",
        findings="results/{model}/ppl/deactivation_lape.findings.rst",
    log:
        "logs/measure_deactivation_ppl_lape/{model}.log",
    benchmark:
        "logs/benchmarks/measure_deactivation_ppl_lape/{model}.tsv"
    params:
        model=get_model_spec,
        langs=ALL_LANGS,
        detector="lape",
        settings=get_perplexity_settings(),
