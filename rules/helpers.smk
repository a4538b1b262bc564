# Input, param and settings functions of each stage's rules, stage by stage (Snakemake's linter
# wants functions apart from rules). Which jobs exist is decided by mwork.plan (PLAN); these
# functions only turn wildcards into paths and pick the config keys a job uses.


# --- corpus (rules/corpus.smk) ---


def get_corpus_source(wildcards):
    """mwork.corpus.CorpusSource of a language (Plan.check makes sure every language has one)."""
    return config["corpus"]["sources"][wildcards.lang]


def get_corpus_input(wildcards):
    """A local corpus file is an input (so a rule that generates it runs first)."""
    src = get_corpus_source(wildcards)
    return [src["path"]] if "path" in src else []


# --- detect (rules/detect.smk) ---


def get_detection_settings():
    """mwork.settings.DetectionSettings of detect_neurons (not shards, variants, shared_languages)."""
    keys = ["importance", "top_k_ffn", "top_k_attn", "epsilon_ffn", "epsilon_attn"]
    keys += ["min_fraction", "max_tokens", "seed", "n_docs", "batch_size", "qk_budget_mb"]
    keys += ["qk_scoring", "qk_kernel"]
    return pick(DETECTION, keys)


def get_record_settings():
    """DetectionSettings of record_activations (LAPE): sampling and batching only, so PLND's
    importance, selection and Q/K keys never re-run a recording."""
    return pick(DETECTION, ["max_tokens", "seed", "n_docs", "batch_size"])


def shard_files(kind, wildcards, langs):
    """Shard files (detection.shards per language) of one model, language-major."""
    n = DETECTION["shards"]
    return expand(
        "results/{model}/{kind}/shards/{lang}.{shard}-of-{n}.safetensors",
        model=wildcards.model,
        kind=kind,
        lang=langs,
        shard=range(n),
        n=n,
    )


def grouped_shards(kind):
    """Every language's shard file of one (model, shard) job (detection.group_languages)."""
    return expand(
        "results/{{model}}/{kind}/shards/{lang}.{{shard}}-of-{{n}}.safetensors",
        kind=kind,
        lang=ALL_LANGS,
    )


def get_neuron_shards(wildcards):
    return shard_files("neurons", wildcards, [wildcards.lang])


def get_lape_shards(wildcards):
    """Every language's LAPE recording shards of one model (joint selection)."""
    return shard_files("lape", wildcards, ALL_LANGS)


def get_variant_others(wildcards):
    """Neuron files a variant subtracts: English, or every other shared language."""
    langs = PLAN.variant_others(wildcards.variant, wildcards.lang)
    return expand("results/{model}/neurons/{lang}.safetensors", model=wildcards.model, lang=langs)


def get_summary_inputs(wildcards):
    """Every neuron file of one model (summarize_neurons)."""
    return PLAN.neuron_files(wildcards.model)


# --- perplexity (rules/perplexity.smk) ---


def get_perplexity_settings():
    """mwork.settings.PerplexitySettings of measure_deactivation_ppl."""
    if "perplexity" not in config:  # the rule is never planned then
        return {}
    out = pick(config["perplexity"], ["n_texts", "max_tokens", "batch_size", "seeds"])
    return out | pick(config["deactivation"], ["mask_mode", "count", "attn_n", "ffn_n"])


def get_ppl_heldout(wildcards):
    """Held-out text of every language."""
    return expand(config["perplexity"]["heldout"], lang=ALL_LANGS)


def get_ppl_neurons(detector_dir):
    """Neuron file of every language of one model (neurons/, or neurons_lape/ of compare_lape)."""
    return lambda w: expand(
        "results/{model}/{dir}/{lang}.safetensors", model=w.model, dir=detector_dir, lang=ALL_LANGS
    )


# --- evaluate (rules/evaluate.smk) ---


JOB_LANGS = "|".join([*ALL_LANGS, ALL])  # a job's language, or all of them (group_languages)


def get_evaluation_settings():
    """mwork.settings.EvaluationSettings of the evaluation jobs (not n_boot, tasks, sweep, ...)."""
    if EVAL is None:  # detection only: the evaluation rules are never planned
        return {}
    out = pick(EVAL, ["batch_size", "limit", "max_gen_toks", "backend", "vllm"])
    out |= {"mask_mode": config["deactivation"]["mask_mode"]}
    # output languages of the generations (mwork.fidelity): the lens's LID over the study's
    # languages, as collect_scores; changing either re-runs the evaluation jobs (docs: fidelity)
    return out | {"lid_backend": LENS["lid_backend"], "lid_languages": ALL_LANGS}


def get_condition_settings():
    """EvaluationSettings of a masked run: evaluation settings + the deactivation count rule."""
    return get_evaluation_settings() | pick(config["deactivation"], ["count", "attn_n", "ffn_n"])


def job_label(wildcards):
    """The run label of an evaluation job's wildcards."""
    if "kind" in wildcards.keys():
        return f"ft_{wildcards.kind}-{wildcards.n}"
    return wildcards.get("condition", "none")


def get_job_tasks(wildcards):
    """mwork.evaluate.TaskRun mappings of one job (mwork.plan)."""
    return PLAN.job_tasks(wildcards.model, job_label(wildcards), wildcards.lang)


def get_job_sources(wildcards):
    """Language -> neuron (or delta) file of one job."""
    return PLAN.job_sources(wildcards.model, job_label(wildcards), wildcards.lang)


def get_job_data(wildcards):
    """Local task data files of one job (inputs, so a rule generating them runs first)."""
    return PLAN.job_data(wildcards.model, job_label(wildcards), wildcards.lang)


def get_finetuned_model(wildcards):
    """A fine-tuned run is scored on the finetune.eval_dtype base (bf16 rounds a delta away)."""
    return get_model_spec(wildcards) | {"dtype": FT["eval_dtype"]}


# --- finetune (rules/finetune.smk) ---


FT_TRAIN_KEYS = ["lr", "epochs", "batch_size", "micro_batch_size", "warmup_ratio", "scheduler"]
FT_TRAIN_KEYS += ["max_grad_norm", "weight_decay", "adam_betas", "adam_eps", "max_length"]
FT_TRAIN_KEYS += ["packing", "seed", "neuron_seed", "components", "regions", "cap_per_matrix"]
FT_TRAIN_KEYS += ["train_gate", "precision", "gradient_checkpointing", "allow_empty"]


def finetune_settings(model, kind):
    """FinetuneSettings of one training run: hyperparameters, the kind, and the layer split only
    with regions."""
    out = pick(FT, FT_TRAIN_KEYS) | {"mode": kind}
    if FT["regions"] is not None:
        spec = config["models"][model]
        out.update(n1=spec["n1"], n2=spec["n2"])
    return out


def get_finetune_settings(wildcards):
    return finetune_settings(wildcards.model, wildcards.kind)


FT_RUN_DIRS = [f"{kind}-{n}" for kind, n in PLAN.finetune_runs()]


def get_finetune_runs(wildcards):
    """Every (kind, N) run of one language with its FinetuneSettings (finetune_language)."""
    return [
        {"kind": kind, "n": n, "settings": finetune_settings(wildcards.model, kind)}
        for kind, n in PLAN.finetune_runs()
    ]


def get_finetune_language_neurons(wildcards):
    """The language's neuron file when a run trains its neurons (ls, random)."""
    if all(kind == "full" for kind, _ in PLAN.finetune_runs()):
        return []
    return f"results/{wildcards.model}/neurons/{wildcards.lang}.safetensors"


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


# --- tables (rules/tables.smk) ---


# The report's sections follow the paper (numbered: the report lists categories in name order).
REPORT_SECTIONS = {
    "lens": "1. Layer-wise language lens: Figs. 1, 7 (§3.2, App. D)",
    "neurons": "2. Language-specific neurons: Figs. 3, 5, 6 (§3.1, App. C, D)",
    "deactivation": "3. Deactivation: Tables 1-5, 11-17 (§3.2-3.3, App. I)",
    "enhancement": "4. Enhancement: Fig. 4, Table 6 (§4)",
    "beyond": "5. Beyond the paper: perplexity, detector agreement",
}


def table_output(stem, caption, table, section="deactivation"):
    """One table CSV of make_tables, in the report under its caption and paper section."""
    return report(
        f"results/{{model}}/tables/{stem}.csv",
        caption=f"../report/{caption}.rst",
        category=REPORT_SECTIONS[section],
        labels={"model": "{model}", "table": table},
    )


def get_enhancement_settings():
    """Languages and N of Fig. 4 / Table 6 (make_tables)."""
    if FT is None:
        return {}
    return pick(FT, ["high_resource", "low_resource", "n_docs", "baseline_n_docs"])


# --- lens (rules/lens.smk) ---


def get_lens_settings():
    """mwork.settings.LensSettings of run_language_lens."""
    keys = ["prompts", "top_k", "max_new_tokens", "prompt_template", "lid_backend", "lid_min_prob"]
    return pick(LENS, keys)


def get_lens_prompts_input(wildcards):
    """A custom prompt file is an input (edits re-run the lens)."""
    return [LENS["prompts"]] if LENS["prompts"] else []


# --- figures (rules/figures.smk) ---


def get_lens_tables(figure):
    """Lens tables of one figure's models (fig1, fig7), every variant (one panel each, model-major)."""
    models = PLAN.roles.fig1 if figure == "fig1" else PLAN.roles.fig7
    return expand(
        "results/{model}/lens/{lens_variant}.csv", model=models, lens_variant=LENS["variants"]
    )


def get_neuron_summaries(wildcards):
    models = PLAN.roles.neuron_figure_models()
    return expand("results/{model}/neurons/summary.csv", model=models)


def get_layer_splits(wildcards):
    """{model: [N1, N2] or None} of Fig. 3's models: the U/S/G regions its findings count in."""
    models = PLAN.roles.neuron_figure_models()
    specs = {m: config["models"][m] for m in models}
    return {
        m: [s["n1"], s["n2"]] if s.get("n1") is not None and s.get("n2") is not None else None
        for m, s in specs.items()
    }


def get_overlap_neurons(wildcards):
    pairs = PLAN.overlap_pairs(wildcards.overlap_fig)
    return [f"results/{m}/neurons/{l}.safetensors" for m, l in pairs]


def get_deactivation_summaries(wildcards):
    """Per-model Tables 2-5 summaries (rules/tables.smk)."""
    models = PLAN.deactivation_models()
    return expand("results/{model}/tables/tables2_5_summary.csv", model=models)
