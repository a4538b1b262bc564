"""Fixtures of the workflow tier (helpers: wfhelpers.py)."""

from pathlib import Path

import pytest
from wfhelpers import TARGET, snakemake, tiny_study_config


@pytest.fixture(scope="session")
def local_run(tmp_path_factory) -> Path:
    """The tiny study run locally: its tables, and every neuron file (both languages, variants)."""
    wd = tmp_path_factory.mktemp("local_run")
    cfg = tiny_study_config(wd)
    res = snakemake(TARGET, "neurons_only", "--configfile", str(cfg), "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return wd
