"""Evaluation and perplexity on a model whose forward pass produces NaN (issue 26, class 1).

NaN logits still give every lm-eval item a 0/1 score, so a run would report an accuracy, and a
NaN loss would make a NaN perplexity. Both stop with one MworkError instead, and no result file
is written. The model is poisoned in memory (a NaN in the output head), past the weight check at
load that catches the same fault in a checkpoint.
"""

import copy
import math

import pytest
import torch
from test_lmeval_tasks import _spec, env  # noqa: F401 (fixture)

from mwork.errors import MworkError
from mwork.finite import watch_logits
from mwork.harness import evaluate_tasks
from mwork.perplexity import perplexity


def _poisoned(model):
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.get_output_embeddings().weight[3, 0] = math.nan
    return bad


@pytest.mark.slow  # an lm-eval run
def test_lm_eval_run_with_nan_logits_is_refused(env, tmp_path):  # noqa: F811
    specs = [_spec(env, "xcsqa", "zh")]
    out = tmp_path / "eval.json"
    with pytest.raises(MworkError, match="produced NaN/Inf logits"):
        evaluate_tasks(_poisoned(env["model"]), env["tok"], specs, out, batch_size=2, limit=2)
    assert not out.exists()
    # control: the same run on the unpoisoned model writes its result
    evaluate_tasks(env["model"], env["tok"], specs, out, batch_size=2, limit=2)
    assert out.exists()


def test_perplexity_with_nan_logits_is_refused(env):  # noqa: F811
    texts = ["hello world", "bonjour le monde", "hola mundo"]
    assert math.isfinite(perplexity(env["model"], env["tok"], texts, batch_size=2))
    with pytest.raises(MworkError, match=r"perplexity: the model's loss is nan on texts 0\.\.1"):
        perplexity(_poisoned(env["model"]), env["tok"], texts, batch_size=2)


def test_watch_logits_flags_any_pass_and_removes_its_hook(env):  # noqa: F811
    model = _poisoned(env["model"])
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(MworkError, match="run x: the model produced NaN/Inf logits"):
        with watch_logits(model, "run x"), torch.no_grad():
            env["model"](input_ids=ids)  # a good pass (another model: no hook)
            model(input_ids=ids)
    assert not model.get_output_embeddings()._forward_hooks
    with watch_logits(env["model"], "ok"), torch.no_grad():
        env["model"](input_ids=ids)
