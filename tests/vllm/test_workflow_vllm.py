"""The tiny study end to end with `evaluation.backend: vllm` (.test/config_vllm.yaml), on CPU.

Snakemake runs from this interpreter (the vLLM venv), so the evaluation jobs' scripts import
vLLM; each evaluation job starts one engine. Asserted: the run succeeds, every evaluation result
records the vllm backend, and the per-item results equal those of the same jobs on the hf backend
(the masked label's job forced again with evaluation.backend: hf; the baseline's parity is
test_parity.py's, which keeps this test's CI time down).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1500)


def _items(wd: Path) -> dict[tuple[str, str, str], dict]:
    out = {}
    for path in sorted((wd / "results").glob("*/eval/*/*.json")):
        data = json.loads(path.read_text("utf-8"))
        for run in data["runs"]:
            for name, task in run["tasks"].items():
                out[(data["label"], run["mask_lang"], name)] = (run["settings"], task["items"])
    return out


def test_tiny_study_runs_on_the_vllm_backend(tmp_path: Path) -> None:
    wd = tmp_path / "vllm"
    wd.mkdir()
    shutil.copyfile(ROOT / ".test" / "config_vllm.yaml", wd / "config.yaml")
    res = _snakemake("eval_only", "--configfile", "config.yaml", "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    vllm_items = _items(wd)
    labels = {k[0] for k in vllm_items}
    assert {"none", "D_U"} <= labels, labels
    assert all(s["backend"] == "vllm" for s, _ in vllm_items.values())
    assert (wd / "results" / "demo-llama" / "tables" / "scores.csv").is_file()

    cfg = yaml.safe_load((wd / "config.yaml").read_text("utf-8"))
    cfg["evaluation"]["backend"] = "hf"
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg), "utf-8")
    res = _snakemake(
        "eval_only", "--configfile", "config.yaml", "--cores", "2", "--forcerun",
        "evaluate_condition", cwd=wd,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    hf_items = {k: v for k, v in _items(wd).items() if k[0] == "D_U"}
    assert hf_items.keys() == {k for k in vllm_items if k[0] == "D_U"} and hf_items
    assert all(s["backend"] == "hf" for s, _ in hf_items.values())
    for key, (_, items) in hf_items.items():
        assert vllm_items[key][1] == items, key
