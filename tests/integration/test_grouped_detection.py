"""detection.group_languages: one model load for every language writes, byte for byte, the files
of the per-language jobs (PLND neuron shards and LAPE recordings), and refuses bad input before
the model load."""

import json

import pytest
from testhelpers import A_LETTERS, B_LETTERS
from testhelpers import letter_docs as _docs

import mwork.detect
import mwork.lape
from mwork.detect import detect_to_file, detect_to_files
from mwork.errors import MworkError
from mwork.lape import record_to_file, record_to_files
from mwork.settings import DetectionSettings, ModelSpec

# three languages: the second and third run after another language on the same loaded model
LETTERS = {"zh": A_LETTERS, "fr": B_LETTERS, "de": A_LETTERS[:7] + B_LETTERS[:6]}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    out = {}
    for seed, (lang, letters) in enumerate(LETTERS.items()):
        out[lang] = root / f"{lang}.jsonl"
        texts = _docs(letters, 12, seed)
        out[lang].write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return out


@pytest.mark.parametrize("shard", [(0, 1), (1, 2)])
def test_grouped_plnd_files_equal_per_language_files(model_dir, corpora, tmp_path, shard):
    spec = ModelSpec(str(model_dir), dtype="float32")
    s = DetectionSettings(seed=3, n_docs=9, batch_size=2, top_k_ffn=5, top_k_attn=4)
    alone = {l: tmp_path / f"alone.{l}.safetensors" for l in corpora}
    for lang, corpus in corpora.items():
        detect_to_file(spec, corpus, lang, alone[lang], s, shard=shard, device="cpu")
    grouped = {l: tmp_path / f"grouped.{l}.safetensors" for l in corpora}
    sets = detect_to_files(spec, corpora, grouped, s, shard=shard, device="cpu")
    assert list(sets) == list(corpora)
    for lang in corpora:
        assert grouped[lang].read_bytes() == alone[lang].read_bytes(), lang
        assert sets[lang].meta["language"] == lang
    # the languages differ (else equal files would prove little)
    assert sets["zh"].doc_counts["ffn"].tolist() != sets["fr"].doc_counts["ffn"].tolist()


def test_grouped_lape_recordings_equal_per_language_recordings(model_dir, corpora, tmp_path):
    spec = ModelSpec(str(model_dir), dtype="float32")
    s = DetectionSettings(seed=3, n_docs=9, batch_size=2)
    alone = {l: tmp_path / f"alone.{l}.safetensors" for l in corpora}
    for lang, corpus in corpora.items():
        record_to_file(spec, corpus, lang, alone[lang], s, shard=(1, 2), device="cpu")
    grouped = {l: tmp_path / f"grouped.{l}.safetensors" for l in corpora}
    recs = record_to_files(spec, corpora, grouped, s, shard=(1, 2), device="cpu")
    for lang in corpora:
        assert grouped[lang].read_bytes() == alone[lang].read_bytes(), lang
    assert recs["zh"].act_counts["ffn"].tolist() != recs["fr"].act_counts["ffn"].tolist()


@pytest.mark.parametrize("module", [mwork.detect, mwork.lape])
def test_grouped_jobs_refuse_bad_input_before_the_model_load(
    model_dir, corpora, tmp_path, monkeypatch, module
):
    def no_load(*_a, **_k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(module, "load_spec", no_load)
    run = detect_to_files if module is mwork.detect else record_to_files
    spec = ModelSpec(str(model_dir), dtype="float32")
    s = DetectionSettings(n_docs=4)
    outs = {l: tmp_path / f"{l}.safetensors" for l in corpora}
    with pytest.raises(MworkError, match="one output per language"):
        run(spec, corpora, {"zh": outs["zh"]}, s, device="cpu")
    with pytest.raises(MworkError, match="at least one"):
        run(spec, {}, {}, s, device="cpu")
    missing = dict(corpora) | {"fr": tmp_path / "missing.jsonl"}  # the second language's corpus
    with pytest.raises(MworkError, match="missing.jsonl"):
        run(spec, missing, outs, s, device="cpu")
    assert not any(p.exists() for p in outs.values())
