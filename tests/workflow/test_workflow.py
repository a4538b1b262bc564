"""The Snakemake DAG: lint, dry-run of the real study, and a real tiny run of corpus + detection."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wfhelpers import copy_config

from mwork.cli import main as cli
from mwork.neuronset import load_neuron_set

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en", "de", "zh")  # .test/data
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def test_lint_is_clean():
    res = snakemake("--lint")
    assert res.returncode == 0, res.stdout + res.stderr


def test_dry_run_of_the_real_study_plans_corpus_and_detection():
    res = snakemake("-n", "--quiet", "rules", "-d", str(ROOT))
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    # 10 languages (6 study + 4 enhancement) x 3 models (Vicuna, Mistral-Instruct and the
    # Mistral base of the fine-tuning study, issue 10), 1 shard each, + BLOOMZ's 6 study
    # languages for Fig. 6 (the lens-only Vicuna-13b and Chinese-Llama get none; mwork.roles)
    assert counts["download_corpus"] == 10
    assert counts["detect_neurons"] == 10 * 3 + 6
    assert counts["merge_neuron_shards"] == 10 * 3 + 6
    assert counts["summarize_neurons"] == 3 + 1


def test_bad_config_fails_with_schema_message(tmp_path):
    cfg = (ROOT / "config.yaml").read_text().replace("importance: paper", "importance: magic")
    (tmp_path / "config.yaml").write_text(cfg)
    res = snakemake("-n", "--configfile", str(tmp_path / "config.yaml"), "-d", str(tmp_path))
    assert res.returncode != 0 and "magic" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory) -> Path:
    """.test/config_model.yaml run as its README says, with `wd` as the repository root: the
    corpora of .test/data, a model from `mwork tiny-model`, detection only."""
    wd = tmp_path_factory.mktemp("wf")
    shutil.copytree(ROOT / ".test" / "data", wd / ".test" / "data")
    texts = wd / ".test" / "texts.jsonl"
    texts.write_bytes(b"".join((wd / ".test" / "data" / f"{x}.jsonl").read_bytes() for x in LANGS))
    assert cli(["tiny-model", "--texts", str(texts), "--out", str(wd / ".test" / "model")]) == 0
    copy_config("model", wd)
    res = snakemake("--configfile", str(wd / "config.yaml"), "-d", str(wd), "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return wd


def test_tiny_run_writes_every_neuron_file(tiny_workdir):
    neurons = tiny_workdir / "results" / "tiny" / "neurons"
    for lang in ("en", "de", "zh"):
        ns = load_neuron_set(neurons / f"{lang}.safetensors")
        assert ns.n_docs == 8 and ns.meta["language"] == lang and ns.meta["model"] == "tiny"
        assert "shard" not in ns.meta
    for name in ("de.minus-en", "zh.minus-en", "en.minus-shared", "zh.minus-shared"):
        assert load_neuron_set(neurons / f"{name}.safetensors").meta["variant"] in name
    summary = (neurons / "summary.csv").read_text().splitlines()
    assert summary[0] == "model,lang,variant,layer,component,selected,units,share"
    assert (tiny_workdir / "logs" / "detect_neurons" / "tiny" / "zh.0-of-2.log").read_text().strip()
    bench = tiny_workdir / "logs" / "benchmarks" / "detect_neurons" / "tiny" / "zh.0-of-2.tsv"
    assert bench.exists()


def test_one_language_reruns_alone(tiny_workdir):
    target = "results/tiny/neurons/zh.safetensors"
    res = snakemake(
        target,
        "-n",
        "--quiet",
        "rules",
        "-R",
        "detect_neurons",
        "--configfile",
        str(tiny_workdir / "config.yaml"),
        "-d",
        str(tiny_workdir),
        cwd=tiny_workdir,
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout)
    assert counts == {"detect_neurons": 2, "merge_neuron_shards": 1, "total": 3}
