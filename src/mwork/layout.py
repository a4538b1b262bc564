"""Where the workflow writes each output: the path grammar of `results/` (torch-free, stdlib only).

{model} = model alias of the config, {lang} = ISO code, {label} = run label (`mwork.runlabel`):

    resources/corpus/{lang}.jsonl                               detection corpus pool
    results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors   one document shard's PLND
    results/{model}/neurons/{lang}.safetensors                  language-specific neurons
    results/{model}/neurons/{lang}.{variant}.safetensors        App. E variants (minus-en, minus-shared)
    results/{model}/neurons/summary.csv                         counts per lang/variant/layer/component
    results/{model}/lape/shards/{lang}.{shard}-of-{n}.safetensors      LAPE activation recordings
    results/{model}/neurons_lape/{lang}.safetensors             LAPE's sets beside PLND's (compare_lape)
    results/{model}/eval/none/{lang}.json                       baseline: every task in {lang}, unmasked
    results/{model}/eval/{label}/{lang}.json                    one evaluation job: every task of the
                                                                label, English and {lang}, {lang}'s
                                                                neurons masked (or its delta applied)
    resources/wiki/{lang}.jsonl                                 fine-tuning documents
    results/{model}/finetune/{kind}-{n}/{lang}.delta.safetensors     neuron fine-tuning delta
    results/{model}/tables/scores.csv                           tidy per-item scores
    results/{model}/tables/{table}.csv|.md                      the paper's tables (`TABLE_FILES`)
    results/{model}/ppl/deactivation[_lape].csv|.md             held-out perplexity under masking
    results/{model}/lens/{lens_variant}.csv                     layer-wise language lens
    results/figures/{name}.pdf|.png                             figures (PNG also in the report)
    logs/{rule}/...log, logs/benchmarks/{rule}/...tsv           per-job log and Snakemake benchmark
"""

from __future__ import annotations

BASELINE = "none"  # the run label (and path segment) of the unmasked evaluation
ENGLISH = "en"  # the pivot language: every masked run also scores English (the paper's En-D)

# mwork.tables.all_tables key -> file stem under results/{model}/tables/
TABLE_FILES: dict[str, str] = {
    "baseline": "table11_baselines",
    "table1": "table1_xlsum",
    "per_language": "tables14_17_per_language",
    "summary": "tables2_5_summary",
    "sweep": "tables12_13_sweep",
    "fig4": "fig4_enhancement",
    "table6": "table6_low_resource",
}


def neuron_file(model: str, lang: str, variant: str = "all", detector_dir: str = "neurons") -> str:
    """A language's neuron set (`variant` "all": the set as detected)."""
    suffix = "" if variant == "all" else f".{variant}"
    return f"results/{model}/{detector_dir}/{lang}{suffix}.safetensors"


def eval_file(model: str, label: str, lang: str) -> str:
    """One evaluation job's result: every task of `label` for `lang` (baseline: label "none")."""
    return f"results/{model}/eval/{label}/{lang}.json"


def delta_file(model: str, kind: str, n_docs: int | str, lang: str) -> str:
    """The weight delta of one neuron fine-tuning run."""
    return f"results/{model}/finetune/{kind}-{n_docs}/{lang}.delta.safetensors"


def table_file(model: str, table: str, ext: str) -> str:
    """One of the paper's tables of a model (`table`: a `TABLE_FILES` stem)."""
    return f"results/{model}/tables/{table}.{ext}"
