"""Offline token language identification: no network, clear words, non-words, script rules."""

from __future__ import annotations

import socket

import pytest

from mwork.errors import MworkError
from mwork.lid import TokenLanguageIdentifier, available_backends, lid_sample

CANDIDATES = ["en", "de", "fr", "zh", "es", "ru"]
CLEAR = {"en": "because", "de": "über", "fr": "maison", "es": "porque", "zh": "中国", "ru": "что"}
BACKENDS = [b for b in available_backends() if b != "cld3"]


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 and any socket connection fails."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_a_backend_is_installed():
    assert BACKENDS, "install lingua-language-detector or langid"


@pytest.mark.parametrize("backend", BACKENDS)
def test_clear_words_offline(offline, backend):
    ident = TokenLanguageIdentifier(CANDIDATES, backend)
    for lang, word in CLEAR.items():
        assert ident.identify(word) == (lang, True), (backend, word)
        assert ident.identify(f" {word}") == (lang, True)  # decoded tokens often carry a space


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_words_are_not_identified(backend):
    ident = TokenLanguageIdentifier(CANDIDATES, backend)
    for text in ["123", "...", "\ufffd", " ", "", "x", "->", "%%"]:
        assert ident.identify(text) == (None, False), text
    assert ident.language_or_none("123") is None


def test_script_shortcut_respects_candidates():
    ident = TokenLanguageIdentifier(["en", "de"], BACKENDS[0])
    assert ident.identify("中国") == (None, False)  # Han, but zh is not a candidate
    assert ident.identify("こんにちは") == (None, False)  # Kana: no candidate uses it
    full = TokenLanguageIdentifier(CANDIDATES, BACKENDS[0])
    assert full.identify("水") == ("zh", True)  # one Han character is a word
    assert full.identify("дом") == ("ru", True)
    assert full.identify("дом house") == (None, False)  # mixed scripts


def test_sample_precision_of_default_backend():
    sample = lid_sample()
    ident = TokenLanguageIdentifier(CANDIDATES)
    lang = sample[sample["lang"] != "none"]
    preds = [ident.identify(t) for t in lang["text"]]
    reliable = [(p, gold) for (p, ok), gold in zip(preds, lang["lang"], strict=False) if ok]
    assert len(reliable) / len(lang) > 0.7
    assert sum(p == gold for p, gold in reliable) / len(reliable) > 0.97
    none = sample[sample["lang"] == "none"]
    assert not any(ident.identify(t)[1] for t in none["text"])


def test_bad_backend_and_empty_candidates():
    with pytest.raises(MworkError, match="unknown LID backend"):
        TokenLanguageIdentifier(CANDIDATES, "fasttext")
    with pytest.raises(MworkError, match="no candidate"):
        TokenLanguageIdentifier([])
