"""The embedded demo's DAG: its config validates and plans, and a reduced demo runs end to end."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from wfhelpers import copy_config, copy_run, edit_config, planned

from mwork.findings import summary_findings
from mwork.findings.text import to_rst
from mwork.layout import TABLE_FILES
from mwork.neuronset import load_neuron_set

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "config.yaml"


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1200)


def test_demo_config_validates_and_plans_every_stage(tmp_path):
    res = snakemake(
        "--configfile", str(DEMO), "-d", str(tmp_path), "-n", "--quiet", "rules", cwd=tmp_path
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for rule in (
        "generate_demo_world",
        "train_demo_model",
        "detect_neurons",
        "evaluate_condition",
        "evaluate_baseline",
        "evaluate_finetuned",
        "make_tables",
        "measure_deactivation_ppl",
        "run_language_lens",
        "plot_english_ratio",
        "plot_overlap",
        "plot_deactivation",
        "download_wiki",
        "finetune_language",  # demo/config.yaml: finetune.group_runs
        "plot_enhancement",
        "record_activations",
        "select_lape_neurons",
        "compare_detectors",
        "plot_detector_agreement",
        "measure_deactivation_ppl_lape",
    ):
        assert f"\n{rule} " in res.stdout, rule
    # the demo replaces config.yaml: none of the real study's 7B models is planned
    assert "vicuna" not in res.stdout and "mistral-7b" not in res.stdout


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The reduced demo (.test/config_demo.yaml): two languages, a small world, 12 training
    steps, few items, every stage."""
    wd = tmp_path_factory.mktemp("demo")
    cfg = copy_config("demo", wd)
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
    for fig in (
        "fig1_english_ratio",
        "fig7_language_distribution",
        "fig3_neuron_counts",
        "neuron_share",
        "fig5_overlap",
        "deactivation_summary",
        "fig4_enhancement",
    ):
        assert (r / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text(encoding="utf-8"))
    job = "all" if cfg["evaluation"].get("group_languages") else "zh"  # as demo/config.yaml: all
    for kind, n in (("ls", 2), ("ls", 4), ("random", 4), ("full", 4)):
        delta = r / "demo-llama" / "finetune" / f"{kind}-{n}" / "zh.delta.safetensors"
        assert delta.stat().st_size > 0, delta
        result = json.loads(
            (r / "demo-llama" / "eval" / f"ft_{kind}-{n}" / f"{job}.json").read_text()
        )
        assert [(e["mask_lang"], e["eval_langs"]) for e in result["runs"]] == [
            ("zh", ["en"]),
            ("zh", ["zh"]),
        ]
    fig4 = pd.read_csv(r / "demo-llama" / "tables" / "fig4_enhancement.csv")
    assert {"Original", "Random-4", "Full-4", "LS-2", "LS-4"} <= set(fig4["method"])
    assert set(fig4["task"]) == {"xcsqa"} and set(fig4["lang"]) == {"avg", "en"}
    assert fig4[fig4["method"] == "Original"]["delta"].abs().max() == 0
    assert "LS-4" in (r / "demo-llama" / "tables" / "fig4_enhancement.md").read_text()


def test_editing_a_plnd_key_replans_no_lape_recording(demo_run, tmp_path):
    """record_activations gets only sampling and batching keys: a Q/K setting re-plans PLND
    detection and what depends on it, never LAPE's activation recordings. As the demo, one
    job per model scores both languages (detection.group_languages)."""
    wd = copy_run(demo_run, tmp_path / "run")
    assert "record_activations" not in planned(wd)
    edit_config(wd, "detection", "qk_kernel", "torch")
    plan = planned(wd)
    assert plan.get("detect_neurons") == 1 and "record_activations" not in plan, plan
    assert plan.get("merge_neuron_shards") == 2, plan  # both languages' sets, as per language
    edit_config(wd, "detection", "max_tokens", 64)  # a key LAPE does use
    assert planned(wd).get("record_activations") == 1


def test_grouped_detection_writes_every_language_shard_in_one_job(demo_run):
    """detection.group_languages: one detect_neurons and one record_activations job per (model,
    shard), logged as all.{shard}-of-{n}, wrote each language's usual shard file."""
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text(encoding="utf-8"))
    assert cfg["detection"]["group_languages"] is True  # as demo/config.yaml
    for rule, kind in (("detect_neurons", "neurons"), ("record_activations", "lape")):
        logs = sorted(p.name for p in (demo_run / "logs" / rule / "demo-llama").iterdir())
        assert logs == ["all.0-of-1.log"], logs
        assert "lang: en zh" in (demo_run / "logs" / rule / "demo-llama" / logs[0]).read_text()
        for lang in ("en", "zh"):
            shard = load_neuron_set(
                demo_run / "results" / "demo-llama" / kind / "shards" / f"{lang}.0-of-1.safetensors"
            )
            assert shard.meta["language"] == lang and shard.n_docs == 6


def test_reduced_demo_compares_detectors(demo_run):
    """compare_lape: LAPE sets, the agreement table + figure, and LAPE's perplexity table."""
    r = demo_run / "results"
    agreement = pd.read_csv(r / "demo-llama" / "neurons_lape" / "agreement.csv")
    assert set(agreement["lang"]) == {"en", "zh"}
    assert sorted(set(agreement["layer"])) == [-1, 0, 1, 2]
    for lang in ("en", "zh"):
        lape = load_neuron_set(r / "demo-llama" / "neurons_lape" / f"{lang}.safetensors")
        plnd = load_neuron_set(r / "demo-llama" / "neurons" / f"{lang}.safetensors")
        assert lape.meta["detector"] == "lape" and set(lape.units) == {"ffn"}
        pooled = agreement[(agreement["lang"] == lang) & (agreement["layer"] == -1)].iloc[0]
        both = int((lape.selected["ffn"] & plnd.selected["ffn"]).sum())
        assert (pooled.n_lape, pooled.n_plnd, pooled.n_both) == (
            lape.count(),
            int(plnd.selected["ffn"].sum()),
            both,
        )
    assert (r / "figures" / "detector_agreement.png").stat().st_size > 1000
    table = pd.read_csv(r / "tables" / "detector_agreement.csv")
    pd.testing.assert_frame_equal(table, agreement)
    for name, sets in (("deactivation", "neurons"), ("deactivation_lape", "neurons_lape")):
        assert (r / "demo-llama" / "ppl" / f"{name}.md").read_text().strip()
        long = pd.read_csv(r / "demo-llama" / "ppl" / f"{name}.csv")
        for lang, part in long.groupby("mask_lang"):
            ns = load_neuron_set(r / "demo-llama" / sets / f"{lang}.safetensors")
            assert set(part["n_masked"]) == {ns.count()}, (name, lang)  # D_all = N_L, R_all matched
    assert "LAPE" in (r / "demo-llama" / "ppl" / "deactivation_lape.md").read_text()


def test_reduced_demo_masks_equal_totals_per_table(demo_run):
    """deactivation.count: equal (the default): the LS conditions of each table mask one total,
    and a random condition masks what its LS counterpart does."""
    tables = demo_run / "results" / "demo-llama" / "tables"
    summary = pd.read_csv(tables / "tables2_5_summary.csv")
    ls = summary[summary["condition"].str.startswith("D")]
    assert set(ls[ls["task"] == "xquad"]["condition"]) == {"D_U", "D_S"}
    for task, part in ls.groupby("task"):
        assert part["n_masked"].nunique() == 1 and part["n_masked"].iloc[0] > 0, (task, part)
    per = pd.read_csv(tables / "tables14_17_per_language.csv")
    for (task, lang), part in per[per["condition"].str.startswith("D")].groupby(["task", "lang"]):
        assert part["n_masked"].nunique() == 1, (task, lang, part[["condition", "n_masked"]])
    xquad = per[per["task"] == "xquad"].set_index(["condition", "lang"])["n_masked"]
    for lang in ("en", "zh"):
        if ("D_U", lang) in xquad.index:
            assert xquad[("R_U", lang)] == xquad[("D_U", lang)]


def test_reduced_demo_report_builds(demo_run):
    """Every report caption renders (captions read rule params and wildcards), from another
    directory than the workdir (-d), with what this run found (mwork.findings) in the captions."""
    cfg = demo_run / "config.yaml"
    out = demo_run / "results" / "report.html"
    res = snakemake(
        "--configfile", str(cfg), "-d", str(demo_run), "--report", str(out), cwd=demo_run.parent
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = out.read_text(encoding="utf-8", errors="replace")
    assert "Layer-wise language lens" in html and len(html) > 100_000
    # every table the study makes is in the report, with its caption
    for stem in TABLE_FILES.values():
        assert f"{stem}.csv" in html, stem
    for caption in ("Tables 2-5", "Table 11.", "Tables 12/13.", "Tables 14-17.", "Table 1."):
        assert caption in html, caption
    # the findings beside the summary are this run's numbers, and the report shows them
    tables = demo_run / "results" / "demo-llama" / "tables"
    found = summary_findings(pd.read_csv(tables / "tables2_5_summary.csv"))
    rst = (tables / "tables2_5_summary.findings.rst").read_text(encoding="utf-8")
    assert found and rst == to_rst(found, "this table")
    ci = re.search(r"\(95% CI [^)]*\)", found[0])
    assert ci and ci.group(0) in html, found[0]  # e.g. "(95% CI -18.8 to -5.0)"
    assert html.count("What this run found") >= len(TABLE_FILES) + 5  # + figures, perplexity
