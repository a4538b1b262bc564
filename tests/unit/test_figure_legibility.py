"""Every figure is legible at report size: drawn with data shaped like the demo's (its conditions,
languages, layers, fine-tuning runs from demo/config.yaml through the real tables code) and like the
paper study's (config.yaml: 32-layer models, two deactivation models), no text leaves the canvas
and no two texts overlap (mwork.figures.legibility: window extents after layout)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from snakemake.utils import validate
from testhelpers import ROOT

from mwork.figures import bars, layers
from mwork.figures.legibility import legibility_problems, text_boxes
from mwork.lmeval_tasks import BENCHMARKS
from mwork.plan import Plan
from mwork.runlabel import RunLabel
from mwork.scores import SCORE_COLUMNS, label_columns
from mwork.tables import EnhancementSettings, all_tables

GENERATION = ("xquad", "mgsm", "xlsum")


def _plan(path: str) -> Plan:
    cfg = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    validate(cfg, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    return Plan(cfg)


def _scores(plan: Plan, models: list[str], n_items: int = 12) -> pd.DataFrame:
    """Random 0/1 item scores (and fidelity for generation tasks) for every run of the plan."""
    rng = np.random.default_rng(0)
    rows = []

    def add(model: str, label: str, mask: str, task: str, lang: str) -> None:
        run = RunLabel.parse(label)
        cond = label if run.seed is None else label.rsplit("-s", 1)[0]
        seed = -1 if run.seed is None else run.seed
        metrics = [BENCHMARKS[task].primary_metric.split(",")[0]]
        metrics += ["fidelity"] if task in GENERATION else []
        for metric in metrics:
            for i in range(n_items):
                value = float(rng.random() < (0.9 if metric == "fidelity" else 0.6))
                rows.append(
                    {
                        "model": model,
                        "condition": cond,
                        **label_columns(cond),
                        "mask_lang": mask,
                        "task": task,
                        "eval_lang": lang,
                        "seed": seed,
                        "n_masked": 0 if cond == "none" else 40,
                        "metric": metric,
                        "item_id": f"{task}{i}",
                        "value": value,
                    }
                )

    for model in models:
        for (label, _), pairs in plan.eval_jobs(model).items():
            for task, lang in pairs:
                if label == "none":
                    add(model, label, "none", task, lang)
                else:
                    for e in ("en", lang):
                        add(model, label, lang, task, e)
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS)).drop_duplicates(
        [c for c in SCORE_COLUMNS if c != "value"]
    )


def _lens(models: dict[str, int], langs: list[str]) -> pd.DataFrame:
    rows = []
    for model, n_states in models.items():
        for variant in ("released", "normed"):
            for prompt_lang in langs:
                for layer in range(n_states):
                    for lang in langs:
                        share = 0.6 if lang == "en" else 0.4 / (len(langs) - 1)
                        rows.append((model, variant, prompt_lang, layer, lang, share, 40))
    cols = ["model", "variant", "prompt_lang", "layer", "lang", "share", "n_identified"]
    return pd.DataFrame(rows, columns=cols)


def _counts(models: dict[str, int], langs: list[str], units: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        (m, lang, layer, comp, int(rng.integers(0, max(2, n // 20))), n)
        for m, n_layers in models.items()
        for lang in langs
        for layer in range(n_layers)
        for comp, n in units.items()
    ]
    return pd.DataFrame(rows, columns=["model", "lang", "layer", "component", "count", "n_units"])


def _overlap(models: list[str], langs: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = [
        (m, g, x, y, 1.0 if x == y else float(rng.uniform(0.3, 0.99)), 100, 100, 50)
        for m in models
        for g in ("attention", "ffn")
        for y in langs
        for x in langs
    ]
    cols = ["model", "group", "lang_x", "lang_y", "overlap", "n_x", "n_y", "n_both"]
    return pd.DataFrame(rows, columns=cols)


def _agreement(models: dict[str, int], langs: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [
        {
            "model": m,
            "lang": lang,
            "layer": layer,
            **{k: float(rng.random()) for k, _ in layers.AGREEMENT_METRICS},
        }
        for m, n in models.items()
        for lang in langs
        for layer in range(n)
    ]
    return pd.DataFrame(rows)


def _figures(path: str) -> dict[str, Figure]:
    """Every figure of a config, drawn from synthetic data of its shape."""
    plan = _plan(path)
    cfg = plan.config
    langs = plan.detect_langs
    n_layers = {m: spec["n_layers"] for m, spec in cfg["models"].items()}
    study = plan.deactivation_models() + [
        m for m in plan.finetune_eval_models() if m not in plan.deactivation_models()
    ]
    ft = cfg.get("finetune") or {}
    enh = EnhancementSettings.from_mapping(
        {k: ft[k] for k in ("high_resource", "low_resource", "n_docs", "baseline_n_docs")}
    )
    tables = all_tables(_scores(plan, study), n_boot=50, enhancement=enh)
    lens = _lens({m: n_layers[m] + 1 for m in plan.roles.fig1}, langs)
    units = {"ffn": 384, "attn_q": 128, "attn_k": 128, "attn_v": 128}
    counts = _counts({m: n_layers[m] for m in plan.roles.neuron_figure_models()}, langs, units)
    figs = {
        "fig1_english_ratio": layers.fig_english_ratio(lens),
        "fig7_language_distribution": layers.fig_language_distribution(lens, langs=langs),
        "fig3_neuron_counts": layers.fig_neuron_counts(counts),
        "neuron_share": bars.fig_neuron_share(counts),
        "deactivation_summary": bars.fig_deactivation(tables["summary"]),
        "detector_agreement": layers.fig_detector_agreement(
            _agreement({m: n_layers[m] for m in study}, langs)
        ),
    }
    for name in cfg["figures"]["overlap"]:
        figs[name] = layers.fig_overlap(_overlap(plan.roles.overlap_models(name), langs))
    fig4 = tables["fig4"]
    if not fig4.empty:
        figs["fig4_enhancement"] = bars.fig_enhancement(fig4)
    return figs


@pytest.fixture(scope="module", params=["demo/config.yaml", "config.yaml"])
def figures(request) -> dict[str, Figure]:
    return _figures(request.param)


def test_every_figure_is_legible(figures: dict[str, Figure]) -> None:
    problems = {name: legibility_problems(fig)[:5] for name, fig in figures.items()}
    assert not {k: v for k, v in problems.items() if v}


def test_checker_finds_text_off_canvas_and_overlaps() -> None:
    fig = Figure(figsize=(2, 1))
    ax = fig.add_subplot()
    ax.set_title("a title far too long to fit a two-inch figure, running off the canvas")
    ax.text(0.5, 0.5, "here")
    ax.text(0.5, 0.5, "there")
    problems = legibility_problems(fig)
    assert any("leaves the canvas" in p for p in problems)
    assert any("'here' overlaps text in axes 'there'" in p for p in problems)
    assert {b.kind for b in text_boxes(fig)} >= {"axes title", "x tick label", "text in axes"}


def test_deactivation_bars_have_distinct_labels(figures: dict[str, Figure]) -> None:
    fig = figures["deactivation_summary"]
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert len(labels) == len(set(labels)), labels


def test_one_font_size_for_like_texts(figures: dict[str, Figure]) -> None:
    """Tick labels share one size, titles and axis labels another, across every figure."""
    ticks, labels = set(), set()
    for fig in figures.values():
        for ax in fig.axes:
            ticks |= {t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()}
            labels |= {ax.xaxis.label.get_fontsize(), ax.yaxis.label.get_fontsize()}
            labels |= {ax.title.get_fontsize()} if ax.get_title() else set()
    assert len(ticks) == 1 and len(labels) == 1, (ticks, labels)


def test_every_figure_is_one_page_wide(figures: dict[str, Figure]) -> None:
    """The report scales each image to its width: equal widths give every figure one font size."""
    assert {name: f.get_size_inches()[0] for name, f in figures.items()} == dict.fromkeys(
        figures, 7.0
    )
