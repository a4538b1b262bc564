"""Output languages in the workflow's run JSONs, and what changing the LID re-runs.

On the finished tiny study (`local_run`): every generated item of every evaluation JSON carries
its output language and the identifier is the study's (the rules pass `figures.lens.lid_backend`
and the languages); changing the backend re-plans the evaluation jobs (intended: the JSONs say
what identified them); without the params trigger only `collect_scores` re-runs when forced, and
re-identifies the stored predictions (docs/experiments.md, output-language fidelity).
"""

import json
import re

import pandas as pd
import yaml
from wfhelpers import TARGET, copy_run, planned, snakemake

from mwork.fidelity import OutputLanguage
from mwork.lid import available_backends


def _set_backend(wd, backend: str) -> None:
    path = wd / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg.setdefault("figures", {}).setdefault("lens", {})["lid_backend"] = backend
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))


def test_run_jsons_carry_output_languages(local_run):
    cfg = yaml.safe_load((local_run / "config.yaml").read_text())
    langs = list(cfg["languages"]["detect"]) + list(cfg["languages"].get("enhance", []))
    backend = cfg.get("figures", {}).get("lens", {}).get("lid_backend", "lingua")
    lid = OutputLanguage(langs, backend)
    paths = sorted(local_run.glob("results/*/eval/*/*.json"))
    generated = 0
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            for task in run["tasks"].values():
                items = task["items"]
                if "prediction" not in items:
                    assert "output_lang" not in items
                    continue
                assert run["fidelity"] == lid.describe()
                assert items["output_lang"] == [lid(p) for p in items["prediction"]]
                generated += len(items["prediction"])
    assert paths and generated > 0
    (langs_csv,) = local_run.glob("results/*/tables/output_languages.csv")
    assert len(pd.read_csv(langs_csv)) == generated


def test_changing_the_lid_replans_evaluation_unless_params_are_ignored(local_run, tmp_path):
    wd = copy_run(local_run, tmp_path / "run")
    other = next(b for b in ("langid", "lingua") if b in available_backends() and b != "lingua")
    _set_backend(wd, other)
    plan = planned(wd, TARGET, "neurons_only")
    assert plan.get("evaluate_condition") and plan.get("evaluate_baseline"), plan
    assert "detect_neurons" not in plan, plan
    keep = ["--rerun-triggers", "mtime", "input", "--forcerun", "collect_scores"]
    cfg = ["--configfile", str(wd / "config.yaml")]
    res = snakemake(TARGET, "neurons_only", *cfg, "-n", "--quiet", "rules", *keep, cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    plan = dict(re.findall(r"^([a-z_]+)\s+(\d+)$", res.stdout, flags=re.M))
    assert not {"evaluate_condition", "evaluate_baseline"} & set(plan), plan
    assert plan.get("collect_scores") == "1", plan
    res = snakemake(TARGET, *cfg, "--cores", "1", *keep, cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = "".join(p.read_text() for p in wd.glob("logs/collect_scores/*.log"))
    assert "re-identified" in log  # the stored languages were another identifier's
