"""Run labels and deactivation conditions of paper §3 / Tables 2-5 (torch-free grammar).

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

`RUN_LABEL_PATTERN` is the grammar as a regex (the workflow's `{label}` wildcard constraint);
`RunLabel.table_condition` drops the seed (tables average over seeds), keeps the variant;
`RunLabel.base_condition` also drops layer split and variant (the column tables group by).
Which neurons a label masks is `mwork.selection` (torch).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mwork.components import ATTN_COMPONENTS
from mwork.errors import MworkError

REGIONS: tuple[str, ...] = ("U", "S", "G")
STRUCTURES: dict[str, tuple[str, ...]] = {"attn": ATTN_COMPONENTS, "ffn": ("ffn",)}
BASELINE = "none"  # condition and mask language of the unmasked runs
VARIANTS: tuple[str, ...] = ("all", "minus-en", "minus-shared")
STRUCTURE_NAMES: tuple[str, ...] = ("attn", "ffn")
_CELLS: dict[str, tuple[tuple[str, str], ...]] = {
    "U": tuple(("U", s) for s in STRUCTURE_NAMES),
    "S": tuple(("S", s) for s in STRUCTURE_NAMES),
    "S_attn": (("S", "attn"),),
    "S_ffn": (("S", "ffn"),),
    "G": tuple(("G", s) for s in STRUCTURE_NAMES),
    "UG": tuple((r, s) for r in ("U", "G") for s in STRUCTURE_NAMES),
    "all": tuple((r, s) for r in REGIONS for s in STRUCTURE_NAMES),
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
# masked runs only (the `{condition}` wildcard of evaluate_condition)
CONDITION_LABEL_PATTERN = (
    r"(?:(?:D|R)_(?:U|S|S_attn|S_ffn|G|UG|all)|(?:Dbar|Rbar)_S_attn)"
    r"(?:-n1_\d+)?(?:-n2_\d+)?(?:\.minus-en|\.minus-shared)?(?:-s\d+)?"
)
RUN_LABEL_PATTERN = rf"(?:{CONDITION_LABEL_PATTERN}|ft_(?:ls|random|full)-\d+)"


def is_finetune_label(label: str) -> bool:
    """True for `ft_{kind}-{N}` labels (scored like conditions, but nothing is masked)."""
    return _FT.match(label.strip()) is not None


def canonical_name(name: str) -> str:
    """Canonical condition name for `name` (any alias); `none` for the baseline."""
    if _normalise(name) in ("none", "original", "vanilla", "baseline"):
        return BASELINE
    key = _normalise(name)
    if key not in _ALIASES:
        from mwork.suggest import condition_hint

        hint = condition_hint(name)
        raise MworkError(
            f"unknown deactivation condition '{name}'",
            (f"did you mean '{hint}'? " if hint else "")
            + f"valid names: {', '.join(CONDITIONS)} (paper spellings like D_S(A), D^R_All also "
            "work; `mwork conditions` explains each)",
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

    @classmethod
    def finetuned(cls, kind: str, n_docs: int) -> RunLabel:
        """The run of a model fine-tuned by `kind` on `n_docs` documents (label `ft_{kind}-{N}`)."""
        if kind not in FINETUNE_KINDS or int(n_docs) < 1:
            raise MworkError(
                f"no fine-tuning run ({kind!r}, {n_docs})", f"kind in {FINETUNE_KINDS}, N >= 1"
            )
        return cls(f"{FINETUNE_PREFIX}{kind}-{int(n_docs)}", finetune=kind, n_docs=int(n_docs))

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
    def base_condition(self) -> str:
        """The condition without layer split, variant or seed ("D_U" for "D_U-n1_6.minus-en");
        the label itself for fine-tuned runs, "none" for the baseline."""
        return self.condition

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
        """From settings with `count`, `attn_n`, `ffn_n`; `peers` are the table's run labels."""
        return cls(settings.count, settings.attn_n, settings.ffn_n, tuple(peers))

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


def condition_table() -> list[dict[str, str]]:
    """One row per condition (condition, paper, U, S-ATTN, S-FFN, G, neurons); D = deactivated."""
    cols = {
        "U": ("U", STRUCTURE_NAMES),
        "S-ATTN": ("S", ("attn",)),
        "S-FFN": ("S", ("ffn",)),
        "G": ("G", STRUCTURE_NAMES),
    }
    rows = []
    for c in CONDITIONS.values():
        row = {"condition": c.name, "paper": c.paper}
        for col, (region, structures) in cols.items():
            row[col] = "D" if all((region, st) in c.cells for st in structures) else "."
        rows.append({**row, "neurons": "Rand" if c.is_random else "LS"})
    return rows
