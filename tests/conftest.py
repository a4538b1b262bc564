"""Shared fixtures: tiny random models of every supported family (CPU, offline, seeded), the tiny
model directory `model_dir`, the real material `realdata`; the summary line on realdata skips."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Triton kernels (mwork.plnd.triton_qk) run through Triton's interpreter on CPU tensors in tests;
# read when triton is first imported, so set before anything imports it
os.environ.setdefault("TRITON_INTERPRET", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

from testhelpers import (  # noqa: E402
    REALDATA,
    REQUIRE_REALDATA,
    SKIP_PREFIX,
    STAND_INS,
    digest,
    realdata_required,
    write_model_dir,
)
from testhelpers import realdata as realdata_path  # noqa: E402

from mwork.tiny import FAMILIES, tiny_model  # noqa: E402

# tests/vllm/ needs the vLLM venv (.ci/vllm-setup.sh): collected only with MWORK_VLLM_TESTS=1
collect_ignore = [] if os.environ.get("MWORK_VLLM_TESTS") == "1" else ["vllm"]


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture
def model64(family):
    """A float64 tiny model of each family (exactness tests)."""
    return tiny_model(family, seed=0, dtype=torch.float64)


@pytest.fixture(params=["compiled", "torch"])
def qk_kernel(request, monkeypatch) -> str:
    """Run a test with the C kernel of Eq. 8 (mwork.plnd.kernel) and again with torch's form."""
    from mwork.plnd import backend
    from mwork.plnd import qk as plnd

    if request.param == "torch":
        monkeypatch.setattr(plnd, "kernel_for", lambda *a, **kw: None)
    else:  # every head dim, the tiny models' 8 included, whatever auto's calibration says
        assert backend.kernel_for("compiled", torch.device("cpu"), torch.float64) == "compiled"
        monkeypatch.setattr(
            plnd, "kernel_for", lambda mode, *a, **kw: None if mode == "torch" else "compiled"
        )
    return request.param


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> Callable[..., Path]:
    """`make(family="llama", **kw)`: the directory of testhelpers.write_model_dir(family, **kw),
    written once per session for each distinct set of arguments (values must be hashable)."""
    cache: dict[tuple, Path] = {}

    def make(family: str = "llama", **kw: object) -> Path:
        key = (family, tuple(sorted(kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"model_{family}") / family
            cache[key] = write_model_dir(out, family, **kw)
        return cache[key]

    return make


@pytest.fixture
def model_dir(request, model_dirs) -> Iterator[Path]:
    """A tiny random model directory (weights + trained tokenizer), shared by the whole session:
    tests read it and never write into it (checked after each test; copy it to edit it).

    Llama by default; another family or other `write_model_dir` arguments by indirect
    parametrisation: `@pytest.mark.parametrize("model_dir", ["qwen3"], indirect=True)` or
    `... [{"family": "mistral", "real_tokenizer": "mistral-7b-v0.1-v0.2", ...}], indirect=True)`.
    """
    param = getattr(request, "param", "llama")
    path = model_dirs(**({"family": param} if isinstance(param, str) else param))
    before = digest([path])
    yield path
    assert digest([path]) == before, f"a test changed the shared model directory {path}"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata (see its README); absent, the test skips, or under
    MWORK_REQUIRE_REALDATA=1 (CI) fails. Subpaths: testhelpers.realdata(*parts)."""
    return realdata_path()


WORKFLOW_TIER = Path(__file__).parent / "workflow"


def pytest_collection_modifyitems(items) -> None:
    """Every workflow test is `slow`: each starts Snakemake (10-25 s even for a dry run)."""
    for item in items:
        if WORKFLOW_TIER in item.path.parents:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter) -> None:
    """One line when tests that read ../shared/realdata were skipped or used stand-ins."""
    skipped = {
        r.nodeid
        for r in terminalreporter.stats.get("skipped", [])
        if isinstance(r.longrepr, tuple) and SKIP_PREFIX in str(r.longrepr[2])
    }
    where = f"{REALDATA} not found" if not REALDATA.is_dir() else f"files missing under {REALDATA}"
    if skipped:
        terminalreporter.write_line(
            f"realdata: {len(skipped)} tests skipped: {where} "
            f"(set {REQUIRE_REALDATA}=1 to make that a failure, as CI does)",
            yellow=True,
        )
    if STAND_INS:
        terminalreporter.write_line(
            f"realdata: {len(set(STAND_INS))} tests ran on stand-in rows: {where}", yellow=True
        )
    if realdata_required() and not REALDATA.is_dir():
        terminalreporter.write_line(
            f"realdata: {REALDATA} not found and {REQUIRE_REALDATA}=1: its tests failed", red=True
        )
