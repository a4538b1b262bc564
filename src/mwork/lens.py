"""Layer-wise language lens (paper Fig. 1 and Fig. 7): which language does each layer "think" in?

For every prompt, every hidden state (hidden_states[0] = embeddings, ..., hidden_states[-1] =
HF's last state, already post final norm) at every covered position is decoded to the
vocabulary with the LM head; the top-k token ids are decoded one by one and language-identified
(`mwork.lid`). Per layer, the share of each candidate language among the *identified* tokens is
computed per prompt (shares sum to 1 over identified tokens) and then averaged over prompts.

Variants:
    released         the released code: no final norm on intermediate states (raw logit lens).
    released_layer0  released + the code's layer-0 hack (after averaging, layer 0 is set to
                     en = 0, zh = 0, every other candidate 1/(n-2)); explicit opt-in only.
    normed           normalised logit lens: the final norm is applied to every intermediate
                     state; the last state (already normed by HF) is not normed twice.
The last layer is the same in all variants. Note: top-k is invariant to a positive rescaling of
the state, so for RMSNorm models (Llama, Mistral, Qwen2, Gemma-2) "normed" differs from "released"
only through the norm's learned gain; for LayerNorm (BLOOM) also through centring and bias.

Positions (exact, not an approximation): the released code runs greedy `generate` and decodes
all prompt positions at step 1, then each new position. With a causal model this equals one
forward pass over prompt + greedy continuation without its last token (the last generated token
is never fed back). mwork generates greedily, then runs that single forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from mwork.adapters import get_adapter
from mwork.atomic import write_csv
from mwork.devices import input_device
from mwork.errors import MworkError
from mwork.lid import TokenLanguageIdentifier
from mwork.modeling import load_spec
from mwork.settings import LensSettings, ModelSpec

VARIANTS: tuple[str, ...] = ("released", "released_layer0", "normed")
LENS_COLUMNS: tuple[str, ...] = (
    "model",
    "variant",
    "prompt_lang",
    "layer",
    "lang",
    "share",
    "n_identified",
)


def load_lens_prompts(path: str | Path | None = None) -> dict[str, list[str]]:
    """Prompts per language from a YAML mapping lang -> list of strings (default: shipped file)."""
    text = (
        Path(path).read_text(encoding="utf-8")
        if path is not None
        else files("mwork.data").joinpath("lens_prompts.yaml").read_text(encoding="utf-8")
    )
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and v and all(isinstance(p, str) for p in v) for v in data.values()
    ):
        raise MworkError(
            f"lens prompt file {path or 'lens_prompts.yaml'} is not a mapping lang -> list of strings",
            'write e.g. `de: ["Wie ...?"]`',
        )
    return {str(k): list(v) for k, v in data.items()}


def lens_input_ids(
    model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int
) -> torch.Tensor:
    """Token ids whose positions the lens decodes: prompt + greedy continuation minus its last token.

    Returns:
        [1, l] int64 on the model's device.
    """
    device = input_device(model)
    enc = tokenizer(prompt, return_tensors="pt").to(device)
    if max_new_tokens <= 0:
        return enc["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, num_beams=1
        )
    seq = out[0] if isinstance(out, torch.Tensor) else out.sequences[0]
    n_new = seq.shape[0] - enc["input_ids"].shape[1]
    return (seq[:-1] if n_new > 0 else seq)[None]


def layer_top_tokens(
    model: torch.nn.Module,
    hidden_states: Sequence[torch.Tensor],
    variant: str,
    top_k: int = 10,
    max_elems: int = 2**27,
) -> torch.Tensor:
    """Top-k vocabulary ids of every hidden state at every position (one LM-head matmul per chunk).

    Args:
        hidden_states: n_states tensors [1, l, d] (HF `output_hidden_states`, batch of one).
        variant: one of VARIANTS ("normed" applies the final norm to all but the last state).
        max_elems: bound on logits held at once (n_states * positions * vocab), chunked by position.

    Returns:
        [n_states, l, top_k] int64 (CPU).
    """
    if variant not in VARIANTS:
        raise MworkError(
            f"unknown lens variant {variant!r}", f"choose one of {', '.join(VARIANTS)}"
        )
    stack = torch.stack([h[0] for h in hidden_states])  # [S, l, d]
    if variant == "normed":
        norm = get_adapter(model).final_norm()
        stack = torch.cat([norm(stack[:-1]).to(stack.device), stack[-1:]])  # norm: maybe elsewhere
    head = model.get_output_embeddings()
    n_states, l, _ = stack.shape
    vocab = head.weight.shape[0]
    step = max(1, max_elems // (n_states * vocab))
    out = []
    for start in range(0, l, step):
        logits = head(stack[:, start : start + step])  # [S, chunk, vocab]
        out.append(logits.topk(min(top_k, vocab), dim=-1).indices.cpu())
    return torch.cat(out, dim=1)


class TokenLanguages:
    """Cached id -> candidate-language index (-1 = not reliably identified) for one tokenizer."""

    def __init__(self, tokenizer, lid: TokenLanguageIdentifier) -> None:
        self.tokenizer, self.lid = tokenizer, lid
        self.index = {lang: i for i, lang in enumerate(lid.candidates)}
        self._cache: dict[int, int] = {}

    def text(self, token_id: int) -> str:
        """The decoded text of one token id (special tokens decode to "")."""
        return self.tokenizer.decode([token_id], skip_special_tokens=True)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """Language indices of `ids` (any shape), same shape, int64."""
        uniq, inverse = torch.unique(ids, return_inverse=True)
        codes = []
        for t in uniq.tolist():
            if t not in self._cache:
                lang = self.lid.language_or_none(self.text(t))
                self._cache[t] = -1 if lang is None else self.index[lang]
            codes.append(self._cache[t])
        return torch.tensor(codes, dtype=torch.int64)[inverse]


def layer_language_counts(top_ids: torch.Tensor, languages: TokenLanguages) -> np.ndarray:
    """Identified-token counts per state and language.

    Args:
        top_ids: [n_states, l, k] token ids.

    Returns:
        [n_states, n_langs] int64 counts (unidentified tokens are not counted).
    """
    n_states, n_langs = top_ids.shape[0], len(languages.index)
    codes = languages(top_ids).reshape(n_states, -1)
    layer = torch.arange(n_states)[:, None].expand_as(codes)
    ok = codes >= 0
    flat = layer[ok] * n_langs + codes[ok]
    return torch.bincount(flat, minlength=n_states * n_langs).reshape(n_states, n_langs).numpy()


def apply_layer0_override(frame: pd.DataFrame) -> pd.DataFrame:
    """The released code's layer-0 hack: en = zh = 0, each other candidate 1/(n - #{en, zh})."""
    out = frame.copy()
    at0 = out["layer"] == 0
    for _, rows in out[at0].groupby(["model", "variant", "prompt_lang"]):
        langs = list(rows["lang"])
        zeroed = [l for l in langs if l in ("en", "zh")]
        rest = len(langs) - len(zeroed)
        out.loc[rows.index, "share"] = [0.0 if l in zeroed else 1.0 / rest for l in langs]
    return out


def run_lens(
    model: torch.nn.Module,
    tokenizer,
    prompts: Mapping[str, Sequence[str]],
    candidates: Sequence[str],
    variants: Sequence[str] = ("released",),
    top_k: int = 10,
    max_new_tokens: int = 64,
    lid: TokenLanguageIdentifier | None = None,
    model_name: str = "model",
    prompt_template: str = "{prompt}",
) -> pd.DataFrame:
    """Per-layer language shares of the decoded top-k tokens, averaged over prompts.

    Args:
        prompts: prompt language -> prompts.
        candidates: languages tokens may be identified as (e.g. en de fr zh es ru).
        variants: subset of VARIANTS; generation and the forward pass are shared between them.
        lid: identifier restricted to `candidates` (default: the default backend).
        prompt_template: format string with `{prompt}` (e.g. a chat template).

    Returns:
        Tidy frame with LENS_COLUMNS: one row per (variant, prompt_lang, layer, lang); `share` is
        the prompt-mean share (NaN where no prompt had an identified token at that layer),
        `n_identified` the identified tokens at that layer summed over prompts. Layer 0 is the
        embedding output, layer n_layers the last state.
    """
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise MworkError(
            f"unknown lens variant(s) {bad or variants}", f"choose from {', '.join(VARIANTS)}"
        )
    lid = lid or TokenLanguageIdentifier(candidates)
    if tuple(lid.candidates) != tuple(dict.fromkeys(candidates)):
        raise MworkError(
            "the LID candidates differ from the lens candidates",
            "build the identifier with the same list",
        )
    languages = TokenLanguages(tokenizer, lid)
    ratios: dict[tuple[str, str], list[np.ndarray]] = {}
    counts: dict[tuple[str, str], np.ndarray] = {}
    computed = sorted({"normed" if v == "normed" else "released" for v in variants})
    for prompt_lang, items in prompts.items():
        for prompt in items:
            ids = lens_input_ids(
                model, tokenizer, prompt_template.format(prompt=prompt), max_new_tokens
            )
            with torch.no_grad():
                hidden = model(ids, output_hidden_states=True).hidden_states
                for variant in computed:
                    c = layer_language_counts(
                        layer_top_tokens(model, hidden, variant, top_k), languages
                    )
                    total = c.sum(axis=1, keepdims=True)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        ratios.setdefault((variant, prompt_lang), []).append(
                            np.where(total > 0, c / total, np.nan)
                        )
                    key = (variant, prompt_lang)
                    counts[key] = counts.get(key, 0) + total[:, 0]
    rows = []
    for (variant, prompt_lang), per_prompt in ratios.items():
        stacked = np.stack(per_prompt)  # [n_prompts, S, n_langs]
        valid = ~np.isnan(stacked[:, :, 0])
        n_valid = valid.sum(axis=0)  # [S]
        mean = np.where(
            n_valid[:, None] > 0,
            np.nansum(stacked, axis=0) / np.maximum(n_valid, 1)[:, None],
            np.nan,
        )
        for layer in range(mean.shape[0]):
            for j, lang in enumerate(lid.candidates):
                rows.append(
                    (
                        model_name,
                        variant,
                        prompt_lang,
                        layer,
                        lang,
                        float(mean[layer, j]),
                        int(counts[(variant, prompt_lang)][layer]),
                    )
                )
    frame = pd.DataFrame(rows, columns=list(LENS_COLUMNS))
    parts = []
    for variant in variants:
        part = frame[frame["variant"] == ("normed" if variant == "normed" else "released")].assign(
            variant=variant
        )
        parts.append(apply_layer0_override(part) if variant == "released_layer0" else part)
    return pd.concat(parts, ignore_index=True)


def lens_to_file(
    spec: ModelSpec,
    out_csv: str | Path,
    candidates: Sequence[str],
    variants: Sequence[str],
    settings: LensSettings,
    device: str = "auto",
) -> pd.DataFrame:
    """Load a model, run the lens on every prompt language and write the tidy CSV atomically.

    Args:
        spec: the model.
        out_csv: output path (LENS_COLUMNS).
        candidates: languages tokens may be identified as (e.g. config languages.detect).
        variants: lens variants (VARIANTS).
        settings: prompts file (None = the shipped lens_prompts.yaml), top-k, continuation length,
            prompt template and LID backend (see `run_lens`, `mwork.lid.TokenLanguageIdentifier`).
    """
    log = logging.getLogger("mwork.lens")
    prompts = load_lens_prompts(settings.prompts)
    lid = TokenLanguageIdentifier(candidates, settings.lid_backend, min_prob=settings.lid_min_prob)
    model, tokenizer, adapter = load_spec(spec, device)
    log.info(
        "lens: %s (%d layers), variants %s, top_k %d, max_new_tokens %d, LID %s (min_prob %.2f), %d prompts",
        spec.ref,
        adapter.n_layers,
        list(variants),
        settings.top_k,
        settings.max_new_tokens,
        lid.backend,
        lid.min_prob,
        sum(len(v) for v in prompts.values()),
    )
    frame = run_lens(
        model,
        tokenizer,
        prompts,
        candidates,
        variants,
        settings.top_k,
        settings.max_new_tokens,
        lid,
        spec.label,
        settings.prompt_template,
    )
    write_csv(out_csv, frame)
    return frame
