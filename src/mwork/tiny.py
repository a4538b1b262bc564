"""Tiny random models and tokenizers of every supported family, built offline from configs.

Used by the tests, the benchmarks and `mwork tiny-model` (a quick local model directory for trying
the workflow). Nothing here downloads anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import transformers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

FAMILIES: tuple[str, ...] = (
    "llama",
    "mistral",
    "qwen2",
    "gemma2",
    "bloom",
    "llama3",
    "mistral_nemo",
    "gemma",
    "gemma3",
    "qwen3",
    "olmo2",
    "phi3",
)
"""Tiny model kinds: one per supported `model_type`, plus `llama3` (Llama-3.x rope scaling) and
`mistral_nemo` (explicit head_dim 16 ≠ hidden/heads 8) through the Llama/Mistral adapter."""

VLLM_SHAPE: dict[str, int] = dict(
    hidden_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    intermediate_size=192,
)
"""Config overrides giving a tiny model vLLM's CPU attention can run (head_dim >= 32, a multiple
of 16; GQA 4:2), for the vllm backend's tests (`tests/vllm/`)."""

QK_NORM_FAMILIES: tuple[str, ...] = ("gemma3", "qwen3", "olmo2")
"""Tiny kinds with RMSNorm on queries and keys (their norm gains are randomised)."""


def tiny_config(
    family: str, vocab_size: int = 96, **overrides: object
) -> transformers.PretrainedConfig:
    """A small config of `family` (GQA where it exists; Mistral/Gemma-2/3 with a short window).

    Args:
        family: one of FAMILIES.
        vocab_size: vocabulary size.
        **overrides: config fields to change (e.g. hidden_size, num_hidden_layers).
    """
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, initializer_range=0.2)
    decoder = dict(
        common,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if family == "llama":
        kw = dict(decoder)
        cls = transformers.LlamaConfig
    elif family == "mistral":
        kw = dict(decoder, sliding_window=6)
        cls = transformers.MistralConfig
    elif family == "qwen2":
        kw = dict(decoder, use_sliding_window=False)
        cls = transformers.Qwen2Config
    elif family == "gemma2":
        kw = dict(
            decoder,
            sliding_window=6,
            query_pre_attn_scalar=8,
            attn_logit_softcapping=5.0,
            final_logit_softcapping=30.0,
        )
        cls = transformers.Gemma2Config
    elif family == "llama3":
        rope = dict(
            rope_type="llama3",
            rope_theta=500000.0,
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=32,
        )
        kw = dict(decoder, rope_parameters=rope)
        cls = transformers.LlamaConfig
    elif family == "mistral_nemo":
        kw = dict(decoder, head_dim=16, sliding_window=None)
        cls = transformers.MistralConfig
    elif family == "gemma":
        kw = dict(decoder)
        cls = transformers.GemmaConfig
    elif family == "gemma3":
        rope = {
            "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
            "full_attention": dict(rope_type="default", rope_theta=1000000.0),
        }
        kw = dict(
            decoder,
            sliding_window=6,
            query_pre_attn_scalar=12,
            rms_norm_eps=0.05,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters=rope,
        )
        cls = transformers.Gemma3TextConfig
    elif family == "qwen3":
        kw = dict(decoder, use_sliding_window=False, rms_norm_eps=0.05)
        cls = transformers.Qwen3Config
    elif family == "olmo2":
        kw = dict(decoder, rms_norm_eps=0.05)
        cls = transformers.Olmo2Config
    elif family == "phi3":
        kw = {k: v for k, v in decoder.items() if k != "head_dim"}
        cls = transformers.Phi3Config
    elif family == "bloom":
        kw = dict(
            vocab_size=vocab_size,
            hidden_size=32,
            n_layer=2,
            n_head=4,
            initializer_range=0.2,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        cls = transformers.BloomConfig
    else:
        raise ValueError(f"unknown tiny family {family!r}; choose from {FAMILIES}")
    kw.update(overrides)
    return cls(**kw)


def tiny_model(
    family: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides: object
) -> PreTrainedModel:
    """A randomly initialised causal LM of `family`, eval mode, eager attention, seeded."""
    config = tiny_config(family, **overrides)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    if family == "bloom" or getattr(config, "attention_bias", False) or family == "qwen2":
        # HF initialises biases to zero; give them values so bias handling is actually tested.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.2)
    if family in QK_NORM_FAMILIES:
        # HF initialises norm gains to 1 (Gemma: 0, i.e. 1 + 0); give q/k norms real values.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(("q_norm.weight", "k_norm.weight")):
                    p.uniform_(0.5, 1.5) if family != "gemma3" else p.uniform_(-0.5, 0.5)
    return model.to(dtype).eval()


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 96, model_max_length: int = 256
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained offline on `texts` (ids 0/1/2 = pad/bos/eos)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=model_max_length,
    )


def save_tiny_model_dir(
    out_dir: str | Path,
    family: str,
    texts: Iterable[str],
    seed: int = 0,
    vocab_size: int = 300,
    **overrides: object,
) -> Path:
    """Write a `from_pretrained`-loadable model directory (random weights + trained tokenizer).

    `overrides` change config fields (e.g. `VLLM_SHAPE`: head_dim 32 for vLLM's CPU attention).
    """
    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = tiny_model(family, seed=seed, vocab_size=len(tokenizer), **overrides)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
