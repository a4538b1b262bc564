"""Adapters of the families whose weights differ from the Llama layout: Q/K RMSNorm (Qwen3,
OLMo-2, Gemma-3), fused QKV/gate-up matrices (Phi-3) and BLOOM (fused per-head QKV, ALiBi)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mwork.adapters.base import ModelAdapter, OutputSite, ParamSlice
from mwork.adapters.geometry import AttnGeometry, QKNorm, attention_allowed
from mwork.devices import param_value


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
            q_gain=param_value(qn).detach() + self.gain_offset,  # offloaded: from its map
            k_gain=param_value(kn).detach() + self.gain_offset,
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
