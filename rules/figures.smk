# Every paper figure (CPU): Figs. 1, 3, 4, 5, 6, 7 and Tables 2-5 as plots. Package module:
# mwork.figures. Targets: mwork.plan.Plan.figure_targets.
#
#   results/figures/{name}.pdf + .png                figures (PNG goes into the report)
#   results/tables/{overlap_fig}.csv                 the plotted Eq. 11 overlaps
#   results/tables/detector_agreement.csv            PLND vs LAPE per language and layer (compare_lape)


rule plot_english_ratio:
    input:
        tables=get_lens_tables("fig1"),
    output:
        pdf="results/figures/fig1_english_ratio.pdf",
        findings="results/figures/fig1_english_ratio.findings.rst",
        png=report(
            "results/figures/fig1_english_ratio.png",
            caption="../report/fig1_english_ratio.rst",
            category=REPORT_SECTIONS["lens"],
            labels={"figure": "Fig. 1", "content": "English vs non-English share per layer"},
        ),
    log:
        "logs/plot_english_ratio/fig1_english_ratio.log",
    conda:
        "../envs/mwork.yaml"
    params:
        drop_layer0=LENS["drop_layer0"],
        langs=DETECT_LANGS,
    script:
        "../scripts/plot_english_ratio.py"


rule plot_language_distribution:
    input:
        tables=get_lens_tables("fig7"),
    output:
        pdf="results/figures/fig7_language_distribution.pdf",
        findings="results/figures/fig7_language_distribution.findings.rst",
        png=report(
            "results/figures/fig7_language_distribution.png",
            caption="../report/fig7_language_distribution.rst",
            category=REPORT_SECTIONS["lens"],
            labels={"figure": "Fig. 7", "content": "per-language share per layer"},
        ),
    log:
        "logs/plot_language_distribution/fig7_language_distribution.log",
    conda:
        "../envs/mwork.yaml"
    params:
        drop_layer0=LENS["drop_layer0"],
        langs=DETECT_LANGS,
    script:
        "../scripts/plot_language_distribution.py"


rule plot_neuron_counts:
    input:
        summaries=get_neuron_summaries,
    output:
        pdf="results/figures/fig3_neuron_counts.pdf",
        findings="results/figures/fig3_neuron_counts.findings.rst",
        png=report(
            "results/figures/fig3_neuron_counts.png",
            caption="../report/fig3_neuron_counts.rst",
            category=REPORT_SECTIONS["neurons"],
            labels={"figure": "Fig. 3", "content": "LS neurons per layer"},
        ),
    log:
        "logs/plot_neuron_counts/fig3_neuron_counts.log",
    conda:
        "../envs/mwork.yaml"
    params:
        normalise=FIGURES["neuron_counts_normalise"],
        splits=get_layer_splits,
    script:
        "../scripts/plot_neuron_counts.py"


rule plot_neuron_share:
    input:
        summaries=get_neuron_summaries,
    output:
        pdf="results/figures/neuron_share.pdf",
        findings="results/figures/neuron_share.findings.rst",
        png=report(
            "results/figures/neuron_share.png",
            caption="../report/neuron_share.rst",
            category=REPORT_SECTIONS["neurons"],
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
        findings="results/figures/{overlap_fig}.findings.rst",
        png=report(
            "results/figures/{overlap_fig}.png",
            caption="../report/overlap.rst",
            category=REPORT_SECTIONS["neurons"],
            labels={"figure": "{overlap_fig}", "content": "Eq. 11 overlap"},
        ),
        table=report(
            "results/tables/{overlap_fig}.csv",
            caption="../report/overlap_table.rst",
            category=REPORT_SECTIONS["neurons"],
            labels={"figure": "{overlap_fig}", "content": "overlap table"},
        ),
    log:
        "logs/plot_overlap/{overlap_fig}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        pairs=lambda w: PLAN.overlap_pairs(w.overlap_fig),
    script:
        "../scripts/plot_overlap.py"


rule plot_detector_agreement:
    input:
        agreement=expand("results/{model}/neurons_lape/agreement.csv", model=MODELS),
    output:
        pdf="results/figures/detector_agreement.pdf",
        findings="results/figures/detector_agreement.findings.rst",
        png=report(
            "results/figures/detector_agreement.png",
            caption="../report/detector_agreement.rst",
            category=REPORT_SECTIONS["beyond"],
            labels={"figure": "PLND vs LAPE", "content": "detector agreement per layer"},
        ),
        table=report(
            "results/tables/detector_agreement.csv",
            caption="../report/detector_agreement_table.rst",
            category=REPORT_SECTIONS["beyond"],
            labels={"figure": "PLND vs LAPE", "content": "agreement table"},
        ),
    log:
        "logs/plot_detector_agreement/detector_agreement.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_detector_agreement.py"


rule plot_deactivation:
    input:
        summaries=get_deactivation_summaries,
    output:
        pdf="results/figures/deactivation_summary.pdf",
        findings="results/figures/deactivation_summary.findings.rst",
        png=report(
            "results/figures/deactivation_summary.png",
            caption="../report/deactivation_summary.rst",
            category=REPORT_SECTIONS["deactivation"],
            labels={"figure": "Tables 2-5", "content": "ΔEng, Δn-Eng, Δ per condition"},
        ),
    log:
        "logs/plot_deactivation/deactivation_summary.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_deactivation.py"


rule plot_enhancement:
    input:
        fig4=expand(
            "results/{model}/tables/fig4_enhancement.csv", model=PLAN.finetune_eval_models()
        ),
        table6=expand(
            "results/{model}/tables/table6_low_resource.csv", model=PLAN.finetune_eval_models()
        ),
    output:
        pdf="results/figures/fig4_enhancement.pdf",
        findings="results/figures/fig4_enhancement.findings.rst",
        table6_findings="results/tables/table6_low_resource.findings.rst",
        png=report(
            "results/figures/fig4_enhancement.png",
            caption="../report/fig4_enhancement.rst",
            category=REPORT_SECTIONS["enhancement"],
            labels={"figure": "Fig. 4", "content": "neuron fine-tuning"},
        ),
        table6=report(
            "results/tables/table6_low_resource.csv",
            caption="../report/table6_low_resource.rst",
            category=REPORT_SECTIONS["enhancement"],
            labels={"figure": "Table 6", "content": "low-resource languages"},
        ),
    log:
        "logs/plot_enhancement/fig4_enhancement.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/plot_enhancement.py"
