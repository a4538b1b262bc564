"""Deactivation count rules (`deactivation.count`): all, per_layer caps, equal totals per table."""

from __future__ import annotations

import pytest
import torch

from mwork.errors import MworkError
from mwork.neuronset import NeuronSet
from mwork.runlabel import CountRule, layer_regions
from mwork.selection import apportion, condition_selection, equal_target, neuron_counts, top_units
from mwork.settings import EvaluationSettings, PerplexitySettings

L, N1, N2 = 6, 2, 2
UNITS = {"ffn": 12, "attn_q": 8, "attn_k": 4, "attn_v": 4}
TABLE = ["D_U", "D_S", "D_S_attn", "D_S_ffn", "D_G", "D_UG", "Dbar_S_attn", "D_all", "R_U", "R_all"]


def hand_set(seed: int = 0, p: float = 0.4) -> NeuronSet:
    """Random LS selection with distinct-ish doc counts (selected units have higher counts)."""
    g = torch.Generator().manual_seed(seed)
    sel = {c: torch.rand(L, n, generator=g) < p for c, n in UNITS.items()}
    counts = {
        c: torch.randint(0, 5, s.shape, generator=g, dtype=torch.int32) + 5 * s.int()
        for c, s in sel.items()
    }
    return NeuronSet(selected=sel, doc_counts=counts, meta={"n_docs": "10"})


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[c], b[c]) for c in a)


def total(sel: dict[str, torch.Tensor]) -> int:
    return sum(int(s.sum()) for s in sel.values())


def test_top_units_most_documents_ties_by_index():
    mask = torch.tensor([True, True, False, True, True, True])
    counts = torch.tensor([3, 7, 9, 7, 1, 3])
    assert top_units(mask, counts, 2).nonzero().flatten().tolist() == [
        1,
        3,
    ]  # unit 2 not a candidate
    assert top_units(mask, counts, 3).nonzero().flatten().tolist() == [0, 1, 3]  # 0 beats 5 (tie 3)
    assert torch.equal(top_units(mask, counts, 10), mask)
    assert not top_units(mask, counts, 0).any()


def test_apportion_exact_and_proportional():
    assert apportion([6, 3, 1], 5) == [3, 2, 0]  # 3.0, 1.5, 0.5 -> ties by cell order
    assert apportion([4, 4, 4], 12) == [4, 4, 4]
    assert apportion([5, 0, 5], 3) == [2, 0, 1]
    for counts, t in (([7, 2, 9, 1], 11), ([1] * 9, 4), ([0, 0], 0)):
        q = apportion(counts, t)
        assert sum(q) == t and all(0 <= a <= n for a, n in zip(q, counts, strict=True))


def test_all_rule_is_every_ls_neuron_in_the_cells():
    ns = hand_set()
    sel = condition_selection("D_S", ns, L, N1, N2, count=CountRule("all"))
    assert torch.equal(sel["ffn"][N1 : L - N2], torch.as_tensor(ns.selected["ffn"][N1 : L - N2]))
    assert not sel["ffn"][:N1].any() and not sel["ffn"][L - N2 :].any()
    assert same(sel, condition_selection("D_S", ns, L, N1, N2))  # the default of the function


def test_per_layer_caps_keep_most_documents():
    ns = hand_set()
    rule = CountRule("per_layer", attn_n=1, ffn_n=2)
    sel = condition_selection("D_UG", ns, L, N1, N2, count=rule)
    regions = layer_regions(L, N1, N2)
    for c, s in sel.items():
        cap = 2 if c == "ffn" else 1
        for layer in range(L):
            picked = s[layer].nonzero().flatten().tolist()
            if layer in regions["S"]:
                assert picked == []
                continue
            cand = torch.as_tensor(ns.selected[c][layer]).nonzero().flatten().tolist()
            expect = sorted(cand, key=lambda i: (-int(ns.doc_counts[c][layer, i]), i))[:cap]
            assert picked == sorted(expect)
    # caps only in switched-on cells; no cap = all
    only_ffn = condition_selection("D_all", ns, L, N1, N2, count=CountRule("per_layer", ffn_n=1))
    assert torch.equal(only_ffn["attn_q"], torch.as_tensor(ns.selected["attn_q"]))
    assert (only_ffn["ffn"].sum(dim=1) <= 1).all()


def test_equal_rule_same_total_for_every_condition_of_a_table():
    ns = hand_set(3)
    rule = CountRule("equal", peers=tuple(TABLE))
    ls_totals = {
        c: total(condition_selection(c, ns, L, N1, N2)) for c in TABLE if c.startswith("D")
    }
    target = min(ls_totals.values())
    assert target == equal_target(TABLE, ns, L, N1, N2) > 0
    assert len(set(ls_totals.values())) > 1  # the hand-made set is not trivially equal
    for cond in TABLE:
        sel = condition_selection(cond, ns, L, N1, N2, seed=1, count=rule)
        assert total(sel) == target, cond
        full = condition_selection(cond.replace("R_", "D_"), ns, L, N1, N2)
        if cond.startswith("D"):  # a subset of the condition's LS neurons
            assert all(not (sel[c] & ~full[c]).any() for c in sel)


def test_equal_rule_is_proportional_and_deterministic():
    ns = hand_set(4)
    rule = CountRule("equal", peers=("D_U", "D_all"))
    sel = condition_selection("D_all", ns, L, N1, N2, count=rule)
    assert same(sel, condition_selection("D_all", ns, L, N1, N2, count=rule))
    cells = [(layer, c) for layer in range(L) for c in ("ffn", "attn_q", "attn_k", "attn_v")]
    counts = [int(ns.selected[c][layer].sum()) for layer, c in cells]
    target = total(condition_selection("D_U", ns, L, N1, N2))
    expect = apportion(counts, target)
    assert [int(sel[c][layer].sum()) for layer, c in cells] == expect
    for layer, c in cells:  # within a cell: the units selected on most documents
        k = int(sel[c][layer].sum())
        assert torch.equal(
            sel[c][layer],
            top_units(
                torch.as_tensor(ns.selected[c][layer]), torch.as_tensor(ns.doc_counts[c][layer]), k
            ),
        )


def test_random_counterpart_matches_reduced_ls_per_layer_component():
    ns = hand_set(5)
    for rule in (
        CountRule("equal", peers=("D_U", "D_S")),
        CountRule("per_layer", attn_n=1, ffn_n=1),
    ):
        ls = condition_selection("D_S", ns, L, N1, N2, count=rule)
        rnd = condition_selection("R_S", ns, L, N1, N2, seed=7, count=rule)
        for c in ls:
            assert torch.equal(ls[c].sum(dim=1), rnd[c].sum(dim=1))


def test_equal_peers_keep_layer_split_overrides():
    ns = hand_set(6)
    rule = CountRule("equal", peers=("D_U-n1_1", "D_U-n1_3"))
    small = total(condition_selection("D_U-n1_1", ns, L, N1, N2))
    assert total(condition_selection("D_U-n1_3", ns, L, N1, N2, count=rule)) == small


def test_neuron_counts_by_structure():
    ns = hand_set()
    sel = condition_selection("D_all", ns, L, N1, N2)
    nc = neuron_counts(sel, layer_regions(L, N1, N2))
    for r, comps in nc["by_region"].items():
        assert nc["by_structure"][r]["ffn"] == comps["ffn"]
        assert nc["by_structure"][r]["attn"] == comps["attn_q"] + comps["attn_k"] + comps["attn_v"]
    assert sum(sum(v.values()) for v in nc["by_structure"].values()) == nc["total"]


def test_bad_rule_and_settings_defaults():
    with pytest.raises(MworkError, match="count rule"):
        CountRule("most")
    with pytest.raises(MworkError, match="attn_n"):
        CountRule("per_layer", attn_n=-1)
    ev, pp = EvaluationSettings(), PerplexitySettings()
    assert ev.count == pp.count == "equal"  # the paper's "numbers ... are the same"
    rule = CountRule.from_settings(EvaluationSettings.from_mapping({}), peers=["D_U"])
    assert rule.peers == ("D_U",) and rule.rule == "equal"
