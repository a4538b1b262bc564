# Neuron fine-tuning (paper §4, Fig. 4, Table 6): N nested-sampled Wikipedia documents per language,
# then only the language's neurons (ls), matched random neurons (random) or every parameter (full)
# are trained; rules/evaluate.smk's evaluate_finetuned scores the delta. Package module:
# mwork.finetune.

# FinetuneSettings keys a training job uses (mwork.finetune; mode = the {kind} wildcard)
FT_TRAIN_KEYS = ["lr", "epochs", "batch_size", "micro_batch_size", "warmup_ratio", "scheduler"]
FT_TRAIN_KEYS += ["max_grad_norm", "weight_decay", "adam_betas", "adam_eps", "max_length"]
FT_TRAIN_KEYS += ["packing", "seed", "neuron_seed", "components", "regions", "cap_per_matrix"]
FT_TRAIN_KEYS += ["train_gate", "precision", "gradient_checkpointing", "allow_empty"]


def get_finetune_settings(wildcards):
    """FinetuneSettings of one training job: hyperparameters, the kind, and the layer split only
    with regions."""
    out = pick(FT, FT_TRAIN_KEYS) | {"mode": wildcards.kind}
    if FT["regions"] is not None:
        spec = config["models"][wildcards.model]
        out.update(n1=spec["n1"], n2=spec["n2"])
    return out


def get_finetune_neurons(wildcards):
    """The language's neuron file (ls, random); full fine-tuning needs none."""
    if wildcards.kind == "full":
        return []
    return f"results/{wildcards.model}/neurons/{wildcards.lang}.safetensors"


def get_wiki_source(wildcards):
    """mwork.corpus.CorpusSource of a language's Wikipedia documents (local template or the hub)."""
    wiki = FT["wiki"]
    if wiki["path"]:
        return {"path": wiki["path"].format(lang=wildcards.lang)}
    return {
        "dataset": wiki["dataset"],
        "config": wiki["config"].format(lang=wildcards.lang),
        "split": wiki["split"],
        "text_field": wiki["text_field"],
    }


def get_wiki_input(wildcards):
    """A local wiki file is an input (the demo generates it)."""
    path = FT["wiki"]["path"]
    return [path.format(lang=wildcards.lang)] if path else []


rule download_wiki:
    input:
        local=get_wiki_input,
    output:
        corpus="resources/wiki/{lang}.jsonl",
    log:
        "logs/download_wiki/{lang}.log",
    conda:
        "../envs/mwork.yaml"
    params:
        source=get_wiki_source,
        settings=pick(FT["wiki"], ["pool_size", "min_chars", "max_chars"]) if FT else {},
    script:
        "../scripts/download_corpus.py"


rule finetune_neurons:
    input:
        docs="resources/wiki/{lang}.jsonl",
        neurons=get_finetune_neurons,
        model=get_model_input,
    output:
        delta="results/{model}/finetune/{kind}-{n}/{lang}.delta.safetensors",
        log="results/{model}/finetune/{kind}-{n}/{lang}.log.json",
    log:
        "logs/finetune_neurons/{model}/{kind}-{n}/{lang}.log",
    benchmark:
        "logs/benchmarks/finetune_neurons/{model}/{kind}-{n}/{lang}.tsv"
    conda:
        "../envs/mwork.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=240,
    params:
        model=get_model_spec,
        settings=get_finetune_settings,
        data_seed=FT["data_seed"] if FT else 0,
    script:
        "../scripts/finetune_neurons.py"
