"""The fused pointwise kernels (_fused_pointwise.h) against PyTorch: Huber / smooth L1 fused
with their reduction and their one-pass backward, hardtanh's / relu6's one-pass backward,
one-pass nan_to_num and log-sigmoid: values and gradients (float32 and float64), NaN/inf, 0-d,
non-contiguous inputs, lengths around the vector widths, second derivatives and errors."""
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _ops

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 1025, 20000]
SHAPES = [(), (1,), (7,), (16,), (33,), (3, 17), (4, 8, 9), (1025,), (20000,)]
DTYPES = [np.float32, np.float64]
NEW_KERNELS = hasattr(_ops, "huber_into")


def _close(a, b, dtype, rtol=None, atol=None):
    f32 = np.dtype(dtype) == np.float32
    rtol = rtol if rtol is not None else (2e-5 if f32 else 1e-12)
    atol = atol if atol is not None else (1e-6 if f32 else 1e-12)
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rtol, atol=atol)


def _data(shape, dtype, seed, special=False, scale=2.0):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    if special and a.size:
        flat = a.reshape(-1)
        flat[rng.random(flat.size) < 0.1] = np.nan
        flat[rng.random(flat.size) < 0.05] = np.inf
        flat[rng.random(flat.size) < 0.05] = -np.inf
    return a


def _pair_tl(a, b):
    return tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)


def _pair_torch(a, b):
    return (torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))


def _loss(lib_f, name, x, y, reduction, p):
    fn = getattr(lib_f, name)
    return fn(x, y, reduction=reduction, **({"delta": p} if name == "huber_loss" else
                                            {"beta": p}))


# --- Huber / smooth L1 -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_huber_vs_torch(name, reduction, dtype, shape):
    a, b = _data(shape, dtype, 1), _data(shape, dtype, 2, scale=1.0)
    for p in (1.0, 0.5, 3.0):
        x, y = _pair_tl(a, b)
        tx, ty = _pair_torch(a, b)
        got, want = _loss(F, name, x, y, reduction, p), _loss(TF, name, tx, ty, reduction, p)
        assert got.dtype == np.dtype(dtype) and tuple(got.shape) == tuple(want.shape)
        _close(got.numpy(), want.detach().numpy(), dtype)
        gout = _data(tuple(want.shape), dtype, 3)
        got.backward(tl.tensor(gout))
        want.backward(torch.tensor(gout))
        _close(x.grad.numpy(), tx.grad.numpy(), dtype)
        _close(y.grad.numpy(), ty.grad.numpy(), dtype)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_nan_inf_and_kinks(name, reduction, dtype):
    a = _data((5, 67), dtype, 4, special=True)
    b = _data((5, 67), dtype, 5, scale=1.0)
    # exactly at the kinks |x - y| = p: the value and the first derivative are continuous
    a[0, :4] = np.array([1.5, -0.5, 0.5, -1.5], dtype)
    b[0, :4] = np.array([1.0, 0.0, 1.0, -1.0], dtype)
    x, y = _pair_tl(a, b)
    tx, ty = _pair_torch(a, b)
    got, want = _loss(F, name, x, y, reduction, 0.5), _loss(TF, name, tx, ty, reduction, 0.5)
    _close(got.numpy(), want.detach().numpy(), dtype)
    gout = np.ones(tuple(want.shape), dtype)
    got.backward(tl.tensor(gout))
    want.backward(torch.tensor(gout))
    _close(x.grad.numpy(), tx.grad.numpy(), dtype)
    _close(y.grad.numpy(), ty.grad.numpy(), dtype)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_huber_noncontiguous_and_broadcast(name, reduction):
    a = _data((40, 30), np.float32, 6).T            # non-contiguous input
    b = _data((30, 80), np.float32, 7)[:, ::2]       # non-contiguous target
    x, y = _pair_tl(a, b)
    tx, ty = _pair_torch(a, b)
    got, want = _loss(F, name, x, y, reduction, 1.0), _loss(TF, name, tx, ty, reduction, 1.0)
    _close(got.numpy(), want.detach().numpy(), np.float32)
    (got.sum() if reduction == "none" else got).backward()
    (want.sum() if reduction == "none" else want).backward()
    _close(x.grad.numpy(), tx.grad.numpy(), np.float32)
    _close(y.grad.numpy(), ty.grad.numpy(), np.float32)
    # a target broadcast along a dim: the gradient is summed back to its shape
    c = _data((30, 1), np.float32, 8)
    x, y = _pair_tl(a, c)
    tx, ty = _pair_torch(a, c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = _loss(F, name, x, y, reduction, 1.0)
        want = _loss(TF, name, tx, ty, reduction, 1.0)
    _close(got.numpy(), want.detach().numpy(), np.float32)
    (got.sum() if reduction == "none" else got).backward()
    (want.sum() if reduction == "none" else want).backward()
    _close(x.grad.numpy(), tx.grad.numpy(), np.float32)
    _close(y.grad.numpy(), ty.grad.numpy(), np.float32)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_huber_second_derivative_vs_torch(name, reduction):
    a = _data((6, 5), np.float64, 9)
    b = _data((6, 5), np.float64, 10, scale=1.0)
    x, y = _pair_tl(a, b)
    tx, ty = _pair_torch(a, b)
    got, want = _loss(F, name, x, y, reduction, 0.7), _loss(TF, name, tx, ty, reduction, 0.7)
    v = _data(tuple(want.shape), np.float64, 11)
    tv, tlv = torch.tensor(v, requires_grad=True), tl.tensor(v, requires_grad=True)
    gx, gy = tl.autograd.grad(got, [x, y], tlv, create_graph=True)
    tgx, tgy = torch.autograd.grad(want, [tx, ty], tv, create_graph=True)
    u, w = _data((6, 5), np.float64, 12), _data((6, 5), np.float64, 13)
    ((gx * tl.tensor(u)).sum() + (gy * tl.tensor(w)).sum()).backward()
    ((tgx * torch.tensor(u)).sum() + (tgy * torch.tensor(w)).sum()).backward()
    for g, t in ((x, tx), (y, ty), (tlv, tv)):
        _close(g.grad.numpy(), t.grad.numpy(), np.float64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_huber_gradgradcheck(reduction):
    a = _data((4, 3), np.float64, 14)
    b = _data((4, 3), np.float64, 15, scale=1.0)
    x, y = _pair_tl(a, b)
    assert tl.autograd.gradgradcheck(
        lambda p, q: F.smooth_l1_loss(p, q, reduction=reduction, beta=0.8), (x, y))
    assert tl.autograd.gradgradcheck(
        lambda p, q: F.huber_loss(p, q, reduction=reduction, delta=1.3), (x, y))


def test_huber_empty_and_errors():
    for reduction in ("mean", "sum", "none"):
        got = F.huber_loss(tl.zeros(0), tl.zeros(0), reduction=reduction)
        want = TF.huber_loss(torch.zeros(0), torch.zeros(0), reduction=reduction)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(ValueError, match="huber_loss"):
        F.huber_loss(tl.ones(3), tl.ones(3), delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss"):
        F.smooth_l1_loss(tl.ones(3), tl.ones(3), beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss"):
        F.huber_loss(tl.ones(3), tl.ones(3), reduction="avg")
    with pytest.raises(ValueError):
        F.huber_loss(tl.ones(3), tl.ones(4))


@given(n=st.integers(0, 300), p=st.floats(0.05, 5.0), seed=st.integers(0, 2 ** 16))
@settings(max_examples=30, deadline=None)
def test_huber_hypothesis(n, p, seed):
    a, b = _data((n,), np.float32, seed), _data((n,), np.float32, seed + 1)
    for reduction in ("mean", "sum"):
        x, y = _pair_tl(a, b)
        tx, ty = _pair_torch(a, b)
        got, want = F.huber_loss(x, y, reduction, p), TF.huber_loss(tx, ty, reduction, p)
        _close(got.numpy(), want.detach().numpy(), np.float32, rtol=5e-5, atol=1e-5)
        got.backward()
        want.backward()
        _close(x.grad.numpy(), tx.grad.numpy(), np.float32)


@pytest.mark.skipif(not NEW_KERNELS, reason="_ops built without _fused_pointwise.h")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_kernels_direct(n, dtype):
    a, b = _data((n,), dtype, n, special=True), _data((n,), dtype, n + 1)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = np.empty_like(a)
    for smooth in (False, True):
        _ops.huber_into(a, b, out, 0.5, smooth)
        fn = TF.smooth_l1_loss if smooth else TF.huber_loss
        kw = {"beta": 0.5} if smooth else {"delta": 0.5}
        want = fn(ta, tb, reduction="none", **kw).numpy()
        _close(out, want, dtype)
        _close(_ops.huber_sum(a, b, 0.5, smooth), want.astype(np.float64).sum(), np.float64,
               rtol=1e-6)
    g = _data((n,), dtype, n + 2)
    _ops.huber_grad_into(g, a, b, out, 0.5, 2.0)
    d = a.astype(np.float64) - b
    _close(out, 2.0 * g * np.clip(d, -0.5, 0.5), dtype)
    _ops.huber_grad_into(np.array([3.0], dtype), a, b, out, 0.5, 1.0)
    _close(out, 3.0 * np.clip(d, -0.5, 0.5), dtype)


@pytest.mark.skipif(not NEW_KERNELS, reason="_ops built without _fused_pointwise.h")
def test_kernel_length_errors():
    a = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="huber_into"):
        _ops.huber_into(a, np.zeros(4, np.float32), np.empty(5, np.float32), 1.0, False)
    with pytest.raises(ValueError, match="huber_grad_into"):
        _ops.huber_grad_into(np.zeros(3, np.float32), a, a, np.empty(5, np.float32), 1.0, 1.0)
    with pytest.raises(ValueError, match="hardtanh_grad_into"):
        _ops.hardtanh_grad_into(a, a, np.empty(4, np.float32), -1.0, 1.0)
    with pytest.raises(ValueError, match="nan_to_num_into"):
        _ops.nan_to_num_into(a, np.empty(6, np.float32), 0.0, 1.0, -1.0)
    with pytest.raises((ValueError, TypeError)):
        _ops.huber_into(a, a.astype(np.float64), np.empty(5, np.float32), 1.0, False)


# --- hardtanh / relu6 ------------------------------------------------------------------------
def _boundary_data(shape, dtype, seed, lo, hi):
    a = _data(shape, dtype, seed, special=True, scale=3.0)
    flat = a.reshape(-1)
    if flat.size > 4:
        flat[:4] = [lo, hi, np.nextafter(dtype(lo), dtype(0)), np.nextafter(dtype(hi), dtype(0))]
    return a


@pytest.mark.parametrize("fn, tfn, lo, hi", [
    (lambda x: F.hardtanh(x), lambda x: TF.hardtanh(x), -1.0, 1.0),
    (lambda x: F.hardtanh(x, -0.25, 2.5), lambda x: TF.hardtanh(x, -0.25, 2.5), -0.25, 2.5),
    (lambda x: F.relu6(x), lambda x: TF.relu6(x), 0.0, 6.0)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_hardtanh_relu6_vs_torch(fn, tfn, lo, hi, dtype, shape):
    a = _boundary_data(shape, dtype, 20, lo, hi)
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    got, want = fn(x), tfn(tx)
    np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
    g = _data(shape, dtype, 21)
    got.backward(tl.tensor(g))
    want.backward(torch.tensor(g))
    # NaN: PyTorch's vectorised CPU kernel gives 0, its scalar tail g; ours is always 0
    tg = tx.grad.numpy().copy()
    tg[np.isnan(a)] = 0
    np.testing.assert_array_equal(x.grad.numpy(), tg)


def test_hardtanh_noncontiguous_broadcast_grad_and_second_order():
    a = _data((40, 30), np.float32, 22, scale=2.0).T
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    F.hardtanh(x).sum().backward()          # a broadcast g (the sum's backward)
    TF.hardtanh(tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    # grad of grad: linear in the cotangent, nothing flows to x
    b = _data((5, 7), np.float64, 23, scale=2.0)
    x, tx = tl.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    v = _data((5, 7), np.float64, 24)
    tlv, tv = tl.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    (gx,) = tl.autograd.grad(F.relu6(x), [x], tlv, create_graph=True)
    (tgx,) = torch.autograd.grad(TF.relu6(tx), [tx], tv, create_graph=True)
    u = _data((5, 7), np.float64, 25)
    (gx * tl.tensor(u)).sum().backward()
    (tgx * torch.tensor(u)).sum().backward()
    np.testing.assert_array_equal(tlv.grad.numpy(), tv.grad.numpy())
    assert x.grad is None or not np.any(x.grad.numpy())
    c = tl.tensor(_data((3, 4), np.float64, 26, scale=2.0), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: F.hardtanh(t, -0.5, 0.5), (c,))


def test_hardtanh_inplace_and_errors():
    a = _data((4, 9), np.float32, 27, scale=3.0)
    x = tl.tensor(a)
    F.hardtanh(x, inplace=True)
    np.testing.assert_array_equal(x.numpy(), TF.hardtanh(torch.tensor(a)).numpy())
    with pytest.raises(ValueError, match="hardtanh"):
        F.hardtanh(tl.ones(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="hardtanh"):
        F.hardtanh(tl.ones(3), 2.0, 1.0)


@pytest.mark.skipif(not NEW_KERNELS, reason="_ops built without _fused_pointwise.h")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hardtanh_grad_kernel_direct(n, dtype):
    a, g = _boundary_data((n,), dtype, n, -1.0, 1.0), _data((n,), dtype, n + 1)
    out = np.empty_like(a)
    _ops.hardtanh_grad_into(g, a, out, -1.0, 1.0)
    want = np.where((a > -1) & (a < 1), g, 0)
    np.testing.assert_array_equal(out, want)


# --- nan_to_num ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"nan": 1.5}, {"nan": -2.0, "posinf": 7.0, "neginf": -7.0},
                                {"posinf": 1e300, "neginf": -1e300}, {"neginf": 0.0}])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_nan_to_num_vs_torch(kw, dtype, shape):
    a = _data(shape, dtype, 30, special=True)
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    got, want = tl.nan_to_num(x, **kw), torch.nan_to_num(tx, **kw)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
    g = _data(shape, dtype, 31)
    got.backward(tl.tensor(g))
    want.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


_REPLACEMENTS = [None, 0.0, np.inf, -np.inf, 1e300, -1e300, 7.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_to_num_every_replacement_bitwise(dtype):
    # each replacement is chosen from the input alone: an infinite one (given, or 1e300 cast
    # to float32) is never replaced again; 40 elements reach the vector body and the tail
    a = np.tile(np.array([np.nan, np.inf, -np.inf, 1.5, -0.0], dtype), 8)
    tx = torch.tensor(a)
    ints = np.int32 if dtype == np.float32 else np.int64
    for nan, posinf, neginf in itertools.product(_REPLACEMENTS, repeat=3):
        got = tl.nan_to_num(tl.tensor(a), nan=nan, posinf=posinf, neginf=neginf).numpy()
        want = torch.nan_to_num(tx, nan=nan, posinf=posinf, neginf=neginf).numpy()
        assert got.dtype == want.dtype, (nan, posinf, neginf)
        np.testing.assert_array_equal(got.view(ints), want.view(ints),
                                      err_msg=f"nan={nan}, posinf={posinf}, neginf={neginf}")


def test_nan_to_num_noncontiguous_and_other_dtypes():
    a = _data((30, 40), np.float32, 32, special=True).T
    np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(a), nan=3.0).numpy(),
                                  torch.nan_to_num(torch.tensor(a), nan=3.0).numpy())
    i = np.arange(6, dtype=np.int64)
    np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(i)).numpy(), i)
    h = _data((9,), np.float16, 33, special=True)
    np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(h)).numpy(),
                                  torch.nan_to_num(torch.tensor(h)).numpy())


@pytest.mark.skipif(not NEW_KERNELS, reason="_ops built without _fused_pointwise.h")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_to_num_kernel_direct(n, dtype):
    a = _data((n,), dtype, n, special=True)
    out = np.empty_like(a)
    _ops.nan_to_num_into(a, out, 0.5, 9.0, -9.0)
    np.testing.assert_array_equal(out, np.nan_to_num(a, nan=0.5, posinf=9.0, neginf=-9.0))


# --- logsigmoid ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_logsigmoid_vs_torch(dtype, shape):
    a = _data(shape, dtype, 40, special=True, scale=8.0)
    flat = a.reshape(-1)
    if flat.size > 8:       # far tails, 0 and the ends of exp's range
        flat[:8] = [-100.0, 100.0, 0.0, -0.0, -88.5, 88.5, -1e-8, 1e-8]
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    got, want = F.logsigmoid(x), TF.logsigmoid(tx)
    assert got.dtype == np.dtype(dtype)
    _close(got.numpy(), want.detach().numpy(), dtype, rtol=1e-5 if dtype == np.float32 else None)
    g = _data(shape, dtype, 41)
    got.backward(tl.tensor(g))
    want.backward(torch.tensor(g))
    _close(x.grad.numpy(), tx.grad.numpy(), dtype)


def test_logsigmoid_second_order_noncontiguous_and_half():
    b = _data((5, 7), np.float64, 42, scale=4.0)
    x, tx = tl.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    v = _data((5, 7), np.float64, 43)
    tlv, tv = tl.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    (gx,) = tl.autograd.grad(F.logsigmoid(x), [x], tlv, create_graph=True)
    (tgx,) = torch.autograd.grad(TF.logsigmoid(tx), [tx], tv, create_graph=True)
    u = _data((5, 7), np.float64, 44)
    (gx * tl.tensor(u)).sum().backward()
    (tgx * torch.tensor(u)).sum().backward()
    _close(x.grad.numpy(), tx.grad.numpy(), np.float64)
    _close(tlv.grad.numpy(), tv.grad.numpy(), np.float64)
    c = tl.tensor(_data((3, 4), np.float64, 45, scale=3.0), requires_grad=True)
    assert tl.autograd.gradgradcheck(F.logsigmoid, (c,))
    a = _data((40, 30), np.float32, 46, scale=5.0).T
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    F.logsigmoid(x).sum().backward()
    TF.logsigmoid(tx).sum().backward()
    _close(x.grad.numpy(), tx.grad.numpy(), np.float32)
    h = _data((50,), np.float16, 47, scale=4.0)
    _close(F.logsigmoid(tl.tensor(h)).numpy(), TF.logsigmoid(torch.tensor(h)).numpy(),
           np.float32, rtol=1e-3, atol=1e-3)
    with pytest.raises(Exception, match="logsigmoid"):
        F.logsigmoid(tl.tensor([1 + 2j]))


@pytest.mark.skipif(not hasattr(_ops, "logsigmoid_into"),
                    reason="_ops built without _fused_pointwise.h")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_logsigmoid_kernels_direct(n, dtype):
    a = _data((n,), dtype, n, special=True, scale=10.0)
    g = _data((n,), dtype, n + 1)
    out = np.empty_like(a)
    _ops.logsigmoid_into(a, out)
    ta = torch.from_numpy(a.astype(np.float64))
    _close(out, TF.logsigmoid(ta).numpy(), dtype, rtol=1e-5 if dtype == np.float32 else None)
    _ops.logsigmoid_grad_into(g, a, out)
    ta.requires_grad_(True)
    (want,) = torch.autograd.grad(TF.logsigmoid(ta), [ta], torch.from_numpy(g.astype(np.float64)))
    want = want.numpy()
    _close(out, want, dtype)


# --- expm1, log1p, ELU and softplus (float32, vector lanes) ---------------------------------
def _ulps(got, ref):
    """|got - ref| in float32 ulps of ref (ref float64; subnormal refs judged at the smallest
    normal's spacing)."""
    spacing = np.spacing(np.maximum(np.abs(ref), np.finfo(np.float32).tiny).astype(np.float32))
    return np.abs(got.astype(np.float64) - ref) / spacing.astype(np.float64)


def _wide(lo, hi, seed=0):
    rng = np.random.default_rng(seed)
    tiny = np.geomspace(1e-38, 1.0, 2001)
    x = np.concatenate([rng.uniform(lo, hi, 200_001), np.linspace(lo, hi, 100_003),
                        tiny, -tiny, [0.0, -0.0, lo, hi]])
    return x[(x >= lo) & (x <= hi)].astype(np.float32)


def test_expm1_and_log1p_kernels_accuracy_and_special_values():
    x = _wide(-100.0, 88.0)
    out = np.empty_like(x)
    _ops.expm1_f32(x, out)
    assert _ulps(out, np.expm1(x.astype(np.float64))).max() <= 4
    y = np.concatenate([_wide(-1.0, 1.0, 1), _wide(1.0, 3e38, 2),
                        np.float32(-1) + np.float32(2.0 ** -24) * np.arange(1, 200)])
    y = y[y > -1].astype(np.float32)
    out = np.empty_like(y)
    _ops.log1p_f32(y, out)
    assert _ulps(out, np.log1p(y.astype(np.float64))).max() <= 3
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 89.0, -1.0, -2.0],
                  np.float32)
    e, lg = np.empty_like(sp), np.empty_like(sp)
    _ops.expm1_f32(sp, e)
    _ops.log1p_f32(sp, lg)
    np.testing.assert_array_equal(e, [0, 0, np.inf, -1, np.nan, np.inf, -1, np.inf,
                                      np.expm1(np.float32(-1)), np.expm1(np.float32(-2))])
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.log1p(sp)
    np.testing.assert_array_equal(lg, want)


def _ulps_sub(got, ref):
    """|got - ref| in float32 ulps of ref, subnormal refs at the subnormals' own spacing."""
    spacing = np.maximum(np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64),
                         2.0 ** -149)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _all_floats(n=2_000_000, seed=0):
    """n finite float32 values drawn uniformly over bit patterns: every binade, subnormals,
    both signs"""
    bits = np.random.default_rng(seed).integers(0, 2 ** 32, n, dtype=np.uint64)
    x = bits.astype(np.uint32).view(np.float32)
    return x[np.isfinite(x)]


# (name, NumPy's name, range of a dense sweep or None, the domain of the all-float draw, ulps)
_MATH_CASES = [("exp", "exp", (-110.0, 90.0), None, 1.25),
               ("exp2", "exp2", (-155.0, 130.0), None, 1.25),
               ("log", "log", None, (0.0, np.inf), 1.0),
               ("log2", "log2", None, (0.0, np.inf), 1.0),
               ("sinh", "sinh", (-100.0, 100.0), None, 2.5),
               ("cosh", "cosh", (-100.0, 100.0), None, 1.5),
               ("asinh", "arcsinh", (-3.0, 3.0), (-np.inf, np.inf), 4.0),
               ("acosh", "arccosh", (1.0, 3.0), (1.0, np.inf), 4.0),
               ("atanh", "arctanh", (-1.0, 1.0), (-1.0, 1.0), 4.0),
               ("atan", "arctan", (-3.0, 3.0), (-np.inf, np.inf), 3.0),
               ("asin", "arcsin", (-1.0, 1.0), (-1.0, 1.0), 2.5),
               ("acos", "arccos", (-1.0, 1.0), (-1.0, 1.0), 1.5),
               ("sin", "sin", (-10.0, 10.0), (-np.inf, np.inf), 1.6),
               ("cos", "cos", (-10.0, 10.0), (-np.inf, np.inf), 1.6),
               ("tan", "tan", (-10.0, 10.0), (-np.inf, np.inf), 2.5)]


@pytest.mark.parametrize("name,np_name,sweep,domain,bound", _MATH_CASES,
                         ids=[c[0] for c in _MATH_CASES])
def test_math_kernels_accuracy_over_the_float32_range(name, np_name, sweep, domain, bound):
    """Each map against float64 NumPy: over a dense sweep (exp/exp2 through the overflow
    threshold and the subnormal results, each rounded once: no flush to zero) and over floats
    drawn from every binade of the domain, subnormals included."""
    parts = []
    if sweep is not None:
        parts += [_wide(*sweep), np.linspace(*sweep, 400_001, dtype=np.float32)]
    if domain is not None:
        x = _all_floats()
        parts.append(x[(x > domain[0]) & (x <= domain[1])])
    if name in ("sin", "cos", "tan"):
        # the floats next to multiples of pi/2, where the reduction cancels most, beyond the
        # double reduction's 2^20 too (libm)
        near = (np.arange(1, 800_000) * (np.pi / 2)).astype(np.float32)
        parts += [near, -np.nextafter(near, np.float32(np.inf)), np.nextafter(near, 0)]
    x = np.concatenate(parts)
    out = np.empty_like(x)
    _ops.math_f32(name, x, out)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        ref = getattr(np, np_name)(x.astype(np.float64))
        ref32 = ref.astype(np.float32)
    finite = np.isfinite(ref32)
    np.testing.assert_array_equal(out[~finite], ref32[~finite])    # overflow, poles, NaN
    assert _ulps_sub(out[finite], ref[finite]).max() <= bound
    assert (out[finite] == ref32[finite]).mean() > 2 / 3         # mostly correctly rounded
    if name.startswith("exp"):   # subnormal results are there, and not flushed
        sub = finite & (np.abs(ref32) < np.finfo(np.float32).tiny) & (ref32 > 0)
        assert sub.sum() > 100 and (out[sub] > 0).all()


def test_math_kernels_special_values_and_checks():
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, 0.5, 1e-45, -1e-45,
                   88.72283935546875, 88.7228470, -103.9, -104.0, 128.0, 127.9999, -149.0,
                   -150.0, -151.0, 3.4028235e38], np.float32)
    with np.errstate(all="ignore"):
        for name, np_name, *_ in _MATH_CASES:
            out = np.empty_like(sp)
            _ops.math_f32(name, sp, out)
            want = getattr(np, np_name)(sp.astype(np.float64)).astype(np.float32)
            exact = ~np.isfinite(want) | (want == 0) | np.isin(sp, [0.0])
            if name in ("exp2", "log", "log2"):    # exactly 2, 0, 1, -1
                exact |= np.isin(sp, [1.0, 2.0, 0.5])
            np.testing.assert_array_equal(out[exact], want[exact], err_msg=name)
            assert _ulps_sub(out[~exact], want[~exact].astype(np.float64)).max() <= 4, name
    with pytest.raises(ValueError, match="name must be one of"):
        _ops.math_f32("erfc", sp, np.empty_like(sp))
    with pytest.raises(ValueError, match="differ in length"):
        _ops.math_f32("exp", sp, np.empty(3, np.float32))
    empty = np.empty(0, np.float32)
    _ops.math_f32("log", empty, empty)


@pytest.mark.parametrize("name,np_name,bound", [("atan2", "arctan2", 3.1),
                                               ("hypot", "hypot", 0.5)])
def test_binary_math_kernels_accuracy_and_special_values(name, np_name, bound):
    """atan2 and hypot against float64 NumPy over pairs drawn from every binade (and normal
    pairs), and every pair of special values: C99's results at the axes, the signed zeros
    and the infinities (atan2 within an ulp of the float64 value there: pi/2 rounds either
    way), hypot's inf beside NaN."""
    rng = np.random.default_rng(3)
    a, b = _all_floats(1_500_000, seed=1), _all_floats(1_500_000, seed=2)
    k = min(a.size, b.size)
    a = np.concatenate([a[:k], rng.standard_normal(300_000).astype(np.float32)])
    b = np.concatenate([b[:k], rng.standard_normal(300_000).astype(np.float32)])
    out = np.empty_like(a)
    _ops.math2_f32(name, a, b, out)
    with np.errstate(over="ignore", under="ignore"):
        ref = getattr(np, np_name)(a.astype(np.float64), b.astype(np.float64))
        ref32 = ref.astype(np.float32)
    finite = np.isfinite(ref32)
    np.testing.assert_array_equal(out[~finite], ref32[~finite])
    assert _ulps_sub(out[finite], ref[finite]).max() <= bound
    sp = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 3e38])
    pa, pb = (np.ascontiguousarray(v) for v in np.array(list(itertools.product(sp, sp)),
                                                          np.float32).T)
    got = np.empty_like(pa)
    _ops.math2_f32(name, pa, pb, got)
    with np.errstate(over="ignore"):
        want = getattr(np, np_name)(pa, pb)
        want64 = getattr(np, np_name)(pa.astype(np.float64), pb.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert (np.signbit(got) == np.signbit(want)).all()
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    ok = np.isfinite(want)
    assert (_ulps_sub(got[ok], want64[ok]) <= 1.0).all()
    # the op: the map for float32 arrays of one shape, NumPy's ufunc for the rest
    x, y = rng.standard_normal((2, 40, 50)).astype(np.float32)
    _ops.math2_f32(name, y.reshape(-1), x.reshape(-1), out[:2000])
    from tensorlib.ops import elementwise as ew
    f = getattr(tl, name)
    if not ew._numpy_has_svml():
        np.testing.assert_array_equal(f(tl.tensor(y), tl.tensor(x)).numpy().reshape(-1),
                                      out[:2000])
    np.testing.assert_allclose(f(tl.tensor(y), tl.tensor(x[0])).numpy(),
                               getattr(np, np_name)(y, x[0]), rtol=1e-6)
    with pytest.raises(ValueError, match="name must be one of"):
        _ops.math2_f32("pow", pa, pb, got)
    with pytest.raises(ValueError, match="differ in length"):
        _ops.math2_f32(name, pa, pb[:3], got)


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_elu_kernel_vs_float64(alpha):
    x = np.concatenate([_wide(-100.0, 100.0, 3), [np.nan, np.inf, -np.inf]]).astype(np.float32)
    out = np.empty_like(x)
    _ops.elu_into(x, out, alpha)
    xd = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ref = np.where(xd > 0, xd, alpha * np.expm1(xd))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    ok = np.isfinite(ref)
    assert (out[~ok & ~np.isnan(ref)] == ref[~ok & ~np.isnan(ref)]).all()
    assert _ulps(out[ok], ref[ok]).max() <= 5


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 3.0), (-1.5, 20.0),
                                            (3.0, -1.0)])
def test_softplus_kernel_vs_torch(beta, threshold):
    x = np.concatenate([_wide(-120.0, 120.0, 4), [np.nan, np.inf, -np.inf]]).astype(np.float32)
    out = np.empty_like(x)
    _ops.softplus_into(x, out, beta, threshold)
    # in float64 from the float32 product beta x (the rounding PyTorch's float32 kernel has too:
    # exp of a product near 40 moves by 40 float32 epsilons with it)
    bx = (x * np.float32(beta)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        ref = np.where(bx > threshold, x.astype(np.float64), np.logaddexp(0.0, bx) / beta)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    ok = np.isfinite(ref)
    np.testing.assert_array_equal(out[~ok & ~np.isnan(ref)], ref[~ok & ~np.isnan(ref)])
    # relative to the value; values below float32's smallest normal (beta x < -87) may flush
    # to 0, as the vectorised exp does
    err = np.abs(out[ok].astype(np.float64) - ref[ok])
    assert (err <= 4e-7 * np.abs(ref[ok]) + np.finfo(np.float32).tiny).all()
    with pytest.raises(ValueError, match="beta"):
        _ops.softplus_into(x, out, 0.0, 20.0)


@pytest.mark.filterwarnings("ignore:invalid value")    # (sums over the NaN and inf entries)
@pytest.mark.parametrize("shape", [(), (1,), (33,), (3, 17), (1025,), (300_001,)])
def test_elu_softplus_expm1_log1p_float32_ops_vs_torch(shape):
    a = _data(shape, np.float32, 50, special=True, scale=6.0)
    views = (a,) if a.ndim == 0 else (a, a.T if a.ndim == 2 else a[::-1])
    for view in views:      # contiguous, then not
        x, tx = tl.tensor(view, requires_grad=True), torch.tensor(view.copy(), requires_grad=True)
        pairs = [(F.elu(x, 0.7), TF.elu(tx, 0.7)), (F.softplus(x, 2.0, 5.0),
                                                     TF.softplus(tx, 2.0, 5.0)),
                 (tl.expm1(x), torch.expm1(tx)), (tl.log1p(x.abs()), torch.log1p(tx.abs()))]
        for got, want in pairs:
            assert got.dtype == np.float32
            _close(got.detach().numpy(), want.detach().numpy(), np.float32, rtol=2e-6,
                   atol=1e-7)
        g = _data(view.shape, np.float32, 51)
        sum(tl.sum(p[0] * tl.tensor(g)) for p in pairs).backward()
        sum(torch.sum(p[1] * torch.tensor(g)) for p in pairs).backward()
        _close(x.grad.numpy(), tx.grad.numpy(), np.float32, rtol=1e-5, atol=1e-6)


def test_expm1_log1p_tanh_exp_log_take_the_vector_maps_where_numpy_has_no_svml():
    from tensorlib.ops import elementwise as ew
    if ew._numpy_has_svml():
        pytest.skip("NumPy's SVML expm1/log1p are kept on this CPU")
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    out = np.empty_like(x)
    _ops.expm1_f32(x, out)
    np.testing.assert_array_equal(tl.expm1(tl.tensor(x)).numpy(), out)
    _ops.log1p_f32(np.abs(x), out)
    np.testing.assert_array_equal(tl.log1p(tl.tensor(np.abs(x))).numpy(), out)
    _ops.tanh_f32(x, out)
    np.testing.assert_array_equal(tl.tanh(tl.tensor(x)).numpy(), out)
    m = x[:1000].reshape(20, 50)
    np.testing.assert_array_equal(tl.tanh(tl.tensor(m).T).numpy(), np.tanh(m.T))  # (NumPy's)
    # graph fusion's in-place form: the map for float32 buffers, the ufunc otherwise
    from tensorlib.ops.registry import cpu_map
    f = cpu_map(ew.TANH)
    buf = x.copy()
    assert f(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, out)
    d = x.astype(np.float64)          # (float64: its own map, test_math_f64)
    d_out = np.empty_like(d)
    _ops.math_f64("tanh", d, d_out)
    np.testing.assert_array_equal(f(d, out=np.empty_like(d)), d_out)
    np.testing.assert_array_equal(f(d.astype(np.float16), out=np.empty(d.shape, np.float16)),
                                  np.tanh(d.astype(np.float16)))    # (others: NumPy's)
    o = np.empty((50, 20), np.float32)
    np.testing.assert_array_equal(f(m.T, out=o), np.tanh(m.T))
    # (sign and rsqrt, exact, are checked bit for bit in test_f64_lane_maps)
    assert {c[0] for c in _MATH_CASES} | {"sign", "rsqrt"} == set(_ops.MATH_F32)
    small = x[:ew.MAP_MIN - 1]      # below MAP_MIN: NumPy's own loop, its call being cheaper
    np.testing.assert_array_equal(tl.exp(tl.tensor(small)).numpy(), np.exp(small))
    np.testing.assert_array_equal(tl.atan2(tl.tensor(small), tl.tensor(small[::-1].copy()))
                                  .numpy(), np.arctan2(small, small[::-1]))
    for name in _ops.MATH_F32:
        arg = {"log": np.abs(x), "log2": np.abs(x), "rsqrt": np.abs(x), "acosh": np.abs(x) + 1,
               "atanh": x / 3, "asin": x / 3, "acos": x / 3}.get(name, x)
        _ops.math_f32(name, arg, out)
        np.testing.assert_array_equal(getattr(tl, name)(tl.tensor(arg)).numpy(), out)


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_elu_grad_kernel_and_op(alpha):
    x = np.concatenate([_wide(-100.0, 100.0, 5), [np.nan, np.inf, -np.inf, 0.0, -0.0]])
    x = x.astype(np.float32)
    g = np.random.default_rng(6).standard_normal(x.size).astype(np.float32)
    out = np.empty_like(x)
    _ops.elu_grad_into(g, x, out, alpha)
    xd = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    (want,) = torch.autograd.grad(TF.elu(xd, alpha), [xd], torch.from_numpy(g.astype(np.float64)))
    want = want.numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))    # NaN x: g, as PyTorch
    ok = ~np.isnan(want)
    # (exp flushes to 0 below -88: g e^x under ~1e-37 may come out 0)
    np.testing.assert_allclose(out[ok], want[ok], rtol=3e-7, atol=1e-37)
    # the op: float32 on the kernel, float64 on NumPy, broadcast g, second order
    for dt in (np.float32, np.float64):
        xt = tl.tensor(x[:1000].astype(dt))
        got = tl.apply(tl.REGISTRY["elu_grad"], tl.tensor(g[:1000].astype(dt)), xt, alpha=alpha)
        assert got.dtype == dt
        _close(got.numpy(), want[:1000], dt, rtol=1e-6 if dt == np.float32 else 1e-12)
    gb = tl.apply(tl.REGISTRY["elu_grad"], tl.tensor(np.float32(2.0)), tl.tensor(x[:7]),
                  alpha=alpha)
    _close(gb.numpy(), np.where(x[:7] > 0, 2.0, 2.0 * alpha * np.exp(np.minimum(x[:7], 0))),
           np.float32)
    c = tl.tensor(_data((3, 4), np.float64, 7, scale=2.0), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda v: F.elu(v, alpha), (c,))


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 3.0), (-1.5, 20.0)])
def test_softplus_grad_kernel_and_op(beta, threshold):
    x = np.concatenate([_wide(-120.0, 120.0, 8), [np.nan, np.inf, -np.inf, 0.0]])
    x = x.astype(np.float32)
    g = np.random.default_rng(9).standard_normal(x.size).astype(np.float32)
    out = np.empty_like(x)
    _ops.softplus_grad_into(g, x, out, beta, threshold)
    bx = (x * np.float32(beta)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.where(bx > threshold, g, g / (1.0 + np.exp(-bx)))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(out[ok], want[ok], rtol=5e-7, atol=1e-37)
    for dt in (np.float32, np.float64):
        got = tl.apply(tl.REGISTRY["softplus_grad"], tl.tensor(g[:999].astype(dt)),
                       tl.tensor(x[:999].astype(dt)), beta=beta, threshold=threshold)
        assert got.dtype == dt
        xd = torch.from_numpy(x[:999].astype(np.float64)).requires_grad_(True)
        (ref,) = torch.autograd.grad(TF.softplus(xd, beta, threshold), [xd],
                                     torch.from_numpy(g[:999].astype(np.float64)))
        _close(got.numpy(), ref.numpy(), dt, rtol=1e-6 if dt == np.float32 else 1e-12)
    c = tl.tensor(_data((3, 4), np.float64, 10, scale=2.0), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda v: F.softplus(v, beta, threshold), (c,))


@pytest.mark.parametrize("slope", [0.01, 0.0, -0.5, 2.0])
def test_leaky_relu_kernels_ops_and_in_place(slope):
    x = np.concatenate([_wide(-10.0, 10.0, 11), [np.nan, np.inf, -np.inf, 0.0, -0.0]])
    x = x.astype(np.float32)
    g = np.random.default_rng(12).standard_normal(x.size).astype(np.float32)
    with np.errstate(invalid="ignore"):     # (-inf * 0: NaN, as PyTorch)
        want = np.where(x > 0, x, x * np.float32(slope))      # PyTorch's formula
    out = np.empty_like(x)
    _ops.leaky_relu_f32(x, out, slope)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(want))
    _ops.leaky_relu_grad_f32(g, x, out, slope)
    np.testing.assert_array_equal(out, np.where(x > 0, g, g * np.float32(slope)))
    xt = torch.from_numpy(x.copy())
    np.testing.assert_array_equal(F.leaky_relu(tl.tensor(x), slope).numpy(),
                                  TF.leaky_relu(xt, slope).numpy())
    t = tl.tensor(x.copy())
    F.leaky_relu(t, slope, inplace=True)
    np.testing.assert_array_equal(t.numpy(), want)
    v = tl.tensor(x[:600].reshape(20, 30), requires_grad=True)
    tv = torch.tensor(x[:600].reshape(20, 30), requires_grad=True)
    gg = g[:600].reshape(20, 30)
    F.leaky_relu(v.T, slope).backward(tl.tensor(gg.T.copy()))
    TF.leaky_relu(tv.T, slope).backward(torch.tensor(gg.T.copy()))
    np.testing.assert_array_equal(v.grad.numpy(), tv.grad.numpy())
