"""`mwork neurons compare` (mwork.neuronset.compare) against its definitions on hand-made sets:
Eq. 11 both ways and Jaccard per component, pooled groups and layer (issue 25, part 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mwork.errors import MworkError
from mwork.neuronset import NeuronSet
from mwork.neuronset.compare import compare_sets


def neuron_set(selected: dict[str, list[list[int]]]) -> NeuronSet:
    sel = {c: np.array(v, dtype=bool) for c, v in selected.items()}
    counts = {c: s.astype(np.int32) for c, s in sel.items()}  # n_docs 1: selected = counted
    return NeuronSet(sel, counts, {"n_docs": "1"})


A = neuron_set(
    {
        "ffn": [[1, 1, 0, 0], [0, 0, 1, 0]],
        "attn_q": [[1, 0], [0, 0]],
        "attn_k": [[0, 0], [0, 1]],
        "attn_v": [[0, 0], [0, 0]],
    }
)
B = neuron_set(
    {
        "ffn": [[1, 0, 1, 0], [0, 0, 1, 1]],
        "attn_q": [[0, 0], [0, 0]],
        "attn_k": [[0, 1], [0, 1]],
        "attn_v": [[0, 0], [1, 0]],
    }
)


def row(rows, component, layer=-1):
    (r,) = [r for r in rows if r["component"] == component and r["layer"] == layer]
    return r


def test_every_number_against_its_definition() -> None:
    rows = compare_sets(A, B, per_layer=True)
    ffn = row(rows, "ffn")  # A: {0.0, 0.1, 1.2}, B: {0.0, 0.2, 1.2, 1.3}
    assert (ffn["n_a"], ffn["n_b"], ffn["n_both"]) == (3, 4, 2)
    assert ffn["share_of_a"] == 2 / 3 and ffn["share_of_b"] == 2 / 4  # Eq. 11 with y = A, y = B
    assert ffn["jaccard"] == 2 / (3 + 4 - 2)
    assert row(rows, "ffn", 1)["n_both"] == 1 and row(rows, "ffn", 1)["jaccard"] == 1 / 2
    attn = row(rows, "attention")  # q + k + v pooled: A {q0.0, k1.1}, B {k0.1, k1.1, v1.0}
    assert (attn["n_a"], attn["n_b"], attn["n_both"]) == (2, 3, 1)
    assert attn["jaccard"] == 1 / 4
    everything = row(rows, "all")
    assert (everything["n_a"], everything["n_b"], everything["n_both"]) == (5, 7, 3)
    q = row(rows, "attn_q")
    assert q["n_b"] == 0 and math.isnan(q["share_of_b"]) and q["share_of_a"] == 0.0
    v = row(rows, "attn_v")  # empty in A: share_of_a undefined, Jaccard 0
    assert math.isnan(v["share_of_a"]) and v["jaccard"] == 0.0


def test_symmetry_and_self() -> None:
    ab, ba = compare_sets(A, B), compare_sets(B, A)
    for x, y in zip(ab, ba, strict=True):  # NaNs compare equal here
        np.testing.assert_equal(
            (x["n_a"], x["share_of_a"], x["jaccard"]), (y["n_b"], y["share_of_b"], y["jaccard"])
        )
    assert row(compare_sets(A, A), "ffn")["jaccard"] == 1.0


def test_components_only_one_set_has_are_left_out_and_shapes_must_agree() -> None:
    lape = neuron_set({"ffn": [[1, 0, 0, 0], [0, 0, 0, 0]]})  # LAPE sets: FFN only
    assert [r["component"] for r in compare_sets(A, lape)] == ["ffn"]
    wide = neuron_set({"ffn": [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]})
    with pytest.raises(MworkError, match="ffn shapes differ"):
        compare_sets(A, wide)
