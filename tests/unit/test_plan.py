"""mwork.plan: which evaluation, fine-tuning and target files a config asks for (no Snakemake run)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import validate

from mwork.layout import TABLE_FILES
from mwork.plan import ALL, ConfigError, Plan
from mwork.runlabel import CONDITION_LABEL_PATTERN, RUN_LABEL_PATTERN, RunLabel

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "src/mwork/data/config.schema.yaml"


def load(path: Path, **edits: Any) -> dict[str, Any]:
    """A config file with the schema's defaults set, `section__key=value` edits applied first."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in edits.items():
        node = config
        *parents, last = key.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    validate(config, schema=str(SCHEMA), set_default=True)
    return config


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return load(ROOT / "demo/config.yaml")


def ungrouped(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["evaluation"]["group_languages"] = False
    return config


def test_demo_plan_has_one_job_per_label_when_grouped(demo: dict[str, Any]) -> None:
    plan = Plan(demo)
    plan.check()
    jobs = plan.eval_jobs("demo-llama")
    labels = {label for label, _ in jobs}
    assert all(lang == ALL for _, lang in jobs)
    assert len(jobs) == len(labels) == 27  # 1 baseline + 21 masked labels + 5 fine-tuned runs
    assert sum(1 for l in labels if l.startswith("ft_")) == 5


def test_grouping_changes_jobs_not_what_is_scored(demo: dict[str, Any]) -> None:
    """Both granularities score exactly the same (label, task, mask language, eval language)s."""

    def scored(plan: Plan) -> list[tuple[str, ...]]:
        out = []
        for label, lang in plan.eval_jobs("demo-llama"):
            for t in plan.job_tasks("demo-llama", label, lang):
                out += [(label, t["task"], t["lang"], s["lang"]) for s in t["specs"]]
        return out

    grouped, per_language = Plan(demo), Plan(ungrouped(demo))
    assert len(per_language.eval_jobs("demo-llama")) == 49
    a, b = scored(grouped), scored(per_language)
    assert len(a) == len(set(a)) and sorted(a) == sorted(b)
    masked = {(label, task, lang) for task, label, lang in grouped.masked_runs()}
    assert masked == {(l, t, m) for l, t, m, _ in a if l != "none" and not l.startswith("ft_")}


def test_job_tasks_specs_and_sources(demo: dict[str, Any]) -> None:
    plan = Plan(ungrouped(demo))
    tasks = plan.job_tasks("demo-llama", "Dbar_S_attn.minus-en", "zh")
    assert [t["task"] for t in tasks] == ["mgsm"]
    assert [s["lang"] for s in tasks[0]["specs"]] == ["en", "zh"]
    assert tasks[0]["specs"][1]["path"] == "results/demo/world/bench/mgsm/zh.jsonl"
    sources = plan.job_sources("demo-llama", "Dbar_S_attn.minus-en", "zh")
    assert sources == {"zh": "results/demo-llama/neurons/zh.minus-en.safetensors"}
    base = plan.job_tasks("demo-llama", "none", "ru")
    assert [(t["task"], [s["lang"] for s in t["specs"]]) for t in base] == [
        ("xcsqa", ["ru"]),
        ("xquad", ["ru"]),  # the fine-tuning study's baseline
    ]
    assert plan.job_sources("demo-llama", "none", "ru") == {}
    ft = plan.job_sources("demo-llama", "ft_random-400", "de")
    assert ft == {"de": "results/demo-llama/finetune/random-400/de.delta.safetensors"}
    assert all(t["count_peers"] == [] for t in plan.job_tasks("demo-llama", "ft_ls-100", "de"))
    with pytest.raises(ConfigError, match="no evaluation job D_U/ru"):
        plan.job_tasks("demo-llama", "D_U", "ru")


def test_grouped_job_covers_every_language_of_its_label(demo: dict[str, Any]) -> None:
    plan = Plan(demo)
    tasks = plan.job_tasks("demo-llama", "R_all-s0", ALL)
    assert {(t["task"], t["lang"]) for t in tasks} == {
        ("xquad", "de"), ("xquad", "zh"), ("mgsm", "zh"),
        ("xcsqa", "de"), ("xcsqa", "zh"), ("xcsqa", "ru"), ("xlsum", "zh"),
    }  # fmt: skip
    assert set(plan.job_sources("demo-llama", "R_all-s0", ALL)) == {"de", "zh", "ru"}
    data = plan.job_data("demo-llama", "R_all-s0", ALL)
    assert len(data) == len(set(data)) and "results/demo/world/bench/xcsqa/ru.jsonl" in data


def test_count_peers_are_the_task_table_or_the_sweep(demo: dict[str, Any]) -> None:
    plan = Plan(demo)
    assert plan.count_peers("xquad", "R_all-s0") == ["D_G", "D_S", "D_U", "R_U", "R_all"]
    assert plan.count_peers("xquad", "D_U-n1_3") == ["D_G-n2_1", "D_G-n2_2"] + [
        f"D_U-n1_{n}" for n in (1, 2, 3)
    ]
    assert plan.count_peers("mgsm", "Dbar_S_attn.minus-en")[:3] == [
        "D_S",
        "D_UG",
        "Dbar_S_attn",
    ]
    per_task = {t["task"]: t["count_peers"] for t in plan.job_tasks("demo-llama", "R_all-s0", ALL)}
    assert per_task["xquad"] != per_task["xcsqa"]  # each task keeps its own table's count
    assert (
        Plan(load(ROOT / "demo/config.yaml", deactivation={"count": "all"})).count_peers(
            "xquad", "D_U"
        )
        == []
    )


def test_labels_match_the_wildcard_grammar(demo: dict[str, Any]) -> None:
    plan = Plan(demo)
    for label, _ in plan.eval_jobs("demo-llama"):
        if label == "none":
            assert not re.fullmatch(RUN_LABEL_PATTERN, label)
            continue
        assert re.fullmatch(RUN_LABEL_PATTERN, label)
        assert bool(re.fullmatch(CONDITION_LABEL_PATTERN, label)) != label.startswith("ft_")
        assert RunLabel.parse(label).text == label


def test_targets(demo: dict[str, Any]) -> None:
    plan = Plan(demo)
    tables = plan.table_targets()
    assert len(tables) == 2 * len(TABLE_FILES)
    assert "results/demo-llama/tables/tables2_5_summary.csv" in tables
    deltas = plan.finetune_targets()
    assert len(deltas) == 10 and "results/demo-llama/finetune/ls-400/ru.delta.safetensors" in deltas
    figures = plan.figure_targets()
    assert "results/figures/fig4_enhancement.pdf" in figures
    assert "results/figures/detector_agreement.pdf" in figures
    neurons = plan.neuron_targets()
    assert "results/demo-llama/neurons/en.minus-en.safetensors" not in neurons
    assert "results/demo-llama/neurons/de.minus-shared.safetensors" in neurons
    assert plan.ppl_targets() == [
        "results/demo-llama/ppl/deactivation.md",
        "results/demo-llama/ppl/deactivation_lape.md",
    ]


def test_finetune_runs_add_ls_at_the_baseline_n(demo: dict[str, Any]) -> None:
    config = copy.deepcopy(demo)
    config["finetune"]["n_docs"] = [100, 200]
    assert Plan(config).finetune_runs() == [
        ("ls", 100),
        ("ls", 200),
        ("random", 400),
        ("full", 400),
        ("ls", 400),
    ]


@pytest.mark.parametrize(
    "edit,message",
    [
        ({"models": {"demo-llama": {"path": "x", "n_layers": 6, "n1": 4, "n2": 3}}}, "exceeds"),
        ({"evaluation__sweep__n1": [6]}, "evaluation.sweep.n1: D_U-n1_6 needs"),
        ({"evaluation__tasks__xquad__langs": ["en", "ja"]}, "masks language 'ja'"),
        ({"finetune__models": ["other"]}, "finetune.models lists 'other'"),
        ({"finetune__low_resource": ["en"]}, "finetune.low_resource list en, which have no"),
        ({"languages__detect": ["en", "de", "fr", "zh", "es", "ru", "ja"]}, "no corpus source"),
        ({"detection__qk_scoring": "first-order", "detection__importance": "released-code"}, "qk"),
    ],
)
def test_check_refuses_what_the_study_cannot_run(edit: dict[str, Any], message: str) -> None:
    config = load(ROOT / "demo/config.yaml", **edit)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Plan(config).check()
