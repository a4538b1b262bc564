"""The vllm backend against the hf backend, per item, on tiny models of two families (CPU).

Families: Llama with GQA (4 query heads, 2 kv heads) and Qwen2 (q/k/v biases, GQA), both with
head_dim 32 (`mwork.tiny.VLLM_SHAPE`; vLLM's CPU attention needs >= 32) and 4 layers split
U = layer 0, S = layers 1-2, G = layer 3. The masked condition is D_all with count rule `all`:
every neuron of a random 25% neuron file, FFN and q/k/v, in U, S and G layers.

Asserted: all four tasks (MGSM, XQuAD, XLSum generation; X-CSQA log-likelihood), unmasked, masked
and (Llama) fine-tuned (a delta of full tensors): identical greedy generations and identical per-item
scores (so identical log-likelihood choices); log-likelihoods of the same requests within 1e-4
(masked and unmasked, HFLM vs VllmLM); the mask changes vLLM's outputs, and restoring it gives
bit-identical prompt log-probabilities, over several apply/restore cycles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from testhelpers import make_neuron_file, write_model_dir

from mwork.adapters import COMPONENTS
from mwork.evaluate import evaluate_job
from mwork.finetune.delta import Delta, save_delta
from mwork.mask import mask_neurons
from mwork.modeling import load_spec, model_fingerprint
from mwork.neuronset import load_neuron_set
from mwork.runlabel import RunLabel
from mwork.settings import EvaluationSettings, ModelSpec
from mwork.tiny import VLLM_SHAPE
from mwork.vllm_backend import open_backend

FAMILIES = ("llama", "qwen2")
LANGS = ("en", "de")
CHOICES = {"label": list("ABCDE"), "text": ["fly", "swim", "run", "eat", "sleep"]}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


def _task_files(root: Path, lang: str) -> dict[str, str]:
    return {
        "mgsm": _jsonl(
            root / f"mgsm_{lang}.jsonl",
            [
                {
                    "question": f"Janet has {i} ducks and buys {i + 2} more. How many ducks?",
                    "answer": None,
                    "answer_number": 2 * i + 2,
                    "equation_solution": None,
                }
                for i in range(3)
            ],
        ),
        "xquad": _jsonl(
            root / f"xquad_{lang}.jsonl",
            [
                {
                    "id": f"q{i}",
                    "context": f"hello world hallo welt number {i}",
                    "question": "what is it?",
                    "answers": {"text": ["hello"], "answer_start": [0]},
                }
                for i in range(3)
            ],
        ),
        "xcsqa": _jsonl(
            root / f"xcsqa_{lang}.jsonl",
            [
                {
                    "id": f"c{i}",
                    "lang": lang,
                    "question": {"stem": f"What does bird {i} do?", "choices": CHOICES},
                    "answerKey": "A",
                }
                for i in range(3)
            ],
        ),
        "xlsum": _jsonl(
            root / f"xlsum_{lang}.jsonl",
            [
                {
                    "id": f"s{i}",
                    "url": "https://example.org",
                    "title": "hallo",
                    "summary": "hello world.",
                    "text": f"hello world hallo welt bonjour le monde {i}",
                }
                for i in range(3)
            ],
        ),
    }


@pytest.fixture(scope="module", params=FAMILIES)
def setup(request, tmp_path_factory) -> dict[str, Any]:
    family = request.param
    root = tmp_path_factory.mktemp(f"vllm_{family}")
    model_dir = write_model_dir(
        root / "model", family, vocab_size=150, num_hidden_layers=4, **VLLM_SHAPE
    )
    spec = ModelSpec(str(model_dir), "tiny", dtype="float32", n_layers=4, n1=1, n2=1)
    model, _, _ = load_spec(spec, "cpu")
    neurons = make_neuron_file(model, root / "de.safetensors", p=0.25)
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(1)
    full = {  # a "full" fine-tuning delta: two whole tensors of two layers, clearly changed
        n: params[n].detach() + 0.3 * torch.randn(params[n].shape, generator=g)
        for n in ("model.layers.1.self_attn.v_proj.weight", "model.layers.3.mlp.up_proj.weight")
    }
    meta = {"language": "de", "n_docs": "8", "model_fingerprint": model_fingerprint(model)}
    delta = root / "ft.safetensors"
    save_delta(Delta("full", full=full, meta=meta), delta)
    files = {lang: _task_files(root, lang) for lang in LANGS}
    return {
        "root": root,
        "spec": spec,
        "neurons": neurons,
        "delta": delta,
        "files": files,
        "jobs": {},
    }


def _tasks(files: dict[str, dict[str, str]], langs: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {
            "task": task,
            "lang": "de",
            "specs": [
                {"task": task, "lang": l, "source": "local", "path": files[l][task]} for l in langs
            ],
        }
        for task in ("mgsm", "xquad", "xcsqa", "xlsum")
    ]


def _run(setup: dict[str, Any], label: str, backend: str) -> dict[str, Any]:
    """The job's result (each job runs once per module: the masked test reuses the baseline)."""
    key = (label, backend)
    if key not in setup["jobs"]:
        setup["jobs"][key] = _job(setup, label, backend)
    return setup["jobs"][key]


def _job(setup: dict[str, Any], label: str, backend: str) -> dict[str, Any]:
    settings = EvaluationSettings(
        batch_size=4, max_gen_toks=16, count="all", backend=backend, lid_languages=list(LANGS)
    )  # output languages too: the code after lm-eval is shared, so they must match
    run = RunLabel.finetuned("full", 8) if label == "ft" else RunLabel.parse(label)
    sources = {"none": {}, "ft": {"de": setup["delta"]}}.get(label, {"de": setup["neurons"]})
    langs = ("de",) if label == "none" else LANGS
    out = setup["root"] / f"{label}_{backend}.json"
    return evaluate_job(
        setup["spec"], run, "de", sources, _tasks(setup["files"], langs), out, settings, "cpu"
    )


def _per_item(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for run in data["runs"]:
        for name, t in run["tasks"].items():
            out[(run["mask_lang"], name)] = t["items"]
    return out


# the fine-tuning delta on one family: deltas load through the same reload as masks (weights.py),
# whose per-family naming the masked runs of both families cover; keeps the CI step short
JOBS = [(f, l) for f in FAMILIES for l in ("none", "D_all", "ft") if l != "ft" or f == "llama"]


@pytest.mark.parametrize(("setup", "label"), JOBS, indirect=["setup"])
def test_jobs_give_identical_items_on_both_backends(setup: dict[str, Any], label: str) -> None:
    hf, vl = _run(setup, label, "hf"), _run(setup, label, "vllm")
    assert [r["settings"]["backend"] for r in vl["runs"]] == ["vllm"] * len(vl["runs"])
    hf_items, vl_items = _per_item(hf), _per_item(vl)
    assert hf_items.keys() == vl_items.keys() and len(hf_items) == 4 * (1 if label == "none" else 2)
    generations = 0
    for key, items in hf_items.items():
        assert vl_items[key] == items, key  # predictions, output languages, per-item scores
        generations += sum(p is not None for p in items.get("prediction", []))
        assert ("output_lang" in items) == ("prediction" in items), key
    assert generations == 9 * (1 if label == "none" else 2)  # 3 generation tasks x 3 items
    if label != "none":  # the intervention is active on the vllm backend: outputs changed
        masked = [r for r in vl["runs"] if r["eval_langs"] == ["de"]]
        assert masked and (label == "ft" or masked[0]["neurons"]["total"] > 0)
        base = _per_item(_run(setup, "none", "vllm"))  # (none, task) -> items of de
        changed = [
            task
            for (_, task), items in base.items()
            if "prediction" in items and items["prediction"] != vl_items[("de", task)]["prediction"]
        ]
        assert changed, f"{label} changed no generation on the vllm backend"


def _ll_requests() -> list[Instance]:
    contexts = ["What does a bird do? Answer:", "hello world", "Janet has 3 ducks. So"]
    return [
        Instance("loglikelihood", {}, (ctx, f" {c}"), i)
        for ctx in contexts
        for i, c in enumerate(CHOICES["text"])
    ]


def test_loglikelihoods_and_restore(setup: dict[str, Any]) -> None:
    spec = setup["spec"]
    model, tokenizer, adapter = load_spec(spec, "cpu")
    backend = open_backend(spec, EvaluationSettings(backend="vllm"), model, tokenizer)
    try:
        hflm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4)
        ns = load_neuron_set(setup["neurons"])
        selection = {c: torch.from_numpy(ns.selected[c]) for c in COMPONENTS}
        mask = backend.wrap(lambda: mask_neurons(adapter, selection, "weights"))
        reqs = _ll_requests()
        before = backend.lm.loglikelihood(reqs)
        prompts = [backend.lm.tok_encode(r.args[0] + r.args[1]) for r in reqs]
        lp_before = backend.engine.prompt_logprobs(prompts)
        for cycle in range(3):
            with mask():
                vl, hf = backend.lm.loglikelihood(reqs), hflm.loglikelihood(reqs)
                assert max(abs(a[0] - b[0]) for a, b in zip(vl, hf, strict=True)) < 1e-4
                assert [a[1] for a in vl] == [b[1] for b in hf]
                assert max(abs(a[0] - b[0]) for a, b in zip(vl, before, strict=True)) > 1e-3
            assert backend.engine.prompt_logprobs(prompts) == lp_before, cycle  # bit-exact
        hf = hflm.loglikelihood(reqs)
        assert max(abs(a[0] - b[0]) for a, b in zip(before, hf, strict=True)) < 1e-4
        assert [a[1] for a in before] == [b[1] for b in hf]
        assert len(backend.load_seconds) == 6  # apply + restore, 3 cycles
    finally:
        backend.close()
