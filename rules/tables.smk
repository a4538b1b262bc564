# Evaluation results -> tidy per-item scores -> the paper's tables (CSV + Markdown, bootstrap CIs).
# Package module: mwork.tables.


rule collect_scores:
    input:
        runs=get_eval_jsons,
    output:
        scores="results/{model}/tables/scores.csv",
    log:
        "logs/collect_scores/{model}.log",
    conda:
        "../envs/mwork.yaml"
    script:
        "../scripts/collect_scores.py"


rule make_tables:
    input:
        scores="results/{model}/tables/scores.csv",
    output:
        tables=expand("results/{{model}}/tables/{name}.{ext}", name=TABLE_NAMES, ext=["csv", "md"]),
    log:
        "logs/make_tables/{model}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        settings=get_table_settings(),
        enhancement=get_enhancement_settings(),
    script:
        "../scripts/make_tables.py"
