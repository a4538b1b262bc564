# Helpers of rules/figures.smk: validate config["figures"] (schemas/figures.schema.yaml, defaults
# filled in), wildcard constraints, get_* input functions and get_figure_targets().


validate(
    config.setdefault("figures", {}),
    schema="../schemas/figures.schema.yaml",
    set_default=True,
)

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
    return expand("results/{model}/tables/tables2_5_summary.csv", model=MODELS)


def get_figure_targets():
    """Every figure the config asks for (add to get_final_targets())."""
    out = []
    if LENS["models"]:
        out += expand(
            "results/figures/{name}.pdf",
            name=["fig1_english_ratio", "fig7_language_distribution"],
        )
    out += expand(
        "results/figures/{name}.pdf", name=["fig3_neuron_counts", "neuron_share"]
    )
    out += expand("results/figures/{name}.pdf", name=list(FIGURES["overlap"]))
    if FIGURES["deactivation"] and get_table_targets():
        out.append("results/figures/deactivation_summary.pdf")
    return out
