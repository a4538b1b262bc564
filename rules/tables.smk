# Evaluation results -> tidy per-item scores (+ output-language fidelity of generated answers) -> the
# paper's tables (CSV + Markdown, bootstrap CIs), every table in the report with its caption.
# Package modules: mwork.scores, mwork.fidelity, mwork.tables.


rule collect_scores:
    input:
        runs=lambda w: PLAN.eval_outputs(w.model),
    output:
        scores="results/{model}/tables/scores.csv",
        languages="results/{model}/tables/output_languages.csv",
    log:
        "logs/collect_scores/{model}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        lid_backend=LENS["lid_backend"],  # fidelity: the lens's offline LID (mwork.fidelity)
        candidates=ALL_LANGS,
    script:
        "../scripts/collect_scores.py"


rule make_tables:
    input:
        scores="results/{model}/tables/scores.csv",
    output:
        table1=table_output("table1_xlsum", "table1_existence", "Table 1"),
        summary=table_output("tables2_5_summary", "tables2_5_summary", "Tables 2-5"),
        baselines=table_output("table11_baselines", "table11_baseline", "Table 11"),
        sweep=table_output("tables12_13_sweep", "tables12_13_sweep", "Tables 12-13"),
        per_language=table_output(
            "tables14_17_per_language", "tables14_17_per_language", "Tables 14-17"
        ),
        fig4=table_output("fig4_enhancement", "fig4_enhancement", "Fig. 4", "enhancement"),
        table6=table_output("table6_low_resource", "table6_low_resource", "Table 6", "enhancement"),
        markdown=expand("results/{{model}}/tables/{name}.md", name=TABLE_FILES.values()),
        findings=expand("results/{{model}}/tables/{name}.findings.rst", name=TABLE_FILES.values()),
    log:
        "logs/make_tables/{model}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        settings=pick(EVAL, ["n_boot", "boot_seed"]) if EVAL else {},
        enhancement=get_enhancement_settings(),
    script:
        "../scripts/make_tables.py"
