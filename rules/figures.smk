# Layer-wise language lens (GPU) and every paper figure (CPU): Figs. 1, 3, 5, 6, 7, Tables 2-5 as plots.
# Needs rules/common.smk (MODELS, DETECT_LANGS, get_model_ref, get_model_input); helpers and the
# figures-config validation live in rules/figures_common.smk. Targets: get_figure_targets().
#
#   results/{model}/lens/{lens_variant}.csv          lens table (mwork.lens.LENS_COLUMNS)
#   results/figures/{name}.pdf + .png                figures (PNG goes into the report)
#   results/tables/{overlap_fig}.csv                 the plotted Eq. 11 overlaps


include: "figures_common.smk"


rule run_language_lens:
    input:
        model=get_model_input,
        prompts=get_lens_prompts_input,
    output:
        table=report(
            "results/{model}/lens/{lens_variant}.csv",
            caption="../report/lens_table.rst",
            category="Layer-wise language lens",
            labels={"model": "{model}", "variant": "{lens_variant}", "type": "table"},
        ),
    params:
        model_ref=get_model_ref,
        model_spec=lookup(dpath="models/{model}", within=config),
        lens=LENS,
        candidates=DETECT_LANGS,
    resources:
        gpu=1,
        mem_mb=48000,
        runtime=120,
    log:
        "logs/run_language_lens/{model}/{lens_variant}.log",
    benchmark:
        "benchmarks/run_language_lens/{model}/{lens_variant}.tsv"
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/run_language_lens.py"


rule plot_english_ratio:
    input:
        tables=get_lens_tables,
    output:
        pdf="results/figures/fig1_english_ratio.pdf",
        png=report(
            "results/figures/fig1_english_ratio.png",
            caption="../report/fig1_english_ratio.rst",
            category="Layer-wise language lens",
            labels={"figure": "Fig. 1", "content": "English vs non-English share per layer"},
        ),
    params:
        drop_layer0=LENS["drop_layer0"],
        langs=DETECT_LANGS,
    log:
        "logs/plot_english_ratio/fig1_english_ratio.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_english_ratio.py"


rule plot_language_distribution:
    input:
        tables=get_lens_tables,
    output:
        pdf="results/figures/fig7_language_distribution.pdf",
        png=report(
            "results/figures/fig7_language_distribution.png",
            caption="../report/fig7_language_distribution.rst",
            category="Layer-wise language lens",
            labels={"figure": "Fig. 7", "content": "per-language share per layer"},
        ),
    params:
        drop_layer0=LENS["drop_layer0"],
        langs=DETECT_LANGS,
    log:
        "logs/plot_language_distribution/fig7_language_distribution.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_language_distribution.py"


rule plot_neuron_counts:
    input:
        summaries=get_neuron_summaries,
    output:
        pdf="results/figures/fig3_neuron_counts.pdf",
        png=report(
            "results/figures/fig3_neuron_counts.png",
            caption="../report/fig3_neuron_counts.rst",
            category="Language-specific neurons",
            labels={"figure": "Fig. 3", "content": "LS neurons per layer"},
        ),
    params:
        normalise=FIGURES["neuron_counts_normalise"],
    log:
        "logs/plot_neuron_counts/fig3_neuron_counts.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_neuron_counts.py"


rule plot_neuron_share:
    input:
        summaries=get_neuron_summaries,
    output:
        pdf="results/figures/neuron_share.pdf",
        png=report(
            "results/figures/neuron_share.png",
            caption="../report/neuron_share.rst",
            category="Language-specific neurons",
            labels={"figure": "neuron share", "content": "% of units per component"},
        ),
    log:
        "logs/plot_neuron_share/neuron_share.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_neuron_share.py"


rule plot_overlap:
    input:
        neurons=get_overlap_neurons,
    output:
        pdf="results/figures/{overlap_fig}.pdf",
        png=report(
            "results/figures/{overlap_fig}.png",
            caption="../report/overlap.rst",
            category="Language-specific neurons",
            labels={"figure": "{overlap_fig}", "content": "Eq. 11 overlap"},
        ),
        table=report(
            "results/tables/{overlap_fig}.csv",
            caption="../report/overlap_table.rst",
            category="Language-specific neurons",
            labels={"figure": "{overlap_fig}", "content": "overlap table"},
        ),
    params:
        pairs=get_overlap_pairs,
    log:
        "logs/plot_overlap/{overlap_fig}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_overlap.py"


rule plot_deactivation:
    input:
        summaries=get_deactivation_summaries,
    output:
        pdf="results/figures/deactivation_summary.pdf",
        png=report(
            "results/figures/deactivation_summary.png",
            caption="../report/deactivation_summary.rst",
            category="Deactivation",
            labels={"figure": "Tables 2-5", "content": "ΔEng, Δn-Eng, Δ per condition"},
        ),
    log:
        "logs/plot_deactivation/deactivation_summary.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_deactivation.py"
