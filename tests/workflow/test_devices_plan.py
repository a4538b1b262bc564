"""A model's GPU count (models.<alias>.devices) reaches its jobs' resources: dry runs of the tiny
study with a 70B model split over 4 GPUs and a 7B model beside the demo model (issue 23)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from wfhelpers import ROOT, snakemake, tiny_study_config

GPU_RULES = {"detect_neurons", "evaluate_baseline", "evaluate_condition"}  # those the study plans


def planned_gpus(wd: Path, *profile: str) -> dict[tuple[str, str], set[int]]:
    """(rule, model) -> the GPU counts its planned jobs ask for, from a dry run's job blocks."""
    res = snakemake("-n", "eval_only", "--configfile", str(wd / "config.yaml"), *profile, cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out: dict[tuple[str, str], set[int]] = {}
    for block in re.split(r"^(?=(?:local)?rule \w+:)", res.stdout, flags=re.M):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        model = re.search(r"wildcards: .*?model=([\w.-]+)", block)
        gpu = re.search(r"resources: .*\bgpu=(\d+)", block)
        if rule and model and gpu:
            out.setdefault((rule[1], model[1]), set()).add(int(gpu[1]))
    return out


def study_with_big_models(wd: Path) -> Path:
    """The tiny study plus a 70B model on 4 GPUs and a 7B model with the default (1)."""
    path = tiny_study_config(wd)
    cfg = yaml.safe_load(path.read_text())
    cfg["models"]["llama-70b"] = {
        "hf_id": "meta-llama/Llama-3.1-70B-Instruct",
        "n_layers": 80,
        "n1": 8,
        "n2": 8,
        "devices": 4,
    }
    cfg["models"]["mistral-7b"] = {
        "hf_id": "mistralai/Mistral-7B-Instruct-v0.1",
        "n_layers": 32,
        "n1": 4,
        "n2": 4,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_slurm_jobs_of_a_4_gpu_model_ask_for_4_gpus_and_7b_jobs_for_1(tmp_path):
    study_with_big_models(tmp_path)
    got = planned_gpus(tmp_path, "--workflow-profile", str(ROOT / "profiles" / "slurm"))
    for rule in GPU_RULES:
        assert got[(rule, "llama-70b")] == {4}, rule
        assert got[(rule, "mistral-7b")] == {1}, rule
        assert got[(rule, "demo-llama")] == {1}, rule


def test_the_local_profile_keeps_one_gpu_job_at_a_time(tmp_path):
    """Locally every job sees every GPU of the machine (Snakemake hands out none), so a split
    model's job asks the local cap for one slot like any other: 1 with a GPU driver, else 0."""
    study_with_big_models(tmp_path)
    got = planned_gpus(tmp_path)  # profiles/default applies by itself
    want = {int(shutil.which("nvidia-smi") is not None)}
    for rule in GPU_RULES:
        assert got[(rule, "llama-70b")] == want == got[(rule, "mistral-7b")], rule


def test_vllm_evaluation_jobs_ask_for_the_engines_gpus(tmp_path):
    """evaluation.backend vllm: an evaluation job asks for tensor_parallel_size GPUs when that is
    more than the model's, other GPU jobs for the model's."""
    path = study_with_big_models(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    cfg["evaluation"]["backend"] = "vllm"
    cfg["evaluation"]["vllm"] = {"tensor_parallel_size": 2}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    got = planned_gpus(tmp_path, "--workflow-profile", str(ROOT / "profiles" / "slurm"))
    for rule in ("evaluate_baseline", "evaluate_condition"):
        assert got[(rule, "mistral-7b")] == {2} and got[(rule, "llama-70b")] == {4}, rule
    assert got[("detect_neurons", "mistral-7b")] == {1}
