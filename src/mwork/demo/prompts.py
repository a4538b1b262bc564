"""Task prompts of the demo benchmarks (the paper's Table 10 formats, translated per language).

The same functions format the training examples (prompt + answer) and the evaluation prompts,
so a model trained on the demo mixture has seen each task's format in every language. The texts
come from the lm-eval task prompts (src/mwork/lmeval_tasks/<task>/prompts.yaml, variant `paper`), so the demo
model is scored through lm-eval with exactly the prompts it was trained on.
"""

from __future__ import annotations

import functools

from mwork.demo import languages as L
from mwork.lmeval_tasks import load_prompts


@functools.cache
def _paper_prompts() -> dict:
    """The `paper` prompt variant of each task (src/mwork/lmeval_tasks/<task>/prompts.yaml, shared with lm-eval)."""
    return {task: variants["paper"] for task, variants in load_prompts().items()}


def _prompt(task: str, lang: str, **fields: str) -> str:
    return _paper_prompts()[task][lang]["prompt"].format(**fields)


def answer_suffix(lang: str, answer: str) -> str:
    """The continuation after a prompt: lm-eval's target delimiter (a space), then the answer."""
    return f" {answer}"


def xquad_prompt(lang: str, context: str, question: str) -> str:
    """`{context} Question: {question} Answer:` (one per line)."""
    return _prompt("xquad", lang, context=context, question=question)


def xcsqa_prompt(lang: str, stem: str) -> str:
    """`Question: {stem} Answer:`; each choice is scored as `answer_suffix(choice)`."""
    return _prompt("xcsqa", lang, question=stem)


def mgsm_prompt(lang: str, question: str) -> str:
    """`Let's think step by step. Question: {question} Answer:`."""
    return _prompt("mgsm", lang, question=question)


def xlsum_prompt(lang: str, title: str, text: str) -> str:
    """`Summarize the context in one sentence. Title: {title} Context: {text} Summary:`."""
    return _prompt("xlsum", lang, title=title, text=text)


def mgsm_answer(lang: str, equation: str, number: int) -> str:
    """The worked answer string, e.g. "3 + 4 = 7. The answer is 7."."""
    end = "。" if lang == "zh" else "."
    return f"{equation}{end}{L.ui(lang, 'sep')}{L.ui(lang, 'answer_is')}{L.ui(lang, 'space')}{number}{end}"
