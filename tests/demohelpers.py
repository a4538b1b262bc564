"""Helpers of the demo tests: the training mixture's language shares, and the demo model's quality.

language_shares        fraction of a mixture's units (tokens, words, ...) in each language
perplexity             exp(mean token NLL) over documents (each starts with <s>)
continuation_logprobs  summed log-probability of each continuation after a prompt
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mwork.demo.mixture import Doc


def language_shares(docs: Sequence[Doc], count: Callable[[str], int]) -> dict[str, float]:
    """Fraction of the mixture's units (tokens, words, ...) in each language, by `count(text)`."""
    totals: dict[str, int] = {}
    for doc in docs:
        for lang, text in doc.parts:
            totals[lang] = totals.get(lang, 0) + count(text)
    grand = sum(totals.values()) or 1
    return {lang: totals[lang] / grand for lang in sorted(totals)}


@torch.no_grad()
def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 16,
    max_length: int = 512,
) -> float:
    """Corpus perplexity: exp(total NLL / number of predicted tokens)."""
    nll, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[i : i + batch_size]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
        )
        ids, mask = enc["input_ids"], enc["attention_mask"]  # [B, T]
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # [B, T, V]
        logp = torch.log_softmax(logits[:, :-1], dim=-1)  # [B, T-1, V]
        tok_lp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
        keep = mask[:, 1:].bool()
        nll -= float(tok_lp[keep].sum())
        count += int(keep.sum())
    return math.exp(nll / max(1, count))


@torch.no_grad()
def continuation_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    continuations: Sequence[str],
) -> list[float]:
    """Summed log-probability of each continuation after `prompt` (tokenised separately, no <s>)."""
    p_ids = tokenizer(prompt)["input_ids"]
    conts = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
    seqs = [p_ids + c for c in conts]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)  # [C, T]
    mask = torch.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
    logp = torch.log_softmax(
        model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1
    )  # [C, T, V]
    scores = []
    for r, c in enumerate(conts):
        pos = torch.arange(len(p_ids) - 1, len(p_ids) - 1 + len(c))
        scores.append(float(logp[r, pos, torch.tensor(c)].sum()))
    return scores
