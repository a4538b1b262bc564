# mwork: reproducible workflow for "How do Large Language Models Handle Multilingualism?"
# (Zhao et al., NeurIPS 2024). This file only lists includes and targets.
#
# Path grammar ({model} = alias from config, {lang} = ISO code, {shard} = 0-based shard index):
#   resources/corpus/{lang}.jsonl                                   detection corpus pool
#   results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors  one document shard's PLND
#   results/{model}/neurons/{lang}.safetensors                      language-specific neurons (all)
#   results/{model}/neurons/{lang}.{variant}.safetensors            App. E variants: minus-en, minus-shared
#   results/{model}/neurons/summary.csv                             counts per lang/variant/layer/component
#   results/demo/...                                                embedded demo world + model
#   logs/{rule}/{model}/{lang}....log     benchmarks/{rule}/{model}/{lang}....tsv

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
# include: "rules/demo.smk"  (enabled once the demo rules land)
include: "rules/corpus.smk"
include: "rules/detect.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),


rule neurons_only:
    input:
        get_neuron_targets(),
