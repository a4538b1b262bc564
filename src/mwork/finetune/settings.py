"""Fine-tuning hyperparameters (`FinetuneSettings`, config section `finetune`; in the delta file).

Hyperparameters (defaults: the config schema, section `finetune`) are the released code's
(`neuron_enhancement/train_neuron.py`, paper digest §5.2): AdamW (beta 0.9/0.999, eps 1e-8, weight
decay 0), lr 2e-6, 1 epoch, effective batch 32 = micro-batch 8 x 4 accumulation steps, cosine
schedule with warmup ceil(0.05 * steps) (as HF `TrainingArguments`), gradient-norm clip 0.3, max
length 512, bf16 autocast on GPU. On CPU the model trains in its own dtype (float32/float64) and a
run is deterministic for a seed and thread count. The mode and the neuron restrictions are
described in mwork.finetune.neurons.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mwork.adapters import COMPONENTS
from mwork.errors import MworkError
from mwork.finetune.delta import MODES
from mwork.runlabel import REGIONS
from mwork.settings import schema_default, schema_field

PRECISIONS: tuple[str, ...] = ("auto", "bf16", "none")
SCHEDULERS: tuple[str, ...] = ("cosine", "linear", "constant_with_warmup")


def _tuple_field(path: str):
    """A dataclass field with the schema's list default as a tuple (None stays None)."""
    value = schema_default(path)
    return field(default=None if value is None else tuple(value))


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning hyperparameters (recorded in the delta file).

    Attributes:
        mode: "ls", "random" or "full" (mwork.finetune.neurons).
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
        floats = {"lr": self.lr, "warmup_ratio": self.warmup_ratio, "adam_eps": self.adam_eps}
        floats |= {"weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm or 0.0}
        floats |= {f"adam_betas[{i}]": b for i, b in enumerate(self.adam_betas)}
        for name, value in floats.items():
            if not math.isfinite(float(value)):
                raise bad(f"{name}={value} is not a finite number", "give a finite value")
        if self.lr >= 1:  # AdamW moves every trained value by about lr per step
            raise bad(
                f"lr={self.lr:g} is >= 1 (every trained value would move by about that much "
                "per step and training diverges)",
                "use a small lr such as 2e-6 (released code); a sign may be missing",
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
