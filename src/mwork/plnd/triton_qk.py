"""The Triton kernel of Eq. 8's multiplicative form on CUDA GPUs, fused over keys.

The same sum as the C kernel (mwork.plnd.kernel.sq_change_rows, same arguments): per head h,
query row t with allowed keys [lo_t, hi_t), column i (a zeroed unit) and logit change

    z[h,t,s,i] = fx1[h,t,i]·y1[h,s,i] + fx2[h,t,i]·y2[h,s,i] + (g_row[h,t,i] + g_key[h,s,i])·s0[h,t,s]

    out[h,i] = Σ_t ||softmax(L_t + z_t) − p_t||² = Σ_t Σ_s p_s² (u_s − (W − 1))² / W²,
    u = e^z − 1,  W = Σ_s p_s e^{z_s} = P + U,  P = Σ_s p_s,  U = Σ_s p_s u_s

(where W < SMALL_W the numerator is formed as Σ_s p_s² (e^z_s − W)², as in the C kernel). One
program takes a tile of BT rows × BD columns of one head and walks the keys its rows may see in
chunks of BS twice: W and U first, then the squared deviations; z, e^z and u live in registers
only, so nothing of size [rows, keys, columns] is written to memory (torch's form writes z and
reads it back about five times). e^z − 1 is a Taylor polynomial for |z| < EXPM1_SMALL (degree
7 in float32, 13 in float64) and exp(z) − 1 elsewhere, neither cancelling; e^z itself is kept
for W and the small-W form (e^z − 1 + 1 would lose it where e^z ≪ 1). Sums run in the data's
dtype per tile; each program writes its tile's row sum to its own slot and the slots are added
in float64 afterwards, so results are deterministic (no atomics). Soft-capping and the columns
whose |z| could overflow take the direct form in torch (mwork.plnd.exact / terms), as they do
beside the C kernel; GQA, RoPE pairs, sliding windows, ALiBi and Q/K norms arrive as the
factors, spans and probabilities above.

Triton is imported when this module is; `TRITON_INTERPRET=1` runs the kernel on CPU tensors
through Triton's interpreter (the tests do).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

SMALL_W = 0.5
"""Below this W the numerator is formed as e^z − W (u − (W − 1) would cancel), as in the C file."""
EXPM1_SMALL = 0.34657359027997264
"""ln(2)/2: below it e^z − 1 is a Taylor polynomial, above it exp(z) − 1 loses < 2 bits."""
BLOCK = (16, 32, 16)
"""Default tile (BT rows, BS keys, BD columns): 8192 entries of z per program, 4 warps."""


@triton.jit
def _expm1(z, e, F64: tl.constexpr):
    """e^z − 1 without cancellation near 0 (e = e^z): Horner of Σ z^k/k! below EXPM1_SMALL,
    e − 1 above (where e^z ≪ 1 only e itself keeps its digits: W and the small-W form use e)."""
    if F64:
        q = 1.0 + z / 13.0
        q = 1.0 + z / 12.0 * q
        q = 1.0 + z / 11.0 * q
        q = 1.0 + z / 10.0 * q
        q = 1.0 + z / 9.0 * q
        q = 1.0 + z / 8.0 * q
    else:
        q = 1.0 + z / 8.0
    q = 1.0 + z / 7.0 * q
    q = 1.0 + z / 6.0 * q
    q = 1.0 + z / 5.0 * q
    q = 1.0 + z / 4.0 * q
    q = 1.0 + z / 3.0 * q
    q = 1.0 + z / 2.0 * q
    return tl.where(tl.abs(z) < 0.34657359027997264, z * q, e - 1.0)


@triton.jit
def _z(
    xa, xb, gr, y1, y2, g_key, s0, h, keys, dims, ns, d, rows, kmask, dmask, tb,
    HAS_X1: tl.constexpr, HAS_X2: tl.constexpr, HAS_G: tl.constexpr, HAS_GKEY: tl.constexpr,
):  # fmt: skip
    """z [BT, BS, BD] of the tile's rows, keys `keys` and columns `dims`."""
    koff = (h * ns + keys)[:, None] * d + dims[None, :]  # [BS, BD]
    km = kmask[:, None] & dmask[None, :]
    z = tl.zeros((rows.shape[0], keys.shape[0], dims.shape[0]), dtype=xa.dtype)
    if HAS_X1:
        z += xa[:, None, :] * tl.load(y1 + koff, mask=km, other=0.0)[None, :, :]
    if HAS_X2:
        z += xb[:, None, :] * tl.load(y2 + koff, mask=km, other=0.0)[None, :, :]
    if HAS_G:
        soff = (h * tb + rows)[:, None] * ns + keys[None, :]  # [BT, BS]
        sv = tl.load(s0 + soff, mask=(rows < tb)[:, None] & kmask[None, :], other=0.0)
        g = gr[:, None, :]
        if HAS_GKEY:
            g = g + tl.load(g_key + koff, mask=km, other=0.0)[None, :, :]
        z += g * sv[:, :, None]
    return z


@triton.jit
def _sq_change_kernel(
    x1, x2, y1, y2, g_row, g_key, s0, p, lo, hi, out, tb, ns, d, n_tblk,
    HAS_X1: tl.constexpr, HAS_X2: tl.constexpr, HAS_GROW: tl.constexpr,
    HAS_GKEY: tl.constexpr, HAS_G: tl.constexpr, F64: tl.constexpr,
    BT: tl.constexpr, BS: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    h = tl.program_id(0).to(tl.int64)
    tblk = tl.program_id(1).to(tl.int64)
    dblk = tl.program_id(2).to(tl.int64)
    rows = tblk * BT + tl.arange(0, BT)
    dims = dblk * BD + tl.arange(0, BD)
    rmask, dmask = rows < tb, dims < d
    row_lo = tl.load(lo + rows, mask=rmask, other=0)
    row_hi = tl.load(hi + rows, mask=rmask, other=0)
    valid = rmask & (row_lo < row_hi)
    k0 = tl.min(tl.where(valid, row_lo, ns), axis=0)
    k1 = tl.max(tl.where(valid, row_hi, 0), axis=0)
    roff = (h * tb + rows)[:, None] * d + dims[None, :]  # [BT, BD]
    rm = rmask[:, None] & dmask[None, :]
    dt = p.dtype.element_ty
    zero = tl.zeros((BT, BD), dtype=dt)
    xa, xb, gr = zero, zero, zero
    if HAS_X1:
        xa = tl.load(x1 + roff, mask=rm, other=0.0)
    if HAS_X2:
        xb = tl.load(x2 + roff, mask=rm, other=0.0)
    if HAS_GROW:
        gr = tl.load(g_row + roff, mask=rm, other=0.0)
    w = tl.zeros((BT, BD), dtype=dt)
    m = tl.zeros((BT, BD), dtype=dt)
    psum = tl.zeros((BT,), dtype=dt)
    for start in range(k0, k1, BS):  # W = Σ p e^z, U = Σ p u, P = Σ p
        keys = start + tl.arange(0, BS)
        kmask = keys < ns
        inside = valid[:, None] & (keys[None, :] >= row_lo[:, None])
        inside = inside & (keys[None, :] < row_hi[:, None])
        pv = tl.load(p + (h * tb + rows)[:, None] * ns + keys[None, :], mask=inside, other=0.0)
        z = _z(
            xa, xb, gr, y1, y2, g_key, s0, h, keys, dims, ns, d, rows, kmask, dmask, tb,
            HAS_X1, HAS_X2, HAS_G, HAS_GKEY,
        )  # fmt: skip
        e = tl.exp(z)
        u = _expm1(z, e, F64)
        w += tl.sum(pv[:, :, None] * e, axis=1)
        m += tl.sum(pv[:, :, None] * u, axis=1)
        psum += tl.sum(pv, axis=1)
    m -= (1.0 - psum)[:, None]  # W − 1 = U − (1 − P)
    acc = tl.zeros((BT, BD), dtype=dt)
    acc2 = tl.zeros((BT, BD), dtype=dt)
    for start in range(k0, k1, BS):  # Σ p² (u − (W − 1))², and Σ p² (e^z − W)² for small W
        keys = start + tl.arange(0, BS)
        kmask = keys < ns
        inside = valid[:, None] & (keys[None, :] >= row_lo[:, None])
        inside = inside & (keys[None, :] < row_hi[:, None])
        pv = tl.load(p + (h * tb + rows)[:, None] * ns + keys[None, :], mask=inside, other=0.0)
        z = _z(
            xa, xb, gr, y1, y2, g_key, s0, h, keys, dims, ns, d, rows, kmask, dmask, tb,
            HAS_X1, HAS_X2, HAS_G, HAS_GKEY,
        )  # fmt: skip
        e = tl.exp(z)
        u = _expm1(z, e, F64)
        p2 = (pv * pv)[:, :, None]
        df = u - m[:, None, :]
        acc += tl.sum(p2 * df * df, axis=1)
        df2 = e - w[:, None, :]
        acc2 += tl.sum(p2 * df2 * df2, axis=1)
    num = tl.where(w < 0.5, acc2, acc)
    ok = valid[:, None] & dmask[None, :]
    res = tl.where(ok, num / tl.where(ok, w * w, 1.0), 0.0)
    tl.store(out + (h * n_tblk + tblk) * d + dims, tl.sum(res, axis=0), mask=dmask)


def sq_change_rows(
    fx1: torch.Tensor | None,
    fx2: torch.Tensor | None,
    y1: torch.Tensor | None,
    y2: torch.Tensor | None,
    p: torch.Tensor,
    span: tuple[torch.Tensor, torch.Tensor],
    g_row: torch.Tensor | None = None,
    g_key: torch.Tensor | None = None,
    s0: torch.Tensor | None = None,
    block: tuple[int, int, int] = BLOCK,
) -> torch.Tensor:
    """Σ_t ||softmax(L_t + z_t) − p_t||² per head and column (see the module docstring).

    Args:
        fx1, fx2, g_row: [hb, tb, d] row parts, or None.
        y1, y2, g_key: [hb, ns, d] key parts (y1 with fx1, y2 with fx2), or None.
        p: [hb, tb, ns] the rows' probabilities (0 outside the allowed keys).
        span: ([tb], [tb]) int64 first and past-the-last key of each row (empty: row skipped).
        s0: [hb, tb, ns] the scores g_row/g_key multiply (needed with either).
        block: (BT, BS, BD) tile, powers of two (rows, keys, columns per program).

    Returns:
        [hb, d] in p's dtype, as mwork.plnd.kernel.sq_change_rows up to rounding.
    """
    hb, tb, ns = p.shape
    rows, keys = (fx1, fx2, g_row), (y1, y2, g_key)
    d = next(x.shape[-1] for x in rows + keys if x is not None)
    _check(rows, keys, s0, p, span)
    bt, bs, bd = block
    if any(b < 1 or b & (b - 1) for b in block):
        raise ValueError(f"triton sq_change_rows: block {block} must be powers of two")
    xs = [p if x is None else x.contiguous() for x in (fx1, fx2, y1, y2, g_row, g_key, s0)]
    lo, hi = (s.to(device=p.device, dtype=torch.int64).contiguous() for s in span)
    n_tblk = -(-tb // bt)
    part = torch.zeros(hb, n_tblk, d, dtype=p.dtype, device=p.device)
    if hb and tb and d:
        grid = (hb, n_tblk, -(-d // bd))
        _sq_change_kernel[grid](
            *xs, p.contiguous(), lo, hi, part, tb, ns, d, n_tblk,
            HAS_X1=fx1 is not None, HAS_X2=fx2 is not None, HAS_GROW=g_row is not None,
            HAS_GKEY=g_key is not None, HAS_G=g_row is not None or g_key is not None,
            F64=p.dtype == torch.float64, BT=bt, BS=bs, BD=bd,
        )  # fmt: skip
    return part.sum(1, dtype=torch.float64).to(p.dtype)


def _check(rows: tuple, keys: tuple, s0, p: torch.Tensor, span: tuple) -> None:
    """Shapes, dtypes, devices and pairings the kernel needs; ValueError otherwise."""
    hb, tb, ns = p.shape
    if p.dtype not in (torch.float32, torch.float64):
        raise ValueError("triton sq_change_rows: float32 or float64 data only")
    d = next(x.shape[-1] for x in rows + keys if x is not None)
    want = [(x, (hb, tb, d)) for x in rows] + [(x, (hb, ns, d)) for x in keys]
    want.append((s0, (hb, tb, ns)))
    for name, (x, shape) in zip(
        ("fx1", "fx2", "g_row", "y1", "y2", "g_key", "s0"), want, strict=True
    ):
        if x is not None and (
            tuple(x.shape) != shape or x.dtype != p.dtype or x.device != p.device
        ):
            raise ValueError(f"triton sq_change_rows: {name} must be a {p.dtype} {shape} on p's")
    if (rows[0] is None) != (keys[0] is None) or (rows[1] is None) != (keys[1] is None):
        raise ValueError("triton sq_change_rows: fx1/y1 and fx2/y2 come together")
    if s0 is None and (rows[2] is not None or keys[2] is not None):
        raise ValueError("triton sq_change_rows: g_row/g_key need s0")
    lo, hi = span
    if lo.shape != (tb,) or hi.shape != (tb,) or bool((lo < 0).any() | (hi > ns).any()):
        raise ValueError(f"triton sq_change_rows: spans must be [{tb}] within [0, {ns}]")
