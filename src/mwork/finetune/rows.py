"""Training rows of a fine-tuning run: tokenized documents, one per row or packed, PAD-filled.

Each document is tokenized (BOS as the tokenizer adds it, EOS appended unless truncated to
`max_length`); `make_rows` shuffles them into [n_rows, max_length] rows filled with PAD (-1, never
a token id), several whole documents per row with packing (`mwork.demo.train.pack`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mwork.demo.train import pack

PAD = -1  # row filler of packed token rows (never a token id, so pad == eos cannot collide)


def encode_documents(tokenizer, docs: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per document (BOS as the tokenizer adds it, EOS appended unless truncated)."""
    ids = tokenizer(
        list(docs), add_special_tokens=True, truncation=True, max_length=max_length + 1
    )["input_ids"]
    eos = tokenizer.eos_token_id
    out = []
    for doc in ids:
        if len(doc) > max_length:
            out.append(list(doc[:max_length]))
        else:
            out.append((list(doc) + ([eos] if eos is not None else []))[:max_length])
    return out


def make_rows(
    token_docs: Sequence[Sequence[int]], max_length: int, packing: bool, generator: torch.Generator
) -> torch.Tensor:
    """Shuffled training rows.

    Returns:
        [n_rows, max_length] int64, PAD (-1) after each row's tokens; with packing several whole
        documents share a row (`mwork.demo.train.pack`), else one document per row.
    """
    if packing:
        return pack(token_docs, max_length, PAD, generator)
    order = torch.randperm(len(token_docs), generator=generator).tolist()
    rows = torch.full((len(token_docs), max_length), PAD, dtype=torch.long)
    for r, i in enumerate(order):
        doc = list(token_docs[i])[:max_length]
        rows[r, : len(doc)] = torch.tensor(doc, dtype=torch.long)
    return rows
