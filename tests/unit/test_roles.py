"""mwork.roles: which stages each model takes part in, derived from the lists that name it."""

from __future__ import annotations

import pytest
import yaml
from snakemake.utils import validate
from testhelpers import ROOT

from mwork.configcheck import ConfigError
from mwork.plan import Plan
from mwork.roles import ModelRoles


def _config(**figures) -> dict:
    cfg = {
        "models": {
            "a": {"hf_id": "x/a", "n_layers": 4, "n1": 1, "n2": 1},
            "b": {"hf_id": "x/b", "n_layers": 4, "n1": 1, "n2": 1},
            "lensonly": {"hf_id": "x/c", "n_layers": 4},
            "fig": {"hf_id": "x/d", "n_layers": 4},
        },
        "languages": {"detect": ["en", "zh"], "enhance": ["sw"]},
        "corpus": {"sources": {l: {"path": f"{l}.jsonl"} for l in ("en", "zh", "sw")}},
        "detection": {"shared_languages": ["en", "zh"]},
        "evaluation": {
            "tasks": {"xquad": {"langs": ["en", "zh"], "conditions": ["D_U"]}},
            "sweep": {"enabled": False},
        },
        "finetune": {"models": ["b"], "high_resource": ["zh"], "low_resource": ["sw"]},
        "figures": {
            "lens": {"models": ["lensonly", "fig"], "fig7_models": ["a"]},
            "neuron_models": ["a"],
            "overlap": {"fig6_overlap": ["fig"]},
        }
        | figures,
    }
    validate(cfg, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    return cfg


def test_roles_follow_the_lists() -> None:
    roles = ModelRoles(_config())
    assert roles.roles("a") == ["detection", "deactivation", "lens"]
    assert roles.roles("b") == ["detection", "deactivation", "enhancement"]
    assert roles.roles("lensonly") == ["lens"] and roles.lens_only("lensonly")
    # evaluation.models null = every model that is not lens-only: "fig" (named by an overlap
    # figure, so not lens-only) is studied by default ...
    assert roles.roles("fig") == ["detection", "deactivation", "lens"]
    assert roles.deactivation_models() == ["a", "b", "fig"]
    assert roles.fig7 == ["a"] and roles.lens_models() == ["lensonly", "fig", "a"]
    # ... unless evaluation.models leaves it out: then it is detected for its figure only
    cfg = _config()
    cfg["evaluation"]["models"] = ["a", "b"]
    assert ModelRoles(cfg).roles("fig") == ["detection", "lens"]


def test_plan_targets_skip_lens_only_and_figure_only_models() -> None:
    cfg = _config()
    cfg["evaluation"]["models"] = ["a"]
    plan = Plan(cfg)
    plan.check()
    assert plan.roles.deactivation_models() == ["a"]
    neurons = plan.neuron_targets()
    assert not [t for t in neurons if "/lensonly/" in t]
    assert [t for t in neurons if "/fig/" in t] == [  # detection languages only, no variants
        "results/fig/neurons/en.safetensors",
        "results/fig/neurons/zh.safetensors",
        "results/fig/neurons/summary.csv",
    ]
    assert "results/a/neurons/sw.safetensors" in neurons  # a full model: every language
    assert {t.split("/")[1] for t in plan.table_targets()} == {"a", "b"}
    assert not plan.eval_jobs("lensonly") and not plan.eval_jobs("fig")
    assert plan.overlap_pairs("fig6_overlap") == [["fig", "en"], ["fig", "zh"]]
    figures = plan.figure_targets()
    assert "results/figures/fig6_overlap.pdf" in figures
    assert "results/figures/fig7_language_distribution.pdf" in figures
    lines = plan.roles.summary()
    assert "  lensonly: lens (lens only: no detection, no evaluation)" in lines
    assert "  fig6_overlap (Eq. 11 overlap heatmaps): fig" in lines


def test_empty_fig7_list_drops_fig7_and_null_follows_fig1() -> None:
    assert (
        "results/figures/fig7_language_distribution.pdf"
        not in Plan(_config(lens={"models": ["a"], "fig7_models": []})).figure_targets()
    )
    assert ModelRoles(_config(lens={"models": ["a"]})).fig7 == ["a"]


def test_studied_model_without_layer_split_is_a_config_error() -> None:
    cfg = _config()  # evaluation.models null: "fig" is in the deactivation study
    with pytest.raises(ConfigError, match="models.fig has no n1/n2"):
        Plan(cfg).check()


def test_figure_list_naming_an_unknown_model_is_a_config_error() -> None:
    cfg = _config(overlap={"fig6_overlap": ["bloomz"]})
    with pytest.raises(ConfigError, match="figures.overlap.fig6_overlap lists 'bloomz'"):
        Plan(cfg).check()


def test_shipped_config_is_the_papers_study() -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    validate(cfg, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    roles = ModelRoles(cfg)
    assert roles.fig1 == ["vicuna-13b", "bloomz-7b1"] and roles.fig7 == ["chinese-llama-7b"]
    assert roles.lens_only("vicuna-13b") and roles.lens_only("chinese-llama-7b")
    assert roles.overlap_models("fig6_overlap") == ["bloomz-7b1"]
    assert "bloomz-7b1" not in roles.deactivation_models()


def test_preflight_summary_names_roles_and_models_without_layer_split() -> None:
    """`mwork plan` / the workflow's start-up: a lens-only model has no n1/n2 (no KeyError)."""
    from mwork.preflight import preflight

    cfg = _config()
    cfg["evaluation"]["models"] = ["a", "b"]
    lines, _ = preflight(Plan(cfg))
    assert any(l.startswith("model lensonly: x/c, 4 layers (no layer split)") for l in lines)
    assert any(l.endswith("; lens") and l.startswith("model lensonly") for l in lines)
    assert any("U = first 1, G = last 1" in l and l.startswith("model a") for l in lines)
    # detection jobs: a and b (study models) in en zh sw, fig (overlap only) in en zh
    assert any(l.startswith("jobs: 8 detection") for l in lines), lines


def test_preflight_counts_one_detection_job_per_model_with_grouped_languages() -> None:
    """detection.group_languages: one job per (model, shard) scores every language, so 3 models
    (a, b, fig) with 2 shards plan 6 detection jobs (per language: 8 x 2)."""
    from mwork.preflight import preflight

    cfg = _config()
    cfg["evaluation"]["models"] = ["a", "b"]
    cfg["detection"] |= {"group_languages": True, "shards": 2}
    lines, _ = preflight(Plan(cfg))
    assert any(l.startswith("jobs: 6 detection") for l in lines), lines
    cfg["detection"]["group_languages"] = False
    lines, _ = preflight(Plan(cfg))
    assert any(l.startswith("jobs: 16 detection") for l in lines), lines
