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
(`QKNorm`), so zeroing that row is scored exactly (mwork.plnd.qknorm). Masking the raw output column
equals zeroing the row because the norm maps 0 to 0 (and rescales the rest as the real model does).

Modules: `geometry` (attention geometry for Q/K importance), `base` (the Llama-layout
`ModelAdapter`), `families` (the other layouts); this package holds the registry (`get_adapter`).
The component names live in the torch-free `mwork.components` (re-exported here).
"""

from __future__ import annotations

from torch import nn

from mwork.adapters.base import ModelAdapter, OutputSite, ParamSlice
from mwork.adapters.families import (
    BloomAdapter,
    Gemma3Adapter,
    Olmo2Adapter,
    Phi3Adapter,
    QKNormAdapter,
)
from mwork.adapters.geometry import AttnGeometry, QKNorm, attention_allowed
from mwork.components import ATTN_COMPONENTS, COMPONENTS
from mwork.errors import MworkError

__all__ = [
    "ADAPTERS",
    "ATTN_COMPONENTS",
    "COMPONENTS",
    "AttnGeometry",
    "BloomAdapter",
    "Gemma3Adapter",
    "ModelAdapter",
    "Olmo2Adapter",
    "OutputSite",
    "ParamSlice",
    "Phi3Adapter",
    "QKNorm",
    "QKNormAdapter",
    "attention_allowed",
    "get_adapter",
    "supported_architectures",
]


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
