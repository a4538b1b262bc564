"""Hand-computed cases for mwork.lmeval_tasks.metrics and the benchmarks' lm-eval hooks."""

from __future__ import annotations

import pytest

from mwork.lmeval_tasks import hooks, mgsm, xcsqa, xquad
from mwork.lmeval_tasks import metrics as m


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure in [0, 1] with the multilingual tokenizer."""
    return m.rouge_scores(prediction, reference, ("rougeL",))["rougeL"]


def test_en_squad_normalisation_drops_case_punctuation_articles() -> None:
    assert m.normalize_answer("The  Eiffel Tower!", "en") == "eiffel tower"
    assert m.qa_exact_match("the Eiffel tower.", ["Eiffel Tower"], "en") == 1.0
    # articles are English-only: German keeps "the" as a word
    assert m.qa_exact_match("the Eiffel tower", ["Eiffel Tower"], "de") == 0.0
    assert m.normalize_answer("« Tour Eiffel »", "fr") == "tour eiffel"


def test_en_f1_bag_of_words() -> None:
    # [big, red, apple] vs [red, apple, pie]: 2 common, P = R = 2/3
    assert m.qa_f1("the big red apple", "red apple pie", "en") == pytest.approx(2 / 3)
    assert m.qa_f1("banana", ["red apple", "banana"], "en") == 1.0  # max over golds
    assert m.qa_f1("", ["x"], "en") == 0.0


def test_cjk_f1_by_character() -> None:
    assert m.qa_tokens("在北京 2008年", "zh") == ["在", "北", "京", "2008", "年"]
    # [北, 京, 市] vs [北, 京]: P = 2/3, R = 1, F1 = 0.8 (whitespace tokens would give 0)
    assert m.qa_f1("北京市", ["北京"], "zh") == pytest.approx(0.8)
    assert m.qa_exact_match("北京市", ["北京"], "zh") == 0.0
    assert m.qa_exact_match("北京。", ["北 京"], "zh") == 1.0


def test_containment() -> None:
    assert m.qa_contains("I think it is Beijing, China.", ["beijing"], "en") == 1.0
    assert m.qa_contains("Beijingese food", ["beijing"], "en") == 0.0  # token boundaries
    assert m.qa_contains("答案是北京。", ["上海", "北京"], "zh") == 1.0
    assert m.qa_contains("anything", [""], "en") == 0.0
    assert m.qa_contains("the", ["the"], "en") == 0.0  # normalises to nothing


def test_rouge_tokenizer_keeps_non_latin_scripts() -> None:
    tok = m.MultilingualRougeTokenizer()
    assert tok.tokenize("Hello, WORLD 42") == ["hello", "world", "42"]
    assert tok.tokenize("北京 是首都") == ["北", "京", "是", "首", "都"]
    assert tok.tokenize("Москва — столица") == ["москва", "столица"]
    assert tok.tokenize("สวัสดี ครับ") == ["สวัสดี", "ครับ"]  # Thai vowel marks stay in the word
    assert tok.tokenize("كَتَبَ الولد") == ["كَتَبَ", "الولد"]  # Arabic harakat stay too


def test_rouge_l_nonzero_where_default_tokenizer_gives_zero() -> None:
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"])
    zh = ("北京是中国的首都", "中国的首都是北京")  # LCS 中国的首都 = 5 of 8 characters
    ru = ("Москва столица России", "Столица России Москва")  # LCS 2 of 3 words
    for pred, ref in (zh, ru):
        assert default.score(ref, pred)["rougeL"].fmeasure == 0.0
    assert rouge_l(*zh) == pytest.approx(5 / 8)
    assert rouge_l(*ru) == pytest.approx(2 / 3)
    scores = m.rouge_scores("Москва столица России", "Москва столица России")
    assert scores == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#### 42", 42),
        ("She has 3 apples and 5 pears.\n#### 8", 8),
        ("3 apples #### 5 dollars and 6 cents", 6),  # last number after ####
        ("The answer is 1,234.", 1234),
        ("Total: 1,234,567 people", 1234567),
        ("It costs 7, then 12.75", 12),  # truncated to int like the paper's script
        ("The result is -3", -3),
        ("#### none", None),  # the script gives up when #### holds no number
        ("no number here", None),
        ("", None),
    ],
)
def test_extract_mgsm_number(text: str, expected: int | None) -> None:
    assert m.extract_mgsm_number(text) == expected


def test_mgsm_correct() -> None:
    assert m.mgsm_correct("#### 42", 42) == 1.0
    assert m.mgsm_correct("so 42.0", "42") == 1.0
    assert m.mgsm_correct("so 41", 42) == 0.0
    assert m.mgsm_correct("nothing", 0) == 0.0


def test_hook_functions() -> None:
    doc = {"answers": {"text": ["北京"], "answer_start": [0]}}
    out = xquad.process_results_zh(doc, ["\n北京市\n后面"])  # first non-empty line
    assert out == {"exact_match": 0.0, "f1": pytest.approx(0.8), "contains": 1.0}
    assert xquad.process_results_zh.__name__ == "process_results_zh"
    mg = mgsm.process_results_upstream({"answer_number": 1234}, ["1,234"])
    assert mg == {"acc": 1.0, "exact_match": 1.0}
    xc = {
        "question": {"stem": "s", "choices": {"label": list("ABCDE"), "text": list("vwxyz")}},
        "answerKey": "C",
    }
    assert xcsqa.gold(xc) == 2
    assert xcsqa.choice_texts(xc) == list("vwxyz")
    with pytest.raises(AttributeError):
        hooks.no_such_function  # noqa: B018


def test_sample_docs_is_seeded_and_ordered() -> None:
    from datasets import Dataset

    ds = Dataset.from_list([{"id": str(i)} for i in range(20)])
    first = hooks.sample_docs_n5_seed3(ds)["id"]
    assert first == hooks.sample_docs(ds, 5, 3)["id"]
    assert first == sorted(first, key=int) and len(first) == 5
    assert first != hooks.sample_docs(ds, 5, 4)["id"]
    assert len(hooks.sample_docs(ds, 500, 0)) == 20
