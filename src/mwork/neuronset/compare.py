"""Two neuron sets side by side: counts, Eq. 11 overlap both ways, Jaccard (numpy only).

For sets A and B of the same model (two languages, two detectors, two settings), per component
and pooled groups (`attention` = q + k + v, `all` = every shared component), over all layers
(layer -1) and optionally per layer:

    share_of_a = |A ∩ B| / |A|     Eq. 11 with x = B, y = A (the share of A's neurons also in B)
    share_of_b = |A ∩ B| / |B|     Eq. 11 with x = A, y = B
    jaccard    = |A ∩ B| / |A ∪ B|

(NaN where the denominator is 0.) Components only one set has (LAPE's sets are FFN only) are
left out; shapes must agree.
"""

from __future__ import annotations

import numpy as np

from mwork.components import ATTN_COMPONENTS, COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset.core import NeuronSet

COMPARE_COLUMNS: tuple[str, ...] = (
    "component",
    "layer",
    "n_a",
    "n_b",
    "n_both",
    "share_of_a",
    "share_of_b",
    "jaccard",
)


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def compare_sets(a: NeuronSet, b: NeuronSet, per_layer: bool = False) -> list[dict]:
    """Rows (COMPARE_COLUMNS) comparing `a` and `b`, components first, then the pooled groups."""
    comps = [c for c in COMPONENTS if c in a.selected and c in b.selected]
    if not comps:
        raise MworkError(
            f"the sets share no component ({sorted(a.selected)} vs {sorted(b.selected)})",
            "compare sets of the same kind of detector output",
        )
    for c in comps:
        if a.selected[c].shape != b.selected[c].shape:
            raise MworkError(
                f"{c} shapes differ: {a.selected[c].shape} vs {b.selected[c].shape}",
                "compare neuron sets of the same model",
            )
    groups = {c: [c] for c in comps}
    attn = [c for c in ATTN_COMPONENTS if c in comps]
    if len(attn) > 1:
        groups["attention"] = attn
    if len(comps) > 1:
        groups["all"] = comps
    n_layers = a.selected[comps[0]].shape[0]
    rows = []
    for name, members in groups.items():
        layers = [-1, *range(n_layers)] if per_layer else [-1]
        for layer in layers:
            pick = slice(None) if layer < 0 else slice(layer, layer + 1)
            x = np.concatenate([a.selected[c][pick].ravel() for c in members])
            y = np.concatenate([b.selected[c][pick].ravel() for c in members])
            n_a, n_b, both = int(x.sum()), int(y.sum()), int(np.count_nonzero(x & y))
            rows.append(
                {
                    "component": name,
                    "layer": layer,
                    "n_a": n_a,
                    "n_b": n_b,
                    "n_both": both,
                    "share_of_a": _ratio(both, n_a),
                    "share_of_b": _ratio(both, n_b),
                    "jaccard": _ratio(both, n_a + n_b - both),
                }
            )
    return rows


def format_compare(rows: list[dict], name_a: str, name_b: str) -> str:
    """The rows as an aligned text table, with a legend naming A and B."""
    out = [
        f"A = {name_a}",
        f"B = {name_b}",
        "share_of_a = |A∩B|/|A|, share_of_b = |A∩B|/|B| (Eq. 11, y = B), jaccard = |A∩B|/|A∪B|;"
        " layer -1 = all layers",
        f"{'component':<10}{'layer':>6}{'n_a':>10}{'n_b':>10}{'n_both':>10}"
        f"{'share_of_a':>12}{'share_of_b':>12}{'jaccard':>9}",
    ]
    for r in rows:
        out.append(
            f"{r['component']:<10}{r['layer']:>6}{r['n_a']:>10}{r['n_b']:>10}{r['n_both']:>10}"
            f"{r['share_of_a']:>12.4f}{r['share_of_b']:>12.4f}{r['jaccard']:>9.4f}"
        )
    return "\n".join(out)
