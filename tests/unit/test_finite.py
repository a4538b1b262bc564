"""mwork.finite's fast test (a tensor's sum) finds every NaN/Inf and reports no finite tensor."""

import math

import pytest
import torch

from mwork.errors import MworkError
from mwork.finite import check_loss, check_scores, check_tensors, first_nonfinite


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_every_nonfinite_kind_is_found(dtype):
    for bad in (math.nan, math.inf, -math.inf):
        t = torch.zeros(5, 7, dtype=dtype)
        t[3, 2] = bad
        found = first_nonfinite({"a": torch.ones(3, dtype=dtype), "b": t})
        assert found is not None and found[:2] == ("b", 1), (dtype, bad, found)
        assert (math.isnan(found[2]) and math.isnan(bad)) or found[2] == bad
    both = torch.tensor([math.inf, -math.inf, 1.0], dtype=dtype)  # inf + -inf: NaN sum
    assert first_nonfinite({"x": both})[:2] == ("x", 2)


def test_finite_tensors_whose_sum_overflows_pass():
    big32 = torch.full((4,), 3e38)  # sums to inf in float32
    big16 = torch.full((100,), 60000.0, dtype=torch.float16)  # beyond float16 when summed
    assert first_nonfinite({"a": big32, "b": big16, "i": torch.arange(3)}) is None


def test_scores_name_component_layer_and_batch():
    s = torch.zeros(2, 4, 6)
    s[1, 2, 5] = math.nan
    with pytest.raises(MworkError, match=r"PLND importance of ffn in layer 2 .* in batch 7"):
        check_scores({"attn_q": torch.zeros(2, 4, 3), "ffn": s}, "PLND importance", 7)
    check_scores({"ffn": torch.zeros(2, 4, 6)}, "PLND importance", 0)


def test_loss_and_file_tensors():
    check_loss(2.5, 1, 2e-6)
    with pytest.raises(MworkError, match=r"fine-tuning loss is inf at step 3 \(lr 0.5\)"):
        check_loss(math.inf, 3, 0.5)
    with pytest.raises(MworkError, match=r"f.safetensors: tensor w holds 1 non-finite"):
        check_tensors({"w": torch.tensor([1.0, math.nan])}, "f.safetensors", "fix")
