"""The adapter base class (Llama layout): module paths, unit index spaces, attention internals.

A subclass per family that lays its weights out differently lives in `mwork.adapters.families`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mwork.adapters.geometry import AttnGeometry, QKNorm, attention_allowed
from mwork.components import COMPONENTS
from mwork.errors import MworkError


@dataclass(frozen=True)
class ParamSlice:
    """The part of one parameter tensor that belongs to a component's units.

    Attributes:
        param: the weight or bias tensor.
        dim: the dimension along which units index `param` (0 = rows/bias entries, 1 = columns).
        index: [n_units] int64, position along `dim` of each unit.
        gate: the slice is part of W_gate (the released code never fine-tunes it).
    """

    param: nn.Parameter
    dim: int
    index: torch.Tensor
    gate: bool = False


@dataclass(frozen=True)
class OutputSite:
    """A module whose output's last dimension holds a component's units (q/k/v projections).

    Zeroing `output[..., index[u]]` is exactly zeroing unit u's weight row and bias.
    """

    module: nn.Module
    index: torch.Tensor  # [n_units] int64 positions in the module output's last dim


class ModelAdapter:
    """Architecture knowledge for one loaded decoder-only model (base class: Llama layout)."""

    family = "llama"

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.config = model.config
        cfg = self.config
        self.n_layers: int = cfg.num_hidden_layers
        self.n_heads: int = cfg.num_attention_heads
        self.n_kv_heads: int = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim: int = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.d_model: int = cfg.hidden_size
        self.d_ffn: int = cfg.intermediate_size

    # --- modules -------------------------------------------------------------------------
    def layer(self, i: int) -> nn.Module:
        """Decoder layer i."""
        return self.model.model.layers[i]

    def attention(self, i: int) -> nn.Module:
        """Self-attention module of layer i (its output is the attention sub-layer output)."""
        return self.layer(i).self_attn

    def mlp(self, i: int) -> nn.Module:
        """FFN module of layer i (its output is the FFN sub-layer output)."""
        return self.layer(i).mlp

    def down_proj(self, i: int) -> nn.Linear:
        """W_down of layer i; its input is h_ffn [b, l, d_ffn]."""
        return self.mlp(i).down_proj

    def up_proj(self, i: int) -> nn.Linear:
        """W_up of layer i (the released code's FFN proxy reads its output)."""
        return self.mlp(i).up_proj

    def o_proj(self, i: int) -> nn.Linear:
        """W_O of layer i; its input is the per-head attention output [b, l, n_heads*head_dim]."""
        return self.attention(i).o_proj

    def ffn_activation(self, i: int) -> nn.Module:
        """The FFN's gate non-linearity of layer i; its output [b, l, d_ffn] is act(W_gate x)
        (LAPE's activation; GELU(W_up x) for non-gated FFNs). One module per layer."""
        return self.mlp(i).act_fn

    def final_norm(self) -> nn.Module:
        """Final norm before the LM head (used by the logit lens)."""
        return self.model.model.norm

    # --- index spaces ----------------------------------------------------------------------
    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without GQA)."""
        return self.n_heads // self.n_kv_heads

    def n_units(self, component: str) -> int:
        """Number of neurons of `component` in one layer."""
        return {
            "ffn": self.d_ffn,
            "attn_q": self.n_heads * self.head_dim,
            "attn_k": self.n_kv_heads * self.head_dim,
            "attn_v": self.n_kv_heads * self.head_dim,
        }[component]

    def unit_counts(self) -> dict[str, int]:
        """Units per layer for every component."""
        return {c: self.n_units(c) for c in COMPONENTS}

    def unit_layout(self) -> dict[str, str]:
        """Where each component's unit u lives in the weights, in words (neuron-file metadata)."""
        return {
            "ffn": "row u of mlp.gate_proj and mlp.up_proj (+bias), column u of mlp.down_proj",
            "attn_q": "row u of self_attn.q_proj (+bias); head u // head_dim, pre-RoPE",
            "attn_k": "row u of self_attn.k_proj (+bias); kv head u // head_dim, pre-RoPE",
            "attn_v": "row u of self_attn.v_proj (+bias); kv head u // head_dim",
        }

    def up_output(self, i: int, output: torch.Tensor) -> torch.Tensor:
        """W_up x [b, l, d_ffn] from the output of `up_proj(i)` (a fused module holds more)."""
        return output

    def output_site(self, i: int, component: str) -> OutputSite:
        """Where a q/k/v unit appears as a projection output column (for masking)."""
        attn = self.attention(i)
        module = {"attn_q": attn.q_proj, "attn_k": attn.k_proj, "attn_v": attn.v_proj}[component]
        return OutputSite(module, torch.arange(self.n_units(component)))

    def neuron_slices(self, i: int, component: str) -> list[ParamSlice]:
        """Every parameter slice that belongs to a unit ("all parameters of the neuron", §4.1)."""
        if component == "ffn":
            mlp, ar = self.mlp(i), torch.arange(self.d_ffn)
            gate = getattr(mlp, "gate_proj", None)
            rows = [m for m in (gate, self.up_proj(i)) if m is not None]
            out = [ParamSlice(m.weight, 0, ar, m is gate) for m in rows]
            out += [ParamSlice(m.bias, 0, ar, m is gate) for m in rows if m.bias is not None]
            return out + [ParamSlice(self.down_proj(i).weight, 1, ar)]
        site = self.output_site(i, component)
        lin = site.module
        out = [ParamSlice(lin.weight, 0, site.index)]
        if lin.bias is not None:
            out.append(ParamSlice(lin.bias, 0, site.index))
        return out

    # --- attention internals for Q/K importance ---------------------------------------------
    def project_qk(self, i: int, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-RoPE queries and keys, biases included.

        Args:
            hidden: [b, l, d_model], the attention module's input.

        Returns:
            q [b, n_heads, l, head_dim], k [b, n_kv, l, head_dim].
        """
        return self.split_qk(i, tuple(m(hidden) for m in self.qk_projections(i)))

    def qk_projections(self, i: int) -> tuple[nn.Module, ...]:
        """The modules whose outputs hold layer i's raw queries and keys (see split_qk)."""
        attn = self.attention(i)
        return attn.q_proj, attn.k_proj

    def split_qk(
        self, i: int, outputs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs of qk_projections(i), each [b, l, ·] -> (q [b, n_heads, l, d], k [b, n_kv, l, d])."""
        q, k = outputs
        b, seq, _ = q.shape
        q = q.view(b, seq, self.n_heads, self.head_dim).transpose(1, 2)
        return q, k.view(b, seq, self.n_kv_heads, self.head_dim).transpose(1, 2)

    def sliding_window(self, i: int) -> int | None:
        """Sliding-window size used by layer i, or None."""
        attn = self.attention(i)
        if hasattr(attn, "sliding_window"):
            return attn.sliding_window
        return getattr(self.config, "sliding_window", None)

    def geometry(self, i: int, kwargs: dict[str, Any], token_mask: torch.Tensor) -> AttnGeometry:
        """Attention geometry of layer i from the kwargs its attention module was called with."""
        attn = self.attention(i)
        cos, sin = kwargs["position_embeddings"]
        if cos.shape[-1] != self.head_dim:
            raise MworkError(
                f"partial rotary embedding ({cos.shape[-1]} of {self.head_dim} head dims) in the "
                f"{self.family} model is not supported by Q/K importance",
                "use a model with full rotary embeddings, or detect only ffn and attn_v",
            )
        return AttnGeometry(
            cos=cos,
            sin=sin,
            bias=None,
            allowed=attention_allowed(token_mask, self.sliding_window(i)),
            scaling=float(attn.scaling),
            softcap=getattr(attn, "attn_logit_softcapping", None),
            qk_norm=self.qk_norm(i),
        )

    def qk_norm(self, i: int) -> QKNorm | None:
        """The RMSNorm on layer i's raw queries and keys, or None (no Q/K norm)."""
        return None
