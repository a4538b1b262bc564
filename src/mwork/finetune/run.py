"""A fine-tuning run (paper §4): next-token loss on raw documents, training only L's neurons.

`finetune` checks the neuron file against the model, builds the selection
(mwork.finetune.neurons), the training rows (mwork.finetune.rows) and the trainer
(mwork.finetune.trainer), runs every optimizer step and returns the delta with its provenance and
a summary (steps, tokens, loss curve; in the delta) and timing (not in the delta, so deltas are
byte-identical).

An empty selection (no neurons after restrictions) trains nothing: a warning is logged and a
no-op delta (`empty: true`, no slices, no optimizer steps) is returned, so a workflow can evaluate
it as the original model; `allow_empty=False` raises MworkError instead.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import transformers
from tqdm import tqdm

import mwork
from mwork.adapters import ModelAdapter
from mwork.errors import MworkError
from mwork.finetune.data import documents_sha256
from mwork.finetune.delta import Delta, DeltaSlice
from mwork.finetune.neurons import build_selection
from mwork.finetune.rows import encode_documents, make_rows
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.trainer import FinetuneTrainer
from mwork.modeling import model_fingerprint
from mwork.neuronset import NeuronSet

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """A training run's delta and its log.

    Attributes:
        delta: the trained slices (or all parameters in mode full) with provenance metadata.
        summary: deterministic facts (steps, tokens, loss curve, counts; also in the delta).
        timing: wall time, tokens/s, step times (not in the delta, so deltas are byte-identical).
    """

    delta: Delta
    summary: dict[str, object] = field(default_factory=dict)
    timing: dict[str, object] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    return {
        "mwork_version": mwork.__version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }


def finetune(
    adapter: ModelAdapter,
    tokenizer,
    docs: Sequence[str],
    settings: FinetuneSettings,
    neurons: NeuronSet | None = None,
    provenance: Mapping[str, str] | None = None,
) -> FinetuneResult:
    """Fine-tune `adapter.model` on `docs` and return the delta.

    Sparse modes never modify the base weights (the hooks are removed on return); mode `full`
    trains the model's parameters in place.

    Args:
        adapter: adapter of the loaded base model.
        tokenizer: its tokenizer (pad token optional).
        docs: raw training documents.
        settings: hyperparameters and mode.
        neurons: the language's neuron set (required unless mode is full).
        provenance: extra metadata for the delta (model, language, file hashes).
    """
    settings.validate()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = adapter.model
    fingerprint = model_fingerprint(model)
    if settings.mode != "full" and neurons is None:
        raise MworkError(f"mode {settings.mode} needs a neuron file", "pass the language's neurons")
    if neurons is not None and neurons.meta.get("model_fingerprint") not in (None, fingerprint):
        raise MworkError(
            f"the neuron file was detected on another model ({neurons.meta.get('model')})",
            "use neurons detected on the base model being fine-tuned",
        )
    selection = build_selection(neurons, adapter, settings) if settings.mode != "full" else None
    meta = {
        **_versions(),
        **(provenance or {}),
        "model_fingerprint": fingerprint,
        "settings": settings.to_json(),
        "n_docs": str(len(docs)),
        "data_sha256": documents_sha256(docs),
    }
    counts = {c: int(s.sum()) for c, s in selection.items()} if selection is not None else {}
    if selection is not None and not sum(counts.values()):
        if not settings.allow_empty:
            raise MworkError(
                "the neuron selection is empty, nothing to fine-tune",
                "check the neuron file and the regions/components/cap settings",
            )
        log.warning(
            "no neurons to train (mode %s, language %s): "
            "writing a no-op delta, the model is unchanged",
            settings.mode,
            meta.get("language", "?"),
        )
        summary = {"trained": False, "steps": 0, "tokens": 0, "n_trainable": 0, "neurons": counts}
        meta["summary"] = json.dumps(summary, sort_keys=True)
        return FinetuneResult(Delta(settings.mode, selection=selection, meta=meta), summary, {})

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    token_docs = encode_documents(tokenizer, docs, settings.max_length)
    rows = make_rows(token_docs, settings.max_length, settings.packing, generator)
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainer = FinetuneTrainer(adapter, selection, settings, total_steps, pad_id)
    curve: list[list[float]] = []
    step_s: list[float] = []
    n_tokens, start = 0, time.perf_counter()
    bar = tqdm(
        total=total_steps,
        desc=f"finetune {settings.mode}",
        disable=not settings.progress,
        unit="step",
    )
    try:
        for epoch in range(settings.epochs):
            if epoch:
                rows = make_rows(token_docs, settings.max_length, settings.packing, generator)
            for s in range(steps_per_epoch):
                t0 = time.perf_counter()
                lr = trainer.scheduler.get_last_lr()[0]
                loss, n = trainer.step(
                    rows[s * settings.batch_size : (s + 1) * settings.batch_size]
                )
                step_s.append(time.perf_counter() - t0)
                n_tokens += n
                curve.append([len(curve), loss, lr])
                bar.update(1)
                bar.set_postfix(
                    loss=f"{loss:.4f}", tok_s=f"{n_tokens / (time.perf_counter() - start):.0f}"
                )
        state = trainer.state_bytes()
    finally:
        bar.close()
        trainer.close()
    wall = time.perf_counter() - start
    summary = {
        "trained": True,
        "steps": total_steps,
        "epochs": settings.epochs,
        "rows": len(rows),
        "tokens": n_tokens,
        "n_trainable": trainer.n_trainable(),
        "neurons": counts,
        "first_loss": curve[0][1],
        "final_loss": curve[-1][1],
        "loss_curve": curve,
        "state_bytes": state,
    }
    timing = {"wall_s": wall, "tokens_per_s": n_tokens / wall, "step_s": step_s}
    meta["summary"] = json.dumps(summary, sort_keys=True)
    if trainer.sparse is not None:
        slices = {
            s.name: DeltaSlice(s.dim, s.index.cpu(), s.values.detach().cpu().clone())
            for s in trainer.sparse.slices
        }
        delta = Delta(settings.mode, slices=slices, selection=selection, meta=meta)
    else:
        full = {n: p.detach().cpu().clone() for n, p in model.named_parameters()}
        for p in model.parameters():
            p.requires_grad_(False)
        delta = Delta("full", full=full, meta=meta)
    log.info(
        "fine-tuned %s: %d steps, %d tokens, %d trainable values, loss %.4f -> %.4f, %.1f s",
        settings.mode,
        total_steps,
        n_tokens,
        summary["n_trainable"],
        summary["first_loss"],
        summary["final_loss"],
        wall,
    )
    return FinetuneResult(delta, summary, timing)
