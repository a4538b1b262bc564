"""Metrics on scripts without spaces: Thai word segmentation (PyThaiNLP newmm), Lao/Khmer clusters.

Real Thai sentences (everyday Thai; the capital's official name "กรุงเทพมหานคร"). Before the
segmenter, a whole Thai sentence was one token, so a paraphrase scored ROUGE-L 0.0 and XQuAD F1
was exact match.
"""

import pytest

from mwork.lmeval_tasks.metrics import (
    MultilingualRougeTokenizer,
    qa_contains,
    qa_f1,
    qa_tokens,
    rouge_scores,
    segment_word,
)

TODAY = "วันนี้อากาศดีมาก"  # "the weather is very nice today"
TODAY_PARA = "อากาศวันนี้ดีมาก"  # same words, other order
CAPITAL = "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"  # "Bangkok is the capital of Thailand"
CAPITAL_PARA = "ประเทศไทยมีเมืองหลวงคือกรุงเทพมหานคร"  # "Thailand has its capital, Bangkok"
CAT = "แมวนอนอยู่บนโต๊ะในห้องครัว"  # "the cat sleeps on the table in the kitchen"


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure in [0, 1] with the multilingual tokenizer."""
    return rouge_scores(prediction, reference, ("rougeL",))["rougeL"]


def test_thai_sentences_are_segmented_into_words():
    assert MultilingualRougeTokenizer().tokenize(TODAY) == ["วันนี้", "อากาศ", "ดีมาก"]
    toks = qa_tokens(CAPITAL, "th")
    assert "กรุงเทพมหานคร" in toks and "ประเทศ" in toks and "".join(toks) == CAPITAL


def test_thai_paraphrase_scores_above_zero_and_unrelated_scores_zero():
    # LCS of [วันนี้ อากาศ ดีมาก] and [อากาศ วันนี้ ดีมาก] is 2 of 3 words
    assert rouge_l(TODAY_PARA, TODAY) == pytest.approx(2 / 3)
    assert 0.2 < rouge_l(CAPITAL_PARA, CAPITAL) < 0.5
    # character-level would give ~0.25 here (shared letters); words share nothing
    assert rouge_l(CAT, CAPITAL) == 0.0
    assert rouge_l(CAPITAL, CAPITAL) == 1.0


def test_thai_qa_f1_is_partial_credit_not_exact_match():
    gold = ["กรุงเทพมหานคร"]
    assert qa_f1("กรุงเทพมหานคร", gold, "th") == 1.0
    assert qa_f1("เมืองกรุงเทพมหานคร", gold, "th") == pytest.approx(2 / 3)  # [เมือง, กรุงเทพมหานคร]
    assert qa_contains("เมืองหลวงคือกรุงเทพมหานคร", gold, "th") == 1.0
    assert qa_contains(CAT, gold, "th") == 0.0


def test_mixed_scripts_and_cluster_scripts():
    assert qa_tokens("Hello 你好 วันนี้อากาศดี") == ["hello", "你", "好", "วันนี้", "อากาศ", "ดี"]
    assert segment_word("សួស្តី") == ["សួ", "ស្", "តី"]  # Khmer "hello": base + combining marks
    assert "".join(segment_word("ສະບາຍດີ")) == "ສະບາຍດີ"  # Lao, nothing lost
    assert segment_word("привет") == ["привет"]  # spaced scripts stay whole
