"""What a valid config drops is said on the terminal when the workflow starts (issue 25, part 2):
the dry run of the tiny study with XQuAD in English only plans no masked run and says why, in
one `warning:` line naming the key (mwork.preflight, rules/common.smk)."""

from __future__ import annotations

import yaml
from wfhelpers import TARGET, snakemake, tiny_study_config


def test_dropped_conditions_are_a_startup_warning(tmp_path) -> None:
    cfg_path = tiny_study_config(tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["evaluation"]["tasks"]["xquad"]["langs"] = ["en"]
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    res = snakemake(TARGET, "-n", "--configfile", str(cfg_path), cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    warning = (
        "warning: evaluation.tasks.xquad: langs lists only English, so its conditions D_U plan "
        "no masked run (add a language besides en)"
    )
    assert res.stderr.count(warning) == 1
    assert "evaluate_condition" not in res.stdout  # nothing masked is planned
