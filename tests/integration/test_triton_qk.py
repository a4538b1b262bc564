"""The Triton Q/K kernel (mwork.plnd.triton_qk) against its definition, in Triton's interpreter.

TRITON_INTERPRET=1 runs the kernel's programs on CPU tensors (numpy), so CI checks it without a
GPU: against the torch form and the C kernel block by block (every tile shape, masked keys, empty
rows, W far below 1, the Q/K-norm factors), and through qk_importance against the brute-force
reference of the other exactness tests (qkreference), in float64 and float32.
"""

import os

import pytest
import torch
from qkreference import CASES, brute_force_importance, reference_qk_importance, synthetic_case
from test_qkkernel import _block, _torch_form
from triton.runtime.interpreter import InterpretedFunction

from mwork.adapters import AttnGeometry, QKNorm, attention_allowed
from mwork.errors import MworkError
from mwork.plnd import backend, qk_importance, triton_qk
from mwork.plnd.kernel import sq_change_rows as c_rows
from mwork.plnd.qknorm import qk_importance_normed

BLOCKS = [(1, 16, 8), (2, 4, 2), (8, 2, 16), (16, 32, 16)]
"""Tiles (rows, keys, columns): one row, partial tiles everywhere, one tile, the default (the
interpreter runs each program in numpy: single-entry tiles would take minutes)."""


@pytest.fixture(scope="module")
def tq():
    """mwork.plnd.triton_qk in Triton's interpreter (TRITON_INTERPRET=1 from conftest.py)."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    assert isinstance(triton_qk._sq_change_kernel, InterpretedFunction)
    return triton_qk


@pytest.mark.parametrize(
    ("block", "two", "z_scale"),
    [(b, True, 1.0) for b in BLOCKS]
    + [((2, 4, 2), False, 1.0), ((4, 8, 4), True, 0.01), ((4, 8, 4), True, 40.0)],
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v),
)
def test_float64_equals_the_torch_form_for_every_tile(tq, block, two, z_scale):
    """Every tile shape; one term or a RoPE pair; tiny changes, unit ones, and |z| ~ 300 (e^z far
    below 1 and above it in one row)."""
    data = _block(1, two=two, z_scale=z_scale)  # row 2 empty, a masked key inside row 4
    got, ref = tq.sq_change_rows(*data, block=block), _torch_form(*data)
    assert ref.abs().max() > 0 and torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("block", [(4, 8, 4), (16, 32, 16)], ids=["4x8x4", "16x32x16"])
def test_float32_is_as_accurate_as_the_torch_form(tq, block):
    block64 = _block(3, z_scale=0.05, hb=4, tb=24)
    block32 = [x.float() if x is not None and x.is_floating_point() else x for x in block64[:5]]
    ref = _torch_form(*block64)
    got = tq.sq_change_rows(*block32, block64[5], block=block)
    assert got.dtype == torch.float32
    err = ((got.double() - ref).abs() / ref).max()
    err_torch = ((_torch_form(*block32, block64[5]).double() - ref).abs() / ref).max()
    assert err <= max(2 * err_torch, 2e-6), (err, err_torch)


def test_small_w_takes_the_second_formula(tq):
    fx1, fx2, y1, y2, p, span = _block(2, two=False)
    p = torch.zeros_like(p)
    p[..., 0], p[..., 1] = 1 - 1e-12, 1e-12
    fx1 = torch.full_like(fx1, -12.0)
    y1 = torch.zeros_like(y1)
    y1[:, 0] = 10.0  # z = −120 on the key holding the mass: W ≈ 1e-12
    span = (torch.zeros_like(span[0]), torch.full_like(span[1], 2))
    got = tq.sq_change_rows(fx1, None, y1, None, p, span, block=(4, 2, 4))
    ref = _torch_form(fx1, None, y1, None, p, span)
    assert (ref > 0.5).all()
    torch.testing.assert_close(got, ref, rtol=1e-11, atol=0)


def test_empty_rows_and_heads_give_zeros(tq):
    fx1, fx2, y1, y2, p, span = _block(4)
    empty = (torch.zeros_like(span[0]), torch.zeros_like(span[1]))
    got = tq.sq_change_rows(fx1, fx2, y1, y2, torch.zeros_like(p), empty, block=(2, 4, 2))
    assert torch.equal(got, torch.zeros_like(got))
    none = tq.sq_change_rows(fx1[:0], fx2[:0], y1[:0], y2[:0], p[:0], span)
    assert none.shape == (0, fx1.shape[-1])


@pytest.mark.parametrize("parts", ["rows", "keys", "both"])
def test_qk_norm_factors_equal_the_c_kernel(tq, parts):
    """z with the g·s0 part of a Q/K norm (mwork.plnd.terms): row factors, key factors, both."""
    fx1, fx2, y1, y2, p, span = _block(5)
    g = torch.Generator().manual_seed(9)
    s0 = torch.randn(p.shape, generator=g, dtype=torch.float64)
    g_row = 0.3 * torch.rand(fx1.shape, generator=g, dtype=torch.float64)
    g_key = 0.3 * torch.rand(y1.shape, generator=g, dtype=torch.float64)
    g_row = None if parts == "keys" else g_row
    g_key = None if parts == "rows" else g_key
    args = (fx1, fx2, y1, y2, p, span)
    want = c_rows(*args, g_row=g_row, g_key=g_key, s0=s0)
    got = tq.sq_change_rows(*args, g_row=g_row, g_key=g_key, s0=s0, block=(4, 4, 2))
    torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-300)


def test_bad_shapes_and_tiles_are_refused(tq):
    fx1, fx2, y1, y2, p, span = _block(6)
    with pytest.raises(ValueError, match="y2 must be"):
        tq.sq_change_rows(fx1, fx2, y1, y2[:, :-1], p, span)
    with pytest.raises(ValueError, match="powers of two"):
        tq.sq_change_rows(fx1, fx2, y1, y2, p, span, block=(3, 4, 4))
    with pytest.raises(ValueError, match="spans"):
        tq.sq_change_rows(fx1, fx2, y1, y2, p, (span[0], span[1] + 10))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", CASES)
def test_qk_importance_with_triton_equals_brute_force(tq, name, dtype):
    """GQA, RoPE pairs, sliding window, ALiBi, holes, large scores; soft-capping falls back."""
    q, k, geo, tm = synthetic_case(name, dtype=dtype)
    expected = brute_force_importance(*synthetic_case(name), "paper")
    assert backend.kernel_for("triton", q.device, dtype) == "triton"
    for budget in (3000, None):
        got = qk_importance(q, k, geo, tm, "paper", budget_bytes=budget, kernel="triton")
        for e, g in zip(expected, got, strict=True):
            assert g.dtype == dtype and torch.isfinite(g).all()
            rel = (g.double() - e).abs().max() / e.abs().max()
            assert rel <= (1e-10 if dtype == torch.float64 else 1e-5), f"{name}: {rel:.2e}"


def test_qk_norm_with_triton_equals_literal_zeroing(tq):
    torch.manual_seed(0)
    b, n_heads, n_kv, seq, d = 2, 4, 2, 7, 6
    q = torch.randn(b, n_heads, seq, d, dtype=torch.float64) * 1.5
    k = torch.randn(b, n_kv, seq, d, dtype=torch.float64) * 1.5
    tm = torch.ones(b, seq, dtype=torch.float64)
    tm[1, 5:] = 0
    for per_head in (True, False):
        gq = torch.rand(d if per_head else n_heads * d, dtype=torch.float64) + 0.5
        gk = torch.rand(d if per_head else n_kv * d, dtype=torch.float64) + 0.5
        norm = QKNorm(gq, gk, 0.3, per_head)
        geo = AttnGeometry(None, None, None, attention_allowed(tm, 4), 0.4, None, norm)
        got = qk_importance_normed(q, k, geo, tm, budget_elems=50, kernel="triton")
        want = reference_qk_importance(q, k, geo, tm)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def test_triton_mode_needs_cuda_outside_the_interpreter(tq, monkeypatch):
    backend.check_kernel_mode("triton")  # Triton imports here
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(MworkError, match="needs a CUDA device"):
        backend.kernel_for("triton", torch.device("cpu"), torch.float32)
    assert backend.kernel_for("auto", torch.device("cpu"), torch.float32) == "compiled"
    monkeypatch.setattr(backend, "triton_available", lambda: False)
    with pytest.raises(MworkError, match="Triton cannot be imported"):
        backend.check_kernel_mode("triton")


def test_triton_calibration_is_recorded_in_the_private_cache_only(tq, tmp_path, monkeypatch):
    """auto on CUDA times Triton against torch once and records it; an open cache: not recorded."""
    monkeypatch.setenv("MWORK_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setattr(backend, "calibrate", lambda *a: (0.1, 0.2))
    cpu = torch.device("cpu")
    backend.faster.cache_clear()
    assert backend.faster("triton", cpu, torch.float64, 16)
    [record] = (tmp_path / "kernels").glob("triton_qk_*.calibration.json")
    assert "float64/16" in record.read_text()
    (tmp_path / "kernels").chmod(0o777)
    backend.faster.cache_clear()
    monkeypatch.setattr(backend, "calibrate", lambda *a: (0.3, 0.2))
    assert not backend.faster("triton", cpu, torch.float64, 32)  # measured, not recorded
    assert "float64/32" not in record.read_text()
    backend.faster.cache_clear()
