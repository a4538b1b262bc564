"""Helpers of the workflow tier: a tiny study (two languages, two detection shards per language,
one evaluation task with a baseline and one masked condition, tables); the session fixture
`local_run` in conftest.py runs it once locally.

The world and the model come from the embedded demo's own rules (rules/demo.smk), shrunk to a
few seconds of work; the run is shared by tests/workflow/test_reruns.py (on copies) and
tests/workflow/test_slurm.py (the local reference run).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "config.yaml"
LANGS = ["en", "zh"]
TARGET = "eval_only"  # corpus -> world/model -> detection -> evaluation -> tables


def snakemake(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow's CLI from `cwd` (the run directory), as a user would."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def tiny_study_config(wd: Path) -> Path:
    """demo/config.yaml shrunk: en + zh, 2 shards per language, XQuAD with baseline and D_U."""
    cfg = yaml.safe_load(DEMO.read_text())
    cfg["languages"]["detect"] = LANGS
    cfg["corpus"]["sources"] = {x: cfg["corpus"]["sources"][x] for x in LANGS}
    cfg["demo"]["languages"] = LANGS
    cfg["demo"]["world"].update(
        n_people=4,
        n_events=6,
        corpus_docs=12,
        wiki_docs=4,
        heldout_docs=6,
        train_docs=120,
        bench={"mgsm": 4, "xquad": 4, "xcsqa": 4, "xlsum": 4},
    )
    cfg["demo"]["train"].update(
        steps=4,
        batch_size=4,
        seq_len=64,
        hidden_size=32,
        intermediate_size=64,
        n_layers=3,
        n_heads=2,
        vocab_size=600,
        log_every=2,
    )
    cfg["models"]["demo-llama"].update(n_layers=3, n1=1, n2=1)
    # LAPE comparison (on in the demo) is covered by test_demo_workflow; the tiny study is PLND only
    cfg["detection"].update(
        n_docs=6, shards=2, max_tokens=48, shared_languages=LANGS, compare_lape=False
    )
    cfg.pop("finetune", None)  # fine-tuning has its own tests; it needs de/ru neurons
    ev = cfg["evaluation"]
    ev["tasks"] = {"xquad": {"langs": LANGS, "conditions": ["D_U"]}}
    ev["sweep"]["enabled"] = False
    ev.update(limit=2, max_gen_toks=4, n_boot=20)
    path = wd / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return path


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished run directory (mtimes and Snakemake's metadata kept)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
