"""profiles/default on this machine: GPU-tagged jobs run in parallel where no GPU driver exists,
one at a time where one does. Measured on a toy workflow whose rule carries a GPU rule's name
and `resources: gpu=1`, so the real profile's per-rule settings apply to it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOY = """
rule all:
    input: expand("out/{i}.txt", i=[0, 1])

rule detect_neurons:
    output: "out/{i}.txt"
    resources: gpu=1
    shell: "date +%s.%N > {output}; sleep 2; date +%s.%N >> {output}"
"""


def run_toy(wd: Path, *args: str) -> list[tuple[float, float]]:
    (wd / "Snakefile").write_text(TOY)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(wd / "Snakefile"), "--cores", "2", *args]
    res = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    spans = []
    for i in (0, 1):
        start, end = (float(x) for x in (wd / "out" / f"{i}.txt").read_text().split())
        spans.append((start, end))
    return spans


def overlap(spans) -> bool:
    (a0, a1), (b0, b1) = sorted(spans)
    return b0 < a1


def test_default_profile_runs_gpu_tagged_jobs_as_cores_allow_without_a_gpu(tmp_path):
    spans = run_toy(tmp_path, "--workflow-profile", str(ROOT / "profiles" / "default"))
    has_driver = shutil.which("nvidia-smi") is not None
    assert overlap(spans) != has_driver, spans


def test_without_the_per_job_override_the_gpu_cap_serialises(tmp_path):
    """The control: the same cap with the rule's own gpu=1 runs the two jobs one after the other."""
    spans = run_toy(tmp_path, "--workflow-profile", "none", "--resources", "gpu=1")
    assert not overlap(spans), spans
