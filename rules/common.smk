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
EVAL = config.get("evaluation")  # None: detection only
EVAL_TASKS = ["mgsm", "xquad", "xcsqa", "xlsum"]
ENGLISH = "en"  # the pivot language: every masked run also scores English (paper's En-D)
# Run labels {condition}[-n1_N][-n2_N][.{variant}][-s{seed}] (mwork.deactivate); never "none".
RUN_LABEL = (
    r"(?:(?:D|R)_(?:U|S|S_attn|S_ffn|G|UG|all)|(?:Dbar|Rbar)_S_attn)"
    r"(?:-n1_\d+)?(?:-n2_\d+)?(?:\.minus-en|\.minus-shared)?(?:-s\d+)?"
)


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    lang="|".join(ALL_LANGS),
    shard=r"\d+",
    n=r"\d+",
    variant="minus-en|minus-shared",
    condition=RUN_LABEL,
    task="|".join(EVAL_TASKS),
    mask_lang="|".join(l for l in ALL_LANGS if l != ENGLISH),
    eval_lang="|".join(ALL_LANGS),


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


def run_labels(condition, seeds):
    """Path labels of one configured condition: the default neuron set applied, one per seed if random."""
    if "." not in condition and EVAL["neuron_set"] != "all":
        condition = f"{condition}.{EVAL['neuron_set']}"
    if condition.startswith("R"):
        return [f"{condition}-s{s}" for s in seeds]
    return [condition]


def eval_runs():
    """(task, run label, mask language) of every masked run in the config, sweep included."""
    runs = []
    for task, spec in EVAL["tasks"].items():
        targets = [l for l in spec["langs"] if l != ENGLISH]
        for cond in spec.get("conditions", []):
            for label in run_labels(cond, EVAL["seeds"]):
                runs += [(task, label, l) for l in targets]
    sweep = EVAL["sweep"]
    if sweep["enabled"]:
        conds = [f"D_U-n1_{n}" for n in sweep["n1"]] + [f"D_G-n2_{n}" for n in sweep["n2"]]
        for cond in conds:
            for label in run_labels(cond, EVAL["seeds"]):
                runs += [(sweep["task"], label, l) for l in sweep["langs"] if l != ENGLISH]
    for _, _, lang in runs:
        if lang not in ALL_LANGS:
            raise ValueError(
                f"evaluation masks language '{lang}' but no neurons are detected for it; "
                "add it to languages.detect or languages.enhance"
            )
    return list(dict.fromkeys(runs))


def get_eval_jsons(wildcards):
    """Every evaluation JSON of one model: baselines per (task, language), then masked runs."""
    files = []
    for task, spec in EVAL["tasks"].items():
        files += expand(
            "results/{model}/eval/none/none/{task}/{eval_lang}.json",
            model=wildcards.model,
            task=task,
            eval_lang=spec["langs"],
        )
    for task, label, lang in eval_runs():
        files += expand(
            "results/{model}/eval/{condition}/{mask_lang}/{task}/{eval_lang}.json",
            model=wildcards.model,
            condition=label,
            mask_lang=lang,
            task=task,
            eval_lang=[ENGLISH, lang],
        )
    return list(dict.fromkeys(files))


def get_eval_neurons(wildcards):
    """The mask language's neuron file, or its App. E variant for a `.minus-*` label."""
    m = re.search(r"\.(minus-en|minus-shared)(?:-s\d+)?$", wildcards.condition)
    if m:
        return f"results/{wildcards.model}/neurons/{wildcards.mask_lang}.{m.group(1)}.safetensors"
    return f"results/{wildcards.model}/neurons/{wildcards.mask_lang}.safetensors"


def task_spec(task, lang):
    """The mwork.tasks.TaskSpec mapping of one task and language from the evaluation config."""
    spec = EVAL["tasks"].get(task, {})
    out = {
        "task": task,
        "lang": lang,
        "prompt_variant": spec.get("prompt_variant", "paper"),
        "n_samples": spec.get("n_samples"),
        "seed": EVAL["sample_seed"],
        "hf_dataset": spec.get("hf_dataset"),
    }
    if task in EVAL["local"]:
        out.update(source="local", path=EVAL["local"][task].format(lang=lang))
    return out


def get_eval_data(wildcards):
    """Local task data files (inputs, so a rule that generates them runs first)."""
    if wildcards.task not in EVAL["local"]:
        return []
    langs = [wildcards.eval_lang] if "eval_lang" in wildcards.keys() else [ENGLISH, wildcards.mask_lang]
    return [EVAL["local"][wildcards.task].format(lang=l) for l in langs]


def get_eval_specs(wildcards):
    """Task specs of one job: the evaluated language (baseline), or English and the mask language."""
    langs = [wildcards.eval_lang] if "eval_lang" in wildcards.keys() else [ENGLISH, wildcards.mask_lang]
    return [task_spec(wildcards.task, l) for l in langs]


def get_table_targets():
    if EVAL is None:
        return []
    return expand(
        "results/{model}/tables/{name}.{ext}",
        model=MODELS,
        name=TABLE_NAMES,
        ext=["csv", "md"],
    )


# mwork.collect.TABLE_FILES (kept here so the DAG does not import the package)
TABLE_NAMES = [
    "table11_baselines",
    "table1_xlsum",
    "tables14_17_per_language",
    "tables2_5_summary",
    "tables12_13_sweep",
]


def get_final_targets():
    return get_neuron_targets() + get_table_targets()


# --- held-out perplexity (rules/perplexity.smk) ---


def get_ppl_heldout(wildcards):
    return expand(config["perplexity"]["heldout"], lang=ALL_LANGS)


def get_ppl_neurons(wildcards):
    return expand("results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=ALL_LANGS)


def get_ppl_targets():
    if "perplexity" not in config:
        return []
    return expand("results/{model}/ppl/deactivation.md", model=MODELS)
