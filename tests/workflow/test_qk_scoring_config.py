"""`detection.qk_scoring: first-order` with `importance: released-code` stops a dry run at start
with one line `error: config: ...; ...` (exit 2); with `importance: paper` it plans."""

import yaml
from wfhelpers import TARGET, snakemake, tiny_study_config


def _dry_run(wd, **detection):
    cfg_path = tiny_study_config(wd)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["detection"].update(detection)
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    res = snakemake(TARGET, "-n", "--configfile", str(cfg_path), cwd=wd, timeout=300)
    err = [line for line in res.stderr.strip().splitlines() if not line.startswith("Using")]
    return res, err


def test_first_order_with_released_code_is_a_config_error(tmp_path):
    res, err = _dry_run(tmp_path, importance="released-code", qk_scoring="first-order")
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith("error: config: detection.qk_scoring"), err
    assert "use qk_scoring: exact" in err[0] and "Traceback" not in res.stderr


def test_first_order_with_paper_importance_plans(tmp_path):
    res, _ = _dry_run(tmp_path, importance="paper", qk_scoring="first-order")
    assert res.returncode == 0, res.stderr[-2000:]
