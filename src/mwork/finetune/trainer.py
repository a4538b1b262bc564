"""One fine-tuning run's trainable tensors, optimizer, schedule and step (`FinetuneTrainer`).

The loss of an optimizer step is the sum of token losses over its effective batch divided by its
token count, so gradient accumulation gives exactly the gradient of the whole batch.

Where the sparse form necessarily differs from the released code (see `mwork.finetune.sparse`):
the released code clips the norm of the full gradient and then zeroes the non-selected entries;
here only the selected slices have gradients, so the clip bounds the norm of the sparse gradient.
The two coincide only if the non-selected gradients are zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import nullcontext

import torch
import torch.nn.functional as F
import transformers

from mwork.adapters import ModelAdapter
from mwork.devices import input_device, is_offloaded
from mwork.errors import MworkError
from mwork.finetune.rows import PAD
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.sparse import SparseDelta, attach_sparse
from mwork.finite import check_loss


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
        if is_offloaded(self.model):  # meta weights: nothing to differentiate or update
            raise MworkError(
                "fine-tuning cannot train weights offloaded to cpu/disk (models.<alias>.devices)",
                "split the model over enough GPUs (devices: N) with no cpu or disk entries",
            )
        if selection is None:
            for p in self.model.parameters():
                p.requires_grad_(True)
            self.params = [p for p in self.model.parameters()]
        else:
            self.sparse = attach_sparse(adapter, selection, settings.train_gate)
            self.params = self.sparse.parameters()
        self.device = input_device(self.model)  # where batches go (a split model: its embedding's)
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
        self.n_steps = 0
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
        self.n_steps += 1
        check_loss(total, self.n_steps, self.scheduler.get_last_lr()[0])  # before the update
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
