"""The mwork lm-eval tasks: YAML generation, and real lm-eval runs on a tiny model, offline.

Fixture data are written at runtime as JSONL in the real HF schemas of MGSM, XQuAD, X-CSQA
(INK-USC/xcsr) and XLSum; the hub is never contacted (HF_HUB_OFFLINE=1, local caches).
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

import pytest
import torch
import yaml

from mwork.errors import MworkError
from mwork.harness import evaluate_tasks
from mwork.lmeval_tasks import (
    BENCHMARKS,
    TEMPLATE_DIR,
    TaskSpec,
    load_prompts,
    render_task_yaml,
    write_task_dir,
)
from mwork.lmeval_tasks.hooks import first_line
from mwork.lmeval_tasks.metrics import mgsm_correct, qa_contains, qa_f1, rouge_scores
from mwork.tiny import tiny_model, train_tokenizer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LANGS = ("en", "de", "fr", "zh", "es", "ru", "vi", "th", "ar", "sw")
CHOICES = {"label": list("ABCDE"), "text": ["飞", "游泳", "跑", "吃", "睡"]}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Offline env, fixture JSONL files, a tiny Llama and its tokenizer."""
    root = tmp_path_factory.mktemp("lmeval")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(var, "1")
        mp.setenv("HF_HOME", str(root / "hf_home"))
        mp.setenv("HF_DATASETS_CACHE", str(root / "hf_datasets"))
        files = {
            "mgsm": _write_jsonl(
                root / "mgsm.jsonl",
                [
                    {
                        "question": f"Janet has {i} ducks and buys 2 more. How many ducks?",
                        "answer": None,
                        "answer_number": i + 2,
                        "equation_solution": None,
                    }
                    for i in range(3)
                ],
            ),
            "xquad": _write_jsonl(
                root / "xquad.jsonl",
                [
                    {
                        "id": f"q{i}",
                        "context": "北京是中国的首都。",
                        "question": "中国的首都是哪里？",
                        "answers": {"text": ["北京"], "answer_start": [0]},
                    }
                    for i in range(3)
                ],
            ),
            "xcsqa": _write_jsonl(
                root / "xcsqa.jsonl",
                [
                    {
                        "id": f"c{i}",
                        "lang": "zh",
                        "question": {"stem": "鸟会做什么？", "choices": CHOICES},
                        "answerKey": "A",
                    }
                    for i in range(3)
                ],
            ),
            "xlsum": _write_jsonl(
                root / "xlsum.jsonl",
                [
                    {
                        "id": f"s{i}",
                        "url": "https://example.org",
                        "title": "Москва",
                        "summary": "Москва столица России.",
                        "text": "Москва является столицей России.",
                    }
                    for i in range(4)
                ],
            ),
        }
        tok = train_tokenizer(
            [
                "Janet has ducks. How many? Question Answer Москва столица",
                "北京是中国的首都 鸟会做什么",
            ]
            * 4,
            vocab_size=300,
        )
        model = tiny_model("llama", vocab_size=len(tok))
        yield {"root": root, "files": files, "tok": tok, "model": model}


def _spec(env: dict[str, Any], task: str, lang: str, **kw: Any) -> dict[str, Any]:
    return {"task": task, "lang": lang, "source": "local", "path": env["files"][task], **kw}


def test_prompts_cover_languages_and_render() -> None:
    prompts = load_prompts()
    for task in ("mgsm", "xquad", "xcsqa", "xlsum"):
        assert set(LANGS) <= set(prompts[task]["paper"]), task
    for variant in ("native_cot", "direct"):
        assert set(LANGS) <= set(prompts["mgsm"][variant])
    assert all("strict_regex" in e for e in prompts["mgsm"]["native_cot"].values())
    for task, variants in prompts.items():  # every entry renders (no stray braces or fields)
        for variant, entries in variants.items():
            for lang in entries:
                spec = TaskSpec.from_config(
                    {"task": task, "lang": lang, "prompt_variant": variant, "hf_name": "x"}
                )
                assert (
                    "{{"
                    in yaml.safe_load(render_task_yaml(spec).replace("!function", ""))[
                        "doc_to_text"
                    ]
                )


def test_hf_specs_point_at_the_real_datasets() -> None:
    def cfg(**kw: Any) -> dict[str, Any]:
        text = render_task_yaml(TaskSpec.from_config(kw)).replace("!function", "")
        return yaml.safe_load(text)

    xlsum = cfg(task="xlsum", lang="zh", hf_revision="main")  # default: the parquet export
    assert xlsum["dataset_path"] == "csebuetnlp/xlsum"
    assert xlsum["dataset_name"] == "chinese_simplified"
    assert xlsum["process_docs"].endswith("sample_docs_n500_seed0")  # 500 seeded items
    assert xlsum["tag"] == "mwork_xlsum" and xlsum["task"] == "mwork_xlsum_zh"
    assert BENCHMARKS["xcsqa"].hf_configs["ja"] == "X-CSQA-jap"
    assert cfg(task="xcsqa", lang="zh", hf_revision="main")["dataset_path"] == "INK-USC/xcsr"
    assert cfg(task="xcsqa", lang="zh")["dataset_kwargs"]["data_files"]["validation"].startswith(
        "hf://datasets/INK-USC/xcsr@refs%2Fconvert%2Fparquet/X-CSQA-zh/"
    )
    assert cfg(task="xquad", lang="de")["dataset_name"] == "xquad.de"
    mgsm = cfg(task="mgsm", lang="zh", prompt_variant="native_cot")
    assert mgsm["task"] == "mwork_mgsm_native_cot_zh" and "process_docs" not in mgsm
    assert mgsm["filter_list"][1]["filter"][0]["regex_pattern"] == "答案是 (\\-?[0-9\\.\\,]+)。"
    assert mgsm["generation_kwargs"]["until"] == ["问题：", "</s>", "<|im_end|>"]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"task": "xlsum", "lang": "de"}, "source: local"),  # XLSum has no German
        ({"task": "mgsm", "lang": "en", "prompt_variant": "fancy"}, "no prompt variant"),
        ({"task": "mgsm", "lang": "vi", "prompt_variant": "code"}, "no mgsm/code prompt"),
        ({"task": "squad", "lang": "en"}, "unknown task"),
        ({"task": "mgsm", "lang": "en", "source": "local"}, "needs a 'path'"),
        ({"task": "mgsm", "lang": "en", "limt": 3}, "unknown task spec key"),
        ({"task": "mgsm", "lang": "en", "n_samples": 0}, "positive integer"),
    ],
)
def test_bad_specs_raise_mwork_error(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(MworkError, match=needle):
        TaskSpec.from_config(spec)


def test_task_manager_indexes_generated_tasks_only(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    specs = [{"task": t, "lang": "en"} for t in ("mgsm", "xquad", "xcsqa", "xlsum")]
    names = write_task_dir(
        [*specs, {"task": "mgsm", "lang": "en", "prompt_variant": "direct"}], tmp_path
    )
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    assert set(names) <= set(manager.all_tasks)
    assert {"mwork_mgsm", "mwork_xquad"} <= set(manager.all_tags)
    # the templates alone define no task
    assert TaskManager(include_path=str(TEMPLATE_DIR), include_defaults=False).all_tasks == []
    with pytest.raises(MworkError, match="share the name"):
        write_task_dir(specs[:1] * 2, tmp_path / "dup")


@pytest.mark.slow  # lm-eval runs
def test_all_four_tasks_run_through_lm_eval(env: dict[str, Any]) -> None:
    specs = [
        _spec(env, "mgsm", "en"),
        _spec(env, "mgsm", "zh", prompt_variant="native_cot"),
        _spec(env, "mgsm", "de", prompt_variant="direct"),
        _spec(env, "xquad", "zh"),
        _spec(env, "xcsqa", "zh"),
        _spec(env, "xcsqa", "zh", prompt_variant="letters"),
        _spec(env, "xlsum", "ru", n_samples=3, seed=5),
    ]
    out = env["root"] / "out" / "eval.json"
    res = evaluate_tasks(
        env["model"],
        env["tok"],
        specs,
        out,
        batch_size=2,
        limit=2,
        max_gen_toks=6,
        hf_cache_dir=env["root"] / "hf_cache",
    )
    assert json.loads(out.read_text("utf-8")) == res
    tasks = res["tasks"]
    expected = {
        "mwork_mgsm_en": {"acc,none"},
        "mwork_mgsm_native_cot_zh": {
            "acc,none",
            "exact_match,strict-match",
            "exact_match,flexible-extract",
        },
        "mwork_mgsm_direct_de": {
            "acc,none",
            "exact_match,remove_whitespace",
            "exact_match,flexible-extract",
        },
        "mwork_xquad_zh": {"exact_match,none", "f1,none", "contains,none"},
        "mwork_xcsqa_zh": {"acc,none", "acc_norm,none"},
        "mwork_xcsqa_letters_zh": {"acc,none", "acc_norm,none"},
        "mwork_xlsum_ru": {"rouge1,none", "rouge2,none", "rougeL,none"},
    }
    assert set(tasks) == set(expected)
    for name, keys in expected.items():
        entry = tasks[name]
        assert keys <= set(entry["metrics"]), name
        assert entry["n"] == 2 and entry["items"]["doc_id"] == [0, 1]
        assert entry["primary_metric"] in entry["metrics"]
        for key in keys:  # aggregate = mean of the per-item scores
            values = entry["items"]["scores"][key]
            assert all(0.0 <= v <= 1.0 for v in values), (name, key)
            assert entry["metrics"][key] == pytest.approx(sum(values) / len(values))
    # per-item scores are the metric functions applied to the generations
    xq = tasks["mwork_xquad_zh"]["items"]
    for pred, f1, contains in zip(
        xq["prediction"], xq["scores"]["f1,none"], xq["scores"]["contains,none"], strict=True
    ):
        assert f1 == pytest.approx(qa_f1(first_line(pred), ["北京"], "zh"))
        assert contains == qa_contains(first_line(pred), ["北京"], "zh")
    mg = tasks["mwork_mgsm_en"]["items"]
    golds = (2, 3)  # answer_number of the first two items
    assert mg["scores"]["acc,none"] == [
        mgsm_correct(p, n) for p, n in zip(mg["prediction"], golds, strict=True)
    ]
    xl = tasks["mwork_xlsum_ru"]["items"]
    kept = sorted(random.Random(5).sample(range(4), 3))[:2]  # seeded sample, then limit=2
    assert xl["id"] == [f"s{i}" for i in kept] == ["s1", "s2"]
    assert xl["scores"]["rougeL,none"] == [
        pytest.approx(rouge_scores(first_line(p), "Москва столица России.")["rougeL"])
        for p in xl["prediction"]
    ]
    assert tasks["mwork_xcsqa_zh"]["items"]["id"] == ["c0", "c1"]
    assert "prediction" not in tasks["mwork_xcsqa_zh"]["items"]


class _CountForwards:
    """An intervention: a forward pre-hook on the model, active only inside the context."""

    def __init__(self, model: torch.nn.Module, fail: bool = False) -> None:
        self.model, self.fail, self.calls, self.handle = model, fail, 0, None

    def _hook(self, module: torch.nn.Module, args: Any) -> None:
        self.calls += 1
        if self.fail:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def __enter__(self) -> _CountForwards:
        self.handle = self.model.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


@pytest.mark.slow  # an lm-eval run
def test_intervention_is_active_during_evaluation(env: dict[str, Any]) -> None:
    counter = _CountForwards(env["model"])
    res = evaluate_tasks(
        env["model"],
        env["tok"],
        [_spec(env, "xcsqa", "zh")],
        None,
        batch_size=4,
        limit=2,
        intervention=lambda: counter,
        hf_cache_dir=env["root"] / "hf_cache",
    )
    assert counter.calls > 0 and not env["model"]._forward_pre_hooks
    assert res["settings"]["intervention"] is True
    assert res["tasks"]["mwork_xcsqa_zh"]["n"] == 2


def test_cuda_oom_becomes_one_line_error(env: dict[str, Any]) -> None:
    counter = _CountForwards(env["model"], fail=True)
    with pytest.raises(MworkError, match=r"batch_size=8.*smaller batch size \(e\.g\. 4\)"):
        evaluate_tasks(
            env["model"],
            env["tok"],
            [_spec(env, "xcsqa", "zh")],
            None,
            batch_size=8,
            limit=1,
            intervention=lambda: counter,
            hf_cache_dir=env["root"] / "hf_cache",
        )
    assert not env["model"]._forward_pre_hooks
