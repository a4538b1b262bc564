"""Held-out perplexity of LAPE's sets (detection.compare_lape) vs matched random FFN neurons."""

import json
import math
import random

import pytest
import torch

from mwork.errors import MworkError
from mwork.lape import record_to_file, select_to_files
from mwork.modeling import load_spec
from mwork.neuronset import load_neuron_set
from mwork.perplexity import deactivation_ppl, perplexity, write_ppl_tables
from mwork.selection import condition_selection
from mwork.settings import DetectionSettings, LapeSettings, ModelSpec, PerplexitySettings
from mwork.tiny import save_tiny_model_dir

LETTERS = {"en": "abcdefghijklm", "zh": "nopqrstuvwxyz"}


def _docs(letters: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(
            "".join(rng.choice(letters) for _ in range(rng.randint(2, 6)))
            for _ in range(rng.randint(4, 9))
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny Llama, a held-out file per language and LAPE sets selected jointly from them."""
    tmp = tmp_path_factory.mktemp("ppl_lape")
    docs = {lang: _docs(letters, 12, k) for k, (lang, letters) in enumerate(LETTERS.items())}
    model = save_tiny_model_dir(tmp / "m", "llama", sum(docs.values(), []), seed=0, vocab_size=120)
    spec = ModelSpec(str(model), dtype="float32", n1=1, n2=1)
    held, recs, outs = {}, {}, {}
    for lang, texts in docs.items():
        held[lang] = tmp / f"{lang}.jsonl"
        held[lang].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        recs[lang] = [tmp / f"{lang}.rec.safetensors"]
        record_to_file(
            spec,
            held[lang],
            lang,
            recs[lang][0],
            DetectionSettings(n_docs=12, batch_size=4),
            device="cpu",
        )
        outs[lang] = tmp / f"{lang}.safetensors"
    select_to_files(recs, outs, LapeSettings(top_rate=0.1))
    return spec, outs, held


def test_lape_sets_are_masked_exactly_and_matched_by_random_ffn_units(study):
    spec, files, held = study
    settings = PerplexitySettings(seeds=[0, 1], n_texts=6, max_tokens=64, batch_size=4)
    long = deactivation_ppl(spec, files, held, settings, device="cpu", detector="lape")
    assert set(long.condition) == {"D_all", "R_all"} and set(long.mask_lang) == {"en", "zh"}
    sets = {lang: load_neuron_set(p) for lang, p in files.items()}
    assert all(ns.count() > 0 for ns in sets.values())
    for lang, part in long.groupby("mask_lang"):
        assert set(part.n_masked) == {sets[lang].count()}  # D_all = N_L, R_all matched in count
    # random counterparts are FFN units too, matched per layer (LAPE has no attention neurons)
    ns = sets["zh"]
    rand = condition_selection("R_all", ns, ns.n_layers, 1, 1, seed=0)
    ls_ffn = torch.as_tensor(ns.selected["ffn"])  # NeuronSet holds numpy
    assert set(rand) == {"ffn"} and torch.equal(rand["ffn"].sum(1), ls_ffn.sum(1))
    assert not torch.equal(rand["ffn"], ls_ffn)
    # D_all's perplexity equals zeroing those FFN units by hand (their down_proj input columns)
    model, tok, _ = load_spec(spec, "cpu")
    tok.padding_side = "right"
    for layer in range(ns.n_layers):
        units = ls_ffn[layer].nonzero().flatten()
        model.model.layers[layer].mlp.down_proj.weight.data[:, units] = 0
    texts = [json.loads(line)["text"] for line in held["zh"].read_text().splitlines()][:6]
    by_hand = perplexity(model, tok, texts, batch_size=4, max_tokens=64)
    got = long.query("mask_lang == 'zh' and condition == 'D_all' and eval_lang == 'zh'").ppl.item()
    assert math.isclose(got, by_hand, rel_tol=1e-5)
    assert got != long.query("mask_lang == 'zh' and eval_lang == 'zh'").base_ppl.iloc[0]


def test_detector_is_checked_before_the_model_loads(study, tmp_path):
    _, files, held = study
    missing_model = ModelSpec(str(tmp_path / "no-model"), dtype="float32", n1=1, n2=1)
    with pytest.raises(MworkError, match="was found by lape, not plnd"):
        deactivation_ppl(
            missing_model, files, held, PerplexitySettings(), device="cpu", detector="plnd"
        )
    with pytest.raises(MworkError, match="unknown detector"):
        deactivation_ppl(
            missing_model, files, held, PerplexitySettings(), device="cpu", detector="x"
        )


def test_summary_names_the_detector(study, tmp_path):
    import pandas as pd

    long = pd.DataFrame(
        [
            {
                "mask_lang": "zh",
                "condition": c,
                "seed": s,
                "n_masked": 4,
                "eval_lang": ev,
                "ppl": p,
                "base_ppl": 2.0,
                "delta_log_ppl": math.log(p / 2.0),
            }
            for c, s, p0 in (("D_all", -1, 3.0), ("R_all", 0, 2.2))
            for ev, p in (("zh", p0), ("en", 2.1))
        ]
    )
    write_ppl_tables(long, tmp_path / "t.csv", tmp_path / "t.md", detector="lape")
    text = (tmp_path / "t.md").read_text()
    assert "Neurons: LAPE (FFN neurons only)." in text and "| zh " in text
    with pytest.raises(MworkError, match="unknown detector"):
        write_ppl_tables(long, tmp_path / "u.csv", tmp_path / "u.md", detector="lapee")
    assert not (tmp_path / "u.csv").exists()
