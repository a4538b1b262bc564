"""The embedded demo's DAG: its config validates and plans, and a reduced demo runs end to end."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mwork.neuronset import load_neuron_set

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "config.yaml"


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1200)


def test_demo_config_validates_and_plans_every_stage(tmp_path):
    res = snakemake("--configfile", str(DEMO), "-d", str(tmp_path), "-n", "--quiet", "rules", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for rule in ("generate_demo_world", "train_demo_model", "detect_neurons", "evaluate_condition",
                 "evaluate_baseline", "make_tables", "measure_deactivation_ppl", "run_language_lens",
                 "plot_english_ratio", "plot_overlap", "plot_deactivation"):
        assert f"\n{rule} " in res.stdout, rule
    # the demo replaces config.yaml: none of the real study's 7B models is planned
    assert "vicuna" not in res.stdout and "mistral-7b" not in res.stdout


def reduced_config(tmp: Path) -> Path:
    """demo/config.yaml shrunk: two languages, a small world, 12 training steps, few items."""
    cfg = yaml.safe_load(DEMO.read_text())
    langs = ["en", "zh"]
    cfg["languages"]["detect"] = langs
    cfg["corpus"]["sources"] = {l: cfg["corpus"]["sources"][l] for l in langs}
    cfg["demo"]["languages"] = langs
    cfg["demo"]["world"].update(n_people=4, n_events=6, corpus_docs=12, wiki_docs=4, heldout_docs=6,
                                train_docs=200, bench={"mgsm": 4, "xquad": 4, "xcsqa": 4, "xlsum": 4})
    cfg["demo"]["train"].update(steps=12, batch_size=4, seq_len=64, hidden_size=32, intermediate_size=64,
                                n_layers=3, n_heads=2, vocab_size=600, log_every=4)
    cfg["models"]["demo-llama"].update(n_layers=3, n1=1, n2=1)
    cfg["detection"].update(n_docs=6, max_tokens=48, shared_languages=langs)
    cfg["perplexity"].update(n_texts=4, seeds=[0])
    ev = cfg["evaluation"]
    ev["tasks"] = {"xquad": {"langs": langs, "conditions": ["R_U", "D_U"]},
                   "mgsm": {"langs": langs, "conditions": ["Dbar_S_attn.minus-en"]},
                   "xcsqa": {"langs": langs, "conditions": ["D_S_ffn"]},
                   "xlsum": {"langs": langs, "conditions": ["D_all"]}}
    ev["sweep"]["enabled"] = False
    ev.update(limit=2, max_gen_toks=4, n_boot=20)
    cfg["figures"]["lens"].update(variants=["normed"], max_new_tokens=2)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("demo")
    cfg = reduced_config(wd)
    res = snakemake("--configfile", str(cfg), "-d", str(wd), "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return wd


def test_reduced_demo_runs_every_stage(demo_run):
    r = demo_run / "results"
    assert (r / "demo" / "model" / "config.json").exists()
    for lang in ("en", "zh"):
        ns = load_neuron_set(r / "demo-llama" / "neurons" / f"{lang}.safetensors")
        assert ns.n_docs == 6 and ns.meta["language"] == lang
    summary = pd.read_csv(r / "demo-llama" / "tables" / "tables2_5_summary.csv")
    assert {"D_U", "R_U", "D_S_ffn", "D_all"} <= set(summary["condition"])
    assert {"eng", "n_eng", "delta_eng", "delta_n_eng", "delta"} <= set(summary.columns)
    assert (r / "demo-llama" / "ppl" / "deactivation.md").read_text().strip()
    for fig in ("fig1_english_ratio", "fig7_language_distribution", "fig3_neuron_counts",
                "neuron_share", "fig5_overlap", "deactivation_summary"):
        assert (r / "figures" / f"{fig}.png").stat().st_size > 1000, fig
