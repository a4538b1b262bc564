"""Config that could only fail late or silently is refused at plan time (issue 26, class 5).

Duplicate YAML keys (Snakemake keeps the last silently), NaN/Inf numbers (jsonschema's bounds let
NaN through), LAPE thresholds of 1.0 (empty sets for every language), more detection shards than
documents, LAPE with one language, fine-tuning sizes beyond the fine-tuning pool: each is one
`ConfigError` before any job runs. The demo config is the control: it passes every check.
"""

import copy
import math
from pathlib import Path

import jsonschema
import pytest
import yaml
from snakemake.utils import validate

from mwork.configcheck import ConfigError
from mwork.configcheck_values import check_config_files, check_finite_options, nonfinite_values
from mwork.errors import MworkError
from mwork.plan import Plan
from mwork.settings import SCHEMA_FILE, LapeSettings, config_schema

ROOT = SCHEMA_FILE.parents[3]


@pytest.fixture(scope="module")
def demo() -> dict:
    return yaml.safe_load((ROOT / "demo" / "config.yaml").read_text())


def planned(cfg: dict) -> None:
    """Validate (defaults filled in) and check `cfg` the way rules/common.smk does."""
    validate(cfg, schema=str(SCHEMA_FILE), set_default=True)
    Plan(cfg).check()


def test_control_demo_and_repository_configs_pass(demo):
    planned(copy.deepcopy(demo))
    for path in [ROOT / "config.yaml", *sorted((ROOT / ".test").glob("config_*.yaml"))]:
        check_config_files([path])
        planned(yaml.safe_load(path.read_text()))


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        (
            "detection:\n  n_docs: 8\nmodels: {}\ndetection:\n  n_docs: 1000\n",
            "detection",
            "1 and 4",
        ),
        ("detection:\n  n_docs: 8\n  seed: 1\n  n_docs: 1000\n", "n_docs", "2 and 4"),
        ("a: [{x: 1, x: 2}]\n", "x", "1 and 1"),
    ],
    ids=["top-level-section", "nested-key", "inside-a-list"],
)
def test_duplicate_keys_are_refused(tmp_path, text, key, lines):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)  # what Snakemake's loader does: silently keeps the last one
    with pytest.raises(ConfigError) as exc:
        check_config_files([path])
    assert f"key '{key}' appears twice" in str(exc.value) and f"lines {lines}" in str(exc.value)
    assert path.read_text() == text


def test_same_key_in_different_sections_and_merge_keys_are_fine(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: {n: 1}\nb: {n: 2}\nbase: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n")
    check_config_files([path])  # no error: a key may repeat across mappings; << is not a repeat


def test_demo_config_with_a_repeated_section(tmp_path, demo):
    """The issue's case: a second `detection:` section (n_docs 8 -> 1000) is refused."""
    text = (ROOT / "demo" / "config.yaml").read_text() + "\ndetection:\n  n_docs: 1000\n"
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="key 'detection' appears twice"):
        check_config_files([path])


# --- non-finite numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda c: c["finetune"].update(lr=math.inf), "finetune.lr = inf"),
        (lambda c: c["finetune"].update(warmup_ratio=math.nan), "finetune.warmup_ratio = nan"),
        (lambda c: c["detection"].update(min_fraction=math.nan), "detection.min_fraction = nan"),
        (lambda c: c["detection"].update(epsilon_ffn=-math.inf), "detection.epsilon_ffn = -inf"),
        (
            lambda c: c["finetune"].update(adam_betas=[0.9, math.nan]),
            "finetune.adam_betas[1] = nan",
        ),
    ],
    ids=["lr-inf", "warmup-nan", "min-fraction-nan", "epsilon-minus-inf", "beta-nan"],
)
def test_nonfinite_config_numbers(demo, edit, where):
    cfg = copy.deepcopy(demo)
    edit(cfg)
    with pytest.raises((ConfigError, jsonschema.ValidationError, Exception)) as exc:
        planned(cfg)
    assert (
        isinstance(exc.value, ConfigError) or "finite" in str(exc.value) or "inf" in str(exc.value)
    )
    assert where in nonfinite_values(cfg)


def test_yaml_dot_nan_reaches_the_check(demo):
    """`.nan` and `.inf` in YAML are floats: jsonschema's `minimum` lets NaN pass, the plan does not."""
    cfg = copy.deepcopy(demo)
    cfg["detection"]["min_fraction"] = yaml.safe_load(".nan")
    jsonschema.validate(cfg, config_schema())  # the schema alone accepts it
    with pytest.raises(ConfigError, match=r"detection.min_fraction = nan is not a finite number"):
        planned(cfg)


def test_lr_above_one_is_refused_by_the_schema(demo):
    cfg = copy.deepcopy(demo)
    cfg["finetune"]["lr"] = 2e6  # a lost minus sign
    with pytest.raises(
        jsonschema.ValidationError, match="greater than or equal to the maximum of 1"
    ):
        jsonschema.validate(cfg, config_schema())


def test_cli_options_nonfinite():
    import argparse

    check_finite_options(argparse.Namespace(lr=2e-6, n=3, name="x"))
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(MworkError, match=r"--max-grad-norm .* is not a finite number"):
            check_finite_options(argparse.Namespace(max_grad_norm=value))


# --- counts and thresholds the config alone decides ---------------------------------------


@pytest.mark.parametrize("key", ["filter_rate", "activation_bar_ratio"])
def test_lape_threshold_one_is_refused(demo, key):
    cfg = copy.deepcopy(demo)
    cfg["detection"].setdefault("lape", {})[key] = 1.0
    with pytest.raises(jsonschema.ValidationError, match="greater than or equal to the maximum"):
        jsonschema.validate(cfg, config_schema())
    with pytest.raises(MworkError, match=f"{key} 1.0 selects no neuron"):
        LapeSettings(**{key: 1.0}).validate()
    LapeSettings(top_rate=1.0).validate()  # control: keeping every candidate is well defined


def test_more_shards_than_documents(demo):
    cfg = copy.deepcopy(demo)
    cfg["detection"].update(n_docs=8, shards=20)
    with pytest.raises(
        ConfigError, match=r"detection.shards is 20 but each language has at most 8"
    ):
        planned(cfg)
    cfg = copy.deepcopy(demo)
    cfg["detection"].update(n_docs=50, shards=20)
    cfg["corpus"]["pool_size"] = 10
    with pytest.raises(ConfigError, match=r"at most 10 documents"):
        planned(cfg)
    cfg = copy.deepcopy(demo)
    cfg["detection"].update(n_docs=8, shards=8)
    planned(cfg)  # control: one document per shard is fine


@pytest.mark.parametrize("how", ["method", "compare"])
def test_lape_with_one_language(demo, how):
    cfg = copy.deepcopy(demo)
    cfg["languages"] = {"detect": ["en"], "enhance": []}
    cfg.pop("evaluation", None)
    cfg.pop("finetune", None)
    cfg.pop("perplexity", None)
    cfg["figures"] = {}
    if how == "method":
        cfg["detection"]["method"] = "lape"
    else:
        cfg["detection"].update(method="plnd", compare_lape=True)
    cfg["corpus"]["sources"] = {"en": cfg["corpus"]["sources"]["en"]}
    with pytest.raises(
        ConfigError, match="LAPE selects jointly over languages and needs at least two"
    ):
        planned(cfg)


def test_finetune_sizes_beyond_the_pool(demo):
    cfg = copy.deepcopy(demo)
    cfg["finetune"].setdefault("wiki", {})["pool_size"] = 50
    cfg["finetune"].update(n_docs=[20, 80], baseline_n_docs=40)
    with pytest.raises(
        ConfigError, match=r"up to 80 documents but finetune.wiki.pool_size keeps 50"
    ):
        planned(cfg)


def test_profiles_never_retry_a_failed_job():
    """A job killed by a signal (an OOM kill) must never run twice: no profile retries or
    restarts jobs (class 7)."""
    for path in sorted(Path(ROOT / "profiles").glob("*/config.yaml")):
        prof = yaml.safe_load(path.read_text())
        assert int(prof.get("retries", 0)) == 0, path
        assert int(prof.get("restart-times", 0)) == 0, path


def test_mwork_plan_refuses_a_repeated_key(tmp_path, capsys):
    """`mwork plan --configfile` reads the file itself: the repeat is refused there too."""
    from mwork.cli import main

    cfg = tmp_path / "study.yaml"
    text = (ROOT / "demo" / "config.yaml").read_text() + "\ndetection:\n  n_docs: 1000\n"
    cfg.write_text(text)
    assert main(["plan", "--configfile", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'detection' appears twice" in err[0], err
    assert cfg.read_text() == text
