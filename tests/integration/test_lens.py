"""The language lens on tiny models: shares, variants, positions, layer-0 override."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mwork.adapters import get_adapter
from mwork.errors import MworkError
from mwork.lens import (
    apply_layer0_override,
    layer_top_tokens,
    lens_input_ids,
    load_lens_prompts,
    run_lens,
)
from mwork.lid import TokenLanguageIdentifier, lid_sample
from mwork.tiny import tiny_model, train_tokenizer

CANDIDATES = ["en", "de", "fr", "zh", "es", "ru"]


@pytest.fixture(scope="module")
def tokenizer():
    """BPE on real multilingual words, so decoded tokens are words and word pieces."""
    prompts = load_lens_prompts()
    texts = list(lid_sample()["text"]) + [p for v in prompts.values() for p in v]
    return train_tokenizer(texts * 3, vocab_size=600)


@pytest.fixture(scope="module")
def lid():
    return TokenLanguageIdentifier(CANDIDATES)


@pytest.fixture(scope="module")
def prompts():
    return {lang: items[:2] for lang, items in load_lens_prompts().items()}


def _model(tokenizer, family="llama", seed=0):
    model = tiny_model(family, seed=seed, vocab_size=len(tokenizer))
    with torch.no_grad():  # a non-trivial final-norm gain, so "normed" really differs
        norm = get_adapter(model).final_norm()
        norm.weight.uniform_(0.2, 3.0)
        if getattr(norm, "bias", None) is not None:
            norm.bias.normal_(0, 0.5)
    return model


def test_prompt_file_has_ten_prompts_per_language():
    prompts = load_lens_prompts()
    assert set(prompts) == set(CANDIDATES)
    assert all(len(v) == 10 for v in prompts.values())


def test_shares_sum_to_one_over_identified_tokens(tokenizer, lid, prompts):
    model = _model(tokenizer)
    df = run_lens(
        model,
        tokenizer,
        prompts,
        CANDIDATES,
        variants=("released", "normed"),
        max_new_tokens=4,
        lid=lid,
        model_name="tiny",
    )
    assert list(df.columns) == [
        "model",
        "variant",
        "prompt_lang",
        "layer",
        "lang",
        "share",
        "n_identified",
    ]
    assert sorted(df["layer"].unique()) == [0, 1, 2]  # embeddings + 2 layers
    assert (df["n_identified"] > 0).all()
    sums = df.groupby(["variant", "prompt_lang", "layer"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    assert df["share"].between(0, 1).all()


def test_last_layer_identical_intermediate_layers_differ(tokenizer):
    model = _model(tokenizer)
    ids = torch.tensor([tokenizer("Why is the sky blue? Warum ist der Himmel blau?")["input_ids"]])
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states
        raw = layer_top_tokens(model, hidden, "released", top_k=10)
        normed = layer_top_tokens(model, hidden, "normed", top_k=10)
    assert raw.shape == (3, ids.shape[1], 10)
    assert torch.equal(raw[-1], normed[-1])  # the last state is not normed twice
    assert not torch.equal(raw[:-1], normed[:-1])  # the norm's gain changes intermediate top-k


@pytest.mark.parametrize("family", ["llama", "bloom"])
def test_identity_final_norm_makes_variants_equal(tokenizer, lid, prompts, family):
    model = _model(tokenizer, family)
    if family == "bloom":
        model.transformer.ln_f = torch.nn.Identity()
    else:
        model.model.norm = torch.nn.Identity()
    few = {k: v[:1] for k, v in list(prompts.items())[:3]}
    df = run_lens(
        model,
        tokenizer,
        few,
        CANDIDATES,
        variants=("released", "normed"),
        max_new_tokens=2,
        lid=lid,
    )
    a = df[df["variant"] == "released"].drop(columns="variant").reset_index(drop=True)
    b = df[df["variant"] == "normed"].drop(columns="variant").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_positions_match_step_by_step_generation(tokenizer):
    """One forward pass over prompt + continuation[:-1] == the hidden states generate() sees."""
    model = _model(tokenizer)
    prompt = "Wie viele Tage hat eine Woche?"
    ids = lens_input_ids(model, tokenizer, prompt, max_new_tokens=5)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(
            **enc,
            max_new_tokens=5,
            do_sample=False,
            output_hidden_states=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
        full = model(ids, output_hidden_states=True).hidden_states
    steps = torch.cat(
        [torch.stack(step)[:, 0] for step in gen.hidden_states], dim=1
    )  # [S, positions, d]
    assert ids.shape[1] == steps.shape[1] == gen.sequences.shape[1] - 1
    assert ids.shape[1] >= n_prompt
    torch.testing.assert_close(torch.stack(full)[:, 0], steps, atol=1e-4, rtol=1e-4)


def test_layer0_override(tokenizer, lid, prompts):
    model = _model(tokenizer)
    few = {"de": prompts["de"][:1]}
    df = run_lens(
        model,
        tokenizer,
        few,
        CANDIDATES,
        variants=("released", "released_layer0"),
        max_new_tokens=1,
        lid=lid,
    )
    hack = df[(df["variant"] == "released_layer0") & (df["layer"] == 0)].set_index("lang")["share"]
    assert hack["en"] == 0 and hack["zh"] == 0
    np.testing.assert_allclose(hack[["de", "fr", "es", "ru"]].to_numpy(), 0.25)
    rest = df[df["layer"] > 0].pivot_table(
        index=["prompt_lang", "layer", "lang"], columns="variant", values="share"
    )
    np.testing.assert_allclose(rest["released"], rest["released_layer0"])  # only layer 0 changes
    assert apply_layer0_override(df[df["variant"] == "released"])["share"].notna().all()


def test_unknown_variant_is_a_user_error(tokenizer, lid):
    with pytest.raises(MworkError, match="unknown lens variant"):
        run_lens(
            _model(tokenizer), tokenizer, {"en": ["hi"]}, CANDIDATES, variants=("tuned",), lid=lid
        )


def test_lens_to_file_writes_the_tidy_csv(tmp_path, tokenizer):
    from mwork.lens import lens_to_file
    from mwork.settings import LensSettings, ModelSpec

    model_dir = tmp_path / "tiny"
    _model(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(
        "de: ['Warum ist der Himmel blau?']\nen: ['Why is the sky blue?']\n", encoding="utf-8"
    )
    out = tmp_path / "lens" / "normed.csv"
    settings = LensSettings(prompts=str(prompts), max_new_tokens=2)
    lens_to_file(
        ModelSpec(str(model_dir), "tiny", dtype="float32"), out, CANDIDATES, ["normed"], settings
    )
    df = pd.read_csv(out)
    assert set(df["prompt_lang"]) == {"de", "en"} and set(df["variant"]) == {"normed"}
    assert len(df) == 2 * 3 * len(CANDIDATES)


def test_bad_prompt_file_is_a_user_error(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("de: Warum\n", encoding="utf-8")
    with pytest.raises(MworkError, match="not a mapping"):
        load_lens_prompts(bad)
