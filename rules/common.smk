# Config validation, wildcard constraints and get_* helpers shared by all rule files.
# The schema (also mwork.settings' source of every default) lives in the package.
# Rules pass their scripts only the config values the job uses (get_*_settings below), so an
# unrelated edit never re-plans a GPU job under `rerun-triggers: params`.
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def config_error(problem, fix):
    """Stop at workflow start with one line `error: config: <problem>; <fix>` and exit 2."""
    print(f"error: config: {' '.join(str(problem).split())}; {fix}", file=sys.stderr)
    sys.exit(2)


try:
    validate(config, schema="../src/mwork/data/config.schema.yaml", set_default=True)
except WorkflowError as exc:  # jsonschema's report is pages long; its first sentence suffices
    err = exc.__context__
    if not hasattr(err, "absolute_path"):
        raise
    where = ".".join(str(p) for p in err.absolute_path) or "top level"
    config_error(
        f"{where}: {err.message[:300]}", "fix it (schema: src/mwork/data/config.schema.yaml)"
    )

MODELS = list(config["models"])
DETECT_LANGS = list(config["languages"]["detect"])
ALL_LANGS = DETECT_LANGS + [
    l for l in config["languages"].get("enhance", []) if l not in DETECT_LANGS
]
DETECTION = config["detection"]
if DETECTION["qk_scoring"] != "exact" and DETECTION["importance"] != "paper":
    config_error(
        f"detection.qk_scoring {DETECTION['qk_scoring']} needs importance: paper",
        "use qk_scoring: exact with importance: released-code",
    )
VARIANTS = list(DETECTION["variants"])
# LAPE (mwork.lape): the producer of neurons/ (method lape) or a second set in neurons_lape/
LAPE_DIR = (
    "neurons"
    if DETECTION["method"] == "lape"
    else ("neurons_lape" if DETECTION["compare_lape"] else None)
)
EVAL = config.get("evaluation")  # None: detection only
# mwork.lmeval_tasks.TASKS and mwork.conditions.RUN_LABEL_PATTERN, copied so that planning the
# DAG does not import the package (torch); tests/unit/test_drift.py keeps them equal.
EVAL_TASKS = ["mgsm", "xquad", "xcsqa", "xlsum"]
ENGLISH = "en"  # the pivot language: every masked run also scores English (paper's En-D)
# Run labels {condition}[-n1_N][-n2_N][.{variant}][-s{seed}] or ft_{kind}-{N}; never "none".
RUN_LABEL = (
    r"(?:(?:(?:D|R)_(?:U|S|S_attn|S_ffn|G|UG|all)|(?:Dbar|Rbar)_S_attn)"
    r"(?:-n1_\d+)?(?:-n2_\d+)?(?:\.minus-en|\.minus-shared)?(?:-s\d+)?"
    r"|ft_(?:ls|random|full)-\d+)"
)


def local_layer_count(spec):
    """Layer count in a local model's config.json (json only, no torch); None if not there yet."""
    if "path" not in spec:
        return None
    try:
        cfg = json.loads((Path(spec["path"]) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    n = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    return n if isinstance(n, int) else None


def check_layer_splits():
    """Every model's N1/N2 split, and each run label's override (sweep included), fits its
    layers (the configured count, checked against a local model's config.json)."""
    labels = []
    if EVAL is not None:
        for task, spec in EVAL["tasks"].items():
            where = f"evaluation.tasks.{task}.conditions"
            labels += [(where, c) for c in spec.get("conditions", [])]
        if EVAL["sweep"]["enabled"]:
            labels += [("evaluation.sweep.n1", f"D_U-n1_{n}") for n in EVAL["sweep"]["n1"]]
            labels += [("evaluation.sweep.n2", f"D_G-n2_{n}") for n in EVAL["sweep"]["n2"]]
    for model, spec in config["models"].items():
        n_layers, n1, n2 = spec["n_layers"], spec["n1"], spec["n2"]
        real = local_layer_count(spec)
        if real is not None and real != n_layers:
            config_error(
                f"models.{model}.n_layers is {n_layers} but {spec['path']}/config.json has {real}",
                f"set models.{model}.n_layers: {real}",
            )
        if n1 + n2 > n_layers:
            config_error(
                f"models.{model}: n1 + n2 = {n1} + {n2} exceeds its {n_layers} layers",
                "lower n1 or n2 (understanding and generation layers must not overlap)",
            )
        for where, label in labels:
            o1, o2 = (re.search(rf"-{k}_(\d+)", label) for k in ("n1", "n2"))
            l1, l2 = (int(o1.group(1)) if o1 else n1), (int(o2.group(1)) if o2 else n2)
            if l1 + l2 > n_layers:
                config_error(
                    f"{where}: {label} needs N1 + N2 = {l1} + {l2} layers but model {model} "
                    f"has {n_layers}",
                    "use values with N1 + N2 <= n_layers",
                )


check_layer_splits()


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


def model_spec(model, split):
    """mwork.settings.ModelSpec fields of a model alias; the layer split only where it is used."""
    spec = config["models"][model]
    out = {
        "ref": spec.get("path") or spec["hf_id"],
        "name": model,
        "dtype": spec["dtype"],
        "trust_remote_code": spec["trust_remote_code"],
        "n_layers": spec["n_layers"],
    }
    if split:
        out.update(n1=spec["n1"], n2=spec["n2"])
    return out


def get_model_load(wildcards):
    """What a job needs to load the model (detection, lens): no layer split."""
    return model_spec(wildcards.model, split=False)


def get_model_spec(wildcards):
    """What a masking job needs: the model and its understanding/generation layer split."""
    out = model_spec(wildcards.model, split=True)
    if "condition" in wildcards.keys() and wildcards.condition.startswith("ft_"):
        out["dtype"] = FT["eval_dtype"]  # a delta applied to bf16 weights rounds away
    return out


def pick(section, keys):
    """The named keys of a config section (what one job uses)."""
    return {k: section[k] for k in keys}


def get_corpus_settings():
    """mwork.settings.CorpusSettings of download_corpus."""
    return pick(config["corpus"], ["pool_size", "min_chars", "max_chars"])


def get_detection_settings():
    """mwork.settings.DetectionSettings of detect_neurons (not shards, variants, shared_languages)."""
    keys = ["importance", "top_k_ffn", "top_k_attn", "epsilon_ffn", "epsilon_attn"]
    keys += ["min_fraction", "max_tokens", "seed", "n_docs", "batch_size", "qk_budget_mb"]
    keys += ["qk_scoring", "qk_kernel"]
    return pick(DETECTION, keys)


def get_record_settings():
    """mwork.settings.DetectionSettings of record_activations (LAPE): sampling and batching only,
    so PLND's importance, selection and Q/K keys never re-run a recording."""
    return pick(DETECTION, ["max_tokens", "seed", "n_docs", "batch_size"])


def get_evaluation_settings():
    """mwork.settings.EvaluationSettings of the evaluation jobs (not n_boot, tasks, sweep, ...)."""
    if EVAL is None:  # detection only: the evaluation rules are never planned
        return {}
    out = pick(EVAL, ["batch_size", "limit", "max_gen_toks"])
    return out | {"mask_mode": config["deactivation"]["mask_mode"]}


def get_count_peers(wildcards):
    """Run labels (no seeds) of the table a masked run belongs to (deactivation.count: equal).

    The task's configured conditions, or the N1/N2 sweep's for a sweep label; [] for other rules.
    """
    if config["deactivation"]["count"] != "equal":
        return []
    label = re.sub(r"-s\d+$", "", wildcards.condition)
    table = [
        re.sub(r"-s\d+$", "", l)
        for c in EVAL["tasks"].get(wildcards.task, {}).get("conditions", [])
        for l in run_labels(c, [0])
    ]
    sweep = EVAL["sweep"]
    if label not in table and sweep["enabled"] and wildcards.task == sweep["task"]:
        conds = [f"D_U-n1_{n}" for n in sweep["n1"]] + [f"D_G-n2_{n}" for n in sweep["n2"]]
        table = [re.sub(r"-s\d+$", "", l) for c in conds for l in run_labels(c, [0])]
    return sorted(dict.fromkeys(table)) if label in table else [label]


def get_condition_settings(wildcards):
    """EvaluationSettings of a masked run: evaluation settings + the deactivation count rule."""
    dec = config["deactivation"]
    return get_evaluation_settings() | {
        "count": dec["count"],
        "attn_n": dec["attn_n"],
        "ffn_n": dec["ffn_n"],
        "count_peers": get_count_peers(wildcards),
    }


def get_table_settings():
    """mwork.settings.TableSettings of make_tables."""
    if EVAL is None:
        return {}
    return pick(EVAL, ["n_boot", "boot_seed"])


def get_perplexity_settings():
    """mwork.settings.PerplexitySettings of measure_deactivation_ppl."""
    if "perplexity" not in config:  # the rule is never planned then
        return {}
    out = pick(config["perplexity"], ["n_texts", "max_tokens", "batch_size", "seeds"])
    return out | pick(config["deactivation"], ["mask_mode", "count", "attn_n", "ffn_n"])


def get_lens_settings():
    """mwork.settings.LensSettings of run_language_lens."""
    keys = ["prompts", "top_k", "max_new_tokens", "prompt_template", "lid_backend", "lid_min_prob"]
    return pick(LENS, keys)


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
    """Shard files of one (model, language); detection.shards of them."""
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


def get_lape_settings():
    """mwork.settings.LapeSettings of select_lape_neurons."""
    return dict(DETECTION["lape"])


def get_lape_shards(wildcards):
    """Every language's LAPE recording shards of one model (joint selection), language-major."""
    n = DETECTION["shards"]
    return expand(
        "results/{model}/lape/shards/{lang}.{shard}-of-{n}.safetensors",
        model=wildcards.model,
        lang=ALL_LANGS,
        shard=range(n),
        n=n,
    )


def get_neuron_targets():
    """Neuron files, variants and summaries of every model (+ the detector comparison)."""
    out = []
    if DETECTION["method"] == "plnd" and DETECTION["compare_lape"]:
        out += expand("results/{model}/neurons_lape/agreement.csv", model=MODELS)
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
    """Every neuron file of one model (summarize_neurons)."""
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


def deactivation_models():
    """Models of the deactivation study (evaluation.models; null = every model)."""
    return MODELS if EVAL is None or EVAL["models"] is None else list(EVAL["models"])


def get_eval_jsons(wildcards):
    """Every evaluation JSON of one model: baselines per (task, language), masked runs, fine-tuned runs."""
    files = []
    if wildcards.model not in deactivation_models():
        return finetune_eval_jsons(wildcards.model)
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
    return list(dict.fromkeys(files + finetune_eval_jsons(wildcards.model)))


def get_eval_neurons(wildcards):
    """The mask language's neuron file, its App. E variant for a `.minus-*` label, or the delta of an ft_ label."""
    ft = re.fullmatch(r"ft_(ls|random|full)-(\d+)", wildcards.condition)
    if ft:
        return delta_path(wildcards.model, ft.group(1), ft.group(2), wildcards.mask_lang)
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
        "hf_revision": spec.get("hf_revision"),
    }
    if task in EVAL["local"]:
        out.update(source="local", path=EVAL["local"][task].format(lang=lang))
    return out


def get_eval_data(wildcards):
    """Local task data files (inputs, so a rule that generates them runs first)."""
    if wildcards.task not in EVAL["local"]:
        return []
    langs = (
        [wildcards.eval_lang] if "eval_lang" in wildcards.keys() else [ENGLISH, wildcards.mask_lang]
    )
    return [EVAL["local"][wildcards.task].format(lang=l) for l in langs]


def get_eval_specs(wildcards):
    """Task specs of one job: the evaluated language (baseline), or English and the mask language."""
    langs = (
        [wildcards.eval_lang] if "eval_lang" in wildcards.keys() else [ENGLISH, wildcards.mask_lang]
    )
    return [task_spec(wildcards.task, l) for l in langs]


def get_table_targets():
    """Every table of every model (none without an evaluation section)."""
    if EVAL is None:
        return []
    return expand(
        "results/{model}/tables/{name}.{ext}",
        model=MODELS,
        name=TABLE_NAMES,
        ext=["csv", "md"],
    )


# mwork.tables.TABLE_FILES (copied: planning does not import the package; drift-tested)
TABLE_NAMES = [
    "table11_baselines",
    "table1_xlsum",
    "tables14_17_per_language",
    "tables2_5_summary",
    "tables12_13_sweep",
    "fig4_enhancement",
    "table6_low_resource",
]


def get_final_targets():
    """Default targets: neurons and tables (perplexity and figures are added in the Snakefile)."""
    return get_neuron_targets() + get_table_targets() + get_finetune_targets()


# --- held-out perplexity (rules/perplexity.smk) ---


def get_ppl_heldout(wildcards):
    """Held-out text of every language."""
    return expand(config["perplexity"]["heldout"], lang=ALL_LANGS)


def get_ppl_neurons(wildcards):
    """Neuron file of every language of one model."""
    return expand(
        "results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=ALL_LANGS
    )


def get_ppl_lape_neurons(wildcards):
    """LAPE neuron file of every language of one model (detection.compare_lape)."""
    return expand(
        "results/{model}/neurons_lape/{lang}.safetensors", model=wildcards.model, lang=ALL_LANGS
    )


def get_ppl_targets():
    """Perplexity tables of every model (none without a perplexity section); with compare_lape
    also those of the LAPE sets."""
    if "perplexity" not in config:
        return []
    names = ["deactivation"] + (["deactivation_lape"] if compares_detectors() else [])
    return expand("results/{model}/ppl/{name}.md", model=MODELS, name=names)


# --- lens and figures (rules/lens.smk, rules/figures.smk) ---

FIGURES = config["figures"]
LENS = FIGURES["lens"]


wildcard_constraints:
    lens_variant="released|released_layer0|normed",
    overlap_fig="|".join(FIGURES["overlap"]) or "none",


def get_lens_prompts_input(wildcards):
    """A custom prompt file is an input (edits re-run the lens)."""
    return [LENS["prompts"]] if LENS["prompts"] else []


def get_lens_tables(wildcards):
    """Lens tables of every lens model and variant (one panel each, model-major)."""
    return expand(
        "results/{model}/lens/{lens_variant}.csv",
        model=LENS["models"],
        lens_variant=LENS["variants"],
    )


def get_neuron_models():
    return FIGURES["neuron_models"] or MODELS


def get_neuron_summaries(wildcards):
    return expand("results/{model}/neurons/summary.csv", model=get_neuron_models())


def get_overlap_pairs(wildcards):
    """(model, lang) of each neuron file of one overlap figure, model-major, languages in config order."""
    models = FIGURES["overlap"][wildcards.overlap_fig] or MODELS
    return [[m, l] for m in models for l in DETECT_LANGS]


def get_overlap_neurons(wildcards):
    pairs = get_overlap_pairs(wildcards)
    return expand(
        "results/{model}/neurons/{lang}.safetensors",
        zip,
        model=[m for m, _ in pairs],
        lang=[l for _, l in pairs],
    )


def get_deactivation_summaries(wildcards):
    """Per-model Tables 2-5 summaries written by the evaluation stage (rules/evaluate.smk)."""
    return expand("results/{model}/tables/tables2_5_summary.csv", model=deactivation_models())


def compares_detectors():
    """detection.compare_lape with method plnd: LAPE's sets in neurons_lape/ beside PLND's."""
    return DETECTION["method"] == "plnd" and DETECTION["compare_lape"]


def get_agreement_tables(wildcards):
    """PLND vs LAPE agreement CSVs of every model (rule compare_detectors)."""
    return expand("results/{model}/neurons_lape/agreement.csv", model=MODELS)


def get_figure_targets():
    """Every figure the config asks for (add to get_final_targets())."""
    out = []
    if compares_detectors():
        out.append("results/figures/detector_agreement.pdf")
    if LENS["models"]:
        out += expand(
            "results/figures/{name}.pdf",
            name=["fig1_english_ratio", "fig7_language_distribution"],
        )
    out += expand("results/figures/{name}.pdf", name=["fig3_neuron_counts", "neuron_share"])
    out += expand("results/figures/{name}.pdf", name=list(FIGURES["overlap"]))
    if FIGURES["deactivation"] and get_table_targets():
        out.append("results/figures/deactivation_summary.pdf")
    if finetune_eval_models():
        out.append("results/figures/fig4_enhancement.pdf")
    return out


# --- neuron fine-tuning (rules/finetune.smk; paper §4, Fig. 4, Table 6) ---

FT = config.get("finetune")  # None: nothing is fine-tuned
# FinetuneSettings keys a training job uses (mwork.finetune.train; mode = the {kind} wildcard)
FT_TRAIN_KEYS = [
    "lr",
    "epochs",
    "batch_size",
    "micro_batch_size",
    "warmup_ratio",
    "scheduler",
    "max_grad_norm",
    "weight_decay",
    "adam_betas",
    "adam_eps",
    "max_length",
    "packing",
    "seed",
    "neuron_seed",
    "components",
    "regions",
    "cap_per_matrix",
    "train_gate",
    "precision",
    "gradient_checkpointing",
    "allow_empty",
]


wildcard_constraints:
    kind="ls|random|full",


def finetune_langs():
    """Fine-tuned languages: Fig. 4's high-resource, then Table 6's low-resource ones."""
    if FT is None:
        return []
    langs = list(dict.fromkeys(FT["high_resource"] + FT["low_resource"]))
    missing = [l for l in langs if l not in ALL_LANGS or l == ENGLISH]
    if missing:
        raise ValueError(
            f"finetune languages {missing} have no neurons (or are English); "
            "add them to languages.detect or languages.enhance"
        )
    return langs


def finetune_runs():
    """(kind, N) of every training run per language: ls for each N, baselines at baseline_n_docs."""
    if FT is None:
        return []
    runs = []
    for kind in FT["kinds"]:
        ns = FT["n_docs"] if kind == "ls" else [FT["baseline_n_docs"]]
        runs += [(kind, n) for n in ns]
    if "ls" in FT["kinds"] and FT["baseline_n_docs"] not in FT["n_docs"]:
        runs.append(("ls", FT["baseline_n_docs"]))  # Table 6 / Fig. 4 compare at the baseline N
    return runs


def delta_path(model, kind, n, lang):
    return f"results/{model}/finetune/{kind}-{n}/{lang}.delta.safetensors"


def get_finetune_targets():
    """Every delta file (trained even without an evaluation section)."""
    if FT is None:
        return []
    for model in FT["models"]:
        if model not in MODELS:
            raise ValueError(f"finetune.models lists '{model}', which is not under models")
    return [
        delta_path(m, k, n, l)
        for m in FT["models"]
        for k, n in finetune_runs()
        for l in finetune_langs()
    ]


def finetune_eval_models():
    """Fine-tuned models that are also evaluated (an evaluation section is needed)."""
    return [] if FT is None or EVAL is None else list(FT["models"])


def finetune_eval_runs():
    """(task, ft label, language) of every fine-tuned evaluation: tasks of evaluation.tasks, languages finetune.tasks covers."""
    runs = []
    for task in EVAL["tasks"]:
        langs = [l for l in finetune_langs() if l in FT["tasks"].get(task, [])]
        runs += [(task, f"ft_{k}-{n}", l) for k, n in finetune_runs() for l in langs]
    return runs


def finetune_eval_jsons(model):
    """Baselines (Original) and fine-tuned runs of one model's enhancement study."""
    if model not in finetune_eval_models():
        return []
    files = []
    for task, label, lang in finetune_eval_runs():
        files += [
            f"results/{model}/eval/none/none/{task}/{ENGLISH}.json",
            f"results/{model}/eval/none/none/{task}/{lang}.json",
            f"results/{model}/eval/{label}/{lang}/{task}/{ENGLISH}.json",
            f"results/{model}/eval/{label}/{lang}/{task}/{lang}.json",
        ]
    return list(dict.fromkeys(files))


def get_finetune_settings(wildcards):
    """mwork.finetune.train.FinetuneSettings of one training job: hyperparameters, the kind, and the layer split only with regions."""
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


def get_wiki_settings():
    """mwork.settings.CorpusSettings of download_wiki."""
    return pick(FT["wiki"], ["pool_size", "min_chars", "max_chars"]) if FT else {}


def get_enhancement_settings():
    """Languages and N of Fig. 4 / Table 6 (make_tables)."""
    if FT is None:
        return {}
    keys = ["high_resource", "low_resource", "n_docs", "baseline_n_docs"]
    return pick(FT, keys)
