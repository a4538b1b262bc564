"""Perplexity and task accuracy of a causal LM on the demo world's held-out text and benchmarks (model quality).

perplexity       exp(mean token NLL) over documents (each starts with <s>)
xquad_accuracy   greedy answer (first line) contains the gold span
xcsqa_accuracy   choice with the highest summed log-likelihood after the prompt is gold
mgsm_accuracy    first integer of the greedy answer's "answer is" part equals answer_number
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mwork.demo import prompts as P


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
def greedy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, max_new_tokens: int
) -> str:
    """Greedy continuation of `prompt`, cut at the first newline."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]  # [1, T]
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return text.split("\n")[0].strip()


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


def xquad_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    lang: str,
    max_new_tokens: int = 8,
) -> float:
    """Share of items whose greedy answer contains the gold answer text."""
    hits = 0
    for row in rows:
        pred = greedy(
            model, tokenizer, P.xquad_prompt(lang, row["context"], row["question"]), max_new_tokens
        )
        hits += any(gold in pred for gold in row["answers"]["text"])
    return hits / max(1, len(rows))


def xcsqa_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Sequence[Mapping], lang: str
) -> float:
    """Share of items whose highest-likelihood choice is the answer key."""
    hits = 0
    for row in rows:
        choices = row["question"]["choices"]
        scores = continuation_logprobs(
            model,
            tokenizer,
            P.xcsqa_prompt(lang, row["question"]["stem"]),
            [P.answer_suffix(lang, t) for t in choices["text"]],
        )
        hits += (
            choices["label"][max(range(len(scores)), key=scores.__getitem__)] == row["answerKey"]
        )
    return hits / max(1, len(rows))


def mgsm_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    lang: str,
    max_new_tokens: int = 24,
) -> float:
    """Share of items whose last integer in the greedy answer equals `answer_number`."""
    hits = 0
    for row in rows:
        pred = greedy(model, tokenizer, P.mgsm_prompt(lang, row["question"]), max_new_tokens)
        numbers = re.findall(r"-?\d+", pred)
        hits += bool(numbers) and int(numbers[-1]) == int(row["answer_number"])
    return hits / max(1, len(rows))
