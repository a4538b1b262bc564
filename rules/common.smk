# Config validation, wildcard constraints and get_* helpers shared by all rule files.
import re

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml", set_default=True)

MODELS = list(config["models"])
DETECT_LANGS = list(config["languages"]["detect"])
ALL_LANGS = DETECT_LANGS + [
    l for l in config["languages"].get("enhance", []) if l not in DETECT_LANGS
]
DETECTION = config["detection"]
VARIANTS = list(DETECTION["variants"])


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    lang="|".join(ALL_LANGS),
    shard=r"\d+",
    n=r"\d+",
    variant="minus-en|minus-shared",


def get_model_ref(wildcards):
    """Local path or hub id of a model alias."""
    spec = config["models"][wildcards.model]
    return spec.get("path") or spec["hf_id"]


def get_model_input(wildcards):
    """The model directory as a rule input when the workflow builds it (demo) or it is local."""
    spec = config["models"][wildcards.model]
    return [spec["path"]] if "path" in spec else []


def get_corpus_source(wildcards):
    """Corpus source mapping of a language, with a clear error when it is missing."""
    sources = config["corpus"]["sources"]
    if wildcards.lang not in sources:
        raise ValueError(
            f"no corpus source for language '{wildcards.lang}'; add corpus.sources.{wildcards.lang} to the config"
        )
    return sources[wildcards.lang]


def get_corpus_input(wildcards):
    """A local corpus file is an input (so a rule that generates it runs first)."""
    src = get_corpus_source(wildcards)
    return [src["path"]] if "path" in src else []


def get_neuron_shards(wildcards):
    n = DETECTION["shards"]
    return expand(
        "results/{model}/neurons/shards/{lang}.{shard}-of-{n}.safetensors",
        model=wildcards.model,
        lang=wildcards.lang,
        shard=range(n),
        n=n,
    )


def get_variant_others(wildcards):
    """Neuron files subtracted for a variant: English, or every shared language but this one."""
    if wildcards.variant == "minus-en":
        langs = ["en"]
    else:
        langs = [l for l in DETECTION["shared_languages"] if l != wildcards.lang]
    return expand("results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=langs)


def variant_langs(variant):
    """Languages a variant is derived for (minus-en: all but English)."""
    return [l for l in ALL_LANGS if not (variant == "minus-en" and l == "en")]


def get_neuron_targets():
    out = []
    for model in MODELS:
        out += expand("results/{model}/neurons/{lang}.safetensors", model=model, lang=ALL_LANGS)
        for v in VARIANTS:
            out += expand(
                "results/{model}/neurons/{lang}.{variant}.safetensors",
                model=model,
                lang=variant_langs(v),
                variant=v,
            )
        out.append(f"results/{model}/neurons/summary.csv")
    return out


def get_summary_inputs(wildcards):
    files = expand(
        "results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=ALL_LANGS
    )
    for v in VARIANTS:
        files += expand(
            "results/{model}/neurons/{lang}.{variant}.safetensors",
            model=wildcards.model,
            lang=variant_langs(v),
            variant=v,
        )
    return files


def get_final_targets():
    return get_neuron_targets()
