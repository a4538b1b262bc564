"""What an evaluation job stores of output-language fidelity (mwork.fidelity): the identifier is
built only when used, describes itself for the run JSON, and `same_identifier` decides whether
`collect_scores` may read the stored languages."""

from __future__ import annotations

import pytest

from mwork.errors import MworkError
from mwork.fidelity import OutputLanguage, record_output_languages, same_identifier
from mwork.lid import available_backends

BACKEND = "langid" if "langid" in available_backends() else "lingua"
DE = "Anna wohnt in Berlin und arbeitet als Lehrerin an der Schule."


def test_identifier_is_built_on_first_use_and_refuses_bad_settings() -> None:
    lid = OutputLanguage(["en", "de", "en"], BACKEND)
    assert "ident" not in vars(lid)  # constructing costs nothing
    assert lid("42") == "" and "ident" not in vars(lid)  # undetermined before the backend
    assert lid(DE) == "de" and "ident" in vars(lid)
    assert lid.describe() == {"backend": BACKEND, "candidates": ["en", "de"], "min_letters": 2}
    with pytest.raises(MworkError, match="unknown LID backend 'nope'"):
        OutputLanguage(["en", "de"], "nope")
    with pytest.raises(MworkError, match="no candidate languages"):
        OutputLanguage([], BACKEND)


def test_same_identifier() -> None:
    lid = OutputLanguage(["en", "de", "zh"], BACKEND)
    record = lid.describe()
    assert same_identifier(record, lid)
    assert same_identifier(record | {"candidates": ["zh", "en", "de"]}, lid)  # order: same answers
    other = "lingua" if BACKEND != "lingua" else "langid"
    for changed in (
        {"backend": other},
        {"candidates": ["en", "de"]},
        {"candidates": ["en", "de", "zh", "ru"]},
        {"min_letters": 3},
    ):
        assert not same_identifier(record | changed, lid), changed
    assert not same_identifier(None, lid) and not same_identifier("lingua", lid)


def test_record_output_languages_only_on_generation_tasks() -> None:
    lid = OutputLanguage(["en", "de", "zh"], BACKEND)
    tasks = {
        "mwork_xquad_de": {"items": {"prediction": [DE, "", "42", "柏林"], "scores": {}}},
        "mwork_xcsqa_de": {"items": {"id": ["a"], "scores": {}}},
    }
    assert record_output_languages(tasks, lid)
    assert tasks["mwork_xquad_de"]["items"]["output_lang"] == ["de", "", "", "zh"]
    assert "output_lang" not in tasks["mwork_xcsqa_de"]["items"]
    assert not record_output_languages({"x": tasks["mwork_xcsqa_de"]}, lid)
