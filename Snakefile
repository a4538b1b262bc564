# mwork: reproducible workflow for "How do Large Language Models Handle Multilingualism?"
# (Zhao et al., NeurIPS 2024). This file only lists includes and targets.
#
# Path grammar ({model} = alias from config, {lang} = ISO code, {shard} = 0-based shard index):
#   resources/corpus/{lang}.jsonl                                   detection corpus pool
#   results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors  one document shard's PLND
#   results/{model}/neurons/{lang}.safetensors                      language-specific neurons (all)
#   results/{model}/neurons/{lang}.{variant}.safetensors            App. E variants: minus-en, minus-shared
#   results/{model}/neurons/summary.csv                             counts per lang/variant/layer/component
#   results/{model}/eval/none/none/{task}/{eval_lang}.json          baseline scores (Table 11)
#   results/{model}/eval/{condition}/{mask_lang}/{task}/{eval_lang}.json
#       scores with {mask_lang}'s neurons deactivated; eval_lang is en or mask_lang (one job writes
#       both); {condition} = run label, e.g. D_U, R_all-s0, D_U-n1_6, Dbar_S_attn.minus-en
#   resources/wiki/{lang}.jsonl                                     fine-tuning documents (Wikipedia pool)
#   results/{model}/finetune/{kind}-{n}/{lang}.delta.safetensors    neuron fine-tuning delta (kind ls|random|full,
#       n documents); scored as run label ft_{kind}-{n}: results/{model}/eval/ft_ls-400/{lang}/{task}/...
#   results/{model}/tables/scores.csv                               tidy per-item scores
#   results/{model}/tables/{table}.csv|.md                          Tables 1-5, 11-17 (mwork.tables)
#   results/{model}/ppl/deactivation.csv|.md                        held-out perplexity, N_L vs random masked
#   results/{model}/lens/{lens_variant}.csv                         layer-wise language lens (Figs. 1, 7)
#   results/figures/{name}.pdf|.png                                 paper figures (PNG also in the report)
#   results/demo/world/..., results/demo/model/                     embedded demo world + trained model
#   logs/{rule}/{model}/{lang}....log     benchmarks/{rule}/{model}/{lang}....tsv

from snakemake.utils import min_version

min_version("9.0")


# The paper's study by default; `--configfile demo/config.yaml` (or your own) replaces it
# instead of being merged into it.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


if "demo" in config:  # the embedded demo builds its own world and model (demo/config.yaml)

    include: "rules/demo.smk"


include: "rules/corpus.smk"
include: "rules/detect.smk"
include: "rules/perplexity.smk"
include: "rules/evaluate.smk"
include: "rules/finetune.smk"
include: "rules/tables.smk"
include: "rules/lens.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),
        get_ppl_targets(),
        get_figure_targets(),


rule neurons_only:
    input:
        get_neuron_targets(),


rule eval_only:
    input:
        get_table_targets(),
