"""benchmarks/study_plan.py: the work it counts per GPU stage, against hand counts on config.yaml."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from mwork.studyconfig import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sp():
    spec = importlib.util.spec_from_file_location("study_plan", ROOT / "benchmarks/study_plan.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks itself up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "config.yaml")


def test_detection_counts_tokens_and_qk_terms(sp, cfg):
    jobs = [("detect_neurons", {"model": "vicuna-7b", "lang": "zh", "shard": "0", "n": "1"})]
    w = sp.count_work(cfg, jobs)["detect_neurons"]
    n_docs, n = cfg["detection"]["n_docs"], cfg["detection"]["max_tokens"]
    assert sp.geometry(7e9, 32) == 4096  # 32 heads x 128
    assert w.forward_tokens == n_docs * n
    # Q and K removals x 32 heads x 128 dims x the causal keys of every row, per layer and doc
    assert w.qk_terms == n_docs * 32 * 2 * 4096 * n * (n + 1) / 2
    two = sp.count_work(cfg, [("detect_neurons", {"model": "vicuna-7b", "n": "2"})] * 2)
    assert two["detect_neurons"].qk_terms == w.qk_terms  # two shards: the same documents
    grouped = {**cfg, "detection": {**cfg["detection"], "group_languages": True}}
    one = sp.count_work(
        grouped, [("detect_neurons", {"model": "vicuna-7b", "shard": "0", "n": "1"})]
    )
    n_langs = len(cfg["languages"]["detect"]) + len(cfg["languages"]["enhance"])
    assert one["detect_neurons"].forward_tokens == n_langs * w.forward_tokens  # every language


def test_evaluation_counts_every_task_and_language_of_the_job(sp, cfg):
    jobs = [
        ("evaluate_condition", {"model": "vicuna-7b", "condition": "D_U", "lang": "zh"}),
        ("evaluate_baseline", {"model": "vicuna-7b", "lang": "zh"}),
    ]
    work = sp.count_work(cfg, jobs)
    cond, base = work["evaluate_condition"], work["evaluate_baseline"]
    items, prompt, gen = sp.TASKS["xquad"]  # D_U is an XQuAD condition: English and Chinese
    assert cond.forward_tokens == 2 * items * prompt and cond.generated == 2 * items * gen
    zh_tasks = [t for t, s in cfg["evaluation"]["tasks"].items() if "zh" in s["langs"]]
    assert base.forward_tokens == sum(sp.TASKS[t][0] * sp.TASKS[t][1] for t in zh_tasks)
    hf, vllm = (sp.hours(cond, b, sp.ASSUMED) for b in ("hf", "vllm"))
    assert 0 < vllm < hf  # generation dominates and vLLM decodes faster (assumed ratio 5)


def test_fine_tuning_is_counted(sp, cfg):
    """The old estimate printed 0.0 GPU-h for 45 fine-tuning runs of a 7B model."""
    jobs = [("finetune_neurons", {"model": "mistral-7b", "kind": "ls", "n": "800", "lang": "de"})]
    w = sp.count_work(cfg, jobs)["finetune_neurons"]
    ft = cfg["finetune"]
    assert w.train_tokens == 800 * ft["max_length"] * ft["epochs"]
    assert w.train_flops == 8 * 7e9 * w.train_tokens  # 6 P + the checkpointed forward
    a = sp.ASSUMED
    secs = w.train_flops / (a["fp32_peak"] * a["train_mfu"]) + a["hf_start_s"]  # float32 model
    assert math.isclose(sp.hours(w, "hf", a), secs / 3600)
    assert sp.hours(w, "hf", a) > 0.1
