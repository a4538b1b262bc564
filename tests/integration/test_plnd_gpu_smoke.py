"""benchmarks/plnd_gpu.py end to end on CPU: the Triton kernel through Triton's interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_benchmark_smoke_path_runs():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/plnd_gpu.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "Triton interpreter" in out
    for row in ("plain forward", "PLND FFN+V", "PLND all, torch Q/K", "PLND all, Triton Q/K"):
        assert out.count(row) == 2, (row, out)  # both cases: the 7B-shaped layer, the tiny model
