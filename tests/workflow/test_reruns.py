"""Partial reruns stay small: what Snakemake plans (dry run) after one input changes or one job is
forced. Two kinds of finished runs are used:

- the tiny study, really run (`local_run`, copied per test so nothing leaks between tests);
- the paper's full study (config.yaml) with every output created empty and `--touch`ed, so the
  real 351-job DAG can be queried in seconds without running anything.

The commands are the ones the README gives users.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate
from wfhelpers import ROOT, copy_run, snakemake

from mwork.plan import Plan

MTIME = ("--rerun-triggers", "mtime")


def planned(output: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run (`-n`) plans."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", output):
        head = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if head:
            outs = re.search(r"^\s+output: (.*)$", block, re.M)
            jobs.append((head[1], outs[1].split(", ") if outs else []))
    return jobs


def counts(jobs) -> dict[str, int]:
    out: dict[str, int] = {}
    for rule, _ in jobs:
        out[rule] = out.get(rule, 0) + 1
    return out


def dry_run(wd: Path, *args: str, targets: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """The jobs `snakemake -n` plans in `wd`; `targets` go after `--` (after list options)."""
    sep = ("--", *targets) if targets else ()
    res = snakemake(*args, "--configfile", str(wd / "config.yaml"), "-n", *MTIME, *sep, cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return planned(res.stdout)


# --- the tiny study, really run ----------------------------------------------------------------


@pytest.fixture
def run_copy(local_run, tmp_path) -> Path:
    return copy_run(local_run, tmp_path / "run")


def test_a_finished_run_plans_nothing(run_copy):
    assert dry_run(run_copy, "eval_only", "neurons_only") == []


def test_a_touch_alone_replans_nothing(run_copy):
    """Snakemake 9 compares recorded checksums of small inputs: same content, no rerun."""
    os.utime(run_copy / "resources" / "corpus" / "zh.jsonl")
    assert dry_run(run_copy, "eval_only", "neurons_only") == []


def test_changing_one_corpus_replans_only_that_languages_jobs(run_copy):
    corpus = run_copy / "resources" / "corpus" / "zh.jsonl"
    first = corpus.read_text(encoding="utf-8").splitlines()[0]
    corpus.write_text(corpus.read_text(encoding="utf-8") + first + "\n", encoding="utf-8")
    jobs = dry_run(run_copy, "eval_only", "neurons_only")
    outputs = [o for _, outs in jobs for o in outs]
    assert counts(jobs) == {
        "detect_neurons": 2,  # both zh shards, no en shard
        "merge_neuron_shards": 1,
        "derive_neuron_variant": 3,  # zh.minus-en, zh.minus-shared, and en.minus-shared (minus zh)
        "summarize_neurons": 1,
        "evaluate_condition": 1,  # D_U masks zh
        "collect_scores": 1,
        "make_tables": 1,
        "eval_only": 1,
        "neurons_only": 1,
    }
    assert not [o for o in outputs if re.search(r"/(en\.\d-of-2|en)\.safetensors$|/eval/none/", o)]
    assert "results/demo-llama/neurons/en.minus-shared.safetensors" in outputs


def test_a_killed_sharded_detection_recomputes_only_the_missing_shard(run_copy):
    """The state a run killed during zh's second shard leaves: zh.0 and everything of en done,
    no zh.1 (writes are atomic: temp file, then rename) and nothing that needs zh's neurons."""
    r = run_copy / "results" / "demo-llama"
    killed = [
        "neurons/shards/zh.1-of-2.safetensors",
        "neurons/zh.safetensors",
        "neurons/zh.minus-en.safetensors",
        "neurons/zh.minus-shared.safetensors",
        "neurons/en.minus-shared.safetensors",
        "neurons/summary.csv",
    ]
    for rel in killed:
        (r / rel).unlink()
    (r / "eval" / "D_U" / "zh.json").unlink()
    shutil.rmtree(r / "tables")
    jobs = dry_run(run_copy, "eval_only", "neurons_only")
    detect = [outs for rule, outs in jobs if rule == "detect_neurons"]
    assert detect == [["results/demo-llama/neurons/shards/zh.1-of-2.safetensors"]]
    assert counts(jobs) == {
        "detect_neurons": 1,
        "merge_neuron_shards": 1,
        "derive_neuron_variant": 3,
        "summarize_neurons": 1,
        "evaluate_condition": 1,
        "collect_scores": 1,
        "make_tables": 1,
        "eval_only": 1,
        "neurons_only": 1,
    }


def test_one_condition_reruns_alone(run_copy):
    target = "results/demo-llama/eval/D_U/zh.json"
    for args in ([target, "-R", "evaluate_condition"], ["-f", target]):
        assert dry_run(run_copy, *args) == [("evaluate_condition", [target])], args


# --- the paper's study (config.yaml), completed by touching ------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A run directory where every output of config.yaml exists (empty) and is up to date."""
    wd = tmp_path_factory.mktemp("study")
    (wd / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    res = snakemake("--configfile", str(wd / "config.yaml"), "-n", cwd=wd)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = planned(res.stdout)
    assert len(jobs) > 300
    stamp = 1_700_000_000  # one mtime for all: no input is newer than its outputs
    for _, outs in jobs:
        for out in outs:
            path = wd / out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (stamp, stamp))
    assert dry_run(wd) == []
    return wd


def study_jobs(model: str) -> dict[tuple[str, str], list]:
    """mwork.plan's evaluation jobs of one model of config.yaml (label, language) -> tasks."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    validate(config, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    return Plan(config).eval_jobs(model)


def test_one_model_reruns_alone(study):
    jobs = dry_run(
        study,
        "results/vicuna-7b/tables/tables2_5_summary.csv",
        "-R",
        "evaluate_baseline",
        "evaluate_condition",
    )
    planned_jobs = study_jobs("vicuna-7b")
    baselines = sum(1 for label, _ in planned_jobs if label == "none")
    assert counts(jobs) == {
        "evaluate_baseline": baselines,
        "evaluate_condition": len(planned_jobs) - baselines,
        "collect_scores": 1,
        "make_tables": 1,
    }
    assert all("results/vicuna-7b/" in o for _, outs in jobs for o in outs)


def test_one_language_reruns_alone(study):
    """One job per (model, label, language): forcing Chinese's results reruns nothing else."""
    jsons = sorted(
        str(p.relative_to(study)) for p in study.glob("results/vicuna-7b/eval/*/zh.json")
    )
    jobs = dry_run(study, "-R", "evaluate_baseline", "evaluate_condition", targets=tuple(jsons))
    labels = [label for label, lang in study_jobs("vicuna-7b") if lang == "zh"]
    assert len(jobs) == len(jsons) == len(labels) > 20
    assert counts(jobs) == {"evaluate_baseline": 1, "evaluate_condition": len(labels) - 1}
    assert all(o.endswith("/zh.json") for _, outs in jobs for o in outs)


def test_touching_one_corpus_of_the_study_replans_only_that_language(study):
    os.utime(study / "resources" / "corpus" / "fr.jsonl")
    try:
        jobs = dry_run(study)
    finally:
        os.utime(study / "resources" / "corpus" / "fr.jsonl", (1_700_000_000, 1_700_000_000))
    c = counts(jobs)
    assert (
        "download_corpus" not in c and "evaluate_baseline" not in c and "run_language_lens" not in c
    )
    config = yaml.safe_load((study / "config.yaml").read_text())
    validate(config, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    n_models = len(Plan(config).roles.detection_models())  # lens-only models detect nothing
    assert 1 < n_models < len(config["models"])
    assert c["detect_neurons"] == n_models and c["merge_neuron_shards"] == n_models  # fr, per model
    for rule, outs in jobs:
        if rule in ("detect_neurons", "merge_neuron_shards"):
            assert all("/fr." in o for o in outs), outs
        if rule == "evaluate_condition":  # masks fr, or uses a minus-shared set that subtracts fr
            assert outs[0].endswith("/fr.json") or "minus-shared" in outs[0], outs
