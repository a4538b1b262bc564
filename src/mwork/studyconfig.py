"""Reading and validating a study config the way the workflow does (torch-free).

`validate_config(config)` is what `rules/common.smk` runs at workflow start and what `mwork plan`
and `mwork init` run: the schema (`mwork/data/config.schema.yaml`, defaults filled in place by
Snakemake's validator), then `Plan.check()` (`mwork.configcheck`). Every problem is one
`ConfigError` naming the key, with "did you mean" for misspelt keys, enum values and conditions
(`mwork.suggest`). `load_config(path)` reads a YAML file first. `--configfile` replaces the
repository's config.yaml (Snakefile): a config is always complete on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mwork.configcheck import ConfigError
from mwork.configcheck_values import check_config_files
from mwork.settings import SCHEMA_FILE
from mwork.suggest import condition_hint, did_you_mean


def schema_error(err: Any) -> ConfigError:
    """One-line ConfigError of a jsonschema `ValidationError`: the key, the problem, a suggestion."""
    path = [str(p) for p in err.absolute_path]
    where = ".".join(path) or "top level"
    schema = err.schema if isinstance(err.schema, dict) else {}
    fix = "fix it (every key: src/mwork/data/config.schema.yaml, docs/configuration.md)"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = list(schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        if extra and known:
            key = extra[0]
            full = f"{where}.{key}" if path else key
            return ConfigError(
                f"unknown key {full}",
                f"{did_you_mean(key, known)}valid keys here: {', '.join(known)}",
            )
    if err.validator == "enum":
        choices = [str(c) for c in err.validator_value]
        value = str(err.instance)
        return ConfigError(
            f"{where}: '{value}' is not one of {', '.join(choices)}",
            f"{did_you_mean(value, choices)}{fix}",
        )
    if err.validator == "pattern" and "conditions" in path and isinstance(err.instance, str):
        hint = condition_hint(err.instance)
        return ConfigError(
            f"{where}: '{err.instance}' is not a run label",
            (f"did you mean '{hint}'? " if hint else "")
            + "`mwork conditions` lists every condition and its paper notation",
        )
    return ConfigError(f"{where}: {' '.join(err.message[:300].split())}", fix)


def validate_config(config: dict[str, Any], check: bool = True) -> None:
    """Validate `config` against the schema (filling defaults in place), then `Plan.check()`.

    Raises:
        ConfigError: the first problem, one line naming the key.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, schema=str(SCHEMA_FILE), set_default=True)
    except WorkflowError as exc:  # jsonschema's report is pages long; its first error suffices
        err = exc.__context__
        if not hasattr(err, "absolute_path"):
            raise
        raise schema_error(err) from None
    if check:
        from mwork.plan import Plan

        Plan(config).check()


def load_config(path: str | Path) -> dict[str, Any]:
    """Read, validate (defaults filled) and check a config file; ConfigError on any problem."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror})", "check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc})", "fix the file") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} holds no mapping of config sections", "see docs/your-model.md")
    check_config_files([path])  # a repeated key: YAML keeps the last one silently
    validate_config(config)
    return config
