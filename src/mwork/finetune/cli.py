"""The `mwork finetune` subcommands (registered by `mwork.cli`).

mwork finetune train --model M --docs POOL.jsonl --lang L --out DELTA.safetensors
                     [--mode ls|random|full] [--neurons FILE] [--n-docs N] [...hyperparameters]
mwork finetune merge --base DIR --delta DELTA.safetensors --out DIR [--dtype float32]

Output paths are checked before any model is loaded (`mwork.paths`): no output over an input (the
documents, the neuron file, the delta) or inside the model directory, and a merge replaces only a
new, empty or earlier merged directory. Every write is atomic (temp file or folder + rename).
"""

from __future__ import annotations

import argparse

from mwork.paths import check_output_dir

# Option -> FinetuneSettings field; None (not given) keeps the settings' default, so the defaults
# live in one place (FinetuneSettings / the config schema) and parsing imports no torch.
_SETTINGS_OPTIONS: dict[str, tuple[type, str]] = {
    "mode": (str, "ls | random | full"),
    "lr": (float, "learning rate (released code: 2e-6)"),
    "epochs": (int, "epochs (1)"),
    "batch_size": (int, "effective batch per optimizer step (32)"),
    "micro_batch_size": (int, "rows per forward; accumulation = batch / micro (8)"),
    "warmup_ratio": (float, "warmup share of the steps (0.05)"),
    "scheduler": (str, "cosine | linear | constant_with_warmup"),
    "max_grad_norm": (float, "gradient-norm clip (0.3; <= 0: none)"),
    "weight_decay": (float, "AdamW weight decay (0)"),
    "max_length": (int, "tokens per row (512)"),
    "seed": (int, "data order / RNG seed (0)"),
    "neuron_seed": (int, "random mode's neuron seed (0)"),
    "n1": (int, "understanding layers (with --regions)"),
    "n2": (int, "generation layers (with --regions)"),
    "cap_per_matrix": (int, "released code: at most 100 neurons per (layer, component)"),
    "precision": (str, "auto (bf16 autocast on CUDA) | bf16 | none"),
    "threads": (int, "torch CPU threads"),
}
_LIST_OPTIONS = {
    "components": "comma list of ffn,attn_q,attn_k,attn_v",
    "regions": "comma list of U,S,G",
}
_FLAGS = {  # flag -> (field, value when given)
    "no_packing": ("packing", False),
    "no_gate": ("train_gate", False),
    "gradient_checkpointing": ("gradient_checkpointing", True),
    "no_progress": ("progress", False),
    "fail_if_empty": ("allow_empty", False),
}


def _csv(text: str) -> list[str]:
    return [x for x in text.replace(" ", "").split(",") if x]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `finetune train` and `finetune merge` to the top-level subparsers."""
    p = sub.add_parser("finetune", help="neuron fine-tuning (paper §4): train, merge")
    fsub = p.add_subparsers(dest="finetune_cmd", required=True)
    t = fsub.add_parser(
        "train", help="fine-tune a language's neurons (or random / all) on documents"
    )
    t.add_argument("--model", required=True, help="base model directory or HF hub id")
    t.add_argument("--docs", required=True, help="document pool, JSONL with a `text` field")
    t.add_argument("--lang", required=True, help="language of the documents")
    t.add_argument("--out", required=True, help="delta file to write (.safetensors)")
    t.add_argument("--neurons", default=None, help="neuron file of the language (modes ls, random)")
    t.add_argument(
        "--n-docs", type=int, default=None, help="documents (nested sample; default: all)"
    )
    t.add_argument("--data-seed", type=int, default=0, help="document sampling seed")
    for name, (kind, text) in _SETTINGS_OPTIONS.items():
        t.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    for name, text in _LIST_OPTIONS.items():
        t.add_argument("--" + name, type=_csv, default=None, help=text)
    for flag in _FLAGS:
        t.add_argument("--" + flag.replace("_", "-"), action="store_true")
    t.add_argument("--device", default="auto")
    t.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float64")
    t.add_argument("--trust-remote-code", action="store_true")
    t.add_argument("--model-name", default=None, help="name recorded in the delta")
    t.add_argument("--log", default=None, help="also write a JSON run log (summary + timing)")
    m = fsub.add_parser("merge", help="base model + delta -> a normal HF model directory")
    m.add_argument("--base", required=True, help="base model directory (or hub id)")
    m.add_argument("--delta", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--dtype", default="auto", help="auto (checkpoint's), float32, bfloat16")
    m.add_argument("--trust-remote-code", action="store_true")


def settings_from_args(a: argparse.Namespace):
    """FinetuneSettings from the parsed options (unset options keep the defaults)."""
    from mwork.finetune.settings import FinetuneSettings

    values: dict[str, object] = {}
    for name in [*_SETTINGS_OPTIONS, *_LIST_OPTIONS]:
        if getattr(a, name) is not None:
            values[name] = getattr(a, name)
    if "max_grad_norm" in values and float(values["max_grad_norm"]) <= 0:  # type: ignore[arg-type]
        values["max_grad_norm"] = None
    for flag, (name, value) in _FLAGS.items():
        if getattr(a, flag):
            values[name] = value
    return FinetuneSettings.from_mapping(values)


def run(a: argparse.Namespace) -> None:
    """Run a parsed `mwork finetune ...` command."""
    from mwork.finetune.delta import PROVENANCE_FILE, merge_delta
    from mwork.finetune.train import FinetuneInputs, check_train_outputs, finetune_to_file
    from mwork.settings import ModelSpec

    if a.finetune_cmd == "merge":
        check_output_dir(a.out, inputs=[a.delta], model_dirs=[a.base], marker=PROVENANCE_FILE)
        out = merge_delta(a.base, a.delta, a.out, a.dtype, a.trust_remote_code)
        print(f"{out}: merged model")
        return
    settings = settings_from_args(a)
    check_train_outputs(a.out, a.log, a.docs, a.neurons, a.model)
    spec = ModelSpec(
        ref=a.model, name=a.model_name, dtype=a.dtype, trust_remote_code=a.trust_remote_code
    )
    inputs = FinetuneInputs(
        model=spec,
        docs=a.docs,
        out=a.out,
        language=a.lang,
        neurons=a.neurons,
        n_docs=a.n_docs,
        data_seed=a.data_seed,
        device=a.device,
        log=a.log,
    )
    result = finetune_to_file(inputs, settings)
    s = result.summary
    if not s.get("trained"):
        print(f"{a.out}: no neurons selected, nothing trained (no-op delta)")
    else:
        print(
            f"{a.out}: {s['n_trainable']} trained values, {s['steps']} steps, "
            f"{s['tokens']} tokens, "
            f"loss {s['first_loss']:.4f} -> {s['final_loss']:.4f}"
        )
