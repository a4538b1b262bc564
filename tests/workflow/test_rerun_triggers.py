"""Rules get only the config values their job uses: an unrelated edit re-plans no expensive job.

On a copy of the finished tiny study (`local_run`), edit one config key and dry-run with
`rerun-triggers: params` (the default profile's): only the jobs that use the key are planned.
"""

from wfhelpers import TARGET, copy_run, edit_config, planned


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
