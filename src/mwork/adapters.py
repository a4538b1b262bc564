"""Model adapters: the one place that knows where each architecture keeps its neurons.

A *neuron* (paper §2.1) is one row or column of a weight matrix. mwork probes four components
per decoder layer, each an index space of "units":

    ffn     d_ffn units          FFN intermediate unit k = row k of W_up/W_gate, column k of W_down
    attn_q  n_heads * head_dim   output dim of W_Q (pre-RoPE), head h = unit // head_dim
    attn_k  n_kv * head_dim      output dim of W_K (pre-RoPE), shared by a GQA group of query heads
    attn_v  n_kv * head_dim      output dim of W_V, shared by a GQA group of query heads

Everything else (PLND capture, masking, fine-tuning masks, tests) asks the adapter, never the
model's module paths directly. Supported families: Llama (Vicuna, Chinese-Llama, Llama-3),
Mistral, Qwen2 (q/k/v biases), Gemma-2 (soft-capping, sliding window), BLOOM (fused QKV, ALiBi).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mwork.errors import MworkError

COMPONENTS: tuple[str, ...] = ("ffn", "attn_q", "attn_k", "attn_v")
ATTN_COMPONENTS: tuple[str, ...] = ("attn_q", "attn_k", "attn_v")


@dataclass(frozen=True)
class ParamSlice:
    """The part of one parameter tensor that belongs to a component's units.

    Attributes:
        param: the weight or bias tensor.
        dim: the dimension along which units index `param` (0 = rows/bias entries, 1 = columns).
        index: [n_units] int64, position along `dim` of each unit.
    """

    param: nn.Parameter
    dim: int
    index: torch.Tensor


@dataclass(frozen=True)
class OutputSite:
    """A module whose output's last dimension holds a component's units (q/k/v projections).

    Zeroing `output[..., index[u]]` is exactly zeroing unit u's weight row and bias.
    """

    module: nn.Module
    index: torch.Tensor  # [n_units] int64 positions in the module output's last dim


@dataclass
class AttnGeometry:
    """Everything besides q/k needed to rebuild one layer's attention probabilities.

    Attributes:
        cos, sin: [b, l, head_dim] RoPE tables (HF rotate_half convention), or None (no RoPE).
        bias: [b, n_heads, 1 or l, l] additive score bias (ALiBi), or None.
        allowed: [b, 1, l, l] bool, True where query t may attend key s (causal, padding, window).
        scaling: multiplier on q·k (1/sqrt(d) or the model's own).
        softcap: Gemma-2 logit soft-capping constant, or None.
    """

    cos: torch.Tensor | None
    sin: torch.Tensor | None
    bias: torch.Tensor | None
    allowed: torch.Tensor
    scaling: float
    softcap: float | None


def attention_allowed(token_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """Causal + key-padding (+ sliding window) mask for right-padded batches.

    Args:
        token_mask: [b, l] 1 for real tokens, 0 for padding.
        window: sliding window size (query t sees keys s with t - s < window), or None.

    Returns:
        [b, 1, l, l] bool.
    """
    l = token_mask.shape[1]
    pos = torch.arange(l, device=token_mask.device)
    allowed = pos[None, :] <= pos[:, None]  # [l(t), l(s)]
    if window is not None:
        allowed = allowed & (pos[:, None] - pos[None, :] < window)
    return allowed[None, None] & token_mask.bool()[:, None, None, :]


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

    def output_site(self, i: int, component: str) -> OutputSite:
        """Where a q/k/v unit appears as a projection output column (for masking)."""
        attn = self.attention(i)
        module = {"attn_q": attn.q_proj, "attn_k": attn.k_proj, "attn_v": attn.v_proj}[component]
        return OutputSite(module, torch.arange(self.n_units(component)))

    def neuron_slices(self, i: int, component: str) -> list[ParamSlice]:
        """Every parameter slice that belongs to a unit ("all parameters of the neuron", §4.1)."""
        if component == "ffn":
            mlp, ar = self.mlp(i), torch.arange(self.d_ffn)
            rows = [m for m in (getattr(mlp, "gate_proj", None), self.up_proj(i)) if m is not None]
            out = [ParamSlice(m.weight, 0, ar) for m in rows]
            out += [ParamSlice(m.bias, 0, ar) for m in rows if m.bias is not None]
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
        attn = self.attention(i)
        b, l, _ = hidden.shape
        q = attn.q_proj(hidden).view(b, l, self.n_heads, self.head_dim).transpose(1, 2)
        k = attn.k_proj(hidden).view(b, l, self.n_kv_heads, self.head_dim).transpose(1, 2)
        return q, k

    def sliding_window(self, i: int) -> int | None:
        """Sliding-window size used by layer i, or None."""
        attn = self.attention(i)
        if hasattr(attn, "sliding_window"):
            return attn.sliding_window
        return getattr(self.config, "sliding_window", None)

    def geometry(
        self, i: int, kwargs: dict[str, Any], token_mask: torch.Tensor
    ) -> AttnGeometry:
        """Attention geometry of layer i from the kwargs its attention module was called with."""
        attn = self.attention(i)
        cos, sin = kwargs["position_embeddings"]
        return AttnGeometry(
            cos=cos,
            sin=sin,
            bias=None,
            allowed=attention_allowed(token_mask, self.sliding_window(i)),
            scaling=float(attn.scaling),
            softcap=getattr(attn, "attn_logit_softcapping", None),
        )


class BloomAdapter(ModelAdapter):
    """BLOOM: fused query_key_value (per head: q, k, v blocks), ALiBi, GELU FFN."""

    family = "bloom"

    def __init__(self, model: nn.Module) -> None:
        cfg = model.config
        self.model, self.config = model, cfg
        self.n_layers = cfg.n_layer
        self.n_heads = self.n_kv_heads = cfg.n_head
        self.d_model = cfg.hidden_size
        self.head_dim = cfg.hidden_size // cfg.n_head
        self.d_ffn = 4 * cfg.hidden_size

    def layer(self, i: int) -> nn.Module:
        return self.model.transformer.h[i]

    def attention(self, i: int) -> nn.Module:
        return self.layer(i).self_attention

    def down_proj(self, i: int) -> nn.Linear:
        return self.mlp(i).dense_4h_to_h

    def up_proj(self, i: int) -> nn.Linear:
        return self.mlp(i).dense_h_to_4h

    def o_proj(self, i: int) -> nn.Linear:
        return self.attention(i).dense

    def final_norm(self) -> nn.Module:
        return self.model.transformer.ln_f

    def output_site(self, i: int, component: str) -> OutputSite:
        # fused row of (head h, part c, dim j) = h*3*d + c*d + j  (BloomAttention._reshape)
        part = {"attn_q": 0, "attn_k": 1, "attn_v": 2}[component]
        unit = torch.arange(self.n_heads * self.head_dim)
        h, j = unit // self.head_dim, unit % self.head_dim
        index = h * 3 * self.head_dim + part * self.head_dim + j
        return OutputSite(self.attention(i).query_key_value, index)

    def project_qk(self, i: int, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, l, _ = hidden.shape
        fused = self.attention(i).query_key_value(hidden).view(b, l, self.n_heads, 3, self.head_dim)
        return fused[..., 0, :].transpose(1, 2), fused[..., 1, :].transpose(1, 2)

    def sliding_window(self, i: int) -> int | None:
        return None

    def geometry(
        self, i: int, kwargs: dict[str, Any], token_mask: torch.Tensor
    ) -> AttnGeometry:
        alibi = kwargs["alibi"]  # [b*n_heads, 1, l]
        b = token_mask.shape[0]
        return AttnGeometry(
            cos=None,
            sin=None,
            bias=alibi.view(b, self.n_heads, 1, -1),
            allowed=attention_allowed(token_mask, None),
            scaling=float(self.attention(i).inv_norm_factor),
            softcap=None,
        )


ADAPTERS: dict[str, type[ModelAdapter]] = {
    "llama": ModelAdapter,
    "mistral": ModelAdapter,
    "qwen2": ModelAdapter,
    "gemma2": ModelAdapter,
    "bloom": BloomAdapter,
}


def supported_architectures() -> list[str]:
    """Names of the supported `config.model_type` values."""
    return sorted(ADAPTERS)


def get_adapter(model: nn.Module) -> ModelAdapter:
    """The adapter for `model`, or a one-line error listing what is supported."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    if model_type not in ADAPTERS:
        raise MworkError(
            f"unsupported architecture '{model_type}'",
            f"supported: {', '.join(supported_architectures())}",
        )
    adapter = ADAPTERS[model_type](model)
    adapter.family = model_type
    return adapter
