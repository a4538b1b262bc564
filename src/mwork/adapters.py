"""Model adapters: the one place that knows where each architecture keeps its neurons.

A *neuron* (paper §2.1) is one row or column of a weight matrix. mwork probes four components
per decoder layer, each an index space of "units":

    ffn     d_ffn units          FFN intermediate unit k = row k of W_up/W_gate, column k of W_down
    attn_q  n_heads * head_dim   output dim of W_Q (pre-RoPE), head h = unit // head_dim
    attn_k  n_kv * head_dim      output dim of W_K (pre-RoPE), shared by a GQA group of query heads
    attn_v  n_kv * head_dim      output dim of W_V, shared by a GQA group of query heads

Everything else (PLND capture, masking, fine-tuning masks, tests) asks the adapter, never the
model's module paths directly. Supported families (`config.model_type`): Llama (Vicuna,
Chinese-Llama, Llama-3.x with its rope scaling), Mistral (Mistral-Nemo's explicit head_dim),
Qwen2/Qwen2.5 (q/k/v biases), Gemma (GeGLU), Gemma-2 (soft-capping, sliding window), Gemma-3
(`gemma3_text`: interleaved sliding/global layers, per-head q/k RMSNorm with weight 1+w), Qwen3
(per-head q/k RMSNorm), OLMo-2 (q/k RMSNorm over the whole projection), Phi-3 (fused `qkv_proj`
and `gate_up_proj`: units index slices of the fused matrices, see `unit_layout`), BLOOM (fused
QKV, ALiBi).

Q/K RMSNorm (Qwen3, Gemma-3, OLMo-2): a unit is still a row of W_Q/W_K (the raw projection dim,
*before* the norm); `project_qk` returns raw projections and `geometry` describes the norm
(`QKNorm`), so zeroing that row is scored exactly (mwork.qknorm). Masking the raw output column
equals zeroing the row because the norm maps 0 to 0 (and rescales the rest as the real model does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mwork.components import ATTN_COMPONENTS, COMPONENTS
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


@dataclass(frozen=True)
class QKNorm:
    """RMSNorm applied to raw queries and keys before RoPE (Qwen3, Gemma-3, OLMo-2).

    HF's RMSNorm: y = g ⊙ x / sqrt(mean(x²) + eps), the mean over the normalised group.

    Attributes:
        q_gain: effective multiplier g of the query norm: [head_dim] per head, or
            [n_heads*head_dim] over the whole projection (Gemma-3: 1 + weight).
        k_gain: the same for keys ([head_dim] or [n_kv*head_dim]).
        eps: the variance epsilon.
        per_head: True when each head's head_dim dims are normalised separately (Qwen3,
            Gemma-3), False when the whole projection is (OLMo-2).
    """

    q_gain: torch.Tensor
    k_gain: torch.Tensor
    eps: float
    per_head: bool


@dataclass
class AttnGeometry:
    """Everything besides q/k needed to rebuild one layer's attention probabilities.

    Attributes:
        cos, sin: [b, l, head_dim] RoPE tables (HF rotate_half convention), or None (no RoPE).
        bias: [b, n_heads, 1 or l, l] additive score bias (ALiBi), or None.
        allowed: [b, 1, l, l] bool, True where query t may attend key s (causal, padding, window).
        scaling: multiplier on q·k (1/sqrt(d) or the model's own).
        softcap: Gemma-2 logit soft-capping constant, or None.
        qk_norm: the RMSNorm on raw queries/keys (then q_pre/k_pre are the raw projections), or
            None.
    """

    cos: torch.Tensor | None
    sin: torch.Tensor | None
    bias: torch.Tensor | None
    allowed: torch.Tensor
    scaling: float
    softcap: float | None
    qk_norm: QKNorm | None = None


def attention_allowed(token_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """Causal + key-padding (+ sliding window) mask for right-padded batches.

    Args:
        token_mask: [b, l] 1 for real tokens, 0 for padding.
        window: sliding window size (query t sees keys s with t - s < window), or None.

    Returns:
        [b, 1, l, l] bool.
    """
    seq = token_mask.shape[1]
    pos = torch.arange(seq, device=token_mask.device)
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


class QKNormAdapter(ModelAdapter):
    """Llama layout + RMSNorm on raw q/k: `q_norm`/`k_norm` per head (Qwen3) or whole (OLMo-2).

    `project_qk` (inherited) returns the raw projections; `geometry` adds the norm.
    """

    per_head = True
    gain_offset = 0.0  # Gemma-3 scales by (1 + weight)

    def qk_norm(self, i: int) -> QKNorm:
        attn = self.attention(i)
        qn, kn = attn.q_norm, attn.k_norm
        eps = getattr(qn, "variance_epsilon", None)
        eps = getattr(qn, "eps", None) if eps is None else eps
        return QKNorm(
            q_gain=qn.weight.detach() + self.gain_offset,
            k_gain=kn.weight.detach() + self.gain_offset,
            eps=float(eps),
            per_head=self.per_head,
        )

    def unit_layout(self) -> dict[str, str]:
        out = super().unit_layout()
        where = "per head" if self.per_head else "over the whole projection"
        for c in ("attn_q", "attn_k"):
            out[c] += f", before the q/k RMSNorm ({where})"
        return out


class Olmo2Adapter(QKNormAdapter):
    """OLMo-2: q/k RMSNorm over all heads' dims together; norms after (not before) sub-layers."""

    per_head = False


class Gemma3Adapter(QKNormAdapter):
    """Gemma-3 text (`gemma3_text`): per-head q/k RMSNorm with gain 1 + weight, interleaved
    sliding-window and global layers (each attention module knows its own window and RoPE
    tables arrive per layer type), scaling query_pre_attn_scalar^-1/2."""

    gain_offset = 1.0


class Phi3Adapter(ModelAdapter):
    """Phi-3: fused `qkv_proj` (rows [q | k | v]) and `gate_up_proj` (rows [gate | up]).

    Units index slices of the fused matrices (see `unit_layout`): FFN unit k is row k (gate) and
    row d_ffn + k (up) of gate_up_proj and column k of down_proj; attn_q unit u is row u of
    qkv_proj, attn_k unit u row n_heads*head_dim + u, attn_v unit u row (n_heads + n_kv)*head_dim
    + u.
    """

    def _offset(self, component: str) -> int:
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return {"attn_q": 0, "attn_k": q, "attn_v": q + kv}[component]

    def up_proj(self, i: int) -> nn.Linear:
        return self.mlp(i).gate_up_proj

    def up_output(self, i: int, output: torch.Tensor) -> torch.Tensor:
        return output[..., self.d_ffn :]

    def ffn_activation(self, i: int) -> nn.Module:
        return self.mlp(i).activation_fn

    def unit_layout(self) -> dict[str, str]:
        q, kv, f = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.d_ffn
        return {
            "ffn": f"rows u (gate) and {f} + u (up) of mlp.gate_up_proj, column u of mlp.down_proj",
            "attn_q": "row u of self_attn.qkv_proj (q slice 0..); head u // head_dim, pre-RoPE",
            "attn_k": f"row {q} + u of self_attn.qkv_proj (k slice); kv head u // head_dim",
            "attn_v": f"row {q + kv} + u of self_attn.qkv_proj (v slice); kv head u // head_dim",
        }

    def output_site(self, i: int, component: str) -> OutputSite:
        index = self._offset(component) + torch.arange(self.n_units(component))
        return OutputSite(self.attention(i).qkv_proj, index)

    def neuron_slices(self, i: int, component: str) -> list[ParamSlice]:
        if component == "ffn":
            ar = torch.arange(self.d_ffn)
            fused = self.mlp(i).gate_up_proj.weight
            return [
                ParamSlice(fused, 0, ar, gate=True),
                ParamSlice(fused, 0, self.d_ffn + ar),
                ParamSlice(self.down_proj(i).weight, 1, ar),
            ]
        return super().neuron_slices(i, component)

    def qk_projections(self, i: int) -> tuple[nn.Module, ...]:
        return (self.attention(i).qkv_proj,)

    def split_qk(
        self, i: int, outputs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (qkv,) = outputs
        b, seq, _ = qkv.shape
        q_end, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        q = qkv[..., :q_end].reshape(b, seq, self.n_heads, self.head_dim).transpose(1, 2)
        k = qkv[..., q_end : q_end + kv].reshape(b, seq, self.n_kv_heads, self.head_dim)
        return q, k.transpose(1, 2)


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

    def ffn_activation(self, i: int) -> nn.Module:
        return self.mlp(i).gelu_impl

    def final_norm(self) -> nn.Module:
        return self.model.transformer.ln_f

    def unit_layout(self) -> dict[str, str]:
        d = self.head_dim
        return {
            "ffn": "row u of mlp.dense_h_to_4h (+bias), column u of mlp.dense_4h_to_h",
            "attn_q": f"row (u // {d})*{3 * d} + u % {d} of self_attention.query_key_value",
            "attn_k": f"row (u // {d})*{3 * d} + {d} + u % {d} of self_attention.query_key_value",
            "attn_v": f"row (u // {d})*{3 * d} + {2 * d} + u % {d} of "
            "self_attention.query_key_value",
        }

    def output_site(self, i: int, component: str) -> OutputSite:
        # fused row of (head h, part c, dim j) = h*3*d + c*d + j  (BloomAttention._reshape)
        part = {"attn_q": 0, "attn_k": 1, "attn_v": 2}[component]
        unit = torch.arange(self.n_heads * self.head_dim)
        h, j = unit // self.head_dim, unit % self.head_dim
        index = h * 3 * self.head_dim + part * self.head_dim + j
        return OutputSite(self.attention(i).query_key_value, index)

    def qk_projections(self, i: int) -> tuple[nn.Module, ...]:
        return (self.attention(i).query_key_value,)

    def split_qk(
        self, i: int, outputs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (qkv,) = outputs
        b, seq, _ = qkv.shape
        fused = qkv.view(b, seq, self.n_heads, 3, self.head_dim)
        return fused[..., 0, :].transpose(1, 2), fused[..., 1, :].transpose(1, 2)

    def sliding_window(self, i: int) -> int | None:
        return None

    def geometry(self, i: int, kwargs: dict[str, Any], token_mask: torch.Tensor) -> AttnGeometry:
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
    "gemma": ModelAdapter,
    "gemma2": ModelAdapter,
    "gemma3_text": Gemma3Adapter,
    "qwen3": QKNormAdapter,
    "olmo2": Olmo2Adapter,
    "phi3": Phi3Adapter,
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
