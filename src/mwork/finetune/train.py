"""Neuron fine-tuning (paper §4): next-token loss on raw documents, training only L's neurons.

Modes:
    ls      the language-specific neurons of a neuron file (optionally restricted, see below)
    random  as many uniformly random neurons, matched per (layer, component) to what `ls` would
            train (`mwork.selection.random_matched`, seeded by `neuron_seed`): the paper's "Random"
    full    ordinary fine-tuning of every parameter, same loop and data (baseline)

Restrictions (applied to the LS set before `random` matches its counts): `components`, `regions`
(a subset of U/S/G with the model's N1/N2, `mwork.runlabel.layer_regions`) and the released
code's `cap_per_matrix` (it keeps `islice(set, 100)` indices per matrix per layer; we keep the
`cap` lowest indices of each (layer, component), which is what CPython's iteration over a set of
small ints yields). Default: all of L's neurons in every layer, as the paper.

Hyperparameters (defaults: the config schema, section `finetune`) are the released code's
(`neuron_enhancement/train_neuron.py`, paper digest §5.2): AdamW (beta 0.9/0.999, eps 1e-8, weight
decay 0), lr 2e-6, 1 epoch, effective batch 32 = micro-batch 8 x 4 accumulation steps, cosine
schedule with warmup ceil(0.05 * steps) (as HF `TrainingArguments`), gradient-norm clip 0.3, max
length 512, bf16 autocast on GPU. The loss of an optimizer step is the sum of token losses over its
effective batch divided by its token count, so gradient accumulation gives exactly the gradient of
the whole batch. On CPU the model trains in its own dtype (float32/float64) and a run is
deterministic for a seed and thread count.

Where the sparse form necessarily differs from the released code (see `mwork.finetune.sparse`):
the released code clips the norm of the full gradient and then zeroes the non-selected entries;
here only the selected slices have gradients, so the clip bounds the norm of the sparse gradient.
The two coincide only if the non-selected gradients are zero.

An empty selection (no neurons after restrictions) trains nothing: a warning is logged and a
no-op delta (`empty: true`, no slices, no optimizer steps) is returned, so a workflow can evaluate
it as the original model; `allow_empty=False` raises MworkError instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from tqdm import tqdm

import mwork
from mwork.adapters import COMPONENTS, ModelAdapter
from mwork.atomic import atomic_write_text
from mwork.runlabel import REGIONS, layer_regions
from mwork.selection import random_matched
from mwork.corpus import file_sha256, read_corpus
from mwork.demo.train import pack
from mwork.errors import MworkError
from mwork.finetune.data import documents_sha256, nested_sample
from mwork.finetune.delta import MODES, Delta, DeltaSlice, save_delta
from mwork.finetune.sparse import SparseDelta, attach_sparse
from mwork.languages import check_language
from mwork.modeling import model_fingerprint
from mwork.neuronset import NeuronSet, load_neuron_set
from mwork.paths import check_output
from mwork.settings import ModelSpec, schema_default, schema_field

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "bf16", "none")
SCHEDULERS: tuple[str, ...] = ("cosine", "linear", "constant_with_warmup")


def _tuple_field(path: str):
    """A dataclass field with the schema's list default as a tuple (None stays None)."""
    value = schema_default(path)
    return field(default=None if value is None else tuple(value))


PAD = -1  # row filler of packed token rows (never a token id, so pad == eos cannot collide)


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning hyperparameters (recorded in the delta file).

    Attributes:
        mode: "ls", "random" or "full" (module docstring).
        lr, epochs, batch_size (effective, per optimizer step), micro_batch_size (per forward;
            batch_size / micro_batch_size = gradient accumulation steps), warmup_ratio, scheduler,
            max_grad_norm (None = no clipping), weight_decay, adam_betas, adam_eps: optimisation.
        max_length: tokens per row; longer documents are truncated.
        packing: pack several (shuffled) documents into one row (True) or one document per row
            (False, TRL SFTTrainer's default in the released code).
        seed: data order, dropout and initial RNG state.
        neuron_seed: the random baseline's neurons.
        components: components that may be trained.
        regions: subset of U/S/G to train (None = all layers); needs n1 and n2.
        cap_per_matrix: released-code switch, at most this many neurons per (layer, component).
        train_gate: train W_gate rows of FFN units (paper); False = released code (gate frozen).
        precision: "auto" (bf16 autocast on CUDA, model dtype on CPU), "bf16" or "none".
        gradient_checkpointing: recompute activations in backward (non-reentrant).
        threads: torch CPU threads (None = leave as is).
        progress: show a tqdm bar with loss and tokens/s.
        allow_empty: an empty selection gives a no-op delta with a warning (False: MworkError).
    """

    mode: str = "ls"  # not a config key: the workflow's {kind} wildcard (finetune.kinds)
    lr: float = schema_field("finetune/lr")
    epochs: int = schema_field("finetune/epochs")
    batch_size: int = schema_field("finetune/batch_size")
    micro_batch_size: int = schema_field("finetune/micro_batch_size")
    warmup_ratio: float = schema_field("finetune/warmup_ratio")
    scheduler: str = schema_field("finetune/scheduler")
    max_grad_norm: float | None = schema_field("finetune/max_grad_norm")
    weight_decay: float = schema_field("finetune/weight_decay")
    adam_betas: tuple[float, float] = _tuple_field("finetune/adam_betas")
    adam_eps: float = schema_field("finetune/adam_eps")
    max_length: int = schema_field("finetune/max_length")
    packing: bool = schema_field("finetune/packing")
    seed: int = schema_field("finetune/seed")
    neuron_seed: int = schema_field("finetune/neuron_seed")
    components: tuple[str, ...] = _tuple_field("finetune/components")
    regions: tuple[str, ...] | None = _tuple_field("finetune/regions")
    n1: int | None = None  # the model's split (models.<alias>), needed with regions
    n2: int | None = None
    cap_per_matrix: int | None = schema_field("finetune/cap_per_matrix")
    train_gate: bool = schema_field("finetune/train_gate")
    precision: str = schema_field("finetune/precision")
    gradient_checkpointing: bool = schema_field("finetune/gradient_checkpointing")
    threads: int | None = None  # runtime, not science (profiles/)
    progress: bool = True  # runtime
    allow_empty: bool = schema_field("finetune/allow_empty")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> FinetuneSettings:
        """Build from a config mapping (lists become tuples); unknown keys raise MworkError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MworkError(f"unknown fine-tuning settings {unknown}", f"use only {sorted(known)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        settings = cls(**kw)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise MworkError on an impossible setting (before any model is loaded)."""

        def bad(what: str, fix: str) -> MworkError:
            return MworkError(f"fine-tuning setting {what}", fix)

        if self.mode not in MODES:
            raise bad(f"mode={self.mode!r} is unknown", f"use one of {', '.join(MODES)}")
        for name in ("epochs", "batch_size", "micro_batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise bad(f"{name}={getattr(self, name)} is not positive", "use an integer >= 1")
        if self.batch_size % self.micro_batch_size:
            raise bad(
                f"batch_size={self.batch_size} is not a multiple of "
                f"micro_batch_size={self.micro_batch_size}",
                "e.g. batch_size 32 with micro_batch_size 8 (4 accumulation steps)",
            )
        if not self.lr > 0 or not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise bad(
                "lr/warmup_ratio/weight_decay is out of range",
                "need lr > 0, 0 <= warmup_ratio < 1, weight_decay >= 0",
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise bad(
                f"max_grad_norm={self.max_grad_norm} is not positive",
                "use e.g. 0.3, or null for no clipping",
            )
        if self.scheduler not in SCHEDULERS:
            raise bad(
                f"scheduler={self.scheduler!r} is unknown", f"use one of {', '.join(SCHEDULERS)}"
            )
        if self.precision not in PRECISIONS:
            raise bad(
                f"precision={self.precision!r} is unknown", f"use one of {', '.join(PRECISIONS)}"
            )
        if not self.components or set(self.components) - set(COMPONENTS):
            raise bad(
                f"components={list(self.components)} is invalid",
                f"use a non-empty subset of {', '.join(COMPONENTS)}",
            )
        if self.regions is not None:
            if not self.regions or set(self.regions) - set(REGIONS):
                raise bad(
                    f"regions={list(self.regions)} is invalid",
                    "use a non-empty subset of U, S, G (or null)",
                )
            if self.n1 is None or self.n2 is None:
                raise bad(
                    "regions needs n1 and n2",
                    "set the model's n1/n2 (understanding/generation layers)",
                )
        if self.cap_per_matrix is not None and self.cap_per_matrix < 1:
            raise bad(
                f"cap_per_matrix={self.cap_per_matrix} is not positive",
                "use e.g. 100 (released code) or null",
            )

    def to_json(self) -> str:
        """The settings as sorted JSON (tuples as lists)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


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


def build_selection(
    neurons: NeuronSet, adapter: ModelAdapter, settings: FinetuneSettings
) -> dict[str, torch.Tensor]:
    """The neurons a sparse run trains: component -> [n_layers, n_units] bool (module docstring)."""
    if neurons.n_layers != adapter.n_layers or any(
        adapter.n_units(c) != n for c, n in neurons.units.items()
    ):
        raise MworkError(
            f"neuron file ({neurons.n_layers} layers, units {neurons.units}) does not fit "
            f"the model "
            f"({adapter.n_layers} layers, units {adapter.unit_counts()})",
            "use a neuron file detected on this model",
        )
    keep_layers = torch.ones(adapter.n_layers, dtype=torch.bool)
    if settings.regions is not None:
        regions = layer_regions(adapter.n_layers, int(settings.n1), int(settings.n2))  # type: ignore[arg-type]
        keep_layers[:] = False
        for r in settings.regions:
            keep_layers[regions[r]] = True
    out = {}
    for comp in COMPONENTS:
        if comp not in neurons.selected or comp not in settings.components:
            out[comp] = torch.zeros(adapter.n_layers, adapter.n_units(comp), dtype=torch.bool)
            continue
        sel = neurons.selected[comp].bool() & keep_layers[:, None]
        if settings.cap_per_matrix is not None:
            over = sel.cumsum(dim=1) > settings.cap_per_matrix  # beyond the cap lowest indices
            sel = sel & ~over
        out[comp] = sel
    if settings.mode == "random":
        counts = {c: s.sum(dim=1) for c, s in out.items()}
        out = random_matched(counts, {c: s.shape[1] for c, s in out.items()}, settings.neuron_seed)
    return out


def encode_documents(tokenizer, docs: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per document (BOS as the tokenizer adds it, EOS appended unless truncated)."""
    ids = tokenizer(
        list(docs), add_special_tokens=True, truncation=True, max_length=max_length + 1
    )["input_ids"]
    eos = tokenizer.eos_token_id
    out = []
    for doc in ids:
        if len(doc) > max_length:
            out.append(list(doc[:max_length]))
        else:
            out.append((list(doc) + ([eos] if eos is not None else []))[:max_length])
    return out


def make_rows(
    token_docs: Sequence[Sequence[int]], max_length: int, packing: bool, generator: torch.Generator
) -> torch.Tensor:
    """Shuffled training rows.

    Returns:
        [n_rows, max_length] int64, PAD (-1) after each row's tokens; with packing several whole
        documents share a row (`mwork.demo.train.pack`), else one document per row.
    """
    if packing:
        return pack(token_docs, max_length, PAD, generator)
    order = torch.randperm(len(token_docs), generator=generator).tolist()
    rows = torch.full((len(token_docs), max_length), PAD, dtype=torch.long)
    for r, i in enumerate(order):
        doc = list(token_docs[i])[:max_length]
        rows[r, : len(doc)] = torch.tensor(doc, dtype=torch.long)
    return rows


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class FinetuneTrainer:
    """One run's trainable tensors, optimizer and schedule on a model (sparse or full).

    `step(rows)` performs one optimizer step on an effective batch [batch_size, T] of PAD-filled
    rows (gradient accumulation over micro-batches). `close()` removes the sparse hooks.
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        selection: Mapping[str, torch.Tensor] | None,
        settings: FinetuneSettings,
        total_steps: int,
        pad_id: int,
    ) -> None:
        self.model, self.settings, self.pad_id = adapter.model, settings, pad_id
        self.sparse: SparseDelta | None = None
        if selection is None:
            for p in self.model.parameters():
                p.requires_grad_(True)
            self.params = [p for p in self.model.parameters()]
        else:
            self.sparse = attach_sparse(adapter, selection, settings.train_gate)
            self.params = self.sparse.parameters()
        self.device = next(self.model.parameters()).device
        if settings.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=settings.lr,
            betas=settings.adam_betas,
            eps=settings.adam_eps,
            weight_decay=settings.weight_decay,
        )
        warmup = math.ceil(settings.warmup_ratio * total_steps)
        self.scheduler = transformers.get_scheduler(
            settings.scheduler, self.optimizer, warmup, total_steps
        )
        bf16 = settings.precision == "bf16" or (
            settings.precision == "auto" and self.device.type == "cuda"
        )
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        )
        self.grad_bytes = 0
        self.model.train()

    def step(self, rows: torch.Tensor) -> tuple[float, int]:
        """One optimizer step on `rows` [B, T] (PAD = -1 filler); returns (loss, target tokens)."""
        n_targets = int((rows[:, 1:] != PAD).sum())
        total = 0.0
        for micro in rows.split(self.settings.micro_batch_size):
            real = micro != PAD
            width = int(real.sum(dim=1).max())
            micro, real = micro[:, :width].to(self.device), real[:, :width].to(self.device)
            ids = torch.where(real, micro, self.pad_id)
            with self.autocast:
                logits = self.model(
                    input_ids=ids, attention_mask=real.long(), use_cache=False
                ).logits
            if logits.dtype in (torch.bfloat16, torch.float16):
                logits = logits.float()
            targets = torch.where(real[:, 1:], micro[:, 1:], -100)
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
            ) / max(1, n_targets)
            loss.backward()
            total += float(loss.detach())
        if self.settings.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
        self.grad_bytes = _tensor_bytes(p.grad for p in self.params if p.grad is not None)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, n_targets

    def n_trainable(self) -> int:
        """Trainable scalars."""
        return sum(p.numel() for p in self.params)

    def state_bytes(self) -> dict[str, int]:
        """Bytes of trainable tensors, of the last step's gradients, and of the optimizer state."""
        opt = [t for st in self.optimizer.state.values() for t in st.values() if torch.is_tensor(t)]
        return {
            "trainable": _tensor_bytes(self.params),
            "gradient": self.grad_bytes,
            "optimizer": _tensor_bytes(opt),
        }

    def close(self) -> None:
        """Remove the sparse hooks, switch checkpointing off, model back to eval mode."""
        if self.sparse is not None:
            self.sparse.remove()
        if self.settings.gradient_checkpointing:
            self.model.gradient_checkpointing_disable()
        self.model.eval()


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


@dataclass(frozen=True)
class FinetuneInputs:
    """Files of one `finetune_to_file` run.

    Attributes:
        model: the base model (`mwork.settings.ModelSpec`: ref, name, dtype, trust_remote_code,
            n_layers checked after loading).
        docs: document pool (JSONL with `text`).
        out: delta file to write.
        language: language of the documents (recorded).
        neurons: neuron file (required unless mode is full).
        n_docs: documents to train on, nested-sampled by `data_seed` (None = the whole pool).
        data_seed: document sampling seed.
        device: "auto", "cpu", "cuda", ...
        log: optional JSON run log (summary + timing) to write next to the delta.
    """

    model: ModelSpec
    docs: str
    out: str
    language: str
    neurons: str | None = None
    n_docs: int | None = None
    data_seed: int = 0
    device: str = "auto"
    log: str | None = None


def check_train_outputs(
    out: str | Path,
    log: str | Path | None,
    docs: str | Path,
    neurons: str | Path | None,
    model_dir: str | Path,
) -> None:
    """Refuse a delta (`out`) or log path over an input or inside the model directory.

    The checks of `mwork.paths.check_output` (same file through links, unwritable folder, ...);
    used by `mwork finetune train` and by the workflow's jobs before anything is loaded.
    """
    reads = [p for p in (docs, neurons) if p]
    check_output(out, inputs=reads, model_dirs=[model_dir])
    if log:
        if Path(log).resolve() == Path(out).resolve():
            raise MworkError(f"--log {log} is the --out path", "choose another --log path")
        check_output(log, inputs=reads, model_dirs=[model_dir], option="--log")


def finetune_to_file(inputs: FinetuneInputs, settings: FinetuneSettings) -> FinetuneResult:
    """Validate inputs, load model/documents/neurons, fine-tune, write the delta (+ log)."""
    settings.validate()
    check_language(inputs.language)
    check_train_outputs(inputs.out, inputs.log, inputs.docs, inputs.neurons, inputs.model.ref)
    pool = read_corpus(inputs.docs)  # validated before the model load
    docs = nested_sample(pool, inputs.n_docs or len(pool), inputs.data_seed)
    neurons = None
    prov = {
        "model": inputs.model.label,
        "language": inputs.language,
        "data_file": str(inputs.docs),
        "data_file_sha256": file_sha256(inputs.docs),
        "data_seed": str(inputs.data_seed),
    }
    if settings.mode != "full":
        if not inputs.neurons:
            raise MworkError(f"mode {settings.mode} needs a neuron file", "pass --neurons FILE")
        neurons = load_neuron_set(inputs.neurons)
        prov.update(
            neuron_file=str(inputs.neurons),
            neuron_sha256=file_sha256(inputs.neurons),
            neuron_language=neurons.meta.get("language", ""),
            neuron_variant=neurons.meta.get("variant", ""),
        )
        if neurons.meta.get("language") not in (None, inputs.language):
            log.warning(
                "training %s documents on %s's neurons",
                inputs.language,
                neurons.meta.get("language"),
            )
    model, tokenizer, adapter = inputs.model.load(inputs.device)
    if neurons is not None and neurons.meta.get("model_fingerprint") != model_fingerprint(model):
        raise MworkError(
            f"neuron file {inputs.neurons} was detected on another model "
            f"({neurons.meta.get('model')}) than "
            f"{inputs.model.label}",
            "use neurons detected on this base model",
        )
    if settings.mode == "full" and next(model.parameters()).dtype in (
        torch.bfloat16,
        torch.float16,
    ):
        log.warning(
            "full fine-tuning of a %s model: updates of lr %.1e mostly vanish below its "
            "resolution; "
            "load it with dtype float32",
            next(model.parameters()).dtype,
            settings.lr,
        )
    result = finetune(adapter, tokenizer, docs, settings, neurons, prov)
    save_delta(result.delta, inputs.out)
    if inputs.log:
        atomic_write_text(
            inputs.log,
            json.dumps(
                {"summary": result.summary, "timing": result.timing}, indent=1, sort_keys=True
            )
            + "\n",
        )
    return result
