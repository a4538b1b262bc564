"""Held-out perplexity and the deactivation-perplexity table."""

import json
import math

import torch

from mwork.detect import detect_to_file
from mwork.perplexity import deactivation_ppl, perplexity, ppl_summary
from mwork.settings import DetectionSettings, ModelSpec, PerplexitySettings
from mwork.tiny import save_tiny_model_dir


def test_perplexity_matches_hf_loss_and_ignores_padding(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = save_tiny_model_dir(
        tmp_path / "m", "llama", ["hello world again", "short one"] * 5, vocab_size=90
    )
    model, tok = AutoModelForCausalLM.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)
    text = "hello world again and again"
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    assert abs(perplexity(model, tok, [text]) - math.exp(loss)) < 1e-4 * math.exp(loss)
    # a shorter text in the batch adds padding; the pooled token NLL is unchanged by it
    both = perplexity(model, tok, [text, "short"], batch_size=2)
    alone = perplexity(model, tok, [text, "short"], batch_size=1)
    assert abs(both - alone) < 1e-4 * alone


def test_deactivation_table(tmp_path):
    texts = {"en": ["the cat sat on the mat"] * 6, "de": ["der hund lief schnell weg"] * 6}
    d = save_tiny_model_dir(tmp_path / "m", "llama", sum(texts.values(), []), vocab_size=90)
    files, held = {}, {}
    for lang, t in texts.items():
        held[lang] = tmp_path / f"{lang}.jsonl"
        held[lang].write_text("".join(json.dumps({"text": x}) + "\n" for x in t))
        files[lang] = tmp_path / f"{lang}.safetensors"
        detect_to_file(
            ModelSpec(str(d), dtype="float32"),
            str(held[lang]),
            lang,
            str(files[lang]),
            DetectionSettings(min_fraction=0.5, n_docs=4),
            device="cpu",
        )
    spec = ModelSpec(str(d), dtype="float32", n1=1, n2=0)
    long = deactivation_ppl(
        spec, files, held, PerplexitySettings(seeds=[0, 1], n_texts=3), device="cpu"
    )
    assert set(long.condition) == {"D_all", "R_all"}
    assert (long[long.eval_lang == "en"].base_ppl > 1).all()
    summary = ppl_summary(long)
    assert list(summary.lang) == ["en", "de"] and "LS_more_than_random" in summary
    # random neurons are matched in count to the language-specific ones
    de = long[long.mask_lang == "de"]
    assert de.n_masked.nunique() == 1
