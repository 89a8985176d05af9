"""Session 21b kernels: digamma by PyTorch's CPU formula (_gamma.h; lgamma checked beside
it), and causal attention by blocks of query rows (nn_attention._causal_blocks), against
PyTorch."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _ops
from tensorlib.ops import nn_attention

torch = pytest.importorskip("torch")

SPECIAL = [0.0, -0.0, 1.0, 2.0, -1.0, -2.0, -3.0, -100.0, 0.5, -0.5, -1.5, -2.5, 1e-30,
           -1e-30, 1e-300, 1 - 1e-7, 1 + 1e-7, 2 - 1e-9, 1.4616321449683622, 10.0, 9.999999,
           1e17, 3e38, 1e300, math.inf, -math.inf, math.nan, -7.000001, -1e6 - 0.5, 171.6, 172.]


def _ref(fn, a):
    return getattr(torch, fn)(torch.from_numpy(a)).numpy()


def _same(got, want, rtol, atol=0.0):
    got, want = np.atleast_1d(got), np.atleast_1d(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=atol)


@pytest.mark.parametrize("fn", ["lgamma", "digamma"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_special_values_match_torch(fn, dt):
    a = np.array(SPECIAL, dtype=np.float64).astype(dt)
    got = getattr(tl, fn)(tl.tensor(a)).numpy()
    assert got.dtype == dt
    # (digamma's root 1.46163...: absolute, the sum cancels)
    _same(got, _ref(fn, a), 1e-5 if dt == np.float32 else 1e-13,
          1e-6 if dt == np.float32 else 1e-15)


def test_digamma_signed_zero_and_poles():
    a = np.array([0.0, -0.0, -1.0, -4.0, -math.inf, math.inf])
    for dt in (np.float32, np.float64):
        got = tl.digamma(tl.tensor(a.astype(dt))).numpy()
        np.testing.assert_array_equal(got[:2], [-np.inf, np.inf])
        assert np.isnan(got[2:5]).all() and got[5] == np.inf
        got = tl.lgamma(tl.tensor(a.astype(dt))).numpy()
        np.testing.assert_array_equal(got, np.full(6, np.inf))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16384 + 3, 300001])   # tails and several threads' chunks
def test_random_arrays_match_torch(dt, n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 20).astype(dt)
    tol = 2e-6 if dt == np.float32 else 1e-13
    # lgamma near its roots 1 and 2: absolute
    _same(tl.lgamma(tl.tensor(a)).numpy(), _ref("lgamma", a), tol,
          1e-6 if dt == np.float32 else 1e-15)
    # digamma near its root cancels: absolute there
    _same(tl.digamma(tl.tensor(a)).numpy(), _ref("digamma", a), tol,
          2e-6 if dt == np.float32 else 1e-14)


def test_float64_against_scipy():
    sc = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-50, 50, 5000), rng.uniform(1e-3, 30, 5000),
                        -rng.uniform(0, 30, 5000) - 0.5])
    a = a[a != np.round(a)]
    np.testing.assert_allclose(tl.digamma(tl.tensor(a)).numpy(), sc.psi(a), rtol=1e-12,
                               atol=1e-13)
    # gammaln is only absolutely accurate near its roots
    np.testing.assert_allclose(tl.lgamma(tl.tensor(a)).numpy(), sc.gammaln(a), rtol=1e-13,
                               atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e4, 1e4, allow_nan=False), st.sampled_from([np.float32, np.float64]))
def test_property_scalar(v, dt):
    a = np.array([v], dtype=dt)
    tol = (1e-5, 1e-5) if dt == np.float32 else (1e-13, 1e-13)
    for fn in ("lgamma", "digamma"):
        want = _ref(fn, a)
        got = getattr(tl, fn)(tl.tensor(a)).numpy()
        if np.isfinite(want).all() and abs(want[0]) > 1e3 * tol[1] and dt == np.float32:
            # float32 digamma near a negative pole: pi / tan(pi r) amplifies one rounding
            np.testing.assert_allclose(got, want, rtol=1e-3)
        else:
            _same(got, want, *tol)


def test_zero_d_and_empty_and_shapes():
    for dt in (np.float32, np.float64):
        for a in (np.array(2.5, dt), np.zeros((0, 3), dt), np.full((3, 1, 4), -1.25, dt),
                  np.arange(24, dtype=dt).reshape(2, 3, 4)[:, ::2] + 0.5):
            for fn in ("lgamma", "digamma"):
                got = getattr(tl, fn)(tl.tensor(a)).numpy()
                assert got.shape == a.shape and got.dtype == dt
                _same(got, _ref(fn, a.copy()), 1e-6, 1e-6)


def test_gradients_float64():
    a = np.array([0.3, 1.7, 4.0, -0.5, -2.3, 12.5])
    for fn in ("lgamma", "digamma"):
        x = tl.tensor(a, requires_grad=True)
        getattr(tl, fn)(x).sum().backward()
        tx = torch.tensor(a, requires_grad=True)
        getattr(torch, fn)(tx).sum().backward()
        # digamma's gradient is polygamma(1, x): SciPy's, ~1e-10 from PyTorch's
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(),
                                   rtol=1e-11 if fn == "lgamma" else 1e-8)


def test_kernel_errors():
    with pytest.raises(ValueError, match="digamma_into"):
        _ops.digamma_into(np.ones(4), np.empty(3))


# --- causal attention by blocks ---------------------------------------------------------------
def _sdpa_both(shape_q, shape_k, dt, seed, block_min=None, **kw):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(shape_q).astype(dt)
    k = rng.standard_normal(shape_k).astype(dt)
    v = rng.standard_normal(shape_k[:-1] + (5,)).astype(dt)
    g = rng.standard_normal(shape_q[:-1] + (5,)).astype(dt)
    tq, tk, tv = (tl.tensor(a, requires_grad=True) for a in (q, k, v))
    old = nn_attention._CAUSAL_BLOCK_MIN
    if block_min is not None:
        nn_attention._CAUSAL_BLOCK_MIN = block_min
    try:
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True, **kw)
    finally:
        nn_attention._CAUSAL_BLOCK_MIN = old
    out.backward(tl.tensor(g))
    pq, pk, pv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    po = torch.nn.functional.scaled_dot_product_attention(pq, pk, pv, is_causal=True, **kw)
    po.backward(torch.tensor(g))
    return (out, tq.grad, tk.grad, tv.grad), (po, pq.grad, pk.grad, pv.grad)


@pytest.mark.parametrize("L,S", [(256, 256), (300, 300), (257, 128), (256, 400), (70, 70)])
def test_causal_blocks_match_torch_float64(L, S):
    mine, ref = _sdpa_both((2, 3, L, 8), (2, 3, S, 8), np.float64, L + S, block_min=64)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_causal_blocks_float32_scale_and_broadcast():
    mine, ref = _sdpa_both((4, 256, 16), (4, 256, 16), np.float32, 1, scale=0.3)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_causal_blocks_equal_the_masked_path():
    rng = np.random.default_rng(5)
    q, k, v = (tl.tensor(rng.standard_normal((1, 2, 320, 8))) for _ in range(3))
    blocked = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    old = nn_attention._CAUSAL_BLOCK_MIN
    nn_attention._CAUSAL_BLOCK_MIN = 10 ** 9
    try:
        full = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    finally:
        nn_attention._CAUSAL_BLOCK_MIN = old
    np.testing.assert_allclose(blocked, full, rtol=1e-12, atol=1e-13)


def test_causal_blocks_grad_of_grad():
    rng = np.random.default_rng(2)
    q, k, v = (tl.tensor(rng.standard_normal((1, 80, 4)), requires_grad=True) for _ in range(3))
    old = nn_attention._CAUSAL_BLOCK_MIN
    nn_attention._CAUSAL_BLOCK_MIN = 64
    try:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        (gq,) = tl.autograd.grad(out.square().sum(), [q], create_graph=True)
        gq.sum().backward()
    finally:
        nn_attention._CAUSAL_BLOCK_MIN = old
    pq, pk, pv = (torch.tensor(t.numpy(), requires_grad=True) for t in (q, k, v))
    po = torch.nn.functional.scaled_dot_product_attention(pq, pk, pv, is_causal=True)
    (tq,) = torch.autograd.grad(po.square().sum(), [pq], create_graph=True)
    tq.sum().backward()
    np.testing.assert_allclose(gq.numpy(), tq.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(k.grad.numpy(), pk.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_causal_errors_still_raised():
    q = tl.tensor(np.zeros((1, 300, 8)))
    with pytest.raises(Exception, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, tl.tensor(np.zeros((1, 300, 7))),
                                       tl.tensor(np.zeros((1, 300, 8))), is_causal=True)
