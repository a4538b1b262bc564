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

Run labels, the `{condition}` segment of the workflow's result paths (`RunLabel`):

    {condition}[-n1_{N1}][-n2_{N2}][.{variant}][-s{seed}]

    D_U, D_S_attn, Dbar_S_attn      canonical condition names (`CONDITIONS`)
    D_U-n1_6, D_G-n2_3              layer-split overrides of the N1/N2 sweep (Tables 12-13)
    Dbar_S_attn.minus-en            App.-E neuron-set variant (N_L minus N_en; minus-shared)
    R_U-s0                          random condition with its sampling seed
    ft_ls-400, ft_random-400        fine-tuned model (paper §4): no mask, the delta of (kind, N
                                    documents) of the mask language applied (`mwork.finetune`)

`RUN_LABEL_PATTERN` is the grammar as a regex (rules/common.smk holds a copy, kept equal by a
test); `RunLabel.table_condition` drops the seed (tables average over seeds), keeps the variant.

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
from typing import Any

import torch

from mwork.adapters import ATTN_COMPONENTS, COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet

REGIONS: tuple[str, ...] = ("U", "S", "G")
STRUCTURES: dict[str, tuple[str, ...]] = {"attn": ATTN_COMPONENTS, "ffn": ("ffn",)}
BASELINE = "none"  # condition and mask language of the unmasked runs
VARIANTS: tuple[str, ...] = ("all", "minus-en", "minus-shared")
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
_PAPER_SUFFIX = {
    "U": "U",
    "S": "S",
    "S_attn": "S(A)",
    "S_ffn": "S(F)",
    "G": "G",
    "UG": "U&G",
    "all": "All",
}


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
_RUN = re.compile(r"^(?P<cond>.+?)(?:\.(?P<variant>minus-en|minus-shared))?(?:-s(?P<seed>\d+))?$")
# The run-label grammar with canonical condition names (what result paths contain).
# Fine-tuned runs (paper §4): `ft_{kind}-{N}` = no mask, the delta of (kind, N documents) of the
# mask language applied (`mwork.finetune`); kinds as `mwork.finetune.delta.MODES`.
FINETUNE_KINDS: tuple[str, ...] = ("ls", "random", "full")
FINETUNE_PREFIX = "ft_"
_FT = re.compile(r"^ft_(?P<kind>ls|random|full)-(?P<n>\d+)$")
RUN_LABEL_PATTERN = (
    r"(?:(?:(?:D|R)_(?:U|S|S_attn|S_ffn|G|UG|all)|(?:Dbar|Rbar)_S_attn)"
    r"(?:-n1_\d+)?(?:-n2_\d+)?(?:\.minus-en|\.minus-shared)?(?:-s\d+)?"
    r"|ft_(?:ls|random|full)-\d+)"
)


def finetune_label(kind: str, n_docs: int) -> str:
    """Run label of a fine-tuned model, e.g. `ft_ls-400`."""
    if kind not in FINETUNE_KINDS or int(n_docs) < 1:
        raise MworkError(
            f"no fine-tuning run ({kind!r}, {n_docs})", f"kind in {FINETUNE_KINDS}, N >= 1"
        )
    return f"{FINETUNE_PREFIX}{kind}-{int(n_docs)}"


def is_finetune_label(label: str) -> bool:
    """True for `ft_{kind}-{N}` labels (scored like conditions, but nothing is masked)."""
    return _FT.match(label.strip()) is not None


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


@dataclass(frozen=True)
class RunLabel:
    """A parsed, checked run label (the grammar is in the module docstring).

    Attributes:
        condition: canonical condition name, or "none" for the baseline.
        n1, n2: layer-split overrides of the label (None: the model's).
        variant: neuron-set variant, "all", "minus-en" or "minus-shared".
        seed: random-set seed (random conditions), else None.
        finetune: kind of a fine-tuned run (`ft_{kind}-{N}`: ls, random, full), else None;
            `condition` is then the label itself and nothing is masked.
        n_docs: training documents N of a fine-tuned run, else None.
    """

    condition: str
    n1: int | None = None
    n2: int | None = None
    variant: str = "all"
    seed: int | None = None
    finetune: str | None = None
    n_docs: int | None = None

    @classmethod
    def parse(cls, label: str, seed: int | None = None) -> RunLabel:
        """Parse and check `label`; `seed` is used for a random condition whose label has none.

        Raises:
            MworkError: unknown condition, a seed on a non-random condition, or a variant,
                seed or layer split on the baseline.
        """
        ft = _FT.match(label.strip())
        if ft is not None:
            return cls(ft.group(0), finetune=ft.group("kind"), n_docs=int(ft.group("n")))
        m = _RUN.match(label.strip())
        if m is None:
            raise MworkError(
                f"empty run label {label!r}", "use e.g. D_U, R_all-s0, Dbar_S_attn.minus-en"
            )
        cond, n1, n2 = parse_condition(m.group("cond"))
        variant = m.group("variant") or "all"
        label_seed = int(m.group("seed")) if m.group("seed") else None
        if cond is None:
            if variant != "all" or label_seed is not None or n1 is not None or n2 is not None:
                raise MworkError(
                    f"the baseline label {label!r} takes no variant, seed or layer split",
                    "use 'none'",
                )
            return cls(BASELINE)
        if not cond.is_random and label_seed is not None:
            raise MworkError(
                f"run label {label!r} has a seed but {cond.name} is not random",
                "drop the -s suffix",
            )
        if cond.is_random and label_seed is None:
            label_seed = 0 if seed is None else seed
        return cls(cond.name, n1, n2, variant, label_seed if cond.is_random else None)

    @property
    def is_baseline(self) -> bool:
        return self.condition == BASELINE

    @property
    def is_finetuned(self) -> bool:
        """A fine-tuned model's run (`ft_{kind}-{N}`): a delta applied, no mask."""
        return self.finetune is not None

    @property
    def spec(self) -> Condition | None:
        """The Condition (None for the baseline and fine-tuned runs)."""
        return None if self.is_baseline or self.is_finetuned else CONDITIONS[self.condition]

    @property
    def split_condition(self) -> str:
        """Condition with its layer-split overrides, e.g. "D_U-n1_6"."""
        if self.is_finetuned:
            return self.condition
        return condition_label(self.condition, self.n1, self.n2)

    @property
    def table_condition(self) -> str:
        """The `condition` column of the score table: the label without the seed."""
        return self.split_condition + ("" if self.variant == "all" else f".{self.variant}")

    @property
    def text(self) -> str:
        """The label as written in result paths."""
        return self.table_condition + ("" if self.seed is None else f"-s{self.seed}")

    def layer_split(self, n1: int, n2: int) -> tuple[int, int]:
        """The effective (N1, N2): the label's overrides, else the model's."""
        return (n1 if self.n1 is None else self.n1), (n2 if self.n2 is None else self.n2)


def layer_regions(n_layers: int, n1: int, n2: int) -> dict[str, list[int]]:
    """0-based layers of U (first n1), S (the rest) and G (last n2)."""
    if n1 < 0 or n2 < 0 or n1 + n2 > n_layers:
        raise MworkError(
            f"layer split N1={n1}, N2={n2} does not fit a {n_layers}-layer model",
            f"need N1, N2 >= 0 and N1 + N2 <= {n_layers}",
        )
    return {
        "U": list(range(n1)),
        "S": list(range(n1, n_layers - n2)),
        "G": list(range(n_layers - n2, n_layers)),
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


COUNT_RULES: tuple[str, ...] = ("all", "per_layer", "equal")


@dataclass(frozen=True)
class CountRule:
    """How many of a condition's LS neurons are deactivated (config `deactivation.count`).

    Rules (the random counterpart always matches, per (layer, component), what the LS condition
    of the same cells masks under the rule):
        all        every LS neuron in the condition's cells (the neuron set as detected).
        per_layer  the released code's caps: at most `attn_n` units of each of q/k/v and `ffn_n`
                   FFN units per layer in the cells (None: no cap for that structure); within a
                   layer the units selected on the most documents (`doc_counts`), ties by index.
        equal      every condition of a table masks the same total: T = the smallest LS total
                   of the table's LS conditions (`peers`, plus the condition itself), spread over
                   the condition's (layer, component) cells proportionally to its LS counts
                   (largest remainder, ties in layer/component order), the units within a cell
                   ranked as for per_layer. Satisfies the paper's "numbers of deactivated neurons
                   in all settings are the same".

    Attributes:
        rule: one of COUNT_RULES.
        attn_n, ffn_n: per-layer caps of `per_layer` (q/k/v each; FFN).
        peers: run labels of the table's conditions (`equal`; random ones stand for their LS
            counterpart, variants and seeds are ignored, layer-split overrides are kept).
    """

    rule: str = "all"
    attn_n: int | None = None
    ffn_n: int | None = None
    peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rule not in COUNT_RULES:
            raise MworkError(
                f"unknown deactivation count rule '{self.rule}'",
                f"use one of {', '.join(COUNT_RULES)}",
            )
        for name in ("attn_n", "ffn_n"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise MworkError(
                    f"deactivation.{name} must be >= 0 (got {v})", "pass a count or null"
                )

    @classmethod
    def from_settings(cls, settings: Any, peers: Iterable[str] = ()) -> CountRule:
        """From settings with `count`, `attn_n`, `ffn_n` (and optionally `count_peers`)."""
        peers = tuple(peers) or tuple(getattr(settings, "count_peers", ()) or ())
        return cls(settings.count, settings.attn_n, settings.ffn_n, peers)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly record of the rule (result files)."""
        return {
            "rule": self.rule,
            "attn_n": self.attn_n,
            "ffn_n": self.ffn_n,
            "peers": list(self.peers),
        }


def ls_counterpart(cond: Condition) -> Condition:
    """The LS condition of the same cells (itself for an LS condition)."""
    if not cond.is_random:
        return cond
    return CONDITIONS["D" + cond.name[1:]]


def top_units(mask: torch.Tensor, doc_counts: torch.Tensor, k: int) -> torch.Tensor:
    """The `k` units of `mask` selected on the most documents, ties by lower index.

    Args:
        mask: [n_units] bool, candidate units.
        doc_counts: [n_units] int, documents that selected each unit.
        k: how many to keep (all when k >= the candidates).

    Returns:
        [n_units] bool, a subset of `mask` with min(k, mask.sum()) units.
    """
    idx = torch.nonzero(mask).flatten()  # ascending
    if k >= idx.numel():
        return mask.clone()
    order = torch.sort(-doc_counts[idx].to(torch.int64), stable=True).indices
    out = torch.zeros_like(mask)
    out[idx[order[:k]]] = True
    return out


def apportion(counts: list[int], target: int) -> list[int]:
    """Split `target` over cells proportionally to `counts` (largest remainder, exact integers).

    Remainders tie in cell order. Requires 0 <= target <= sum(counts); every quota <= its count.
    """
    total = sum(counts)
    if total == 0 or target >= total:
        return list(counts)
    quotas = [n * target // total for n in counts]
    rems = [n * target % total for n in counts]
    left = target - sum(quotas)
    for i in sorted(range(len(counts)), key=lambda i: (-rems[i], i))[:left]:
        quotas[i] += 1
    return quotas


def _ls_cells(
    cond: Condition, selected: Mapping[str, torch.Tensor], n_layers: int, n1: int, n2: int
):
    layers = cell_mask(cond, n_layers, n1, n2)
    return {c: s.bool() & layers[c][:, None] for c, s in selected.items()}


def _ls_of_label(label: str, selected, n_layers: int, n1: int, n2: int) -> dict[str, torch.Tensor]:
    """LS cells of a (peer) label: random -> its LS counterpart; variant/seed ignored."""
    run = RunLabel.parse(label)
    if run.is_baseline:
        return {c: torch.zeros_like(s, dtype=torch.bool) for c, s in selected.items()}
    e1, e2 = run.layer_split(n1, n2)
    return _ls_cells(ls_counterpart(run.spec), selected, n_layers, e1, e2)


def _apply_count(
    ls_part: dict[str, torch.Tensor],
    doc_counts: Mapping[str, torch.Tensor],
    rule: CountRule,
    peer_total: int | None,
) -> dict[str, torch.Tensor]:
    """Reduce an LS selection by `rule` (see CountRule); `peer_total` is T of the equal rule."""
    if rule.rule == "all":
        return ls_part
    out = {c: s.clone() for c, s in ls_part.items()}
    if rule.rule == "per_layer":
        for c, s in out.items():
            cap = rule.ffn_n if c == "ffn" else rule.attn_n
            if cap is None:
                continue
            for layer in range(s.shape[0]):
                out[c][layer] = top_units(s[layer], doc_counts[c][layer], cap)
        return out
    cells = [
        (layer, c)
        for layer in range(next(iter(out.values())).shape[0])
        for c in COMPONENTS
        if c in out
    ]
    counts = [int(out[c][layer].sum()) for layer, c in cells]
    quotas = apportion(
        counts, min(peer_total if peer_total is not None else sum(counts), sum(counts))
    )
    for (layer, c), q in zip(cells, quotas, strict=True):
        out[c][layer] = top_units(out[c][layer], doc_counts[c][layer], q)
    return out


def equal_target(
    labels: Iterable[str],
    ls: NeuronSet | Mapping[str, torch.Tensor],
    n_layers: int,
    n1: int,
    n2: int,
) -> int:
    """T of the equal rule: the smallest non-zero LS total over the LS counterparts of `labels`.

    A condition whose cells hold no LS neuron of this set (e.g. D_S_attn for an FFN-only LAPE
    set) masks nothing whatever the rule and is left out, so it cannot zero the whole table.
    """
    selected = ls.selected if isinstance(ls, NeuronSet) else dict(ls)
    labels = list(labels)
    if not labels:
        raise MworkError("the equal count rule needs the table's conditions", "pass count peers")
    totals = [
        sum(int(s.sum()) for s in _ls_of_label(lab, selected, n_layers, n1, n2).values())
        for lab in labels
    ]
    return min([t for t in totals if t > 0], default=0)


def condition_selection(
    name: str,
    ls: NeuronSet | Mapping[str, torch.Tensor],
    n_layers: int,
    n1: int,
    n2: int,
    seed: int = 0,
    count: CountRule | None = None,
) -> dict[str, torch.Tensor]:
    """The neurons a condition deactivates for one language.

    Args:
        name: condition name, alias or label (label overrides of N1/N2 win over the arguments).
        ls: the language-specific neurons, NeuronSet or component -> [n_layers, n_units] bool
            (a plain mapping has no doc_counts: the count rules then rank by index only).
        n_layers: model layers (must equal the selection's first dimension).
        n1, n2: understanding / generation layer counts.
        seed: random seed (random conditions only).
        count: how many LS neurons are masked (`CountRule`; None: all of them).

    Returns:
        component -> [n_layers, n_units] bool for every component in `ls` (all False for the
        baseline). Random conditions match the (count-reduced) LS counts per (layer, component)
        in their cells.
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
    e1, e2 = n1 if o1 is None else o1, n2 if o2 is None else o2
    ls_part = _ls_cells(ls_counterpart(cond), selected, n_layers, e1, e2)
    rule = count or CountRule()
    if rule.rule != "all":
        doc_counts = (
            ls.doc_counts
            if isinstance(ls, NeuronSet)
            else {c: torch.zeros(s.shape, dtype=torch.int32) for c, s in selected.items()}
        )
        target = None
        if rule.rule == "equal":
            own = condition_label(ls_counterpart(cond).name, o1, o2)
            target = equal_target([*rule.peers, own], selected, n_layers, n1, n2)
        ls_part = _apply_count(ls_part, doc_counts, rule, target)
    if not cond.is_random:
        return ls_part
    counts = {c: s.sum(dim=1) for c, s in ls_part.items()}
    return random_matched(counts, {c: s.shape[1] for c, s in selected.items()}, seed)


def neuron_counts(
    selection: Mapping[str, torch.Tensor], regions: Mapping[str, list[int]]
) -> dict[str, Any]:
    """Deactivated neurons: total, share, per component, per region x component and x structure.

    Args:
        selection: component -> [n_layers, n_units] bool.
        regions: region -> 0-based layers (`layer_regions`).
    """
    by_comp = {c: int(s.sum()) for c, s in selection.items()}
    by_region = {
        r: {c: int(s[layers].sum()) for c, s in selection.items()} for r, layers in regions.items()
    }
    by_structure = {
        r: {st: sum(v for c, v in comps.items() if c in STRUCTURES[st]) for st in _BOTH}
        for r, comps in by_region.items()
    }
    units = sum(int(s.numel()) for s in selection.values())
    total = sum(by_comp.values())
    return {
        "total": total,
        "share": total / units if units else 0.0,
        "units": units,
        "by_component": by_comp,
        "by_region": by_region,
        "by_structure": by_structure,
    }


def condition_table() -> list[dict[str, str]]:
    """One row per condition (condition, paper, U, S-ATTN, S-FFN, G, neurons); D = deactivated."""
    cols = {
        "U": ("U", _BOTH),
        "S-ATTN": ("S", ("attn",)),
        "S-FFN": ("S", ("ffn",)),
        "G": ("G", _BOTH),
    }
    rows = []
    for c in CONDITIONS.values():
        row = {"condition": c.name, "paper": c.paper}
        for col, (region, structures) in cols.items():
            row[col] = "D" if all((region, st) in c.cells for st in structures) else "."
        rows.append({**row, "neurons": "Rand" if c.is_random else "LS"})
    return rows
