"""Neuron-sparse trainable slices: only the selected neurons' parameters carry gradients and state.

A neuron's parameters (`ModelAdapter.neuron_slices`, paper §4 "the parameters of the neuron"):

    ffn unit k     row k of W_gate and W_up (+ their bias entry k where the family has biases),
                   column k of W_down
    attn_q/k/v u   row `site.index[u]` of W_Q / W_K / W_V (+ bias entry); BLOOM: of the fused
                   query_key_value matrix (rows of several components share one module)

`attach_sparse` freezes every base parameter (`requires_grad=False`, the tensors are never
written) and gives each touched parameter one trainable tensor `values` holding the current
values of its selected slices: [n, d_in] for rows, [n] for bias entries, [d_out, n] for columns.
A forward hook on the owning `nn.Linear` adds the difference to the frozen output,

    rows:     y[..., idx] += x @ (V - W[idx])^T + (V_b - b[idx])
    columns:  y            += x[..., idx] @ (V - W[:, idx])^T

which equals running the linear layer with the selected slices replaced by `values` (so AdamW's
decoupled weight decay acts on the neuron's weights, as it would on the full matrix). At the start
`V = W[idx]`, the added term is exactly zero and the model is bit-identical to the base. The
gradient reaching `values` is the full model's gradient restricted to those slices, and the
weight-gradient matmuls cost O(n_selected), so trainable parameters, gradients and AdamW state all
scale with the neuron count, not the model.

Differences from the released code (`neuron_enhancement/transformers/trainer.py`, paper digest
§5.2) that the sparse form implies:

- Gradient clipping: the released code clips the norm of the *full* gradient (all 8B parameters)
  and zeroes the non-selected gradients afterwards; here only the selected slices have gradients,
  so `max_grad_norm` bounds the norm of the sparse gradient. The two coincide only if the
  non-selected gradients are zero; otherwise the released code's clipping factor is smaller.
- The released code trains rows of q/k/v/up and columns of down but never W_gate; `train_gate=
  False` reproduces that. It caps each matrix at 100 indices per layer (`islice` of a set),
  reproduced by the caller's `cap_per_matrix` switch (see `mwork.finetune.neurons`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from mwork.adapters import COMPONENTS, ModelAdapter
from mwork.errors import MworkError


@dataclass
class TrainSlice:
    """The trainable part of one base parameter.

    Attributes:
        name: the parameter's name in `model.named_parameters()`.
        dim: 0 = rows (weight rows or bias entries), 1 = columns.
        index: [n] int64, sorted positions along `dim` (on the parameter's device).
        values: trainable tensor, [n, d_in] (weight rows), [n] (bias) or [d_out, n] (columns),
            float32 when the base is bf16/fp16 (master copy), else the base dtype.
        base: the frozen base parameter.
    """

    name: str
    dim: int
    index: torch.Tensor
    values: nn.Parameter
    base: nn.Parameter

    def base_values(self) -> torch.Tensor:
        """The base parameter's current values at the slice positions (same shape as `values`)."""
        return self.base.detach().index_select(self.dim, self.index)

    def delta(self) -> torch.Tensor:
        """`values - base slice` (differentiable with respect to `values`)."""
        return self.values - self.base_values().to(self.values.dtype)


def master_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of the trainable copy: float32 for half-precision bases, else the base dtype."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def check_selection(adapter: ModelAdapter, selection: Mapping[str, torch.Tensor]) -> None:
    """Raise MworkError unless `selection` is component -> bool [n_layers, n_units] here."""
    for comp, sel in selection.items():
        if comp not in COMPONENTS:
            raise MworkError(
                f"unknown component '{comp}' in the neuron selection",
                f"use {', '.join(COMPONENTS)}",
            )
        want = (adapter.n_layers, adapter.n_units(comp))
        if tuple(sel.shape) != want or sel.dtype != torch.bool:
            raise MworkError(
                f"neuron selection for {comp} is {sel.dtype} {tuple(sel.shape)}, "
                f"expected bool {list(want)}",
                "use a neuron file detected on this model (k/v in kv space)",
            )


def slice_plan(
    adapter: ModelAdapter, selection: Mapping[str, torch.Tensor], train_gate: bool = True
) -> dict[str, tuple[nn.Parameter, int, torch.Tensor]]:
    """Per base parameter name: (parameter, dim, sorted positions) of the selected neurons' slices.

    Args:
        adapter: the model's adapter (the only place that knows module paths).
        selection: component -> [n_layers, n_units] bool.
        train_gate: include W_gate rows (paper); False = the released code (gate frozen).

    Returns:
        Ordered by model parameter order; parameters without selected slices are absent.
    """
    check_selection(adapter, selection)
    names = {id(p): n for n, p in adapter.model.named_parameters()}
    parts: dict[int, tuple[nn.Parameter, int, list[torch.Tensor]]] = {}
    for layer in range(adapter.n_layers):
        for comp, sel in selection.items():
            units = torch.nonzero(sel[layer]).flatten()
            if not units.numel():
                continue
            for ps in adapter.neuron_slices(layer, comp):
                if ps.gate and not train_gate:  # W_gate rows, also inside Phi-3's fused gate_up
                    continue
                entry = parts.setdefault(id(ps.param), (ps.param, ps.dim, []))
                if entry[1] != ps.dim:
                    raise MworkError(
                        f"parameter {names[id(ps.param)]} is sliced along two dimensions",
                        "this architecture is not supported for sparse fine-tuning",
                    )
                entry[2].append(ps.index[units])
    order = {k: i for i, k in enumerate(names)}
    plan = {}
    for key in sorted(parts, key=order.__getitem__):
        param, dim, pieces = parts[key]
        index = torch.cat(pieces)
        unique = torch.unique(index)  # sorted
        if unique.numel() != index.numel():
            raise MworkError(
                f"neurons of different components share slices of {names[key]}",
                "this architecture is not supported for sparse fine-tuning",
            )
        plan[names[key]] = (param, dim, unique.to(param.device))
    return plan


def _owners(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """id(parameter) -> (module that owns it directly, attribute name)."""
    out = {}
    for module in model.modules():
        for attr, p in module.named_parameters(recurse=False):
            out.setdefault(id(p), (module, attr))
    return out


class SparseDelta:
    """Trainable slices attached to a frozen model by forward hooks (see module docstring).

    Use as a context manager or call `remove()`; the base parameters are never modified.

    Attributes:
        slices: one TrainSlice per touched base parameter, in model parameter order.
    """

    def __init__(self, model: nn.Module, slices: list[TrainSlice]) -> None:
        self.model = model
        self.slices = slices
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        owners = _owners(model)
        by_module: dict[int, tuple[nn.Module, list[tuple[str, TrainSlice]]]] = {}
        for s in slices:
            module, attr = owners[id(s.base)]
            if not isinstance(module, nn.Linear):
                raise MworkError(
                    f"{s.name} belongs to a {type(module).__name__}, not nn.Linear",
                    "sparse fine-tuning supports linear projections only",
                )
            by_module.setdefault(id(module), (module, []))[1].append((attr, s))
        for module, items in by_module.values():
            self._handles.append(module.register_forward_hook(self._hook(items)))

    @staticmethod
    def _hook(items: list[tuple[str, TrainSlice]]):
        rows = next((s for a, s in items if a == "weight" and s.dim == 0), None)
        bias = next((s for a, s in items if a == "bias"), None)
        cols = next((s for a, s in items if a == "weight" and s.dim == 1), None)
        if bias is not None and (rows is None or not torch.equal(bias.index, rows.index)):
            raise MworkError(
                f"{bias.name} is trained without its weight rows", "select whole neurons"
            )

        def hook(
            module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor
        ) -> torch.Tensor:
            x = args[0]  # [..., d_in]
            if rows is not None:
                db = bias.delta().to(out.dtype) if bias is not None else None
                add = F.linear(x, rows.delta().to(x.dtype), db)  # [..., n]
                out = out.index_add(-1, rows.index, add.to(out.dtype))
            if cols is not None:
                add = F.linear(
                    x.index_select(-1, cols.index), cols.delta().to(x.dtype)
                )  # [..., d_out]
                out = out + add.to(out.dtype)
            return out

        return hook

    def parameters(self) -> list[nn.Parameter]:
        """The trainable tensors (what the optimizer sees)."""
        return [s.values for s in self.slices]

    def n_trainable(self) -> int:
        """Number of trainable scalars."""
        return sum(s.values.numel() for s in self.slices)

    def remove(self) -> None:
        """Detach the hooks (the model then computes the base again)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def freeze(model: nn.Module) -> None:
    """`requires_grad=False` on every parameter of `model`."""
    for p in model.parameters():
        p.requires_grad_(False)


def attach_sparse(
    adapter: ModelAdapter, selection: Mapping[str, torch.Tensor], train_gate: bool = True
) -> SparseDelta:
    """Freeze the model and attach trainable slices for the selected neurons.

    Args:
        adapter: adapter of the model to train.
        selection: component -> [n_layers, n_units] bool (k/v units in kv space).
        train_gate: include W_gate rows (False = the released code).

    Returns:
        The SparseDelta (hooks active); with an empty selection it has no slices and no hooks.
    """
    model = adapter.model
    freeze(model)
    slices = []
    for name, (param, dim, index) in slice_plan(adapter, selection, train_gate).items():
        init = param.detach().index_select(dim, index).to(master_dtype(param.dtype)).clone()
        slices.append(TrainSlice(name, dim, index, nn.Parameter(init), param))
    return SparseDelta(model, slices)
