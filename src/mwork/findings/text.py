"""Wording shared by every findings function: numbers with CIs, verdicts, reStructuredText.

A verdict is one of three words, so a reader (and a test) can find it: ``agrees`` (the paper's
sign, and the 95% CI excludes 0), ``disagrees`` (the opposite sign, CI excludes 0) and
``inconclusive`` (the CI includes 0, or there is no CI). Reasons for an inconclusive result are
spelled out: the CI includes 0, no CI was computed, a baseline sits at the floor or ceiling of
its metric, or the CI is so wide that the items are too few to tell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

AGREES, DISAGREES, INCONCLUSIVE = "agrees", "disagrees", "inconclusive"
WIDE_CI = 20.0  # a 95% CI wider than this many points (scores x100): too few items to tell
_RST_SPECIAL = re.compile(r"([\\`*|_])")


def is_num(x: object) -> bool:
    """True for a finite number (not None, not NaN, not an empty CSV cell)."""
    try:
        return x is not None and x != "" and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fmt(x: object, digits: int = 1, sign: bool = True) -> str:
    """`+2.5` / `-11.2` (sign=True) or `27.7`; `n/a` for a missing value."""
    if not is_num(x):
        return "n/a"
    v = round(float(x), digits) + 0.0  # no "-0.0"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def with_ci(point: object, lo: object, hi: object, digits: int = 1) -> str:
    """`-11.2 (95% CI -18.8 to -5.0)`; without a CI only the point."""
    if is_num(lo) and is_num(hi):
        return f"{fmt(point, digits)} (95% CI {fmt(lo, digits)} to {fmt(hi, digits)})"
    return f"{fmt(point, digits)} (no CI)"


def verdict(point: object, lo: object, hi: object, expected_sign: int) -> tuple[str, str]:
    """(verdict, reason) of a change whose paper sign is `expected_sign` (+1 or -1).

    agrees: the CI excludes 0 on the expected side; disagrees: on the other side; inconclusive
    otherwise (the reason says why: no CI, the CI includes 0, and whether it is wide).
    """
    if not is_num(point):
        return INCONCLUSIVE, "no value"
    if not (is_num(lo) and is_num(hi)):
        return INCONCLUSIVE, "no CI was computed (evaluation.n_boot: 0)"
    lo_f, hi_f = float(lo), float(hi)  # type: ignore[arg-type]
    if lo_f > 0 or hi_f < 0:
        side = 1 if lo_f > 0 else -1
        return (AGREES if side == expected_sign else DISAGREES), "the CI excludes 0"
    if lo_f == hi_f == 0:
        return INCONCLUSIVE, "no item changed: the CI is 0 to 0"
    if hi_f - lo_f > WIDE_CI:
        return (
            INCONCLUSIVE,
            f"the CI includes 0 and is {hi_f - lo_f:.0f} points wide: too few items",
        )
    return INCONCLUSIVE, "the CI includes 0"


def bound_note(bound: object) -> str:
    """`; baseline at the floor or ceiling: en=100, ...` (a clause, to go before the verdict's
    full stop) for a non-empty baseline_at_bound cell."""
    if not isinstance(bound, str) or not bound.strip():
        return ""
    return (
        f"; baseline at the floor or ceiling ({esc(bound.strip())}): it can move one way only, "
        "so a zero change says little"
    )


def esc(text: object) -> str:
    """`text` with reStructuredText's inline markup characters escaped."""
    return _RST_SPECIAL.sub(r"\\\1", str(text))


def lit(name: object) -> str:
    """``name`` as an inline literal (condition names such as D_U, R_all)."""
    return f"``{name}``"


def join_list(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def layer_ranges(layers: Iterable[int]) -> str:
    """`3-5, 8` from [3, 4, 5, 8]; `none` when empty."""
    xs = sorted(set(int(x) for x in layers))
    if not xs:
        return "none"
    runs, start, prev = [], xs[0], xs[0]
    for x in xs[1:]:
        if x != prev + 1:
            runs.append((start, prev))
            start = x
        prev = x
    runs.append((start, prev))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def to_rst(sentences: Sequence[str], source: str) -> str:
    """The findings as a reStructuredText block for a report caption: a heading line and one
    bullet per sentence group. `source` names the data (e.g. "this table")."""
    head = f"**What this run found** (computed from {source} by ``mwork.findings``):"
    if not sentences:
        sentences = ["Nothing to report: the data is empty."]
    body = "\n".join("- " + s.replace("\n", " ") for s in sentences)
    return f"{head}\n\n{body}\n"
