"""The paper's study (config.yaml) as Snakemake plans it: every evaluation job, one per (model,
run label, language), and nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_plans_every_evaluation_job() -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    validate(cfg, schema=str(ROOT / "src/mwork/data/config.schema.yaml"), set_default=True)
    ev = cfg["evaluation"]
    expected = set()
    study = ev.get("models") or list(cfg["models"])  # models of the deactivation study
    for model in study:
        runs = [
            (task, cond, lang)
            for task, spec in ev["tasks"].items()
            for cond in spec["conditions"]
            for lang in spec["langs"]
            if lang != "en"
        ]
        runs += [
            (ev["sweep"]["task"], f"D_U-n1_{n}", lang)
            for n in ev["sweep"]["n1"]
            for lang in ev["sweep"]["langs"]
        ]
        runs += [
            (ev["sweep"]["task"], f"D_G-n2_{n}", lang)
            for n in ev["sweep"]["n2"]
            for lang in ev["sweep"]["langs"]
        ]
        for _task, cond, lang in runs:
            labels = [f"{cond}-s{s}" for s in ev["seeds"]] if cond.startswith("R") else [cond]
            expected |= {f"results/{model}/eval/{label}/{lang}.json" for label in labels}
        expected |= {
            f"results/{model}/eval/none/{lang}.json"
            for spec in ev["tasks"].values()
            for lang in spec["langs"]
        }
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "-d", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    planned = {
        p.strip()
        for line in re.findall(r"^\s+output: (.+)$", res.stdout, re.M)
        for p in line.split(",")
    }
    assert expected <= planned, sorted(expected - planned)[:5]
    counts = {
        m[1]: int(m[2])
        for m in re.finditer(r"^(\w+)\s+(\d+)$", res.stdout.split("Job stats:")[1], re.M)
    }
    evals = {p for p in planned if "/eval/" in p}
    masked = {p for p in evals if "/eval/none/" not in p and "/eval/ft_" not in p}
    assert masked == {p for p in expected if "/none/" not in p}
    assert counts["evaluate_condition"] == len(masked)  # one job per (model, label, language)
    baselines = {p for p in evals if "/eval/none/" in p}
    assert {p for p in expected if "/none/" in p} <= baselines
    ft = cfg.get("finetune") or {}
    for p in baselines - expected:  # the enhancement study's baselines (Fig. 4, Table 6)
        model, lang = p.split("/")[1], p.rsplit("/", 1)[1].removesuffix(".json")
        covered = lang == "en" or any(lang in langs for langs in ft["tasks"].values())
        assert model in ft["models"] and covered, p
    assert counts["evaluate_baseline"] == len(baselines)
    finetuned = {p for p in evals if "/eval/ft_" in p}
    assert counts.get("evaluate_finetuned", 0) == len(finetuned)
    evaluated = set(study) | set(ft.get("models", []))  # lens/figure-only models: no tables
    assert counts["collect_scores"] == counts["make_tables"] == len(evaluated)
