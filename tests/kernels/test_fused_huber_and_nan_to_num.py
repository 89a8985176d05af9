"""Session 21 (time-series trial): the fused huber_loss / smooth_l1_loss and nan_to_num ops,
one-sided clamp, the eager slicing fast path and unfold's error class, against PyTorch 2.13
(values and gradients, second order, edge cases). No timing assertions: see
benchmarks/ops.py's ``_gelu_bag_and_losses`` rows for the speed."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional

LOSSES = [("huber_loss", "delta"), ("smooth_l1_loss", "beta")]


def _pair_inputs(seed, shape, tshape=None, nan=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape)
    y = rng.uniform(-2, 2, tshape or shape)
    if nan and x.size:
        x.flat[0] = np.nan
        x.flat[-1] = np.inf
    return x, y


def _grads(lib, out, ins, create_graph=False):
    if lib is tl:
        return tl.grad(out, ins, create_graph=create_graph, allow_unused=True)
    return torch.autograd.grad(out, ins, create_graph=create_graph, allow_unused=True)


def _np(t):
    if t is None:
        return None
    # force: PyTorch's second derivative of an L1 loss is a ZeroTensor
    return t.detach().numpy(force=True) if isinstance(t, torch.Tensor) else t.numpy()


@pytest.mark.parametrize("fn,arg", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
       bcast=st.booleans(), nan=st.booleans())
def test_loss_values_and_grads_match_torch(fn, arg, reduction, seed, k, bcast, nan):
    if k == 0.0 and fn == "huber_loss":
        k = 0.7     # delta must be positive (tested below)
    x, y = _pair_inputs(seed, (3, 4), (4,) if bcast else None, nan)
    xl, yl = tl.tensor(x, requires_grad=True), tl.tensor(y, requires_grad=True)
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    a = getattr(F, fn)(xl, yl, reduction=reduction, **{arg: k})
    b = getattr(TF, fn)(xt, yt, reduction=reduction, **{arg: k})
    np.testing.assert_allclose(a.numpy(), _np(b), rtol=1e-12, atol=1e-12, equal_nan=True)
    w = np.random.default_rng(seed + 1).standard_normal(a.shape)
    ga = _grads(tl, (a * tl.tensor(w)).sum(), [xl, yl], create_graph=True)
    gb = _grads(torch, (b * torch.tensor(w)).sum(), [xt, yt], create_graph=True)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(_np(u), _np(v), rtol=1e-12, atol=1e-12, equal_nan=True)
    # second order: d/dx of <grad_x, v>, PyTorch's rule (1 / beta strictly inside the kink)
    v = np.random.default_rng(seed + 2).standard_normal(x.shape)
    ha = _grads(tl, (ga[0] * tl.tensor(v)).sum(), [xl, yl])
    hb = _grads(torch, (gb[0] * torch.tensor(v)).sum(), [xt, yt])
    for u, w2 in zip(ha, hb):
        if u is None or w2 is None:     # zero either way (an L1 loss has none)
            for z in (u, w2):
                assert z is None or not np.any(_np(z))
            continue
        np.testing.assert_allclose(_np(u), _np(w2), rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("fn,arg", LOSSES)
def test_loss_at_the_kink_and_float_dtypes(fn, arg):
    d = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0, np.nan, -np.inf])
    for dt, tol in ((np.float64, 1e-15), (np.float32, 1e-6), (np.float16, 1e-3)):
        x = d.astype(dt)
        xl = tl.tensor(x, requires_grad=dt != np.float16)
        xt = torch.tensor(x, requires_grad=dt != np.float16)
        yl, yt = tl.zeros(8, dtype=dt), torch.zeros(8, dtype=getattr(torch, np.dtype(dt).name))
        a = getattr(F, fn)(xl, yl, reduction="none", **{arg: 0.5})
        b = getattr(TF, fn)(xt, yt, reduction="none", **{arg: 0.5})
        assert a.dtype == np.dtype(dt)
        np.testing.assert_allclose(a.numpy().astype(np.float64), _np(b).astype(np.float64),
                                   rtol=tol, atol=tol, equal_nan=True)
        if dt != np.float16:
            ga, = tl.grad(a.sum(), [xl])
            gb, = torch.autograd.grad(b.sum(), [xt])
            np.testing.assert_allclose(_np(ga), _np(gb), rtol=tol, equal_nan=True)


def test_loss_weight_and_mixed_dtypes():
    # (PyTorch's huber_loss of float32 and float64 is float32, its smooth_l1_loss float64;
    # tensorlib gives float64 for both, so only smooth_l1_loss mixes dtypes here)
    x, y = _pair_inputs(3, (2, 5))
    w = np.abs(np.random.default_rng(4).standard_normal((2, 5)))
    xl = tl.tensor(x.astype(np.float32), requires_grad=True)
    xt = torch.tensor(x.astype(np.float32), requires_grad=True)
    w = w.astype(np.float32)    # (PyTorch's backward refuses a float64 weight here)
    a = F.smooth_l1_loss(xl, tl.tensor(y), beta=0.4) + F.huber_loss(
        xl, tl.tensor(y.astype(np.float32)), delta=0.4, weight=tl.tensor(w))
    b = TF.smooth_l1_loss(xt, torch.tensor(y), beta=0.4) + TF.huber_loss(
        xt, torch.tensor(y.astype(np.float32)), delta=0.4, weight=torch.tensor(w))
    assert a.dtype == np.float64 and b.dtype == torch.float64   # the wider dtype
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-6)
    a.backward()
    b.backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_loss_errors():
    x = tl.randn(3)
    with pytest.raises(ValueError, match="huber_loss: delta must be positive"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be >= 0"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss"):
        F.huber_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="smooth_l1_loss"):
        F.smooth_l1_loss(x, x, reduction="avg")


def test_loss_modules_and_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    f = tl.function(lambda a, b: F.huber_loss(a, b, delta=0.5, reduction="none")
                    + F.smooth_l1_loss(a, b, beta=0.25, reduction="none"))
    p = tmp_path / "h.onnx"
    x, y = (np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32) for _ in "ab")
    tl.onnx.export(f, (tl.tensor(x), tl.tensor(y)), p)
    s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    got = s.run(None, {i.name: v for i, v in zip(s.get_inputs(), (x, y))})[0]
    want = (TF.huber_loss(torch.tensor(x), torch.tensor(y), delta=0.5, reduction="none")
            + TF.smooth_l1_loss(torch.tensor(x), torch.tensor(y), beta=0.25, reduction="none"))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


# --- nan_to_num ---------------------------------------------------------------------------
_SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 2.0, 1e30, -0.0])


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("kw", [{}, {"nan": 7.0}, {"posinf": 3.0}, {"neginf": -4.0},
                                {"nan": -1.0, "posinf": 9.0, "neginf": -9.0}])
def test_nan_to_num_matches_torch(dt, kw):
    x = _SPECIAL.astype(dt)
    a = tl.nan_to_num(tl.tensor(x), **kw)
    b = torch.nan_to_num(torch.tensor(x), **kw)
    assert a.dtype == np.dtype(dt)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_nan_to_num_grad_and_second_order():
    x = np.concatenate([_SPECIAL, np.random.default_rng(0).standard_normal(5)])
    xl, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    w = np.arange(1.0, x.size + 1)
    ga, = tl.grad((tl.nan_to_num(xl) * tl.tensor(w)).sum(), [xl], create_graph=True)
    gb, = torch.autograd.grad((torch.nan_to_num(xt) * torch.tensor(w)).sum(), [xt],
                              create_graph=True)
    np.testing.assert_array_equal(ga.numpy(), gb.detach().numpy())
    # the gradient's own gradient w.r.t. an upstream weight: the finite mask again
    wl, wt = tl.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    ga2, = tl.grad((tl.nan_to_num(xl) * wl).sum(), [xl], create_graph=True)
    gb2, = torch.autograd.grad((torch.nan_to_num(xt) * wt).sum(), [xt], create_graph=True)
    h1, = tl.grad(ga2.sum(), [wl])
    h2, = torch.autograd.grad(gb2.sum(), [wt])
    np.testing.assert_array_equal(h1.numpy(), h2.numpy())


@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
def test_nan_to_num_complex(dt):
    re = np.array([np.nan, 1.0, np.inf, -np.inf, 2.0, 0.5])
    im = np.array([1.0, np.nan, -np.inf, 3.0, np.inf, -0.5])
    z = (re + 1j * im).astype(dt)
    for kw in ({}, {"nan": 2.0, "posinf": 5.0, "neginf": -5.0}):
        a = tl.nan_to_num(tl.tensor(z), **kw)
        b = torch.nan_to_num(torch.tensor(z), **kw)
        assert a.dtype == np.dtype(dt)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    zl = tl.tensor(z.astype(np.complex128), requires_grad=True)
    zt = torch.tensor(z.astype(np.complex128), requires_grad=True)
    c = np.array([1 + 2j, 3 - 1j, 0.5j, 2.0, -1j, 1 + 1j])
    tl.nan_to_num(zl).mul(tl.tensor(c)).real.sum().backward()
    # PyTorch has no complex gradient for nan_to_num: its gradient of the identity (its
    # convention), 0 where the real or the imaginary part is not finite
    zt.mul(torch.tensor(c)).real.sum().backward()
    want = np.where(np.isfinite(z), zt.grad.numpy(), 0)
    np.testing.assert_allclose(zl.grad.numpy(), want)


def test_nan_to_num_integer_and_bool_unchanged():
    for a in (np.array([1, -2, 3], np.int64), np.array([True, False])):
        got = tl.nan_to_num(tl.tensor(a))
        want = torch.nan_to_num(torch.tensor(a))
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_nan_to_num_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = _SPECIAL.astype(np.float32)
    for kw in ({}, {"nan": 1.0, "posinf": 2.0, "neginf": -3.0}):
        f = tl.function(lambda a, kw=kw: tl.nan_to_num(a, **kw))
        p = tmp_path / "n.onnx"
        tl.onnx.export(f, (tl.tensor(x),), p)
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        got = s.run(None, {s.get_inputs()[0].name: x})[0]
        np.testing.assert_array_equal(got, torch.nan_to_num(torch.tensor(x), **kw).numpy())


# --- one-sided clamp ----------------------------------------------------------------------
@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("side", ["min", "max"])
def test_one_sided_clamp_matches_torch(dt, side):
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 0.5, 2.0]).astype(dt)
    for bound in (0, 0.25, -1.0):
        a = tl.tensor(x).clamp(**{side: bound})
        b = torch.tensor(x).clamp(**{side: bound})
        assert a.dtype == np.dtype(dt)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    xl = tl.tensor(x.astype(np.float64), requires_grad=True)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    xl.clamp(**{side: 0.5}).sum().backward()
    xt.clamp(**{side: 0.5}).sum().backward()
    np.testing.assert_array_equal(xl.grad.numpy(), xt.grad.numpy())


# --- slicing fast path, unfold errors -----------------------------------------------------
@pytest.mark.parametrize("key", [
    slice(2, 5), slice(None, None, -1), slice(-3, None, 2), 1, -1,
    (slice(1, 3), 0), (Ellipsis, None, slice(0, 2)), (None, 2, slice(None))])
def test_eager_slicing_matches_torch(key):
    a = np.arange(24.0).reshape(6, 4)
    if isinstance(key, slice) and key.step is not None and key.step < 0:
        got = tl.tensor(a)[key]     # torch refuses negative steps
        np.testing.assert_array_equal(got.numpy(), a[key])
        return
    xl, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    yl, yt = xl[key], xt[key]
    assert tuple(yl.shape) == tuple(yt.shape)
    np.testing.assert_array_equal(yl.detach().numpy(), yt.detach().numpy())
    (yl * 2.0).sum().backward()
    (yt * 2.0).sum().backward()
    np.testing.assert_array_equal(xl.grad.numpy(), xt.grad.numpy())


def test_eager_slicing_errors_and_views():
    x = tl.arange(12.0).reshape(3, 4)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0"):
        x[5]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        x[::0]
    v = x[1:3]
    v[0, 0] = 100.0     # a view, as PyTorch's
    assert x[1, 0].item() == 100.0
    # non-int bounds still work through the full path
    assert x[np.int64(1):np.int64(2)].shape == (1, 4)


def test_slicing_under_capture_still_traces_sizes():
    f = tl.function(lambda a: a[: a.shape[0] - 1] * 2.0,
                    input_signature=[tl.TensorSpec((None, 3), "float32")])
    for n in (4, 7):
        a = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
        np.testing.assert_array_equal(f(tl.tensor(a)).numpy(), a[:-1] * 2)


def test_unfold_too_large_window_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="unfold: size 6"):
        tl.randn(5).unfold(0, 6, 1)
    with pytest.raises(ValueError, match="unfold: size 6"):
        tl.randn(5).unfold(0, 6, 1)
    with pytest.raises(RuntimeError, match="step must be > 0"):
        tl.randn(5).unfold(0, 2, 0)
    with pytest.raises(RuntimeError):
        torch.randn(5).unfold(0, 6, 1)
    np.testing.assert_array_equal(tl.arange(5.0).unfold(0, 2, 1).numpy(),
                                  torch.arange(5.0).unfold(0, 2, 1).numpy())
