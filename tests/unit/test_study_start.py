"""Starting a study of your own (issue 25): `mwork init`, `mwork plan` (pre-flight warnings),
`mwork conditions`, and the one-line config errors with "did you mean" - every message a user
sees, checked as text. No model is loaded, no Snakemake job runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mwork.cli import main
from mwork.configcheck import ConfigError
from mwork.plan import Plan
from mwork.preflight import preflight
from mwork.studyconfig import validate_config

ROOT = Path(__file__).resolve().parents[2]
LONG = "word " * 60  # 300 characters: passes min_chars 200


@pytest.fixture()
def study(tmp_path: Path) -> dict[str, Any]:
    """A two-language study with a local model config.json, corpora and xcsqa rows (no defaults
    filled): 3 long + 5 short English documents, 150 long French ones."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"num_hidden_layers": 5}))
    docs = {
        "en": [LONG + str(i) for i in range(3)] + ["short"] * 5,
        "fr": [LONG + str(i) for i in range(150)],
    }
    for lang, texts in docs.items():
        (tmp_path / f"{lang}.jsonl").write_text(
            "".join(json.dumps({"text": t}) + "\n" for t in texts)
        )
        rows = tmp_path / "rows"
        rows.mkdir(exist_ok=True)
        (rows / f"{lang}.jsonl").write_text('{"id": "1", "answerKey": "A"}\n')
    return {
        "models": {"m": {"path": str(model), "n_layers": 5, "n1": 1, "n2": 1}},
        "languages": {"detect": ["en", "fr"]},
        "corpus": {"sources": {l: {"path": str(tmp_path / f"{l}.jsonl")} for l in docs}},
        "detection": {"n_docs": 100, "shared_languages": ["en", "fr"]},
        "evaluation": {
            "local": {"xcsqa": str(tmp_path / "rows" / "{lang}.jsonl")},
            "tasks": {"xcsqa": {"langs": ["en", "fr"], "conditions": ["D_U"]}},
            "sweep": {"enabled": False},
        },
    }


def error_of(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(copy.deepcopy(config))
    return str(info.value)


def test_the_study_is_valid_and_plans_its_runs(study: dict[str, Any]) -> None:
    validate_config(study)
    lines, warnings = preflight(Plan(study))
    text = "\n".join(lines)
    assert "xcsqa: baseline en fr" in text and "D_U: fr" in text
    assert "fr: >= 100 documents" in text


def test_default_shared_languages_with_two_languages_is_one_line_naming_the_key(study) -> None:
    del study["detection"]["shared_languages"]  # the paper's default: en es fr zh ru
    msg = error_of(study)
    assert msg.startswith("detection.shared_languages lists es, zh, ru, which")
    assert "set detection.shared_languages: [en, fr]" in msg
    study["detection"]["variants"] = ["minus-en"]  # without minus-shared the key is unused
    validate_config(study)


def test_short_pool_is_a_warning_with_the_counts(study: dict[str, Any]) -> None:
    validate_config(study)
    _, warnings = preflight(Plan(study))
    (warn,) = [w for w in warnings if w.startswith("corpus.sources.en")]
    assert "only 3 documents of" in warn and "detection.n_docs is 100" in warn
    assert "detection of en runs on 3 documents" in warn


def test_english_only_task_drops_its_conditions_with_a_warning(study: dict[str, Any]) -> None:
    study["evaluation"]["tasks"]["xquad"] = {"langs": ["en"], "conditions": ["D_U", "R_U"]}
    study["evaluation"]["local"]["xquad"] = study["evaluation"]["local"]["xcsqa"]
    validate_config(study)
    lines, warnings = preflight(Plan(study))
    assert "    D_U: DROPPED" in lines
    assert (
        "evaluation.tasks.xquad: langs lists only English, so its conditions D_U, R_U plan no "
        "masked run (add a language besides en)"
    ) in warnings


def test_sweep_without_baseline_warns(study: dict[str, Any]) -> None:
    study["evaluation"]["sweep"] = {"enabled": True, "task": "xquad", "langs": ["fr"], "n1": [1]}
    study["evaluation"]["sweep"]["n2"] = [1]
    validate_config(study)
    _, warnings = preflight(Plan(study))
    assert any(w.startswith("evaluation.sweep: xquad has no baseline in en, fr") for w in warnings)


def test_sweep_of_the_default_language_is_an_error(study: dict[str, Any]) -> None:
    study["evaluation"]["sweep"] = {"enabled": True, "n1": [1], "n2": [1]}  # on xquad, zh
    assert error_of(study).startswith("evaluation.sweep.langs lists zh, which is not detected")


def test_task_without_data_for_a_language_names_the_key(study: dict[str, Any], tmp_path) -> None:
    (tmp_path / "rows" / "fr.jsonl").unlink()
    msg = error_of(study)
    assert msg.startswith(
        f"evaluation.local.xcsqa: no file {tmp_path}/rows/fr.jsonl for language fr"
    )
    study["evaluation"]["local"] = {}
    study["evaluation"]["tasks"] = {"xquad": {"langs": ["en", "fr"]}}  # the hub's XQuAD: no fr
    assert error_of(study).startswith(
        "evaluation.tasks.xquad.langs: xquad has no fr data on the hub"
    )


def test_layer_split_beyond_the_depth_names_the_model(study: dict[str, Any]) -> None:
    study["models"]["m"]["n1"] = 5
    assert error_of(study).startswith("models.m: n1 + n2 = 5 + 1 exceeds its 5 layers")


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (
            lambda c: c["detection"].update(n_doc=3),
            "unknown key detection.n_doc; did you mean 'n_docs'?",
        ),
        (lambda c: c.update(detectoin={}), "unknown key detectoin; did you mean 'detection'?"),
        (lambda c: c["detection"].update(importance="papr"), "did you mean 'paper'?"),
        (lambda c: c["languages"].update(detect=["en", "fre"]), "did you mean 'fr'?"),
        (
            lambda c: c["evaluation"]["tasks"]["xcsqa"].update(conditions=["D_S(A)"]),
            "evaluation.tasks.xcsqa.conditions.0: 'D_S(A)' is not a run label; did you mean 'D_S_attn'?",
        ),
        (
            lambda c: c["evaluation"]["tasks"]["xcsqa"].update(conditions=["Dbar_S_atn.minus-en"]),
            "did you mean 'Dbar_S_attn.minus-en'?",
        ),
    ],
)
def test_misspellings_get_a_suggestion(study: dict[str, Any], edit, expect: str) -> None:
    edit(study)
    assert expect in error_of(study)


def test_plan_command_prints_runs_and_warnings(study, tmp_path, capsys) -> None:
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(study))
    assert main(["plan", "--configfile", str(cfg), "-d", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"config {cfg}: valid" in out
    assert "warning: corpus.sources.en: only 3 documents" in out and "1 warning(s)" in out


def test_plan_command_config_error_is_one_line_exit_2(study, tmp_path, capsys) -> None:
    del study["detection"]["shared_languages"]
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(study))
    assert main(["plan", "--configfile", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config: detection.shared_languages lists")


def test_conditions_lists_every_condition_with_paper_notation(capsys) -> None:
    from mwork.runlabel import CONDITIONS

    assert main(["conditions"]) == 0
    out = capsys.readouterr().out
    for name, cond in CONDITIONS.items():
        (row,) = [l for l in out.splitlines() if l.split()[:1] == [name]]
        assert cond.paper in row
    assert "Dbar_S_attn  D̄_S(A)      D  .       D      D  LS neurons in U + S FFN + G" in out
    assert "random neurons, matched in count to the LS set in U" in out


def test_unknown_condition_error_suggests(capsys) -> None:
    from mwork.errors import MworkError
    from mwork.runlabel import canonical_name

    with pytest.raises(
        MworkError, match="unknown deactivation condition 'D_UU'; did you mean 'D_U'?"
    ):
        canonical_name("D_UU")


def test_init_derives_every_language_key(study, tmp_path, capsys) -> None:
    corpus = study["corpus"]["sources"]["en"]["path"].replace("/en.jsonl", "/{lang}.jsonl")
    rows = study["evaluation"]["local"]["xcsqa"]
    args = ["init", str(tmp_path / "s"), "--model", str(tmp_path / "model"), "--languages", "fr"]
    args += ["--corpus", corpus, "--task", f"xcsqa={rows}", "--task", f"xquad={rows}"]
    (tmp_path / "rows" / "fr.jsonl").rename(tmp_path / "rows" / "fr.keep")
    assert main([*args, "--task", f"mgsm={rows}"]) == 2  # no task with a language besides en
    assert "error: no task has data in a language besides English" in capsys.readouterr().err
    (tmp_path / "rows" / "fr.keep").rename(tmp_path / "rows" / "fr.jsonl")
    assert main(args) == 0
    out = capsys.readouterr().out
    config = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    assert config["languages"]["detect"] == ["en", "fr"]  # English added, first
    assert config["detection"]["shared_languages"] == ["en", "fr"]
    assert config["models"]["model"] == {
        "path": str(tmp_path / "model"), "n_layers": 5, "n1": 1, "n2": 1, "dtype": "bfloat16"
    }  # fmt: skip
    assert config["evaluation"]["tasks"]["xcsqa"]["langs"] == ["en", "fr"]
    assert config["evaluation"]["sweep"]["langs"] == ["fr"]
    assert "note: xquad: no data" not in out  # rows exist for both languages
    validate_config(config)
    assert main(args) == 2  # an existing config is never overwritten without --force
    assert "config.yaml exists; pass --force" in capsys.readouterr().err


def test_init_drops_languages_without_data_and_says_so(study, tmp_path, capsys) -> None:
    corpus = study["corpus"]["sources"]["en"]["path"].replace("/en.jsonl", "/{lang}.jsonl")
    args = ["init", str(tmp_path / "s"), "--model", str(tmp_path / "model"), "--languages", "en"]
    args += ["fr", "--corpus", corpus, "--task", "xquad", "--task", "mgsm"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note: xquad: no data for fr, dropped from its langs" in out
    assert "note: xquad: English only, so no masked run; left out" in out
    config = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    assert list(config["evaluation"]["tasks"]) == ["mgsm"]


def test_init_needs_the_depth_of_a_hub_model(tmp_path, capsys) -> None:
    args = ["init", str(tmp_path / "s"), "--model", "org/model-7b", "--languages", "en", "de"]
    assert main(args) == 2
    assert "pass --n-layers N" in capsys.readouterr().err
    assert main([*args, "--n-layers", "32"]) == 0
    config = yaml.safe_load((tmp_path / "s" / "config.yaml").read_text())
    assert config["models"]["model-7b"]["n1"] == 6 and config["models"]["model-7b"]["n2"] == 3
    assert config["corpus"]["sources"]["de"] == {
        "dataset": "HuggingFaceFW/fineweb-2",
        "config": "deu_Latn",
    }


def test_finetune_with_the_papers_languages_names_the_keys(study: dict[str, Any]) -> None:
    study["finetune"] = {"models": ["m"]}  # default languages: de fr zh es ru / vi th ar sw
    msg = error_of(study)
    assert msg.startswith("finetune.high_resource / finetune.low_resource list de, zh, es, ru")
    assert "high_resource: [fr], low_resource: []" in msg


def test_heldout_text_missing_for_a_language_names_the_key(study, tmp_path) -> None:
    (tmp_path / "heldout_en.jsonl").write_text('{"text": "x"}\n')
    study["perplexity"] = {"heldout": str(tmp_path / "heldout_{lang}.jsonl")}
    msg = error_of(study)
    assert msg.startswith(
        f"perplexity.heldout: no file {tmp_path}/heldout_fr.jsonl for language fr"
    )
