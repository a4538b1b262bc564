"""Helpers of the workflow tier: a tiny study (two languages, two detection shards per language,
one evaluation task with a baseline and one masked condition, tables); the session fixture
`local_run` in conftest.py runs it once locally.

The world and the model come from the embedded demo's own rules (rules/demo.smk), shrunk to a
few seconds of work; the run is shared by tests/workflow/test_reruns.py (on copies) and
tests/workflow/test_slurm.py (the local reference run).
"""

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "config.yaml"
LANGS = ["en", "zh"]
TARGET = "eval_only"  # corpus -> world/model -> detection -> evaluation -> tables


def snakemake(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow's CLI from `cwd` (the run directory), as a user would."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def shrunk_demo_config(
    conditions: Mapping[str, list[str]],
    *,
    train_docs: int,
    steps: int,
    log_every: int,
    detection: Mapping[str, Any],
    langs: list[str] = LANGS,
) -> dict[str, Any]:
    """demo/config.yaml shrunk to a few seconds of work: `langs` only, a small world and model.

    Args:
        conditions: benchmark -> conditions evaluated (on every language of `langs`).
        train_docs, steps, log_every: the demo model's training documents, steps and log period.
        detection: detection keys set besides n_docs, max_tokens and shared_languages.
        langs: the languages detected, generated and evaluated.
    """
    cfg = yaml.safe_load(DEMO.read_text())
    cfg["languages"]["detect"] = langs
    cfg["corpus"]["sources"] = {x: cfg["corpus"]["sources"][x] for x in langs}
    cfg["demo"]["languages"] = langs
    cfg["demo"]["world"].update(
        n_people=4,
        n_events=6,
        corpus_docs=12,
        wiki_docs=4,
        heldout_docs=6,
        train_docs=train_docs,
        bench={"mgsm": 4, "xquad": 4, "xcsqa": 4, "xlsum": 4},
    )
    cfg["demo"]["train"].update(
        steps=steps,
        batch_size=4,
        seq_len=64,
        hidden_size=32,
        intermediate_size=64,
        n_layers=3,
        n_heads=2,
        vocab_size=600,
        log_every=log_every,
    )
    cfg["models"]["demo-llama"].update(n_layers=3, n1=1, n2=1)
    cfg["detection"].update(n_docs=6, max_tokens=48, shared_languages=langs, **detection)
    ev = cfg["evaluation"]
    ev["tasks"] = {task: {"langs": langs, "conditions": c} for task, c in conditions.items()}
    ev["sweep"]["enabled"] = False
    ev.update(limit=2, max_gen_toks=4, n_boot=20)
    return cfg


def write_config(wd: Path, cfg: Mapping[str, Any]) -> Path:
    """`cfg` written as `wd`/config.yaml (keys in their order); returns the path."""
    path = wd / "config.yaml"
    path.write_text(yaml.safe_dump(dict(cfg), allow_unicode=True, sort_keys=False))
    return path


def tiny_study_config(wd: Path) -> Path:
    """demo/config.yaml shrunk: en + zh, 2 shards per language, XQuAD with baseline and D_U."""
    # LAPE comparison (on in the demo) is covered by test_demo_workflow; the tiny study is PLND only
    cfg = shrunk_demo_config(
        {"xquad": ["D_U"]},
        train_docs=120,
        steps=4,
        log_every=2,
        detection={"shards": 2, "compare_lape": False},
    )
    cfg.pop("finetune", None)  # fine-tuning has its own tests; it needs de/ru neurons
    return write_config(wd, cfg)


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished run directory (mtimes and Snakemake's metadata kept)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def planned(wd: Path, *targets: str) -> dict[str, int]:
    """rule -> job count of a dry run in `wd` (empty when nothing is to be done)."""
    res = snakemake(
        *targets,
        "--configfile",
        str(wd / "config.yaml"),
        "-n",
        "--quiet",
        "rules",
        "--rerun-triggers",
        "mtime",
        "params",
        "input",
        cwd=wd,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    counts = re.findall(r"^([a-z_]+)\s+(\d+)$", res.stdout, flags=re.M)
    return {rule: int(n) for rule, n in counts if rule != "total"}


def edit_config(wd: Path, section: str, key: str, value: object) -> None:
    path = wd / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg[section][key] = value
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
