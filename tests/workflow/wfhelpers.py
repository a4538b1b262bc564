"""Helpers of the workflow tier: the committed configs of .test/ (README there: how to run them by
hand), a tiny study (two languages, two detection shards per language, one evaluation task with a
baseline and one masked condition, tables); the session fixture `local_run` in conftest.py runs
it once locally.

The world and the model come from the embedded demo's own rules (rules/demo.smk), shrunk to a
few seconds of work (.test/config_tiny.yaml); the run is shared by tests/workflow/test_reruns.py
(on copies) and tests/workflow/test_slurm.py (the local reference run).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEST_CONFIGS = ROOT / ".test"
TARGET = "eval_only"  # corpus -> world/model -> detection -> evaluation -> tables


def snakemake(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow's CLI from `cwd` (the run directory), as a user would."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def committed_config(name: str) -> Path:
    """The committed config `.test/config_{name}.yaml` (tiny, demo or model; .test/README.md)."""
    return TEST_CONFIGS / f"config_{name}.yaml"


def copy_config(name: str, wd: Path) -> Path:
    """`.test/config_{name}.yaml` copied to `wd`/config.yaml (tests edit the copy); its path."""
    path = wd / "config.yaml"
    shutil.copyfile(committed_config(name), path)
    return path


def tiny_study_config(wd: Path) -> Path:
    """The tiny study (.test/config_tiny.yaml): en + zh, 2 shards per language, XQuAD with
    baseline and D_U, tables; copied to `wd`/config.yaml."""
    return copy_config("tiny", wd)


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
