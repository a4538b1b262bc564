"""Model roles in the workflow (mwork.roles): the shipped config.yaml is the paper's whole study, and
a BLOOM model (ALiBi, fused query_key_value) runs the lens and detection end to end to Figs. 1 and 6.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from wfhelpers import ROOT, snakemake

from mwork.cli import main as cli
from mwork.neuronset import load_neuron_set

LANGS = ("en", "de", "zh")  # .test/data


def _outputs(stdout: str) -> set[str]:
    return {
        p.strip()
        for line in re.findall(r"^\s+output: (.+)$", stdout, re.M)
        for p in line.split(",")
    }


def test_dry_run_of_config_yaml_is_the_papers_study() -> None:
    res = snakemake("-n", "-d", str(ROOT), cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = _outputs(res.stdout)
    lens = {p.split("/")[1] for p in out if "/lens/" in p}
    assert lens == {"vicuna-13b", "bloomz-7b1", "chinese-llama-7b"}
    for model in ("vicuna-13b", "chinese-llama-7b"):  # lens only: no detection, no evaluation
        assert not [p for p in out if p.startswith(f"results/{model}/") and "/lens/" not in p]
    bloomz = {p for p in out if p.startswith("results/bloomz-7b1/")}
    assert not [p for p in bloomz if "/eval/" in p or "/tables/" in p or "/ppl/" in p]
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    detect = cfg["languages"]["detect"]
    assert {f"results/bloomz-7b1/neurons/{l}.safetensors" for l in detect} <= bloomz
    assert "results/figures/fig6_overlap.png" in out
    # the dry run says, per figure/table, which models it uses
    log = res.stderr
    assert re.search(r"Fig\. 1 \(.*\): vicuna-13b, bloomz-7b1$", log, re.M), log[:3000]
    assert re.search(r"fig6_overlap \(.*\): bloomz-7b1$", log, re.M)
    assert re.search(r"Fig\. 7 \(.*\): chinese-llama-7b$", log, re.M)
    assert re.search(
        r"Tables 1-5, 11-17 \(deactivation\): vicuna-7b, mistral-7b-instruct$", log, re.M
    )
    assert re.search(r"^  vicuna-13b: lens \(lens only", log, re.M)


def test_bloom_runs_lens_and_detection_to_figs_1_and_6(tmp_path: Path) -> None:
    """A tiny BLOOM (ALiBi) model: detection (2 shards), the lens (both variants), Fig. 1 and the
    Fig. 6 overlap heatmaps, from a fresh directory; nothing is evaluated."""
    wd = tmp_path
    shutil.copytree(ROOT / ".test" / "data", wd / "data")
    texts = wd / "texts.jsonl"
    texts.write_bytes(b"".join((wd / "data" / f"{x}.jsonl").read_bytes() for x in LANGS))
    assert (
        cli(["tiny-model", "--family", "bloom", "--texts", str(texts), "--out", str(wd / "bloom")])
        == 0
    )
    n_layers = yaml.safe_load((wd / "bloom" / "config.json").read_text())["n_layer"]
    config = {
        "models": {"bloom": {"path": "bloom", "n_layers": n_layers, "dtype": "float32"}},
        "languages": {"detect": list(LANGS)},
        "corpus": {"min_chars": 10, "sources": {l: {"path": f"data/{l}.jsonl"} for l in LANGS}},
        "detection": {
            "n_docs": 8,
            "shards": 2,
            "batch_size": 4,
            "max_tokens": 64,
            "shared_languages": list(LANGS),
        },
        "figures": {
            "lens": {"models": ["bloom"], "fig7_models": [], "max_new_tokens": 2},
            "neuron_models": [],
            "overlap": {"fig6_overlap": ["bloom"]},
        },
    }
    (wd / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    res = snakemake("--configfile", "config.yaml", "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in ("fig1_english_ratio", "fig6_overlap"):
        assert (wd / "results" / "figures" / f"{name}.png").stat().st_size > 0
    for lang in LANGS:
        ns = load_neuron_set(wd / "results" / "bloom" / "neurons" / f"{lang}.safetensors")
        assert ns.meta["model"] == "bloom" and ns.n_docs == 8
    assert not (wd / "results" / "bloom" / "eval").exists()
    lens = (wd / "results" / "bloom" / "lens" / "normed.csv").read_text().splitlines()
    assert len(lens) > 1
    overlap = (wd / "results" / "tables" / "fig6_overlap.csv").read_text().splitlines()
    assert len(overlap) > 1
