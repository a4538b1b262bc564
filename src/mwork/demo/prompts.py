"""Task prompts of the demo benchmarks (the paper's Table 10 formats, translated per language).

The same functions format the training examples (prompt + answer) and the evaluation prompts,
so a model trained on the demo mixture has seen each task's format in every language.
"""

from __future__ import annotations

from mwork.demo import languages as L


def _line(lang: str, label: str, value: str) -> str:
    return f"{L.ui(lang, label)}{L.ui(lang, 'space')}{value}"


def answer_suffix(lang: str, answer: str) -> str:
    """The continuation after a prompt: a space (none in Chinese), then the answer."""
    return f"{L.ui(lang, 'space')}{answer}"


def xquad_prompt(lang: str, context: str, question: str) -> str:
    """`{context} Question: {question} Answer:` (one per line)."""
    return f"{context}\n{_line(lang, 'question', question)}\n{L.ui(lang, 'answer')}"


def xcsqa_prompt(lang: str, stem: str) -> str:
    """`Question: {stem} Answer:`; each choice is scored as `answer_suffix(choice)`."""
    return f"{_line(lang, 'question', stem)}\n{L.ui(lang, 'answer')}"


def mgsm_prompt(lang: str, question: str) -> str:
    """`Let's think step by step. Question: {question} Answer:`."""
    return f"{L.ui(lang, 'step')}\n{_line(lang, 'question', question)}\n{L.ui(lang, 'answer')}"


def xlsum_prompt(lang: str, title: str, text: str) -> str:
    """`Summarize the context in one sentence. Title: {title} Context: {text} Summary:`."""
    return (f"{L.ui(lang, 'summarize')}\n{_line(lang, 'title', title)}\n"
            f"{_line(lang, 'context', text)}\n{L.ui(lang, 'summary')}")


def mgsm_answer(lang: str, equation: str, number: int) -> str:
    """The worked answer string, e.g. "3 + 4 = 7. The answer is 7."."""
    end = "。" if lang == "zh" else "."
    return f"{equation}{end}{L.ui(lang, 'sep')}{L.ui(lang, 'answer_is')}{L.ui(lang, 'space')}{number}{end}"
