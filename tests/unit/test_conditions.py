"""Layer regions, condition names and matched random neuron sets."""

from __future__ import annotations

import pytest
import torch

from mwork.adapters import COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet
from mwork.runlabel import (
    CONDITIONS,
    canonical_name,
    condition_label,
    layer_regions,
    parse_condition,
)
from mwork.selection import condition_selection, random_matched

L, UNITS = 10, {"ffn": 60, "attn_q": 32, "attn_k": 16, "attn_v": 16}


def ls_selection(seed: int = 0, p: float = 0.2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {c: torch.rand(L, n, generator=g) < p for c, n in UNITS.items()}


@pytest.mark.parametrize(
    "n_layers,n1,n2", [(10, 3, 2), (32, 8, 2), (32, 6, 3), (4, 0, 0), (4, 4, 0), (4, 1, 3)]
)
def test_regions_partition_layers(n_layers, n1, n2):
    r = layer_regions(n_layers, n1, n2)
    assert sorted(r["U"] + r["S"] + r["G"]) == list(range(n_layers))
    assert len(set(r["U"]) | set(r["S"]) | set(r["G"])) == n_layers  # disjoint
    assert r["U"] == list(range(n1)) and r["G"] == list(range(n_layers - n2, n_layers))


def test_regions_reject_bad_split():
    for n1, n2 in ((8, 3), (-1, 2)):
        with pytest.raises(MworkError, match="N1"):
            layer_regions(10, n1, n2)


@pytest.mark.parametrize(
    "alias,name",
    [
        ("D_U", "D_U"),
        ("D_S(A)", "D_S_attn"),
        ("d_s_attn", "D_S_attn"),
        ("D_S(F)", "D_S_ffn"),
        ("D_U&G", "D_UG"),
        ("D_All", "D_all"),
        ("D̄_S(A)", "Dbar_S_attn"),
        ("Dbar_S(A)", "Dbar_S_attn"),
        ("D^R_U", "R_U"),
        ("D^R_All", "R_all"),
        ("R_S(A)", "R_S_attn"),
        ("D^R_S(F)", "R_S_ffn"),
        ("Rbar_S_attn", "Rbar_S_attn"),
        ("D_S-ATTN", "D_S_attn"),
        ("Original", "none"),
        ("none", "none"),
    ],
)
def test_condition_aliases(alias, name):
    assert canonical_name(alias) == name


def test_unknown_condition_one_line_error():
    with pytest.raises(MworkError) as err:
        canonical_name("D_X")
    msg = str(err.value)
    assert "\n" not in msg and "D_X" in msg and all(n in msg for n in CONDITIONS)


def test_labels_with_layer_overrides():
    assert condition_label("D_U&G", n1=6, n2=3) == "D_UG-n1_6-n2_3"
    cond, n1, n2 = parse_condition("D_UG-n1_6-n2_3")
    assert (cond.name, n1, n2) == ("D_UG", 6, 3)
    ls = ls_selection()
    sel = condition_selection("D_U-n1_2", ls, L, n1=5, n2=1)  # the label's N1 wins
    assert sel["ffn"][:2].equal(ls["ffn"][:2]) and not sel["ffn"][2:].any()


def test_ls_conditions_restrict_cells():
    ls = ls_selection()
    n1, n2 = 3, 2
    s_layers = torch.zeros(L, dtype=torch.bool)
    s_layers[n1 : L - n2] = True
    sel = condition_selection("D_S(A)", ls, L, n1, n2)
    for c in COMPONENTS:
        want = ls[c] & s_layers[:, None] if c != "ffn" else torch.zeros_like(ls[c])
        assert torch.equal(sel[c], want)
    bar = condition_selection("Dbar_S(A)", ls, L, n1, n2)
    for c in COMPONENTS:
        want = ls[c] & ~s_layers[:, None] if c != "ffn" else ls[c]
        assert torch.equal(bar[c], want)
    assert all(
        torch.equal(condition_selection("D_all", ls, L, n1, n2)[c], ls[c]) for c in COMPONENTS
    )
    assert not any(condition_selection("none", ls, L, n1, n2)[c].any() for c in COMPONENTS)
    ug = condition_selection("D_UG", ls, L, n1, n2)
    assert torch.equal(ug["attn_v"], ls["attn_v"] & ~s_layers[:, None])


@pytest.mark.parametrize("name", [n for n, c in CONDITIONS.items() if c.is_random])
def test_random_sets_match_counts_and_seed(name):
    ls = ls_selection()
    ls_name = "D" + name[1:]
    want = condition_selection(ls_name, ls, L, 3, 2)
    a = condition_selection(name, ls, L, 3, 2, seed=1)
    b = condition_selection(name, ls, L, 3, 2, seed=1)
    c = condition_selection(name, ls, L, 3, 2, seed=2)
    for comp in COMPONENTS:
        assert torch.equal(a[comp].sum(1), want[comp].sum(1))
        assert torch.equal(a[comp], b[comp])
    assert any(not torch.equal(a[comp], c[comp]) for comp in COMPONENTS)
    assert any(not torch.equal(a[comp], want[comp]) for comp in COMPONENTS)


def test_random_sets_do_not_depend_on_order_or_other_layers():
    counts = {"attn_q": torch.tensor([3, 0, 5]), "ffn": torch.tensor([1, 2, 0])}
    units = {"attn_q": 32, "ffn": 60}
    a = random_matched(counts, units, seed=4)
    b = random_matched(dict(reversed(list(counts.items()))), units, seed=4)
    c = random_matched({"attn_q": torch.tensor([3, 7, 1])}, units, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in counts)
    assert torch.equal(a["attn_q"][0], c["attn_q"][0])


def test_neuron_set_input_and_bad_shapes():
    ls = ls_selection()
    ns = NeuronSet(
        selected=ls, doc_counts={c: s.int() for c, s in ls.items()}, meta={"n_docs": "1"}
    )
    from_ns, from_dict = (
        condition_selection("D_G", ns, L, 3, 2),
        condition_selection("D_G", ls, L, 3, 2),
    )
    assert all(torch.equal(from_ns[c], from_dict[c]) for c in COMPONENTS)
    with pytest.raises(MworkError, match="layers"):
        condition_selection("D_G", ls, L + 1, 3, 2)
