"""Evaluation jobs on tiny models with local task data (offline): masking, the baseline, random
sets, fine-tuned deltas applied and put back, grouped jobs equal to per-language jobs."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from mwork.detect import detect_to_file
from mwork.errors import MworkError
from mwork.evaluate import _delta_applied, evaluate_job
from mwork.finetune.delta import load_delta
from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.modeling import load_spec
from mwork.runlabel import RunLabel
from mwork.scores import tidy_scores
from mwork.settings import DetectionSettings, EvaluationSettings, ModelSpec
from mwork.tiny import save_tiny_model_dir


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two tiny Llamas (seeds 0, 1), zh neuron files of each, XQuAD en/zh JSONL."""
    root = tmp_path_factory.mktemp("deact")
    rng = random.Random(0)
    chars = "我们今天去公园散步天气很好北京是中国的首都"
    zh = ["".join(rng.choice(chars) for _ in range(24)) for _ in range(6)]
    en = ["the capital of france is paris and the cat sat on the mat"] * 2
    texts = zh + en
    corpus = _jsonl(root / "zh.jsonl", [{"text": t} for t in zh])
    de_corpus = _jsonl(
        root / "de.jsonl", [{"text": f"{t} {t[::-1]} the mat"} for t in en + en + en]
    )
    settings = DetectionSettings(top_k_ffn=24, top_k_attn=16, max_tokens=32, n_docs=4, batch_size=4)
    out: dict[str, Any] = {"root": root}
    for seed in (0, 1):
        model = save_tiny_model_dir(
            root / f"model{seed}", "llama", texts, seed=seed, vocab_size=150
        )
        spec = ModelSpec(str(model), f"tiny{seed}", dtype="float32")
        detect_to_file(
            spec, corpus, "zh", str(root / f"zh{seed}.safetensors"), settings, device="cpu"
        )
        detect_to_file(  # a second language's set (another corpus) for grouped jobs
            spec, de_corpus, "de", str(root / f"de{seed}.safetensors"), settings, device="cpu"
        )
        out[f"model{seed}"] = str(model)
    qa = {
        "en": ("Paris is the capital of France.", "What is the capital of France?", "Paris"),
        "de": ("Paris ist die Hauptstadt Frankreichs.", "Was ist die Hauptstadt?", "Paris"),
        "zh": ("北京是中国的首都。", "中国的首都是哪里？", "北京"),
    }
    out["specs"] = {
        lang: {
            "task": "xquad",
            "lang": lang,
            "source": "local",
            "path": _jsonl(
                root / f"xquad_{lang}.jsonl",
                [
                    {
                        "id": f"{lang}{i}",
                        "context": c,
                        "question": q,
                        "answers": {"text": [a], "answer_start": [0]},
                    }
                    for i in range(3)
                ],
            ),
        }
        for lang, (c, q, a) in qa.items()
    }
    return out


SETTINGS = EvaluationSettings(limit=2, max_gen_toks=4)


def task(tiny_run: dict[str, Any], lang: str, eval_langs: tuple[str, ...] | None = None) -> dict:
    """A TaskRun mapping: XQuAD for `lang`, scored in English and `lang` unless told otherwise."""
    langs = eval_langs or ("en", lang)
    return {"task": "xquad", "lang": lang, "specs": [tiny_run["specs"][l] for l in langs]}


def spec_of(tiny_run: dict[str, Any], seed: int = 0) -> ModelSpec:
    return ModelSpec(tiny_run[f"model{seed}"], "tiny", dtype="float32", n_layers=2, n1=1, n2=0)


def items(data: dict[str, Any]) -> list[tuple[str, str, str, list[float]]]:
    """(mask language, eval language, metric, per-item scores) of every run entry."""
    out = []
    for run in data["runs"]:
        for t in run["tasks"].values():
            metric = t["primary_metric"]
            out.append((run["mask_lang"], t["spec"]["lang"], metric, t["items"]["scores"][metric]))
    return out


def test_masked_job_writes_one_json_with_an_entry_per_language(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    out = root / "D_U" / "zh.json"
    data = evaluate_job(
        spec_of(tiny_run),
        "D_U",
        "zh",
        {"zh": root / "zh0.safetensors"},
        [task(tiny_run, "zh")],
        out,
        SETTINGS,
        device="cpu",
    )
    assert json.loads(out.read_text(encoding="utf-8")) == data
    assert (data["label"], data["lang"], len(data["runs"])) == ("D_U", "zh", 2)
    for lang, run in zip(("en", "zh"), data["runs"], strict=True):
        assert {
            "model",
            "model_fingerprint",
            "condition",
            "base_condition",
            "label",
            "variant",
            "seed",
            "mask_lang",
            "eval_langs",
            "n1",
            "n2",
            "neurons",
            "count_rule",
            "tasks",
            "settings",
        } <= set(run)
        assert run["condition"] == "D_U" and run["mask_lang"] == "zh" and run["seed"] is None
        assert run["eval_langs"] == [lang] and list(run["tasks"]) == [f"mwork_xquad_{lang}"]
        assert run["tasks"][f"mwork_xquad_{lang}"]["n"] == 2
        neurons = run["neurons"]
        assert set(neurons["by_region"]) == {"U", "S", "G"} and neurons["total"] > 0
        assert neurons["total"] == sum(neurons["by_region"]["U"].values())  # D_U: layer 0 only
    assert len(tidy_scores([out])) == 4


def test_baseline_and_random_jobs(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    base = evaluate_job(
        spec_of(tiny_run),
        "none",
        "en",
        {},
        [task(tiny_run, "en", ("en",))],
        root / "none.json",
        SETTINGS,
        device="cpu",
    )
    assert [r["mask_lang"] for r in base["runs"]] == ["none"]
    assert base["runs"][0]["condition"] == "none" and "neurons" not in base["runs"][0]
    rand = evaluate_job(
        spec_of(tiny_run),
        "R_all-s1",
        "zh",
        {"zh": root / "zh0.safetensors"},
        [task(tiny_run, "zh", ("zh",))],
        root / "rand.json",
        SETTINGS,
        device="cpu",
    )
    assert rand["runs"][0]["seed"] == 1 and rand["runs"][0]["condition"] == "R_all"


def test_grouped_job_equals_one_job_per_language(tiny_run: dict[str, Any]) -> None:
    """Masks are put back between the languages of a grouped job: every score and neuron count
    equals the per-language jobs' (the workflow's evaluation.group_languages)."""
    root = tiny_run["root"]
    files = {l: root / f"{l}0.safetensors" for l in ("zh", "de")}
    tasks = [task(tiny_run, l) for l in files]
    grouped = evaluate_job(
        spec_of(tiny_run), "D_all", "all", files, tasks, root / "all.json", SETTINGS, device="cpu"
    )
    single = []
    for lang, t in zip(files, tasks, strict=True):
        out = root / f"D_all-{lang}.json"
        single += evaluate_job(
            spec_of(tiny_run), "D_all", lang, {lang: files[lang]}, [t], out, SETTINGS, device="cpu"
        )["runs"]
    assert grouped["lang"] == "all"
    assert items(grouped) == items({"runs": single})
    assert [r["neurons"] for r in grouped["runs"]] == [r["neurons"] for r in single]
    assert grouped["runs"][0]["neurons"] != grouped["runs"][2]["neurons"]  # zh's set vs de's


def test_job_rejects_wrong_files_before_loading(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    bad = root / "bad.json"
    cases = [
        ("D_U", "zh", {"zh": root / "zh1.safetensors"}, "another model"),
        ("D_U", "de", {"de": root / "zh0.safetensors"}, "holds zh/all neurons"),
        ("D_U", "zh", {}, "has files for []"),
        ("none", "en", {"en": root / "zh0.safetensors"}, "has files for ['en']"),
    ]
    for label, lang, sources, message in cases:
        with pytest.raises(MworkError, match=re.escape(message)):
            evaluate_job(
                spec_of(tiny_run),
                label,
                lang,
                sources,
                [
                    task(
                        tiny_run,
                        lang if lang != "en" else "en",
                        None if label != "none" else ("en",),
                    )
                ],
                bad,
                SETTINGS,
                device="cpu",
            )
    with pytest.raises(MworkError, match="has no tasks"):
        evaluate_job(spec_of(tiny_run), "none", "en", {}, [], bad, SETTINGS, device="cpu")
    assert not bad.exists()


def test_finetuned_job_applies_the_delta_and_puts_the_base_back(
    tiny_run: dict[str, Any],
) -> None:
    root = tiny_run["root"]
    spec = spec_of(tiny_run)
    delta_file = root / "ft_ls-4" / "zh.delta.safetensors"
    inputs = FinetuneInputs(
        model=spec,
        docs=str(root / "zh.jsonl"),
        out=str(delta_file),
        language="zh",
        neurons=str(root / "zh0.safetensors"),
        n_docs=4,
        data_seed=0,
        device="cpu",
    )
    finetune_to_file(
        inputs,
        FinetuneSettings(lr=0.5, batch_size=2, micro_batch_size=2, max_length=32, progress=False),
    )
    delta = load_delta(delta_file)
    model, _, _ = load_spec(spec, "cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with _delta_applied(model, delta):
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the trained slices were written in
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # bit-exact back
    data = evaluate_job(
        spec,
        RunLabel.finetuned("ls", 4),
        "zh",
        {"zh": delta_file},
        [task(tiny_run, "zh")],
        root / "ft.json",
        SETTINGS,
        device="cpu",
    )
    assert {r["finetune"]["kind"] for r in data["runs"]} == {"ls"} and "neurons" not in data[
        "runs"
    ][0]
    with pytest.raises(MworkError, match="holds a ls run on 4 zh documents"):
        evaluate_job(
            spec,
            RunLabel.finetuned("ls", 8),
            "zh",
            {"zh": delta_file},
            [task(tiny_run, "zh")],
            root / "ft8.json",
            SETTINGS,
            device="cpu",
        )
