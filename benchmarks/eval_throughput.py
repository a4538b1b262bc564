"""Benchmark: masked evaluation throughput, hf backend (lm-eval HFLM) vs vllm backend (VllmLM).

Both backends score the same lm-eval requests through the code paths of an evaluation job, with
the same neurons masked (weights mode on the HF model; mirrored into the running vLLM engine):
- generation: `--batch` MGSM-style prompts, greedy, up to `--new-tokens` tokens (stop at EOS, as
  in real runs); tokens/s = generated tokens (the HF tokenizer's count of the outputs) / seconds;
- log-likelihood: `--batch` X-CSQA-style items x 5 choices; items/s;
- the mask's apply and restore time in the engine (weight reload of the touched layers).
Runs are interleaved (the order alternates per repeat) so machine-load drift hits both alike; the
report gives medians and the median of the per-repeat ratios vllm/hf. The outputs of the two
backends are compared on every repeat (identical generations, log-likelihoods within 1e-4).

Run it in the vLLM venv (bash .ci/vllm-setup.sh), on the demo model (bash run.sh demo builds
results/demo/model; its neuron files under results/demo-llama/neurons/):

    .venv-vllm/bin/python benchmarks/eval_throughput.py [--model results/demo/model]
        [--neurons results/demo-llama/neurons/zh.safetensors] [--batch 32] [--new-tokens 64]
        [--repeats 5] [--threads 2] [--device cpu|cuda] [--random-size HIDDEN:LAYERS]

`--random-size 512:8` replaces the model by a seeded random Llama of that width and depth
(head_dim 64, FFN 3x hidden, --model's tokenizer and vocabulary; written to a temp dir): how the
ratio moves with model size. Random weights rarely stop early: use it with --min-tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [
    "Paul has {a} boxes. Each box holds {b} apples. How many apples does Paul have?",
    "Anna has {a} flowers. She buys {b} more flowers. How many flowers does Anna have now?",
    "Tom has {a} pencils. He gives {b} pencils to Lisa. How many pencils does Tom have left?",
    "Wang Fang hat {a} Bücher und kauft {b} weitere. Wie viele Bücher hat sie jetzt?",
]
STEMS = ["What is the capital of Japan?", "What colour is a banana?", "Where does a fish live?"]
CHOICES = ["London", "Tokyo", "yellow", "water", "Rome"]


def requests(n: int):
    from lm_eval.api.instance import Instance

    gen = [
        Instance(
            "generate_until",
            {},
            (f"Question: {QUESTIONS[i % 4].format(a=i % 9 + 2, b=i % 7 + 1)}\nAnswer:", {}),
            i,
        )
        for i in range(n)
    ]
    ll = [
        Instance("loglikelihood", {}, (f"Question: {STEMS[i % 3]} ({i})\nAnswer:", f" {c}"), j)
        for i in range(n)
        for j, c in enumerate(CHOICES)
    ]
    return gen, ll


def selection_of(adapter, neurons: str | None, fraction: float):
    """The neuron file's sets, or a seeded random `fraction` of every (layer, component)."""
    import torch

    from mwork.adapters import COMPONENTS
    from mwork.neuronset import load_neuron_set

    if neurons:
        ns = load_neuron_set(neurons)
        return {c: torch.from_numpy(ns.selected[c]) for c in COMPONENTS}
    g = torch.Generator().manual_seed(0)
    return {
        c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < fraction
        for c in COMPONENTS
    }


def random_llama(base: str, size: str, out: str) -> str:
    """A seeded random Llama "HIDDEN:LAYERS" with `base`'s tokenizer, saved to `out`."""
    import json
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers = (int(x) for x in size.split(":"))
    cfg = json.loads(Path(base, "config.json").read_text("utf-8"))
    config = LlamaConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        head_dim=64,
        max_position_embeddings=1024,
        bos_token_id=cfg.get("bos_token_id"),
        eos_token_id=cfg.get("eos_token_id"),
        pad_token_id=cfg.get("pad_token_id"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).eval().save_pretrained(out)
    for f in Path(base).iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, Path(out, f.name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="results/demo/model")
    ap.add_argument("--neurons", default=None, help="neuron file (default: random --fraction)")
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument(
        "--min-tokens",
        type=int,
        default=0,
        help="force this many new tokens (EOS masked before; min_new_tokens): decode-bound runs",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--random-size", default=None, help="HIDDEN:LAYERS: a random Llama instead")
    args = ap.parse_args()
    if not Path(args.model, "config.json").is_file():
        sys.exit(f"error: no model at {args.model}; build the demo model (bash run.sh demo)")
    if args.random_size and (args.neurons or len(args.random_size.split(":")) != 2):
        sys.exit("error: --random-size takes HIDDEN:LAYERS and no --neurons; e.g. 512:8")
    if args.random_size:
        import tempfile

        tmp = tempfile.mkdtemp(prefix="mwork_bench_model_")
        args.model = random_llama(args.model, args.random_size, tmp)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # vLLM would drop torch to 1

    import torch
    from lm_eval.models.huggingface import HFLM

    from mwork.mask import mask_neurons
    from mwork.modeling import load_spec
    from mwork.settings import EvaluationSettings, ModelSpec
    from mwork.vllm_backend import open_backend

    spec = ModelSpec(args.model, "bench", dtype="float32")
    model, tokenizer, adapter = load_spec(spec, "cpu")
    t0 = time.perf_counter()
    backend = open_backend(spec, EvaluationSettings(backend="vllm"), model, tokenizer)
    start_s = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    # the hf side on --device (cuda: a second copy; the engine's masks edit the CPU copy `model`)
    hf_model, _, hf_adapter = (
        (model, tokenizer, adapter) if args.device == "cpu" else load_spec(spec, args.device)
    )
    hflm = HFLM(pretrained=hf_model, tokenizer=tokenizer, batch_size=args.batch)
    sel = selection_of(adapter, args.neurons, args.fraction)
    n_masked = int(sum(int(s.sum()) for s in sel.values()))
    gen, ll = requests(args.batch)
    for r in gen:
        kw = {"max_gen_toks": args.new_tokens, "until": []}
        r.arguments = (
            r.arguments[0],
            kw | ({"min_new_tokens": args.min_tokens} if args.min_tokens else {}),
        )

    def count(outs: list[str]) -> int:
        return sum(len(tokenizer.encode(o, add_special_tokens=False)) for o in outs)

    def run_hf():
        with mask_neurons(hf_adapter, sel, "weights"):
            t = time.perf_counter()
            g = hflm.generate_until(gen, disable_tqdm=True)
            tg = time.perf_counter() - t
            t = time.perf_counter()
            lls = hflm.loglikelihood(ll, disable_tqdm=True)
            return g, tg, lls, time.perf_counter() - t

    vmask = backend.wrap(lambda: mask_neurons(adapter, sel, "weights"))

    def run_vllm():
        with vmask():
            t = time.perf_counter()
            g = backend.lm.generate_until(gen)
            tg = time.perf_counter() - t
            t = time.perf_counter()
            lls = backend.lm.loglikelihood(ll)
            return g, tg, lls, time.perf_counter() - t

    run_hf(), run_vllm()  # warm-up (first-call costs), not timed
    backend.load_seconds.clear()
    rows = {"hf": [], "vllm": []}
    mismatches = 0
    for rep in range(args.repeats):
        order = [("hf", run_hf), ("vllm", run_vllm)]
        res = dict((name, fn()) for name, fn in (order if rep % 2 == 0 else order[::-1]))
        mismatches += sum(a != b for a, b in zip(res["hf"][0], res["vllm"][0], strict=True))
        dll = max(abs(a[0] - b[0]) for a, b in zip(res["hf"][2], res["vllm"][2], strict=True))
        for name, (g, tg, _lls, tl) in res.items():
            rows[name].append((count(g) / tg, args.batch / tl))
        print(
            f"repeat {rep}: tokens/s hf {rows['hf'][-1][0]:.0f} vllm {rows['vllm'][-1][0]:.0f}; "
            f"items/s hf {rows['hf'][-1][1]:.1f} vllm {rows['vllm'][-1][1]:.1f}; "
            f"tokens {count(res['hf'][0])}; max |d ll| {dll:.1e}",
            flush=True,
        )

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[name])

    def ratio(i: int) -> float:
        return statistics.median(v[i] / h[i] for h, v in zip(rows["hf"], rows["vllm"], strict=True))

    applies, restores = backend.load_seconds[0::2], backend.load_seconds[1::2]
    print(
        f"\nmodel {args.model} ({adapter.n_layers} layers), {n_masked} neurons masked, batch "
        f"{args.batch}, <= {args.new_tokens} new tokens, {args.repeats} interleaved repeats, "
        f"torch threads {torch.get_num_threads()}, engine start {start_s:.1f} s"
    )
    print(
        f"masked generation  tokens/s: hf {med('hf', 0):.0f}  vllm {med('vllm', 0):.0f}  "
        f"ratio vllm/hf {ratio(0):.2f}x"
    )
    print(
        f"masked loglik      items/s:  hf {med('hf', 1):.1f}  vllm {med('vllm', 1):.1f}  "
        f"ratio vllm/hf {ratio(1):.2f}x"
    )
    print(
        f"mask apply {statistics.median(applies) * 1000:.0f} ms, restore "
        f"{statistics.median(restores) * 1000:.0f} ms (median of {len(applies)}); "
        f"generations differing hf vs vllm: {mismatches} of {args.batch * args.repeats}"
    )
    backend.close()
    if args.random_size:  # the temp model written above
        import shutil

        shutil.rmtree(args.model, ignore_errors=True)


if __name__ == "__main__":
    main()
