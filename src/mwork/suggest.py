""" "Did you mean ...?" for names a user types: config keys, enum values, deactivation conditions
(torch-free).

`closest(word, choices)` is the one matcher (difflib, case-insensitive); `condition_hint(label)`
suggests the canonical run label for a misspelt condition (`D_u` -> `D_U`, `D_S(A)` ->
`D_S_attn`, `D_UU` -> `D_U`), keeping its `-n1_N`/`-n2_N`/`.variant` suffixes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_SUFFIX = re.compile(r"^(?P<base>.+?)(?P<rest>(-n[12]_\d+)*([.](minus-en|minus-shared))?)$")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` (case-insensitive), or None when nothing is close."""
    by_key = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(by_key), n=1, cutoff=0.6)
    return by_key[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'? ` (with the trailing space) or an empty string."""
    best = closest(word, choices)
    return f"did you mean '{best}'? " if best else ""


def condition_hint(label: str) -> str | None:
    """The canonical run label closest to a misspelt condition label, or None."""
    from mwork.runlabel import _ALIASES, _normalise  # the one alias table

    m = _SUFFIX.match(label.strip())
    if m is None:
        return None
    base, rest = m.group("base"), m.group("rest")
    if _normalise(base) in _ALIASES:
        return _ALIASES[_normalise(base)] + rest
    best = closest(base, sorted(set(_ALIASES.values())))
    return best + rest if best else None
