"""Deactivation conditions of paper §3 / Tables 2-5: layer regions x structures x neuron source.

Regions of a model with L layers (0-based; paper §3.1, released code `index_keys_*`):
U = layers [0, N1), G = the last N2 layers [L - N2, L), S = everything in between.
Structures: `attn` (attn_q + attn_k + attn_v) and `ffn`. A condition is a set of
(region, structure) cells plus a neuron source: language-specific (LS) or random.

    canonical      paper          U      S-ATTN  S-FFN  G      neurons
    D_U            D_U            D      .       .      .      LS
    D_S            D_S            .      D       D      .      LS
    D_S_attn       D_S(A)         .      D       .      .      LS
    D_S_ffn        D_S(F)         .      .       D      .      LS
    D_G            D_G            .      .       .      D      LS
    D_UG           D_U&G          D      .       .      D      LS
    Dbar_S_attn    D̄_S(A)         D      .       D      D      LS  (all LS except S-ATTN)
    D_all          D_All          D      D       D      D      LS
    R_<x>          D^R_<x>        as D_<x>                     random, matched counts

(U and G always cover both structures.) Aliases accepted: the paper spellings, `D^R_` for `R_`,
`D̄`/`Dbar`, `(A)`/`_attn`, `(F)`/`_ffn`, `&`, any case. `none` / `original` / `vanilla` is the
unmasked baseline. A label may carry layer-split overrides for the N1/N2 sweep (Tables 12-13):
`D_U-n1_6`, `D_G-n2_3`, `D_S-n1_6-n2_3` (see `condition_label`).

Random counterparts sample, per (layer, component), uniformly without replacement from all units
of that layer/component exactly as many units as the LS selection has in the same cells. Each
(layer, component) uses its own generator seeded from (seed, layer, component), so the sets do not
depend on iteration order. App.-E variants (N_L minus English, minus the all-language overlap)
are just other NeuronSet files; any selection dict works.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from mwork.adapters import ATTN_COMPONENTS, COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet

REGIONS: tuple[str, ...] = ("U", "S", "G")
STRUCTURES: dict[str, tuple[str, ...]] = {"attn": ATTN_COMPONENTS, "ffn": ("ffn",)}
BASELINE = "none"
_BOTH = ("attn", "ffn")
_CELLS: dict[str, tuple[tuple[str, str], ...]] = {
    "U": tuple(("U", s) for s in _BOTH),
    "S": tuple(("S", s) for s in _BOTH),
    "S_attn": (("S", "attn"),),
    "S_ffn": (("S", "ffn"),),
    "G": tuple(("G", s) for s in _BOTH),
    "UG": tuple((r, s) for r in ("U", "G") for s in _BOTH),
    "all": tuple((r, s) for r in REGIONS for s in _BOTH),
}
_PAPER_SUFFIX = {"U": "U", "S": "S", "S_attn": "S(A)", "S_ffn": "S(F)", "G": "G", "UG": "U&G", "all": "All"}


@dataclass(frozen=True)
class Condition:
    """One named deactivation condition.

    Attributes:
        name: canonical, filename-safe name (e.g. "D_S_attn").
        paper: the paper's notation (e.g. "D_S(A)", "D^R_All").
        cells: (region, structure) pairs deactivated, region in U/S/G, structure in attn/ffn.
        source: "ls" (language-specific neurons) or "random" (matched random neurons).
    """

    name: str
    paper: str
    cells: frozenset[tuple[str, str]]
    source: str

    @property
    def is_random(self) -> bool:
        return self.source == "random"


def _build() -> dict[str, Condition]:
    out = {}
    for key, cells in _CELLS.items():
        for src, prefix, paper_prefix in (("ls", "D_", "D_"), ("random", "R_", "D^R_")):
            name = prefix + key
            out[name] = Condition(name, paper_prefix + _PAPER_SUFFIX[key], frozenset(cells), src)
    all_but = frozenset(_CELLS["all"]) - {("S", "attn")}
    out["Dbar_S_attn"] = Condition("Dbar_S_attn", "D̄_S(A)", all_but, "ls")
    out["Rbar_S_attn"] = Condition("Rbar_S_attn", "D̄^R_S(A)", all_but, "random")
    return out


CONDITIONS: dict[str, Condition] = _build()


def _normalise(name: str) -> str:
    s = unicodedata.normalize("NFD", name.strip()).replace("\u0304", "bar").lower()
    s = s.replace(" ", "").replace("-", "_").replace("^r", "r")
    s = s.replace("(a)", "_attn").replace("(f)", "_ffn").replace("&", "")
    s = re.sub(r"^dbar(r)?_?", lambda m: "rbar_" if m.group(1) else "dbar_", s)
    s = re.sub(r"^dr_", "r_", s)
    return s.replace("__", "_")


_ALIASES: dict[str, str] = {_normalise(n): n for n in CONDITIONS}
_ALIASES.update({_normalise(c.paper): n for n, c in CONDITIONS.items()})
_LABEL = re.compile(r"^(?P<base>.+?)(?:-n1_(?P<n1>\d+))?(?:-n2_(?P<n2>\d+))?$")


def canonical_name(name: str) -> str:
    """Canonical condition name for `name` (any alias); `none` for the baseline."""
    if _normalise(name) in ("none", "original", "vanilla", "baseline"):
        return BASELINE
    key = _normalise(name)
    if key not in _ALIASES:
        raise MworkError(
            f"unknown deactivation condition '{name}'",
            f"valid names: {', '.join(CONDITIONS)} (paper spellings like D_S(A), D^R_All also work)",
        )
    return _ALIASES[key]


def parse_condition(label: str) -> tuple[Condition | None, int | None, int | None]:
    """(condition or None for the baseline, N1 override, N2 override) of a condition label."""
    m = _LABEL.match(label.strip())
    assert m is not None  # the pattern matches any non-empty string
    name = canonical_name(m.group("base"))
    n1, n2 = (int(m.group(k)) if m.group(k) else None for k in ("n1", "n2"))
    return (None if name == BASELINE else CONDITIONS[name]), n1, n2


def condition_label(name: str, n1: int | None = None, n2: int | None = None) -> str:
    """Filename-safe label of a condition with optional layer-split overrides, e.g. `D_U-n1_6`."""
    label = canonical_name(name)
    return label + (f"-n1_{n1}" if n1 is not None else "") + (f"-n2_{n2}" if n2 is not None else "")


def n1n2_sweep(n1_values: Iterable[int], n2_values: Iterable[int]) -> list[str]:
    """Labels for Tables 12-13: D_U for each N1, then D_G for each N2."""
    labels = [condition_label("D_U", n1=n) for n in n1_values]
    return labels + [condition_label("D_G", n2=n) for n in n2_values]


def layer_regions(n_layers: int, n1: int, n2: int) -> dict[str, list[int]]:
    """0-based layers of U (first n1), S (the rest) and G (last n2)."""
    if n1 < 0 or n2 < 0 or n1 + n2 > n_layers:
        raise MworkError(
            f"layer split N1={n1}, N2={n2} does not fit a {n_layers}-layer model",
            f"need N1, N2 >= 0 and N1 + N2 <= {n_layers}",
        )
    return {
        "U": list(range(n1)), "S": list(range(n1, n_layers - n2)), "G": list(range(n_layers - n2, n_layers)),
    }


def cell_mask(condition: Condition, n_layers: int, n1: int, n2: int) -> dict[str, torch.Tensor]:
    """component -> [n_layers] bool, the layers where the condition deactivates that component."""
    regions = layer_regions(n_layers, n1, n2)
    out = {c: torch.zeros(n_layers, dtype=torch.bool) for c in COMPONENTS}
    for region, structure in condition.cells:
        for comp in STRUCTURES[structure]:
            out[comp][regions[region]] = True
    return out


def _stream_seed(seed: int, layer: int, component: str) -> int:
    """Stable seed for one (layer, component) stream; distinct for distinct inputs."""
    return (seed * 0x9E3779B1 + layer * 8 + COMPONENTS.index(component) + 1) % (2**63 - 1)


def random_matched(
    counts: Mapping[str, torch.Tensor], units: Mapping[str, int], seed: int
) -> dict[str, torch.Tensor]:
    """Uniform random units, `counts[c][layer]` of them per (layer, component), without replacement.

    Args:
        counts: component -> [n_layers] int, how many units to draw in each layer.
        units: component -> units per layer.
        seed: random seed (torch.Generator per (layer, component), see `_stream_seed`).

    Returns:
        component -> [n_layers, units[c]] bool.
    """
    out = {}
    for comp, cnt in counts.items():
        sel = torch.zeros(cnt.shape[0], units[comp], dtype=torch.bool)
        for layer, k in enumerate(cnt.tolist()):
            if k:
                g = torch.Generator().manual_seed(_stream_seed(seed, layer, comp))
                sel[layer, torch.randperm(units[comp], generator=g)[:k]] = True
        out[comp] = sel
    return out


def condition_selection(
    name: str,
    ls: NeuronSet | Mapping[str, torch.Tensor],
    n_layers: int,
    n1: int,
    n2: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The neurons a condition deactivates for one language.

    Args:
        name: condition name, alias or label (label overrides of N1/N2 win over the arguments).
        ls: the language-specific neurons, NeuronSet or component -> [n_layers, n_units] bool.
        n_layers: model layers (must equal the selection's first dimension).
        n1, n2: understanding / generation layer counts.
        seed: random seed (random conditions only).

    Returns:
        component -> [n_layers, n_units] bool for every component in `ls` (all False for the
        baseline). Random conditions match the LS counts per (layer, component) in their cells.
    """
    selected = ls.selected if isinstance(ls, NeuronSet) else dict(ls)
    for comp, sel in selected.items():
        if comp not in COMPONENTS or sel.dim() != 2 or sel.shape[0] != n_layers:
            raise MworkError(
                f"neuron selection '{comp}' has shape {tuple(sel.shape)}",
                f"expected a component of {', '.join(COMPONENTS)} with {n_layers} layers",
            )
    cond, o1, o2 = parse_condition(name)
    if cond is None:
        return {c: torch.zeros_like(s, dtype=torch.bool) for c, s in selected.items()}
    layers = cell_mask(cond, n_layers, n1 if o1 is None else o1, n2 if o2 is None else o2)
    ls_part = {c: s.bool() & layers[c][:, None] for c, s in selected.items()}
    if not cond.is_random:
        return ls_part
    counts = {c: s.sum(dim=1) for c, s in ls_part.items()}
    return random_matched(counts, {c: s.shape[1] for c, s in selected.items()}, seed)


def condition_table() -> list[dict[str, str]]:
    """One row per condition (condition, paper, U, S-ATTN, S-FFN, G, neurons); D = deactivated."""
    cols = {"U": ("U", _BOTH), "S-ATTN": ("S", ("attn",)), "S-FFN": ("S", ("ffn",)), "G": ("G", _BOTH)}
    rows = []
    for c in CONDITIONS.values():
        row = {"condition": c.name, "paper": c.paper}
        for col, (region, structures) in cols.items():
            row[col] = "D" if all((region, st) in c.cells for st in structures) else "."
        rows.append({**row, "neurons": "Rand" if c.is_random else "LS"})
    return rows
