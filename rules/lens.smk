# Layer-wise language lens (GPU; paper Figs. 1 and 7). Package module: mwork.lens.
#
#   results/{model}/lens/{lens_variant}.csv          lens table (mwork.lens.LENS_COLUMNS)


rule run_language_lens:
    input:
        model=get_model_input,
        prompts=get_lens_prompts_input,
    output:
        table=report(
            "results/{model}/lens/{lens_variant}.csv",
            caption="../report/lens_table.rst",
            category=REPORT_SECTIONS["lens"],
            labels={"model": "{model}", "variant": "{lens_variant}", "type": "table"},
        ),
    log:
        "logs/run_language_lens/{model}/{lens_variant}.log",
    benchmark:
        "logs/benchmarks/run_language_lens/{model}/{lens_variant}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=get_model_gpus,
        mem_mb=48000,
        runtime=120,
    params:
        model=get_model_load,
        settings=get_lens_settings(),
        candidates=DETECT_LANGS,
    script:
        "../scripts/run_language_lens.py"
