"""Deactivation runs and tables: run labels, run JSON -> tidy scores -> tables, one masked run on a
tiny model with local task data (offline), and the workflow's plan of every evaluation job."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mwork.detect import detect_to_file
from mwork.errors import MworkError
from mwork.evaluate import evaluate_run
from mwork.runlabel import RunLabel
from mwork.scores import SCORE_COLUMNS, collect_scores, tidy_scores
from mwork.settings import DetectionSettings, EvaluationSettings, ModelSpec
from mwork.tables import TABLE_FILES, make_tables, table_paths
from mwork.tiny import save_tiny_model_dir

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- run labels


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


# ---------------------------------------------------------------- run JSONs -> tables


def _run_json(
    path: Path,
    condition: str,
    mask_lang: str,
    lang: str,
    values: list[float],
    seed: int | None = None,
    task: str = "xquad",
) -> None:
    metric = {"xquad": "contains,none", "xlsum": "rougeL,none"}[task]
    data = {
        "schema": "mwork.deactivation/1",
        "model": "m",
        "condition": condition,
        "seed": seed,
        "mask_lang": mask_lang,
        "tasks": {
            f"mwork_{task}_{lang}": {
                "spec": {"task": task, "lang": lang},
                "primary_metric": metric,
                "items": {
                    "doc_id": list(range(len(values))),
                    "id": [f"q{i}" for i in range(len(values))],
                    "scores": {metric: values},
                },
            }
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_collect_and_make_tables(tmp_path: Path) -> None:
    ev = tmp_path / "eval"
    paths = []

    def add(cond: str, mask: str, lang: str, values: list[float], **kw: Any) -> None:
        paths.append(ev / cond / mask / f"{lang}-{len(paths)}.json")
        _run_json(paths[-1], cond, mask, lang, values, **kw)

    for lang in ("en", "de", "zh"):
        add("none", "none", lang, [1, 1, 0, 1])
    for mask in ("de", "zh"):
        add("D_U", mask, "en", [1, 1, 0, 1])
        add("D_U", mask, mask, [0, 0, 0, 1])
        add("R_U", mask, "en", [1, 1, 0, 1], seed=0)
        add("R_U", mask, mask, [1, 1, 0, 0], seed=0)
    add("D_U-n1_1", "zh", "en", [1, 0, 0, 1])
    add("D_U-n1_1", "zh", "zh", [0, 0, 0, 0])
    add("D_U-n1_1.minus-en", "zh", "en", [1, 1, 0, 1])  # App.-E variant of a sweep label
    add("D_U-n1_1.minus-en", "zh", "zh", [0, 1, 0, 0])
    for lang in ("en", "fr"):
        add("none", "none", lang, [0.5, 0.25], task="xlsum")
    add("D_all", "fr", "en", [0.5, 0.25], task="xlsum")
    add("D_all", "fr", "fr", [0.0, 0.0], task="xlsum")

    tidy = tidy_scores(paths)
    assert list(tidy.columns) == list(SCORE_COLUMNS) and len(tidy) == 4 * 15 + 2 * 4
    assert set(tidy.loc[tidy["condition"] == "R_U", "seed"]) == {0}
    assert set(tidy.loc[tidy["condition"] == "D_U", "seed"]) == {-1}
    assert set(tidy["metric"]) == {"contains", "rougeL"} and tidy["value"].between(0, 1).all()

    scores = collect_scores(paths, tmp_path / "tables" / "scores.csv")
    tables = make_tables(tmp_path / "tables" / "scores.csv", tmp_path / "tables", n_boot=50, seed=0)
    assert len(scores) == len(tidy)
    for path in table_paths(tmp_path / "tables"):
        assert path.stat().st_size > 0, path
    assert {p.stem for p in table_paths(tmp_path)} == set(TABLE_FILES.values())
    summary = tables["summary"].set_index(["task", "condition"])
    # D_U: En unchanged, non-En 75 -> 25 in both languages: ΔEng 0, Δn-Eng -50, Δ +50
    assert summary.loc[("xquad", "D_U"), "delta"] == pytest.approx(50.0)
    assert summary.loc[("xquad", "R_U"), "delta_n_eng"] == pytest.approx(-25.0)
    assert tables["sweep"]["n1"].tolist() == [1, 1]
    assert summary.loc[("xquad", "D_U-n1_1.minus-en"), "U"] == "D"
    assert tables["table1"].query("method == 'Deactivate Lang-Spec'")["fr"].tolist() == [0.0]
    wide = (tmp_path / "tables" / "tables14_17_per_language.md").read_text(encoding="utf-8")
    assert "75.0/25.0 (+0.0/-50.0)" in wide
    csv = pd.read_csv(tmp_path / "tables" / "tables2_5_summary.csv")
    assert {"delta", "delta_lo", "delta_hi"} <= set(csv.columns)


def test_collect_rejects_foreign_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"schema": "mwork.eval/1"}), encoding="utf-8")
    with pytest.raises(MworkError, match="not an mwork deactivation result"):
        tidy_scores([bad])


# ---------------------------------------------------------------- a real masked run (tiny model)


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
        out[f"model{seed}"] = str(model)
    qa = {
        "en": ("Paris is the capital of France.", "What is the capital of France?", "Paris"),
        "zh": ("北京是中国的首都。", "中国的首都是哪里？", "北京"),
    }
    out["specs"] = [
        {
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
    ]
    return out


def test_evaluate_run_masks_and_writes_one_json_per_language(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    outs = {"en": root / "D_U" / "en.json", "zh": root / "D_U" / "zh.json"}
    spec = ModelSpec(tiny_run["model0"], "tiny", dtype="float32", n_layers=2, n1=1, n2=0)
    written = evaluate_run(
        spec,
        "D_U",
        "zh",
        root / "zh0.safetensors",
        tiny_run["specs"],
        outs,
        EvaluationSettings(limit=2, max_gen_toks=4),
        device="cpu",
    )
    assert set(written) == {"en", "zh"}
    for lang, path in outs.items():
        data = json.loads(path.read_text(encoding="utf-8"))
        assert {
            "schema",
            "model",
            "model_fingerprint",
            "condition",
            "label",
            "variant",
            "seed",
            "mask_lang",
            "eval_langs",
            "n1",
            "n2",
            "neurons",
            "tasks",
            "settings",
        } <= set(data)
        assert data["condition"] == "D_U" and data["mask_lang"] == "zh" and data["seed"] is None
        assert data["eval_langs"] == [lang] and list(data["tasks"]) == [f"mwork_xquad_{lang}"]
        assert data["tasks"][f"mwork_xquad_{lang}"]["n"] == 2
        neurons = data["neurons"]
        assert set(neurons["by_region"]) == {"U", "S", "G"} and neurons["total"] > 0
        assert neurons["total"] == sum(neurons["by_region"]["U"].values())  # D_U: layer 0 only
    assert len(tidy_scores(outs.values())) == 4


def test_evaluate_run_baseline_and_random(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    spec = ModelSpec(tiny_run["model0"], dtype="float32", n1=1, n2=0)
    settings = EvaluationSettings(limit=2, max_gen_toks=4)
    base = evaluate_run(
        spec,
        "none",
        "none",
        None,
        tiny_run["specs"][:1],
        {"en": root / "none.json"},
        settings,
        device="cpu",
    )
    assert base["en"]["condition"] == "none" and "neurons" not in base["en"]
    rand = evaluate_run(
        spec,
        "R_all-s1",
        "zh",
        root / "zh0.safetensors",
        tiny_run["specs"][1:],
        root / "rand.json",
        settings,
        device="cpu",
    )
    assert rand[None]["seed"] == 1 and rand[None]["condition"] == "R_all"


def test_evaluate_run_rejects_neurons_of_another_model(tiny_run: dict[str, Any]) -> None:
    root = tiny_run["root"]
    spec = ModelSpec(tiny_run["model0"], dtype="float32", n1=1, n2=0)
    settings = EvaluationSettings(limit=2)
    with pytest.raises(MworkError, match="another model"):
        evaluate_run(
            spec,
            "D_U",
            "zh",
            root / "zh1.safetensors",
            tiny_run["specs"],
            root / "bad.json",
            settings,
            device="cpu",
        )
    with pytest.raises(MworkError, match="holds zh/all neurons"):  # language mismatch
        evaluate_run(
            spec,
            "D_U",
            "de",
            root / "zh0.safetensors",
            tiny_run["specs"],
            root / "bad.json",
            settings,
            device="cpu",
        )
    assert not (root / "bad.json").exists()


# ---------------------------------------------------------------- the workflow's plan


def test_dry_run_plans_every_evaluation_job() -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    ev = cfg["evaluation"]
    expected = set()
    study = ev.get("models") or list(cfg["models"])  # models of the deactivation study
    for model in study:
        runs = [
            (task, cond, lang)
            for task, spec in ev["tasks"].items()
            for cond in spec["conditions"]
            for lang in spec["langs"]
            if lang != "en"
        ]
        runs += [
            (ev["sweep"]["task"], f"D_U-n1_{n}", lang)
            for n in ev["sweep"]["n1"]
            for lang in ev["sweep"]["langs"]
        ]
        runs += [
            (ev["sweep"]["task"], f"D_G-n2_{n}", lang)
            for n in ev["sweep"]["n2"]
            for lang in ev["sweep"]["langs"]
        ]
        for task, cond, lang in runs:
            labels = [f"{cond}-s{s}" for s in ev["seeds"]] if cond.startswith("R") else [cond]
            expected |= {
                f"results/{model}/eval/{label}/{lang}/{task}/{lang}.json" for label in labels
            }
            expected |= {f"results/{model}/eval/{label}/{lang}/{task}/en.json" for label in labels}
        expected |= {
            f"results/{model}/eval/none/none/{task}/{lang}.json"
            for task, spec in ev["tasks"].items()
            for lang in spec["langs"]
        }
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "-d", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    planned = {
        p.strip()
        for line in re.findall(r"^\s+output: (.+)$", res.stdout, re.M)
        for p in line.split(",")
    }
    assert expected <= planned, sorted(expected - planned)[:5]
    counts = {
        m[1]: int(m[2])
        for m in re.finditer(r"^(\w+)\s+(\d+)$", res.stdout.split("Job stats:")[1], re.M)
    }
    masked = {
        p
        for p in planned
        if p.endswith("/en.json") and "/eval/none/" not in p and "/eval/ft_" not in p
    }
    finetuned = {p for p in planned if p.endswith("/en.json") and "/eval/ft_" in p}
    assert masked == {p for p in expected if p.endswith("/en.json") and "/none/" not in p}
    assert counts["evaluate_condition"] == len(masked) + len(finetuned)  # fine-tuned runs: issue 10
    baselines = {p for p in planned if "/eval/none/none/" in p}
    assert {p for p in expected if "/none/" in p} <= baselines
    assert counts["evaluate_baseline"] == len(baselines)
    assert counts["collect_scores"] == counts["make_tables"] == len(cfg["models"])
