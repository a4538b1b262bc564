"""Run labels (mwork.runlabel): parsing, canonical text, errors, the one fine-tuned constructor."""

from __future__ import annotations

import pytest

from mwork.errors import MworkError
from mwork.runlabel import RunLabel


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("none", RunLabel("none")),
        ("D_U", RunLabel("D_U")),
        ("R_all-s3", RunLabel("R_all", seed=3)),
        ("R_U", RunLabel("R_U", seed=0)),
        ("D_U-n1_6", RunLabel("D_U", n1=6)),
        ("Dbar_S_attn.minus-en", RunLabel("Dbar_S_attn", variant="minus-en")),
        ("R_S_attn.minus-shared-s1", RunLabel("R_S_attn", variant="minus-shared", seed=1)),
        ("D^R_S(A)", RunLabel("R_S_attn", seed=0)),
    ],
)
def test_parse_run_label(label: str, expected: RunLabel) -> None:
    assert RunLabel.parse(label) == expected


def test_run_label_round_trip_and_errors() -> None:
    run = RunLabel.parse("R_G.minus-en-s2")
    assert run.text == "R_G.minus-en-s2" and run.table_condition == "R_G.minus-en"
    for bad in ("D_U-s0", "none.minus-en", "D_X", "none-s1"):
        with pytest.raises(MworkError):
            RunLabel.parse(bad)


def test_finetuned_constructor_and_base_condition() -> None:
    ft = RunLabel.finetuned("ls", 400)
    assert ft == RunLabel.parse("ft_ls-400") and ft.text == "ft_ls-400" and ft.is_finetuned
    assert ft.base_condition == "ft_ls-400"
    assert RunLabel.parse("D_U-n1_6.minus-en").base_condition == "D_U"
    assert RunLabel.parse("R_all-s2").base_condition == "R_all"
    assert RunLabel.parse("none").base_condition == "none"
    for kind, n in (("lora", 400), ("ls", 0)):
        with pytest.raises(MworkError):
            RunLabel.finetuned(kind, n)
