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

from mwork.atomic import atomic_write_text, write_csv
from mwork.corpus import read_corpus
from mwork.devices import input_device
from mwork.errors import MworkError
from mwork.findings import ppl_findings, write_findings
from mwork.mask import mask_neurons
from mwork.modeling import load_spec, model_fingerprint
from mwork.neuronset import load_neuron_set
from mwork.runlabel import CountRule
from mwork.selection import condition_selection
from mwork.settings import ModelSpec, PerplexitySettings


@torch.inference_mode()
def perplexity(
    model, tokenizer, texts: list[str], batch_size: int = 8, max_tokens: int = 256
) -> float:
    """Token-level perplexity of `texts` (mean NLL over all predicted tokens, right padding)."""
    device = input_device(model)
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=max_tokens,
            padding=True,
            return_tensors="pt",
        )
        if tokenizer.padding_side == "left":
            raise ValueError("perplexity() expects right padding")
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # [b, l-1, vocab]
        target, valid = ids[:, 1:], mask[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        batch_nll = float(nll[valid].sum())
        if not math.isfinite(batch_nll):  # NaN/Inf logits (a float16 overflow): no perplexity
            raise MworkError(
                f"perplexity: the model's loss is {batch_nll} on texts {start}..{start + len(ids) - 1}"
                " (NaN/Inf logits)",
                "check the weights, or load the model in float32 (float16 overflows)",
            )
        total_nll += batch_nll
        total_tokens += int(valid.sum())
    return math.exp(total_nll / max(1, total_tokens))


DETECTOR_NAMES = {"plnd": "PLND", "lape": "LAPE (FFN neurons only)"}


def check_detector(neuron_files: Mapping[str, str | Path], detector: str | None) -> None:
    """Every neuron file loads and was written by `detector` (None: any); MworkError otherwise."""
    if detector is not None and detector not in DETECTOR_NAMES:
        raise MworkError(
            f"unknown detector {detector!r}", f"use one of {', '.join(DETECTOR_NAMES)}"
        )
    for lang, path in neuron_files.items():
        found = load_neuron_set(path).meta.get("detector", "plnd")
        if detector is not None and found != detector:
            raise MworkError(
                f"neuron file {path} ({lang}) was found by {found}, not {detector}",
                f"pass the {detector} neuron files",
            )


def deactivation_ppl(
    spec: ModelSpec,
    neuron_files: Mapping[str, str | Path],
    heldout_files: Mapping[str, str | Path],
    settings: PerplexitySettings,
    device: str = "auto",
    detector: str | None = None,
) -> pd.DataFrame:
    """Perplexity table (long form): mask_lang, condition, seed, n_masked, eval_lang, ppl, base_ppl,
    delta_log_ppl (= log ppl − log base ppl). Conditions: D_all (N_L) and R_all (random, matched).

    Args:
        spec: the model (n1/n2 are unused by D_all/R_all but required, as for every condition).
        neuron_files, heldout_files: language -> neuron file / held-out JSONL.
        settings: texts per language, token cap, batch size, random seeds, mask mode.
        detector: if given ("plnd" or "lape"), every neuron file must come from this detector
            (header `detector`, absent = plnd); checked with the files before the model loads.
    """
    n1, n2 = spec.split()
    check_detector(neuron_files, detector)
    count = CountRule.from_settings(settings)  # D_all alone: `equal` masks all of N_L
    model, tokenizer, adapter = load_spec(spec, device)
    tokenizer.padding_side = "right"
    fingerprint = model_fingerprint(model)
    texts = {lang: read_corpus(p)[: settings.n_texts] for lang, p in heldout_files.items()}

    def ppl_of(lang: str) -> float:
        return perplexity(model, tokenizer, texts[lang], settings.batch_size, settings.max_tokens)

    base = {lang: ppl_of(lang) for lang in texts}
    rows = []
    for lang, path in neuron_files.items():
        ls = load_neuron_set(path, expect_fingerprint=fingerprint)
        evals = [lang] if lang == "en" else [lang, "en"]
        for cond, cond_seeds in (("D_all", [-1]), ("R_all", settings.seeds)):
            for seed in cond_seeds:
                sel = condition_selection(
                    cond, ls, adapter.n_layers, n1, n2, seed=max(seed, 0), count=count
                )
                with mask_neurons(adapter, sel, settings.mask_mode) as n_masked:
                    for ev in evals:
                        ppl = ppl_of(ev)
                        rows.append(
                            {
                                "mask_lang": lang,
                                "condition": cond,
                                "seed": seed,
                                "n_masked": n_masked,
                                "eval_lang": ev,
                                "ppl": ppl,
                                "base_ppl": base[ev],
                                "delta_log_ppl": math.log(ppl) - math.log(base[ev]),
                            }
                        )
    return pd.DataFrame(rows)


def ppl_summary(long: pd.DataFrame) -> pd.DataFrame:
    """One row per masked language: Δlog-ppl of L and of English under N_L and under random neurons
    (mean over seeds), and whether N_L hurts L more than English and more than random neurons."""
    mean = long.groupby(["mask_lang", "condition", "eval_lang"], as_index=False)[
        ["delta_log_ppl", "n_masked"]
    ].mean()
    out = []
    for lang in dict.fromkeys(long["mask_lang"]):
        get = mean.set_index(["mask_lang", "condition", "eval_lang"])["delta_log_ppl"].get
        row = {
            "lang": lang,
            "n_masked": int(
                mean[(mean.mask_lang == lang) & (mean.condition == "D_all")].n_masked.iloc[0]
            ),
            "ls_delta_L": get((lang, "D_all", lang)),
            "ls_delta_en": get((lang, "D_all", "en")),
            "rand_delta_L": get((lang, "R_all", lang)),
            "rand_delta_en": get((lang, "R_all", "en")),
        }
        english = lang == "en"
        row["L_more_than_en"] = (
            "—" if english else ("yes" if row["ls_delta_L"] > row["ls_delta_en"] else "no")
        )
        row["LS_more_than_random"] = "yes" if row["ls_delta_L"] > row["rand_delta_L"] else "no"
        out.append(row)
    return pd.DataFrame(out)


def write_ppl_tables(
    long: pd.DataFrame,
    csv: str | Path,
    md: str | Path,
    detector: str = "plnd",
    findings: str | Path | None = None,
) -> None:
    """Long CSV plus a Markdown summary (Δ log-perplexity, higher = more damage).

    Args:
        detector: which detector found the masked sets ("plnd" or "lape"), named in the summary.
        findings: where to write what this run found in the summary (`mwork.findings`).
    """
    if detector not in DETECTOR_NAMES:
        raise MworkError(
            f"unknown detector {detector!r}", f"use one of {', '.join(DETECTOR_NAMES)}"
        )
    write_csv(csv, long)
    summary = ppl_summary(long)
    text = (
        "Δ log-perplexity on held-out text when language L's neurons (LS) or as many random neurons "
        f"are deactivated (all layers). Neurons: {DETECTOR_NAMES[detector]}.\n\n"
        + summary.to_markdown(index=False, floatfmt=".3f")
        + "\n"
    )
    atomic_write_text(md, text)
    if findings is not None:
        write_findings(findings, ppl_findings(summary), "this table")
