"""The compiled Q/K kernel (mwork.plnd.kernel, csrc/sq_change.c) against torch and float64.

Literal ablation is the reference of test_plnd_exact / test_plnd_budget, which run with the kernel
and with the torch form (the `qk_kernel` fixture); here the kernel meets its own definition
block by block: key spans, empty rows, zero probabilities inside a span, W far below 1 (the
kernel's second formula), float32 accuracy, thread counts, and its build: cache, failures, modes.
"""

import ctypes
import json
import logging
import os
import stat

import pytest
import torch
from qkreference import tiny_detection_inputs

from mwork.adapters import AttnGeometry, attention_allowed
from mwork.detect import detect_to_file
from mwork.errors import MworkError
from mwork.plnd import backend, kernel_build, qk_importance
from mwork.plnd import kernel as qkkernel
from mwork.plnd.backend import check_kernel_mode, kernel_for
from mwork.plnd.kernel import sq_change_rows
from mwork.plnd.softmax_change import sq_change_fast
from mwork.settings import DetectionSettings

CPU = torch.device("cpu")


def _block(seed: int, dtype=torch.float64, two: bool = True, z_scale: float = 1.0, hb=3, tb=6):
    """Random factors, probabilities and spans of one block (row 2 empty, a hole in row 4)."""
    g = torch.Generator().manual_seed(seed)
    ns, d = 9, 5

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    fx1, y1 = r(hb, tb, d) * z_scale**0.5, r(hb, ns, d) * z_scale**0.5
    fx2, y2 = (r(hb, tb, d) * z_scale**0.5, r(hb, ns, d) * z_scale**0.5) if two else (None, None)
    lo = torch.tensor([0, 1, 3, 0, 2, 4] * (tb // 6))
    hi = torch.tensor([9, 5, 3, 9, 8, 6] * (tb // 6))
    keys = torch.arange(ns)
    allow = (keys >= lo[:, None]) & (keys < hi[:, None])
    allow[4 % tb, 5] = False  # a masked key inside row 4's span
    logits = r(hb, tb, ns) * 2
    p = torch.softmax(logits.masked_fill(~allow, torch.finfo(torch.float64).min), -1)
    p = p * allow.any(1)[:, None]  # the empty row has no probabilities
    cast = [None if x is None else x.to(dtype) for x in (fx1, fx2, y1, y2, p)]
    return (*cast, (lo, hi))


def _torch_form(fx1, fx2, y1, y2, p, span):
    """mwork.plnd.softmax_change's form on the same block (spans as p = 0; empty rows left out)."""
    rows = span[1] > span[0]
    z = fx1[:, :, None] * y1[:, None]
    if fx2 is not None:
        z = z + fx2[:, :, None] * y2[:, None]
    keys = torch.arange(p.shape[-1])
    inside = (keys >= span[0][:, None]) & (keys < span[1][:, None])
    return sq_change_fast(z[:, rows], (p * inside)[:, rows])


@pytest.mark.parametrize("two", [True, False], ids=["rope-pair", "one-term"])
@pytest.mark.parametrize("z_scale", [0.01, 1.0, 40.0], ids=["small", "unit", "large"])
def test_kernel_equals_the_torch_form_in_float64(two, z_scale):
    block = _block(1, two=two, z_scale=z_scale)
    got, ref = sq_change_rows(*block), _torch_form(*block)
    assert ref.abs().max() > 0 and torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-11, atol=1e-300)


def test_small_w_takes_the_second_formula_and_stays_exact():
    """A large negative change on the key that holds the mass: W ≪ 1, where P + U cancels."""
    fx1, fx2, y1, y2, p, span = _block(2, two=False)
    p = torch.zeros_like(p)
    p[..., 0] = 1 - 1e-12
    p[..., 1] = 1e-12
    fx1 = torch.full_like(fx1, -12.0)
    y1 = torch.zeros_like(y1)
    y1[:, 0] = 10.0  # z = −120 on key 0: W ≈ 1e-12 + e^-120
    span = (torch.zeros_like(span[0]), torch.full_like(span[1], 2))
    got, ref = (
        sq_change_rows(fx1, None, y1, None, p, span),
        _torch_form(fx1, None, y1, None, p, span),
    )
    assert (ref > 0.5).all(), "the change should be close to the maximal 2 per row"
    torch.testing.assert_close(got, ref, rtol=1e-11, atol=0)


def test_float32_is_at_least_as_accurate_as_the_torch_form():
    block64 = _block(3, z_scale=0.05, hb=4, tb=60)
    block32 = [x.float() if x is not None and x.is_floating_point() else x for x in block64[:5]]
    ref = _torch_form(*block64)
    kern = sq_change_rows(*block32, block64[5]).double()
    torch32 = _torch_form(*block32, block64[5]).double()
    err_kernel = ((kern - ref).abs() / ref).max()
    err_torch = ((torch32 - ref).abs() / ref).max()
    assert err_kernel <= max(2 * err_torch, 1e-6), (err_kernel, err_torch)


def test_results_do_not_depend_on_the_thread_count():
    block = _block(4, dtype=torch.float32, hb=5)
    before = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(sq_change_rows(*block))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(o, outs[0]) for o in outs[1:])


def test_qk_importance_kernel_and_torch_agree_in_float32():
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 4, 40, 16, generator=g), torch.randn(2, 2, 40, 16, generator=g)
    tm = torch.ones(2, 40)
    tm[1, 30:] = 0
    geo = AttnGeometry(None, None, None, attention_allowed(tm, None), 0.25, None)
    a = qk_importance(q, k, geo, tm, kernel="compiled")
    b = qk_importance(q, k, geo, tm, kernel="torch")
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=2e-5, atol=1e-7)


@pytest.fixture
def fresh_kernel(tmp_path, monkeypatch):
    """An empty kernel cache and no loaded kernel; restored afterwards."""
    monkeypatch.setenv("MWORK_KERNEL_CACHE", str(tmp_path / "kernels"))
    kernel_build.load_kernel.cache_clear()
    backend._warn_once.cache_clear()
    backend.faster.cache_clear()
    yield tmp_path / "kernels"
    kernel_build.load_kernel.cache_clear()
    backend._warn_once.cache_clear()
    backend.faster.cache_clear()


def test_built_once_then_taken_from_the_cache(fresh_kernel):
    assert kernel_for("auto", CPU, torch.float32) == "compiled"
    built = sorted(fresh_kernel.iterdir())
    assert [p.name.split(".", 1)[1] for p in built] == ["so", "so.sha256"]
    assert built[0].name.startswith("sq_change_f32_")
    assert oct(fresh_kernel.stat().st_mode & 0o777) == oct(0o700)
    stamp = built[0].stat().st_mtime_ns
    kernel_build.load_kernel.cache_clear()
    assert kernel_for("auto", CPU, torch.float32) == "compiled"
    assert sorted(fresh_kernel.iterdir()) == built and built[0].stat().st_mtime_ns == stamp


def test_vector_width_follows_the_isa():
    kern32, kern64 = (kernel_build.load_kernel(dt) for dt in (torch.float32, torch.float64))
    flags = kernel_build._cpu_flags().split()
    want = {"avx512f": 64, "avx2": 32, "avx": 32, "sse2": 16, "neon": 16, "generic": 16}
    assert kern32.isa in want
    assert kern32.lanes * 4 == want[kern32.isa] and kern64.lanes * 8 == want[kern64.isa]
    if "avx512f" in flags:
        assert kern32.isa == "avx512f"
    elif "avx2" in flags:  # this project's reference machine: 8 float lanes, not 16
        assert (kern32.isa, kern32.lanes) == ("avx2", 8)


def test_no_compiler_falls_back_under_auto_and_is_an_error_under_compiled(
    fresh_kernel, monkeypatch, caplog
):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", "/nonexistent")
    with caplog.at_level(logging.WARNING, logger="mwork.plnd.kernel"):
        assert not kernel_for("auto", CPU, torch.float32)
        assert not kernel_for("auto", CPU, torch.float32)
    assert len([r for r in caplog.records if "falls back to torch" in r.message]) == 1
    with pytest.raises(MworkError, match="does not build") as e:
        check_kernel_mode("compiled")
    assert "install a C compiler" in str(e.value)
    with pytest.raises(MworkError, match="does not build"):
        DetectionSettings(qk_kernel="compiled").validate()
    DetectionSettings(qk_kernel="auto").validate()  # auto never fails on the compiler


def test_a_failing_compiler_leaves_nothing_in_the_cache(fresh_kernel, monkeypatch, tmp_path):
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: fatal error: broken' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(MworkError, match="broken"):
        check_kernel_mode("compiled")
    assert not fresh_kernel.exists() or not any(fresh_kernel.iterdir())


def test_modes():
    with pytest.raises(MworkError, match="unknown qk_kernel"):
        check_kernel_mode("fast")
    with pytest.raises(MworkError, match="unknown qk_kernel"):
        DetectionSettings(qk_kernel="fast").validate()
    assert kernel_for("torch", CPU, torch.float32) is None
    assert not kernel_for("auto", torch.device("meta"), torch.float32)  # not a CPU tensor
    assert not kernel_for("auto", CPU, torch.bfloat16)  # PLND scores in float32/64 only
    assert DetectionSettings().qk_kernel == "auto"


def test_neuron_file_records_the_kernel_and_a_rerun_is_byte_identical(tmp_path):
    spec, corpus = tiny_detection_inputs(tmp_path, 8)
    sets = {}
    for name, mode in (("c1", "compiled"), ("c2", "compiled"), ("t", "torch"), ("a", "auto")):
        out = tmp_path / f"{name}.safetensors"
        s = DetectionSettings(n_docs=8, top_k_ffn=8, top_k_attn=4, qk_kernel=mode)
        sets[name] = (out, detect_to_file(spec, corpus, "en", out, s, device="cpu"))
    kernel = {name: ns.meta["qk_kernel"] for name, (_, ns) in sets.items()}
    # auto takes what this machine's calibration found faster for the tiny model's head dim 8
    auto = backend.qk_kernel_used("auto", CPU, torch.float32, 8)
    assert kernel == {"c1": "compiled", "c2": "compiled", "t": "torch", "a": auto}
    assert sets["c1"][0].read_bytes() == sets["c2"][0].read_bytes()


def test_auto_follows_the_calibration_and_records_it_beside_the_kernel(fresh_kernel, monkeypatch):
    timings = {64: (0.1, 0.3), 8: (0.3, 0.1)}  # (kernel, torch) seconds: kernel wins at 64 only
    calls = []

    def fake(backend_name, device, dtype, head_dim):
        calls.append(head_dim)
        return timings[head_dim]

    monkeypatch.setattr(backend, "calibrate", fake)
    assert kernel_for("auto", CPU, torch.float32, head_dim=64) == "compiled"
    assert kernel_for("auto", CPU, torch.float32, head_dim=8) is None
    assert kernel_for("compiled", CPU, torch.float32, head_dim=8) == "compiled"  # never timed
    lib = kernel_build.load_kernel(torch.float32).path
    record = lib.with_name(lib.stem + ".calibration.json")
    assert json.loads(record.read_text()) == {
        "float32/64": {"fused_s": 0.1, "torch_s": 0.3},
        "float32/8": {"fused_s": 0.3, "torch_s": 0.1},
    }
    backend.faster.cache_clear()  # a new process: read from the record, not timed again
    assert kernel_for("auto", CPU, torch.float32, head_dim=64) == "compiled"
    assert calls == [64, 8]
    record.write_text("{not json")  # a damaged record is measured again
    backend.faster.cache_clear()
    assert kernel_for("auto", CPU, torch.float32, head_dim=8) is None
    assert calls == [64, 8, 8]


def test_calibration_times_both_forms():
    fused, plain = backend.calibrate("compiled", CPU, torch.float32, 16)
    assert 0 < fused < 10 and 0 < plain < 10


def _built(cache) -> tuple:
    """(library, digest record) of the float32 kernel in a fresh cache, built now."""
    assert kernel_for("compiled", CPU, torch.float32) == "compiled"
    lib = kernel_build.load_kernel(torch.float32).path
    kernel_build.load_kernel.cache_clear()
    return lib, lib.with_name(lib.name + ".sha256")


def _kernel_is_rebuilt_and_right(lib, caplog) -> None:
    """Loading again rebuilds lib with one log line and gives the torch form's results."""
    with caplog.at_level(logging.WARNING, logger="mwork.plnd.kernel_build"):
        block = _block(7, dtype=torch.float32)
        got = sq_change_rows(*block)
    lines = [r.message for r in caplog.records if "rebuilding it" in r.message]
    assert len(lines) == 1 and str(lib) in lines[0], lines
    torch.testing.assert_close(got, _torch_form(*block), rtol=1e-5, atol=1e-7)
    assert kernel_build._verified(lib)[0] is not None


def test_a_planted_library_is_not_loaded(fresh_kernel, tmp_path, caplog):
    """A library someone put in the cache (here one that writes 42 everywhere) is replaced."""
    lib, record = _built(fresh_kernel)
    evil = tmp_path / "evil.c"
    evil.write_text(
        "#include <stdint.h>\n"
        "int mw_sq_change(int64_t hb, int64_t tb, int64_t ns, int64_t d, void *a, void *b,"
        " void *c, void *e, void *f, void *g, void *h, void *p, void *lo, void *hi, float *o)"
        " { for (int64_t i = 0; i < hb * d; i++) o[i] = 42; return 0; }\n"
        'int mw_lanes(void) { return 8; }\nconst char *mw_isa(void) { return "evil"; }\n'
    )
    cc = kernel_build._compiler()
    res = kernel_build._run([*cc, "-shared", "-fPIC", str(evil), "-o", str(lib)])
    assert res.returncode == 0, res.stderr
    _kernel_is_rebuilt_and_right(lib, caplog)


def test_a_truncated_library_is_rebuilt_not_crashed_on(fresh_kernel, caplog):
    lib, _ = _built(fresh_kernel)
    data = lib.read_bytes()
    lib.write_bytes(data[: len(data) // 2])  # was SIGBUS at load
    _kernel_is_rebuilt_and_right(lib, caplog)


@pytest.mark.parametrize("damage", ["no-record", "writable-library", "symlink"])
def test_a_library_without_its_record_or_open_to_others_is_rebuilt(
    fresh_kernel, tmp_path, caplog, damage
):
    lib, record = _built(fresh_kernel)
    if damage == "no-record":
        record.unlink()
    elif damage == "writable-library":
        lib.chmod(0o777)
    else:
        elsewhere = tmp_path / "elsewhere.so"
        elsewhere.write_bytes(lib.read_bytes())
        lib.unlink()
        lib.symlink_to(elsewhere)
    _kernel_is_rebuilt_and_right(lib, caplog)
    assert stat.S_ISREG(os.lstat(lib).st_mode) and not lib.stat().st_mode & 0o022


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_a_cache_writable_by_others_is_refused(fresh_kernel, mode, caplog):
    fresh_kernel.mkdir(parents=True)
    fresh_kernel.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="mwork.plnd.backend"):
        assert kernel_for("auto", CPU, torch.float32) is None  # auto: torch, one warning
    assert any("writable by others" in r.message for r in caplog.records)
    with pytest.raises(MworkError, match="writable by others") as e:
        check_kernel_mode("compiled")
    assert "chmod go-w" in str(e.value)
    assert not any(fresh_kernel.iterdir())  # nothing built there


def test_a_cache_of_another_user_is_refused(fresh_kernel, monkeypatch):
    fresh_kernel.mkdir(parents=True)
    owner = fresh_kernel.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    with pytest.raises(MworkError, match="belongs to another user"):
        check_kernel_mode("compiled")


def test_shapes_are_checked_before_the_c_code_sees_them():
    fx1, fx2, y1, y2, p, span = _block(6)
    with pytest.raises(ValueError, match="y2 must be"):
        sq_change_rows(fx1, fx2, y1, y2[:, :-1], p, span)
    with pytest.raises(ValueError, match="fx1 must be a CPU torch.float32"):
        sq_change_rows(fx1, fx2, y1, y2, p.float(), span)
    with pytest.raises(ValueError, match="spans"):
        sq_change_rows(fx1, fx2, y1, y2, p, (span[0], span[1] + 10))


def test_an_unwritable_cache_falls_back_under_auto(fresh_kernel, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MWORK_KERNEL_CACHE", str(blocker / "kernels"))
    assert not kernel_for("auto", CPU, torch.float32)
    with pytest.raises(MworkError, match="MWORK_KERNEL_CACHE"):
        check_kernel_mode("compiled")


def _build(tmp_path, name: str, *flags: str):
    """csrc/sq_change.c compiled with extra flags (outside the cache), loaded with ctypes."""
    from importlib import resources

    src = resources.files("mwork.plnd").joinpath("csrc/sq_change.c")
    lib = tmp_path / f"{name}.so"
    cmd = [*kernel_build._compiler(), *kernel_build._FLAGS, *flags, str(src), "-o", str(lib)]
    res = kernel_build._run([*cmd, "-lm"])
    assert res.returncode == 0, res.stderr
    dll = ctypes.CDLL(str(lib))
    dll.mw_isa.restype = ctypes.c_char_p
    dll.mw_sq_change.argtypes = kernel_build._ARGTYPES
    return dll


def test_the_avx512_build_takes_16_float_lanes(tmp_path):
    """Built for an AVX-512 CPU (not run here: no AVX-512 on the reference machine; the width
    functions use no vector instructions)."""
    for name, flags, lanes in (("f32", (), 16), ("f64", ("-DMW_DOUBLE",), 8)):
        dll = _build(tmp_path, name, "-march=skylake-avx512", *flags)
        assert (dll.mw_isa(), dll.mw_lanes()) == (b"avx512f", lanes)


@pytest.mark.parametrize("lanes", [4, 16])
def test_every_vector_width_is_exact(tmp_path, monkeypatch, lanes):
    """The kernel at 16 lanes (AVX-512's width, here in pairs of AVX2 registers) and at 4 (SSE2,
    NEON) against the torch form, float64 and float32, through sq_change_rows' padding."""
    flags = ("-march=native", f"-DMW_VB={lanes}")
    for dtype, extra in ((torch.float64, ("-DMW_DOUBLE",)), (torch.float32, ())):
        dll = _build(tmp_path, f"vb{lanes}{dtype}", *flags, *extra)
        assert dll.mw_lanes() == lanes and dll.mw_isa() == b"fixed"
        kern = kernel_build.Kernel(dll.mw_sq_change, lanes, "fixed", tmp_path)
        dll.mw_sq_change.restype = ctypes.c_int
        monkeypatch.setattr(qkkernel, "load_kernel", lambda dt, kern=kern: kern)
        block = _block(8, dtype=dtype, hb=2, tb=6)
        got, ref = sq_change_rows(*block), _torch_form(*block)
        tol = (
            {"rtol": 1e-11, "atol": 1e-300}
            if dtype == torch.float64
            else {"rtol": 2e-5, "atol": 1e-7}
        )
        torch.testing.assert_close(got, ref, **tol)
