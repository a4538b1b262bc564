"""`X.from_mapping` of every settings dataclass (the `FromMapping` mixin of mwork.settings)."""

import dataclasses

import pytest

from mwork.errors import MworkError
from mwork.settings import (
    DetectionSettings,
    EvaluationSettings,
    FromMapping,
    LapeSettings,
    LensSettings,
    ModelSpec,
    PerplexitySettings,
    TableSettings,
)

SECTIONS = {
    ModelSpec: "model",
    DetectionSettings: "detection",
    LapeSettings: "lape",
    EvaluationSettings: "evaluation",
    PerplexitySettings: "perplexity",
    LensSettings: "lens",
    TableSettings: "table",
}
REQUIRED = {ModelSpec: {"ref": "some/model"}}


@pytest.mark.parametrize("cls", list(SECTIONS), ids=lambda c: c.__name__)
def test_unknown_keys_are_named_with_the_section(cls):
    fields = sorted(f.name for f in dataclasses.fields(cls))
    assert "SECTION" not in fields and issubclass(cls, FromMapping)
    with pytest.raises(MworkError) as err:
        cls.from_mapping({**REQUIRED.get(cls, {}), "zz_typo": 1, "aa_typo": 2})
    assert str(err.value) == (
        f"unknown {SECTIONS[cls]} setting(s) ['aa_typo', 'zz_typo']; use only {fields}"
    )


@pytest.mark.parametrize("cls", list(SECTIONS), ids=lambda c: c.__name__)
def test_known_keys_build_the_dataclass(cls):
    base = REQUIRED.get(cls, {})
    assert cls.from_mapping(base) == cls(**base)
    if not base:
        assert cls.from_mapping(None) == cls()
    first = next(f for f in dataclasses.fields(cls) if f.name not in base)
    value = getattr(cls(**base), first.name)
    other = (value or 0) + 3 if isinstance(value, int | float | None) else value
    built = cls.from_mapping({**base, first.name: other})
    assert type(built) is cls and getattr(built, first.name) == other
