"""One logit perturbation scored exactly in blocks: Σ_t ||softmax(f(L + z)) − p||² per column.

The Q/K-norm scorer (mwork.plnd.qknorm) writes every change of the scores it needs as one `Term`

    z[a, t, s, c] = G[a, ·, c]·S0[a, t, s] + x1[a, t, c]·y1[a, s, c] + x2[a, t, c]·y2[a, s, c]

(a score head, t query row, s key, c column: a zeroed unit; G indexed by row or by key) over one
document's attention (`Doc`). `score_term` scores it in blocks of (score heads × query rows ×
columns) of at most `budget` elements against the key span the block's rows may see, no loop
over single heads or columns where memory allows. Before the exp, |z| is bounded per (head, group
of row blocks, column); entries whose bound admits it take the multiplicative form of
mwork.plnd.softmax_change (or a fused kernel: mwork.plnd.kernel, mwork.plnd.triton_qk), the
others, and everything under soft-capping, the direct form softmax(f(L + z)) − softmax(f(L)).
Both are exact up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mwork.plnd.budget import GENERAL_BUFFERS, MIN_ROW_BLOCKS
from mwork.plnd.kernel import fused_rows, key_span
from mwork.plnd.softmax_change import FAST_EXP_LIMIT, masked_probs, sq_change_fast

_MAX_BOUND_GROUPS = 64
"""The overflow bound is kept per group of consecutive row blocks, at most this many groups per
document: [heads, groups, columns] stays small when blocks are a row or two (long documents)."""


@dataclass(frozen=True)
class Term:
    """Logit perturbation of one family of units in one document, per score head a and column c:

        z[a, t, s, c] = g[a, ·, c]·S0[a, t, s] + x1[a, t, c]·y1[a, s, c] + x2[a, t, c]·y2[a, s, c]

    Attributes:
        g: [A or 1, n, C] factor − 1, indexed by query row t (rows=True) or by key s; a leading 1
            is shared by every score head.
        rows: whether g is indexed by query row.
        x1, y1, x2, y2: [A, n, C] rank-1 parts (already multiplied by −s and the factor), or None.
    """

    g: torch.Tensor
    rows: bool
    x1: torch.Tensor | None = None
    y1: torch.Tensor | None = None
    x2: torch.Tensor | None = None
    y2: torch.Tensor | None = None


@dataclass(frozen=True)
class Doc:
    """One document's attention: s0, logits and p are [H, n, n] (q·k part, + bias, softmax);
    allowed [n, n] bool; softcap as in AttnGeometry."""

    s0: torch.Tensor
    logits: torch.Tensor
    p: torch.Tensor
    allowed: torch.Tensor
    softcap: float | None


def score_term(
    term: Term, doc: Doc, budget: int, skip: torch.Tensor | None = None, kernel: str | bool = False
) -> torch.Tensor:
    """Σ_t ||softmax(f(L + z)) − p||² for every score head and column of one term.

    Blocks of (ab heads × tb query rows × cb columns) against the key span the block's rows may
    see; per block the multiplicative form for the columns whose bound on |z| admits it, the
    direct form for the others.

    Args:
        term: the perturbation; doc: the document's scores.
        budget: elements of the largest work tensor.
        skip: [A, C] bool entries not wanted (left 0, not scored), or None.
        kernel: the multiplicative form by a fused kernel ("compiled" or True: the C kernel of
            mwork.plnd.kernel; "triton": mwork.plnd.triton_qk): its work is the [rows, keys]
            scores, not [rows, keys, columns], so blocks take every column.

    Returns:
        [A, C]
    """
    s0 = doc.s0
    n_a, n, _ = s0.shape
    n_c = term.g.shape[-1]
    cb = n_c if kernel else min(n_c, max(1, budget // n))
    rows = max(1, budget // (n * (2 if kernel else cb)))  # kernel: s0 and p of the block
    tb = min(n, rows, -(-n // MIN_ROW_BLOCKS) if n >= 16 * MIN_ROW_BLOCKS else n)
    ab = max(1, min(n_a, rows // tb))
    n_blk = -(-n // tb)
    per_group = -(-n_blk // _MAX_BOUND_GROUPS)  # row blocks sharing one bound
    direct = _direct_entries(term, doc, tb * per_group)  # [A, n_groups, C]
    fast = ~direct
    if skip is not None:
        direct &= ~skip[:, None]
        fast &= ~skip[:, None]
    direct_cpu, fast_cpu = direct.cpu(), fast.cpu()  # one sync per term and document
    mixed = not bool(fast_cpu.all())
    out = torch.zeros(n_a, n_c, dtype=s0.dtype, device=s0.device)
    work = None
    if bool(fast_cpu.any()) and not kernel:  # one buffer for every block: no fresh pages
        work = torch.empty(ab * tb * n * cb, dtype=s0.dtype, device=s0.device)
    for blk, (t0, t1, k0, k1) in enumerate(_key_spans(doc.allowed, tb)):
        for a0 in range(0, n_a, ab):
            a1 = min(n_a, a0 + ab)
            for c0 in range(0, n_c, cb):
                c1 = min(n_c, c0 + cb)
                part = (slice(a0, a1), blk // per_group, slice(c0, c1))
                n_fast = int(fast_cpu[part].sum()) if mixed else (a1 - a0) * (c1 - c0)
                box = (slice(a0, a1), slice(t0, t1), slice(k0, k1), slice(c0, c1))
                if n_fast:
                    if kernel:
                        sq = _kernel_block(term, doc, *box, kernel)
                    else:
                        z = work[: (a1 - a0) * (t1 - t0) * (k1 - k0) * (c1 - c0)]
                        z = z.view(a1 - a0, t1 - t0, k1 - k0, c1 - c0)
                        _fill(z, term, s0, *box)
                        sq = sq_change_fast(z, doc.p[a0:a1, t0:t1, k0:k1])
                    if mixed:  # overflowed columns hold inf/NaN: dropped (direct or skipped)
                        sq = sq.masked_fill(~fast[part], 0.0)
                    out[a0:a1, c0:c1] += sq
                if mixed and bool(direct_cpu[part].any()):
                    idx = direct_cpu[part].nonzero().to(s0.device)  # [m, 2] within the block
                    a_idx, c_idx = idx[:, 0] + a0, idx[:, 1] + c0
                    sq = _score_direct(term, doc, a_idx, c_idx, (t0, t1), (k0, k1), budget)
                    out.index_put_((a_idx, c_idx), sq, accumulate=True)
    return out


def _kernel_block(
    term: Term, doc: Doc, a: slice, t: slice, k: slice, c: slice, kernel: str | bool
) -> torch.Tensor:
    """sq_change_fast of one block's z (as _fill builds it) by a fused kernel: [ab, cb]."""
    n_a = a.stop - a.start
    ga = slice(None) if term.g.shape[0] == 1 else a
    g = (term.g[ga, t, c] if term.rows else term.g[ga, k, c]).expand(n_a, -1, -1)
    x1, x2 = (None if x is None else x[a, t, c] for x in (term.x1, term.x2))
    y1, y2 = (None if y is None else y[a, k, c] for y in (term.y1, term.y2))
    g_row, g_key = (g, None) if term.rows else (None, g)
    p, span = doc.p[a, t, k], key_span(doc.allowed[t, k])
    s0 = doc.s0[a, t, k]
    return fused_rows(kernel)(x1, x2, y1, y2, p, span, g_row=g_row, g_key=g_key, s0=s0)


def _fill(
    z: torch.Tensor,
    term: Term,
    s0: torch.Tensor,
    a: slice,
    t: slice,
    k: slice,
    c: slice,
) -> None:
    """z[a, t, s, c] of one block into z [ab, tb, ns, cb] (heads a, rows t, keys k, columns c)."""
    ga = slice(None) if term.g.shape[0] == 1 else a
    g = term.g[ga, t, c][:, :, None] if term.rows else term.g[ga, k, c][:, None]
    torch.mul(s0[a, t, k][..., None], g, out=z)  # (factor − 1)·S0
    for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
        if x is not None:
            z.addcmul_(x[a, t, c][:, :, None], y[a, k, c][:, None])


def _direct_entries(term: Term, doc: Doc, tb: int) -> torch.Tensor:
    """[A, n_blk, C] bool: the (head, group of tb rows, column) entries that take the direct form.

    All of them under soft-capping (f is not a shift); otherwise those where the bound
    |z| ≤ max|g|·max|S0| + Σ max_rows|x|·max_keys|y| (per head, row group, column) exceeds
    FAST_EXP_LIMIT, so that e^z could overflow.
    """
    s0 = doc.s0
    n_a, n, _ = s0.shape
    n_blk = -(-n // tb)
    if doc.softcap is not None:
        return torch.ones(n_a, n_blk, term.g.shape[-1], dtype=torch.bool, device=s0.device)

    def block_max(x: torch.Tensor) -> torch.Tensor:  # [A', n, C] -> [A', n_blk, C] max per block
        pad = n_blk * tb - n
        xa = torch.nn.functional.pad(x.abs(), (0, 0, 0, pad)) if pad else x.abs()
        return xa.view(x.shape[0], n_blk, tb, x.shape[-1]).amax(2)

    s_max = block_max(s0.abs().amax(-1, keepdim=True))  # [A, n_blk, 1]
    g_max = block_max(term.g) if term.rows else term.g.abs().amax(1, keepdim=True)
    bound = s_max * g_max
    for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
        if x is not None:
            bound = bound + block_max(x) * y.abs().amax(1, keepdim=True)
    return bound > FAST_EXP_LIMIT[s0.dtype]


def _key_spans(allowed: torch.Tensor, tb: int) -> list[tuple[int, int, int, int]]:
    """(t0, t1, k0, k1) per block of tb query rows: [k0, k1) spans every key its rows may see.

    Args:
        allowed: [n, n] bool; every row sees at least one key (its own token).
    """
    n = allowed.shape[0]
    n_blk = -(-n // tb)
    first = allowed.int().argmax(1)  # first allowed key of each row
    last = n - 1 - allowed.flip(1).int().argmax(1)
    pad = n_blk * tb - n
    first = torch.nn.functional.pad(first, (0, pad), value=n).view(n_blk, tb).amin(1)
    last = torch.nn.functional.pad(last, (0, pad), value=-1).view(n_blk, tb).amax(1)
    spans = torch.stack([first, last + 1], 1).tolist()  # one sync
    return [(j * tb, min(n, (j + 1) * tb), k0, k1) for j, (k0, k1) in enumerate(spans)]


def _score_direct(
    term: Term,
    doc: Doc,
    a_idx: torch.Tensor,
    c_idx: torch.Tensor,
    rows: tuple[int, int],
    keys: tuple[int, int],
    budget: int,
) -> torch.Tensor:
    """Direct form softmax(f(L + z)) − p for some (head, column) entries of one block.

    Args:
        a_idx, c_idx: [m] score heads and columns (absolute) of the entries.
        rows, keys: the block's [start, end) query rows and key span.

    Returns:
        [m] Σ_t ||p'_t − p_t||² per entry.
    """
    (t0, t1), (k0, k1) = rows, keys
    allow = doc.allowed[t0:t1, k0:k1]
    step = max(1, budget // (GENERAL_BUFFERS * (t1 - t0) * (k1 - k0)))
    out = []
    for f0 in range(0, a_idx.numel(), step):
        aa, cc = a_idx[f0 : f0 + step], c_idx[f0 : f0 + step]
        ga = aa if term.g.shape[0] > 1 else torch.zeros_like(aa)
        if term.rows:
            g = term.g[ga, t0:t1, cc][:, :, None]  # [m, tb, 1]
        else:
            g = term.g[ga, k0:k1, cc][:, None]  # [m, 1, ns]
        lg = torch.addcmul(doc.logits[aa, t0:t1, k0:k1], g, doc.s0[aa, t0:t1, k0:k1])
        for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
            if x is not None:  # [m, tb, ns] += outer products
                lg.baddbmm_(x[aa, t0:t1, cc][:, :, None], y[aa, k0:k1, cc][:, None])
        diff = masked_probs(lg, allow, doc.softcap) - doc.p[aa, t0:t1, k0:k1]
        out.append(diff.square_().sum(dim=(1, 2)))
    return torch.cat(out)
