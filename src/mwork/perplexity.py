"""Held-out perplexity under neuron deactivation: a cheap check of language specificity.

For each language L: mask N_L (all layers) and an equal number of random neurons matched per
(layer, component), and measure the perplexity of held-out L text and English text. Language-specific
neurons should hurt L more than English, and more than random neurons do (issue 4's acceptance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch

from mwork.atomic import atomic_write_text
from mwork.conditions import condition_selection
from mwork.corpus import read_corpus
from mwork.mask import mask_neurons
from mwork.modeling import load_model, model_fingerprint
from mwork.neuronset import load_neuron_set, write_csv


@torch.inference_mode()
def perplexity(model, tokenizer, texts: list[str], batch_size: int = 8, max_tokens: int = 256) -> float:
    """Token-level perplexity of `texts` (mean NLL over all predicted tokens, right padding)."""
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_tokens,
                        padding=True, return_tensors="pt")
        if tokenizer.padding_side == "left":
            raise ValueError("perplexity() expects right padding")
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # [b, l-1, vocab]
        target, valid = ids[:, 1:], mask[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        total_nll += float(nll[valid].sum())
        total_tokens += int(valid.sum())
    return math.exp(total_nll / max(1, total_tokens))


def deactivation_ppl(
    model_ref: str,
    neuron_files: Mapping[str, str | Path],
    heldout_files: Mapping[str, str | Path],
    n1: int,
    n2: int,
    seeds: list[int],
    n_texts: int = 200,
    max_tokens: int = 256,
    dtype: str = "float32",
    device: str = "auto",
) -> pd.DataFrame:
    """Perplexity table (long form): mask_lang, condition, seed, n_masked, eval_lang, ppl, base_ppl,
    delta_log_ppl (= log ppl − log base ppl). Conditions: D_all (N_L) and R_all (random, matched)."""
    model, tokenizer, adapter = load_model(model_ref, dtype, device)
    tokenizer.padding_side = "right"
    fingerprint = model_fingerprint(model)
    texts = {lang: read_corpus(p)[:n_texts] for lang, p in heldout_files.items()}
    base = {lang: perplexity(model, tokenizer, t, max_tokens=max_tokens) for lang, t in texts.items()}
    rows = []
    for lang, path in neuron_files.items():
        ls = load_neuron_set(path, expect_fingerprint=fingerprint)
        evals = [lang] if lang == "en" else [lang, "en"]
        for cond, cond_seeds in (("D_all", [-1]), ("R_all", seeds)):
            for seed in cond_seeds:
                sel = condition_selection(cond, ls, adapter.n_layers, n1, n2, seed=max(seed, 0))
                with mask_neurons(adapter, sel) as n_masked:
                    for ev in evals:
                        ppl = perplexity(model, tokenizer, texts[ev], max_tokens=max_tokens)
                        rows.append({"mask_lang": lang, "condition": cond, "seed": seed, "n_masked": n_masked,
                                     "eval_lang": ev, "ppl": ppl, "base_ppl": base[ev],
                                     "delta_log_ppl": math.log(ppl) - math.log(base[ev])})
    return pd.DataFrame(rows)


def ppl_summary(long: pd.DataFrame) -> pd.DataFrame:
    """One row per masked language: Δlog-ppl of L and of English under N_L and under random neurons
    (mean over seeds), and whether N_L hurts L more than English and more than random neurons."""
    mean = long.groupby(["mask_lang", "condition", "eval_lang"], as_index=False)[["delta_log_ppl", "n_masked"]].mean()
    out = []
    for lang in dict.fromkeys(long["mask_lang"]):
        get = mean.set_index(["mask_lang", "condition", "eval_lang"])["delta_log_ppl"].get
        row = {"lang": lang, "n_masked": int(mean[(mean.mask_lang == lang) & (mean.condition == "D_all")].n_masked.iloc[0]),
               "ls_delta_L": get((lang, "D_all", lang)), "ls_delta_en": get((lang, "D_all", "en")),
               "rand_delta_L": get((lang, "R_all", lang)), "rand_delta_en": get((lang, "R_all", "en"))}
        english = lang == "en"
        row["L_more_than_en"] = "—" if english else ("yes" if row["ls_delta_L"] > row["ls_delta_en"] else "no")
        row["LS_more_than_random"] = "yes" if row["ls_delta_L"] > row["rand_delta_L"] else "no"
        out.append(row)
    return pd.DataFrame(out)


def write_ppl_tables(long: pd.DataFrame, csv: str | Path, md: str | Path) -> None:
    """Long CSV plus a Markdown summary (Δ log-perplexity, higher = more damage)."""
    write_csv(long, csv)
    summary = ppl_summary(long)
    text = ("Δ log-perplexity on held-out text when language L's neurons (LS) or as many random neurons "
            "are deactivated (all layers).\n\n" + summary.to_markdown(index=False, floatfmt=".3f") + "\n")
    atomic_write_text(md, text)
