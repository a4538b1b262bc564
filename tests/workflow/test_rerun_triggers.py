"""Rules get only the config values their job uses: an unrelated edit re-plans no expensive job.

On a copy of the finished tiny study (`local_run`), edit one config key and dry-run with
`rerun-triggers: params` (the default profile's): only the jobs that use the key are planned.
"""

import re
from pathlib import Path

import yaml
from wfhelpers import TARGET, copy_run, snakemake


def planned(wd: Path, *targets: str) -> dict[str, int]:
    """rule -> job count of a dry run in `wd` (empty when nothing is to be done)."""
    res = snakemake(
        *targets,
        "--configfile",
        str(wd / "config.yaml"),
        "-n",
        "--quiet",
        "rules",
        "--rerun-triggers",
        "mtime",
        "params",
        "input",
        cwd=wd,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    counts = re.findall(r"^([a-z_]+)\s+(\d+)$", res.stdout, flags=re.M)
    return {rule: int(n) for rule, n in counts if rule != "total"}


def edit_config(wd: Path, section: str, key: str, value: object) -> None:
    path = wd / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg[section][key] = value
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))


def test_finished_run_plans_nothing(local_run, tmp_path):
    wd = copy_run(local_run, tmp_path / "run")
    assert planned(wd, TARGET, "neurons_only") == {}


def test_editing_n_boot_replans_only_the_tables(local_run, tmp_path):
    wd = copy_run(local_run, tmp_path / "run")
    edit_config(wd, "evaluation", "n_boot", 30)
    plan = planned(wd, TARGET, "neurons_only")
    assert set(plan) - {"eval_only", "neurons_only"} == {"make_tables"}, plan


def test_editing_variants_replans_no_detection_or_evaluation(local_run, tmp_path):
    wd = copy_run(local_run, tmp_path / "run")
    edit_config(wd, "detection", "variants", ["minus-en"])
    edit_config(wd, "detection", "shared_languages", ["en"])
    plan = planned(wd, TARGET, "neurons_only")
    expensive = {"detect_neurons", "merge_neuron_shards", "evaluate_baseline", "evaluate_condition"}
    assert not expensive & set(plan), plan


def test_editing_batch_size_of_evaluation_keeps_detection(local_run, tmp_path):
    wd = copy_run(local_run, tmp_path / "run")
    edit_config(wd, "evaluation", "batch_size", 3)
    plan = planned(wd, TARGET, "neurons_only")
    assert "detect_neurons" not in plan and plan.get("evaluate_condition") == 1, plan
