"""Shared fixtures: tiny random models of every supported family (CPU, offline, seeded)."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(min(2, torch.get_num_threads()))

from mwork.tiny import FAMILIES, tiny_model  # noqa: E402


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture
def model64(family):
    """A float64 tiny model of each family (exactness tests)."""
    return tiny_model(family, seed=0, dtype=torch.float64)


@pytest.fixture(params=["compiled", "torch"])
def qk_kernel(request, monkeypatch) -> str:
    """Run a test with the C kernel of Eq. 8 (mwork.qkkernel) and again with torch's form."""
    from mwork import plnd, qkkernel

    if request.param == "torch":
        monkeypatch.setattr(plnd, "kernel_for", lambda *a, **kw: False)
    else:  # every head dim, the tiny models' 8 included
        monkeypatch.setattr(qkkernel, "AUTO_MIN_HEAD_DIM", 1)
        assert qkkernel.kernel_for("compiled", torch.device("cpu"), torch.float64)
    return request.param
