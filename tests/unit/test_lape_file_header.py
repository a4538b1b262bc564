"""LAPE neuron files: act_counts tensors are checked (dtype, shape) before anything is read."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from mwork.errors import MworkError
from mwork.neuronset import METADATA_KEYS, NeuronSet, load_neuron_set, save_neuron_set


def _lape_file(path):
    sel = torch.zeros(2, 4, dtype=torch.bool)
    sel[1, 2] = True
    meta = {
        "model": "m",
        "language": "zh",
        "n_layers": "2",
        "units": '{"ffn": 4}',
        "n_docs": "3",
        "detector": "lape",
        "n_tokens": "40",
        "max_tokens": "20",
    }
    act = torch.tensor([[0, 5, 9, 1], [2, 0, 40, 3]])
    docs = (act > 0).to(torch.int32)  # a unit fired in a document iff it fired on a token
    save_neuron_set(NeuronSet({"ffn": sel}, {"ffn": docs}, meta, {"ffn": act}), path)
    return act


def test_lape_header_keys_are_documented():
    assert {"detector", "n_tokens"} <= set(METADATA_KEYS)


def test_act_counts_round_trip(tmp_path):
    act = _lape_file(tmp_path / "zh.safetensors")
    ns = load_neuron_set(tmp_path / "zh.safetensors")
    got = torch.as_tensor(ns.act_counts["ffn"])  # NeuronSet holds numpy
    assert torch.equal(got, act) and got.dtype == torch.int64


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda t: t.to(torch.int32), "act_counts is I32[4], expected I64[4]"),
        (lambda t: t.to(torch.float32), "act_counts is F32[4], expected I64[4]"),
        (lambda t: t[:3], "act_counts is I64[3], expected I64[4]"),
    ],
)
def test_act_counts_of_the_wrong_dtype_or_shape_are_rejected(tmp_path, bad, message):
    path = tmp_path / "zh.safetensors"
    _lape_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    tensors["layers.1.ffn.act_counts"] = bad(tensors["layers.1.ffn.act_counts"]).contiguous()
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(MworkError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_neuron_set(path)
