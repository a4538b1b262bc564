"""Evaluation result files trusted no further than their content allows (issue 26, class 2).

A result whose per-item scores and item ids differ in number (a truncated or edited file) or
that lists one item twice would pair items wrongly in the paired bootstrap; a NaN or missing
score would average into a table. Each is one MworkError naming the file and task; the file is
left as it was.
"""

import json
import math
from pathlib import Path

import pytest
from test_scores import _run_json

from mwork.errors import MworkError
from mwork.scores import tidy_scores


@pytest.fixture
def result(tmp_path) -> Path:
    path = tmp_path / "eval" / "none" / "de.json"
    _run_json(path, "none", "none", "de", [1, 0, 1, 1])
    assert len(tidy_scores([path])) == 4  # control: the file as written is accepted
    return path


def _edit(path: Path, change) -> str:
    data = json.loads(path.read_text())
    items = data["runs"][0]["tasks"]["mwork_xquad_de"]["items"]
    change(items)
    path.write_text(json.dumps(data))
    return path.read_text()


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (
            lambda it: it["scores"]["contains,none"].pop(),
            "has 4 items but 3 'contains,none' scores",
        ),
        (lambda it: it["scores"]["contains,none"].append(1), "has 4 items but 5"),
        (
            lambda it: (it.update(id=[None] * 4), it["doc_id"].__setitem__(1, 0)),
            "lists an item twice",
        ),
        (
            lambda it: it["scores"]["contains,none"].__setitem__(2, math.nan),
            "has no contains,none score",
        ),
        (
            lambda it: it["scores"]["contains,none"].__setitem__(2, None),
            "has no contains,none score",
        ),
    ],
    ids=["score-missing", "score-extra", "doc-id-twice", "nan-score", "null-score"],
)
def test_edited_result_is_refused(result, change, expect):
    text = _edit(result, change)
    with pytest.raises(MworkError, match=expect.replace("(", r"\(")):
        tidy_scores([result])
    assert result.read_text() == text
