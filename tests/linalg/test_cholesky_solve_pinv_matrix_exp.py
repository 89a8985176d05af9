"""Fixes of the scientific-ML trial (round 18): cholesky_solve to any order in the factor,
the triangle cholesky(upper=True) / pinv(hermitian=True) read, matrix_exp under vmap and
capture, searchsorted/bucketize under vmap, func.jvp with integer outputs, and
autograd.functional.jacobian/hessian(vectorize=True) through tl.func. Compared with PyTorch.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=12, deadline=None)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach() if hasattr(t, "detach") else t)


def _close(a, b, rtol=1e-10, atol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)


def _lower(rng, n, batch=()):
    """A well-conditioned lower-triangular factor (positive diagonal)."""
    a = rng.standard_normal(batch + (n, n))
    return np.tril(a, -1) * 0.5 + np.eye(n) * (1.5 + rng.random(batch + (n, 1)))


# --- 1. cholesky_solve: derivatives of every order in the factor ------------------------------
def _third_scalar(m, L0, B, extra):
    t = m.tensor(0.1, dtype=m.float64, requires_grad=True)
    f = m.cholesky_solve(m.tensor(B, dtype=m.float64), m.tensor(L0, dtype=m.float64) * (1 + t))
    f = f.sum() + (t ** 4 if extra else 0)
    d1, = m.autograd.grad(f, t, create_graph=True)
    d2, = m.autograd.grad(d1, t, create_graph=True)
    d3, = m.autograd.grad(d2, t)
    return float(d1.detach()), float(d2.detach()), float(d3)


@pytest.mark.parametrize("extra", [False, True])
def test_cholesky_solve_third_derivative_report(extra):
    L0 = np.array([[2.0, 0, 0], [0.5, 1.5, 0], [-0.3, 0.2, 1.0]])
    B = np.ones((3, 1))
    got, want = _third_scalar(tl, L0, B, extra), _third_scalar(torch, L0, B, extra)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # f = s / (1 + t)^2 (+ t^4) analytically
    s = float(np.linalg.solve(L0 @ L0.T, B).sum())
    np.testing.assert_allclose(got[2], -24 * s / 1.1 ** 5 + (24 * 0.1 if extra else 0),
                               rtol=1e-12)


def _derivs(m, L, B, W, upper):
    l, b = m.tensor(L, requires_grad=True), m.tensor(B, requires_grad=True)
    x = m.cholesky_solve(b, l, upper=upper)
    gl, gb = m.autograd.grad((x * m.tensor(W)).sum(), (l, b), create_graph=True)
    h, = m.autograd.grad((gl ** 2).sum() + (gb ** 3).sum(), l, create_graph=True)
    k, = m.autograd.grad((h * m.tensor(L)).sum(), l)
    return x, gl, gb, h, k


@SETTINGS
@given(n=st.integers(1, 4), k=st.integers(1, 3), upper=st.booleans(), junk=st.booleans(),
       batch=st.sampled_from([(), (2,)]), seed=st.integers(0, 2 ** 16))
def test_cholesky_solve_orders_match_torch(n, k, upper, junk, batch, seed):
    rng = np.random.default_rng(seed)
    L = _lower(rng, n, batch)
    if junk:        # the unread triangle: not read for the value, but it gets gradients
        L = L + np.triu(rng.standard_normal(batch + (n, n)), 1)
    if upper:
        L = np.swapaxes(L, -1, -2)
    B, W = rng.standard_normal(batch + (n, k)), rng.standard_normal(batch + (n, k))
    for g, w in zip(_derivs(tl, L, B, W, upper), _derivs(torch, L, B, W, upper)):
        _close(g, w, rtol=1e-9, atol=1e-9)


def test_cholesky_solve_third_order_finite_differences():
    rng = np.random.default_rng(3)
    X0 = rng.standard_normal((3, 3))
    X0 = X0 @ X0.T + 3 * np.eye(3)
    D = rng.standard_normal((3, 3))
    D = D + D.T
    B = rng.standard_normal((3, 2))

    def f(m, e):
        return m.cholesky_solve(m.tensor(B), m.linalg.cholesky(m.tensor(X0) + e * m.tensor(D)))

    e = tl.tensor(0.0, dtype=tl.float64, requires_grad=True)
    y = f(tl, e).sum()
    d = [y]
    for _ in range(3):
        d.append(tl.autograd.grad(d[-1], e, create_graph=True)[0])
    h = 1e-3

    def val(x):
        return float(f(tl, tl.tensor(x)).sum())
    # the third derivative by central differences (error O(h^2))
    fd3 = (val(2 * h) - 2 * val(h) + 2 * val(-h) - val(-2 * h)) / (2 * h ** 3)
    np.testing.assert_allclose(float(d[3].detach()), fd3, rtol=1e-5)
    et = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    z = f(torch, et).sum()
    dt = [z]
    for _ in range(3):
        dt.append(torch.autograd.grad(dt[-1], et, create_graph=True)[0])
    np.testing.assert_allclose(float(d[3].detach()), float(dt[3].detach()), rtol=1e-10)


@pytest.mark.parametrize("transform", ["hessian", "jacrev2", "jacfwd_grad", "jacrev3"])
def test_cholesky_solve_func_transforms(transform):
    """Batched cotangents (jacrev's vmap) and vmap over examples: values and device."""
    rng = np.random.default_rng(2)
    L, B = _lower(rng, 3, (2,)), rng.standard_normal((3, 2))

    def tr(M):
        F = M.func
        return {"hessian": F.hessian, "jacrev2": lambda f: F.jacrev(F.jacrev(f)),
                "jacfwd_grad": lambda f: F.jacfwd(F.grad(f)),
                "jacrev3": lambda f: F.jacrev(F.jacrev(F.jacrev(f)))}[transform]

    def f(M):
        return lambda lo: M.cholesky_solve(M.tensor(B), lo).pow(2).sum()
    want = torch.stack([tr(torch)(f(torch))(torch.tensor(lo)) for lo in L])
    got = tl.func.vmap(tr(tl)(f(tl)))(tl.tensor(L))
    assert got.device == tl.tensor(L).device
    _close(got, want, rtol=1e-10, atol=1e-12)
    _close(tr(tl)(f(tl))(tl.tensor(L[1])), want[1], rtol=1e-10, atol=1e-12)


def test_cholesky_solve_captured_gradient():
    rng = np.random.default_rng(6)
    L, B = _lower(rng, 3), rng.standard_normal((3, 2))
    w = tl.tensor(L, requires_grad=True)

    @tl.function
    def step(b):
        g, = tl.autograd.grad(tl.cholesky_solve(b, w).pow(2).sum(), w)
        return g
    lt = torch.tensor(L, requires_grad=True)
    for scale in (1.0, 2.0):
        want, = torch.autograd.grad(
            torch.cholesky_solve(torch.tensor(B * scale), lt).pow(2).sum(), lt)
        _close(step(tl.tensor(B * scale)), want, rtol=1e-12)


def test_cholesky_solve_values_and_errors():
    rng = np.random.default_rng(1)
    L, B = _lower(rng, 3), rng.standard_normal((3, 2))
    _close(tl.cholesky_solve(tl.tensor(B), tl.tensor(L)),
           torch.cholesky_solve(torch.tensor(B), torch.tensor(L)), rtol=1e-13)
    with pytest.raises(ValueError, match="cholesky_solve"):
        tl.cholesky_solve(tl.tensor(B), tl.tensor(rng.standard_normal((3, 2))))
    with pytest.raises(ValueError, match="cholesky_solve"):
        tl.cholesky_solve(tl.tensor(rng.standard_normal((4, 2))), tl.tensor(L))


# --- 2. the triangle cholesky(upper=True) and pinv(hermitian=True) read -----------------------
S = np.array([[4.0, 1.0], [1.0, 3.0]])
P = S.copy()
P[1, 0] = 100.0     # upper triangle is S's
Q = S.copy()
Q[0, 1] = 100.0     # lower triangle is S's


@pytest.mark.parametrize("fn", ["linalg.cholesky", "cholesky", "cholesky_ex"])
def test_cholesky_upper_reads_upper_triangle(fn):
    def call(m, a):
        if fn == "linalg.cholesky":
            return m.linalg.cholesky(a, upper=True)
        if fn == "cholesky":
            return m.cholesky(a, upper=True)
        L, info = m.linalg.cholesky_ex(a, upper=True)
        assert int(info) == 0
        return L
    _close(call(tl, tl.tensor(P)), call(torch, torch.tensor(P)), rtol=1e-14)
    if fn == "cholesky_ex":
        L, info = tl.linalg.cholesky_ex(tl.tensor(Q), upper=True)
        Lt, it = torch.linalg.cholesky_ex(torch.tensor(Q), upper=True)
        assert int(info) == int(it) == 2
        _close(L, Lt, rtol=1e-12)
        with pytest.raises(tl.linalg.LinAlgError, match="cholesky_ex"):
            tl.linalg.cholesky_ex(tl.tensor(Q), upper=True, check_errors=True)
    else:
        with pytest.raises(tl.linalg.LinAlgError):
            call(tl, tl.tensor(Q))
        with pytest.raises(torch.linalg.LinAlgError):
            call(torch, torch.tensor(Q))


@SETTINGS
@given(n=st.integers(1, 4), upper=st.booleans(), batch=st.sampled_from([(), (2,)]),
       seed=st.integers(0, 2 ** 16))
def test_cholesky_gradients_non_symmetric_match_torch(n, upper, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n))
    a = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    a = a + 0.3 * rng.standard_normal(batch + (n, n))     # junk in both triangles
    a = a + n * np.eye(n)
    W = rng.standard_normal(batch + (n, n))
    outs = []
    for m in (tl, torch):
        x = m.tensor(a, requires_grad=True)
        L = m.linalg.cholesky(x, upper=upper)
        g, = m.autograd.grad((L * m.tensor(W)).sum(), x, create_graph=True)
        h, = m.autograd.grad((g ** 2).sum(), x)
        Le, _ = m.linalg.cholesky_ex(x, upper=upper)
        ge, = m.autograd.grad((Le * m.tensor(W)).sum(), x)
        outs.append((L, g, h, ge))
    for g, w in zip(*outs):
        _close(g, w, rtol=1e-9, atol=1e-10)


def test_pinv_hermitian_reads_lower_triangle():
    _close(tl.linalg.pinv(tl.tensor(P), hermitian=True),
           torch.linalg.pinv(torch.tensor(P), hermitian=True), rtol=1e-12)
    # singular: the zero eigenvalue is dropped, with atol / rtol as PyTorch's
    Z = np.array([[1.0, 2.0], [2.0, 4.0]])
    for kw in ({}, {"atol": 0.1}, {"rtol": 0.5}):
        _close(tl.linalg.pinv(tl.tensor(Z), hermitian=True, **kw),
               torch.linalg.pinv(torch.tensor(Z), hermitian=True, **kw), rtol=1e-12,
               atol=1e-14)
    with pytest.raises(ValueError, match="linalg.pinv"):
        tl.linalg.pinv(tl.tensor(np.ones((2, 3))), hermitian=True)


@SETTINGS
@given(n=st.integers(1, 4), batch=st.sampled_from([(), (3,)]), seed=st.integers(0, 2 ** 16))
def test_pinv_hermitian_values_and_gradients(n, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n))
    a = a + np.swapaxes(a, -1, -2)
    a = a + np.triu(rng.standard_normal(batch + (n, n)), 1)      # junk above
    W = rng.standard_normal(batch + (n, n))
    outs = []
    for m in (tl, torch):
        x = m.tensor(a, requires_grad=True)
        p = m.linalg.pinv(x, hermitian=True)
        g, = m.autograd.grad((p * m.tensor(W)).sum(), x, create_graph=True)
        h, = m.autograd.grad((g * m.tensor(W)).sum(), x)
        outs.append((p, g, h))
    for g, w in zip(*outs):
        _close(g, w, rtol=1e-7, atol=1e-8)


def test_pinv_hermitian_vmap_and_capture():
    rng = np.random.default_rng(5)
    R = rng.standard_normal((3, 3, 3))
    R = R + np.swapaxes(R, -1, -2) + 4 * np.eye(3)
    want = torch.linalg.pinv(torch.tensor(R), hermitian=True)
    _close(tl.func.vmap(lambda a: tl.linalg.pinv(a, hermitian=True))(tl.tensor(R)), want,
           rtol=1e-12)
    _close(tl.function(lambda a: tl.linalg.pinv(a, hermitian=True))(tl.tensor(R)), want,
           rtol=1e-12)
    g = tl.func.vmap(tl.func.jacrev(lambda a: tl.linalg.pinv(a, hermitian=True).sum(0)))(
        tl.tensor(R))
    gt = torch.func.vmap(torch.func.jacrev(
        lambda a: torch.linalg.pinv(a, hermitian=True).sum(0)))(torch.tensor(R))
    _close(g, gt, rtol=1e-10, atol=1e-12)


# --- 3. matrix_exp under vmap and capture -----------------------------------------------------
def _expm(a):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    return np.stack([scipy_linalg.expm(m) for m in a.reshape((-1,) + a.shape[-2:])]).reshape(
        a.shape)


@pytest.mark.parametrize("scale", [1e-3, 0.3, 1.0, 7.0, 60.0])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_matrix_exp_accuracy(scale, n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((3, n, n)) * scale
    want = _expm(a)
    got = tl.linalg.matrix_exp(tl.tensor(a))
    tv = torch.linalg.matrix_exp(torch.tensor(a)).numpy()
    err = np.abs(_np(got) - want).max() / np.abs(want).max()
    terr = np.abs(tv - want).max() / np.abs(want).max()
    assert err <= max(4 * terr, 64 * np.finfo(np.float64).eps * max(1.0, scale * n)), (err,
                                                                                      terr)


def test_matrix_exp_vmap_and_capture():
    rng = np.random.default_rng(0)
    R = rng.standard_normal((4, 3, 3)) * np.array([0.01, 1.0, 5.0, 40.0])[:, None, None]
    want = torch.func.vmap(torch.linalg.matrix_exp)(torch.tensor(R)).numpy()
    _close(tl.func.vmap(tl.linalg.matrix_exp)(tl.tensor(R)), want, rtol=1e-12, atol=1e-12)
    _close(tl.function(lambda a: tl.linalg.matrix_exp(a))(tl.tensor(R)), want, rtol=1e-12,
           atol=1e-12)
    _close(tl.linalg.matrix_exp(tl.tensor(R)), want, rtol=1e-12, atol=1e-12)
    # mixed norms in one eager batch: each matrix scaled on its own
    _close(tl.matrix_exp(tl.tensor(R)), _expm(R), rtol=1e-12, atol=1e-12)


def test_matrix_exp_vmap_grad_and_hessian():
    rng = np.random.default_rng(1)
    R = rng.standard_normal((3, 2, 2)) * 2
    W = rng.standard_normal((2, 2))

    def make(m):
        w = m.tensor(W)
        return lambda a: (m.linalg.matrix_exp(a) * w).sum()
    g = tl.func.vmap(tl.func.grad(make(tl)))(tl.tensor(R))
    gt = torch.func.vmap(torch.func.grad(make(torch)))(torch.tensor(R))
    _close(g, gt, rtol=1e-10)
    h = tl.func.vmap(tl.func.hessian(make(tl)))(tl.tensor(R))
    ht = torch.stack([torch.func.hessian(make(torch))(torch.tensor(r)) for r in R])
    _close(h, ht, rtol=1e-9, atol=1e-10)
    # eager, third order vs torch
    outs = []
    for m in (tl, torch):
        x = m.tensor(R[1], requires_grad=True)
        f = make(m)(x)
        g1, = m.autograd.grad(f, x, create_graph=True)
        g2, = m.autograd.grad((g1 ** 2).sum(), x, create_graph=True)
        g3, = m.autograd.grad((g2 ** 2).sum(), x)
        outs.append((g1, g2, g3))
    for a, b in zip(*outs):
        _close(a, b, rtol=1e-9)


def test_matrix_exp_edge_cases():
    _close(tl.linalg.matrix_exp(tl.zeros(2, 3, 3, dtype=tl.float64)),
           np.broadcast_to(np.eye(3), (2, 3, 3)))
    N = np.array([[0.0, 1.0], [0.0, 0.0]])
    _close(tl.linalg.matrix_exp(tl.tensor(N)), [[1.0, 1.0], [0.0, 1.0]], rtol=1e-15)
    assert tl.linalg.matrix_exp(tl.zeros(0, 2, 2)).shape == (0, 2, 2)
    bad = tl.linalg.matrix_exp(tl.tensor([[np.nan, 0.0], [0.0, 1.0]]))
    assert np.isnan(_np(bad)).any()
    with pytest.raises(ValueError, match="matrix_exp"):
        tl.linalg.matrix_exp(tl.ones(2, 3))


# --- 4. searchsorted / bucketize under vmap ---------------------------------------------------
@SETTINGS
@given(right=st.booleans(), out_int32=st.booleans(), m=st.integers(1, 6),
       v=st.integers(1, 4), seed=st.integers(0, 2 ** 16), ties=st.booleans())
def test_searchsorted_vmap_matches_torch(right, out_int32, m, v, seed, ties):
    rng = np.random.default_rng(seed)
    Sq = np.sort(rng.integers(-3, 4, (3, m)).astype(float) if ties
                 else rng.standard_normal((3, m)), 1)
    V = rng.integers(-3, 4, (3, v)).astype(float) if ties else rng.standard_normal((3, v))
    kw = dict(right=right, out_int32=out_int32)
    cases = [
        (lambda M: lambda s: M.searchsorted(s, M.tensor([0.0, 1.0], dtype=M.float64), **kw),
         (Sq,)),
        (lambda M: lambda x: M.searchsorted(M.tensor(Sq[0]), x, **kw), (V,)),
        (lambda M: lambda s, x: M.searchsorted(s, x, **kw), (Sq, V)),
        (lambda M: lambda x: M.bucketize(x, M.tensor(Sq[1]), **kw), (V,)),
        (lambda M: lambda s: M.bucketize(M.tensor(V[0]), s, **kw), (Sq,)),
    ]
    for make, args in cases:
        got = tl.func.vmap(make(tl))(*[tl.tensor(a) for a in args])
        want = torch.func.vmap(make(torch))(*[torch.tensor(a) for a in args])
        assert str(want.dtype).endswith(str(got.dtype)), (got.dtype, want.dtype)
        np.testing.assert_array_equal(_np(got), want.numpy())


def test_searchsorted_vmap_sorter_and_nested():
    rng = np.random.default_rng(4)
    U, V = rng.standard_normal((3, 5)), rng.standard_normal((3, 2))
    srt = np.argsort(U, 1)
    got = tl.func.vmap(lambda s, o, x: tl.searchsorted(s, x, sorter=o))(
        tl.tensor(U), tl.tensor(srt), tl.tensor(V))
    want = torch.func.vmap(lambda s, o, x: torch.searchsorted(s, x, sorter=o))(
        torch.tensor(U), torch.tensor(srt), torch.tensor(V))
    np.testing.assert_array_equal(_np(got), want.numpy())
    Sq = np.sort(rng.standard_normal((2, 3, 4)), -1)
    got = tl.func.vmap(tl.func.vmap(lambda s: tl.searchsorted(s, tl.tensor([0.0]))))(
        tl.tensor(Sq))
    want = torch.func.vmap(torch.func.vmap(
        lambda s: torch.searchsorted(s, torch.tensor([0.0], dtype=torch.float64))))(
        torch.tensor(Sq))
    np.testing.assert_array_equal(_np(got), want.numpy())


def test_searchsorted_vmap_interpolation_grad():
    """Piecewise-linear table look-up inside vmap(grad): the use the trial had."""
    xs = np.linspace(0.0, 1.0, 6)
    ys = xs ** 2

    def make(M):
        tx, ty = M.tensor(xs), M.tensor(ys)

        def f(x):
            i = M.searchsorted(tx, x.reshape(1)).clamp(1, 5)
            x0, x1, y0, y1 = tx[i - 1], tx[i], ty[i - 1], ty[i]
            return (y0 + (y1 - y0) * (x - x0) / (x1 - x0)).sum()
        return f
    pts = np.array([0.05, 0.33, 0.71, 0.99])
    got = tl.func.vmap(tl.func.grad(make(tl)))(tl.tensor(pts))
    want = torch.func.vmap(torch.func.grad(make(torch)))(torch.tensor(pts))
    _close(got, want, rtol=1e-13)


def test_searchsorted_vmap_errors():
    Sq = tl.tensor(np.sort(np.random.default_rng(0).standard_normal((3, 2, 4)), -1))
    with pytest.raises(ValueError, match="searchsorted"):
        tl.func.vmap(lambda s: tl.searchsorted(s, tl.tensor([0.0, 1.0, 2.0])))(Sq)
    with pytest.raises(ValueError, match="searchsorted"):
        tl.func.vmap(lambda s: tl.searchsorted(s, tl.tensor([0.0]), side="middle"))(Sq)


# --- 5. func.jvp with integer outputs ---------------------------------------------------------
def test_jvp_integer_outputs():
    x = np.array([0.3, 2.0, -1.0])
    for f in (lambda M: lambda t: t.argmax(), lambda M: lambda t: (t.sin(), t.argmax()),
              lambda M: lambda t: {"a": t > 0, "b": [t * 2, t.argmin()]}):
        got = tl.func.jvp(f(tl), (tl.tensor(x),), (tl.ones(3, dtype=tl.float64),))
        want = torch.func.jvp(f(torch), (torch.tensor(x),), (torch.ones(3, dtype=torch.float64),))
        gl, _ = tl.func._flatten(got)
        wl = list(torch.utils._pytree.tree_leaves(want))
        assert len(gl) == len(wl)
        for g, w in zip(gl, wl):
            assert str(w.dtype).endswith(str(g.dtype)), (g.dtype, w.dtype)
            np.testing.assert_array_equal(_np(g), w.numpy())
    out, jv, aux = tl.func.jvp(lambda t: (t.argmax(), t.sum()), (tl.tensor(x),),
                               (tl.ones(3, dtype=tl.float64),), has_aux=True)
    assert int(out) == 1 and int(jv) == 0 and jv.dtype == out.dtype
    _close(aux, x.sum())
    with pytest.raises(RuntimeError, match="strict"):
        tl.func.jvp(lambda t: t.argmax(), (tl.tensor(x),), (tl.tensor(x),), strict=True)


def test_jvp_integer_outputs_under_vmap():
    X = np.random.default_rng(0).standard_normal((4, 3))
    got = tl.func.vmap(lambda r: tl.func.jvp(lambda t: (t * 2, t.argmax()), (r,),
                                             (tl.ones_like(r),)))(tl.tensor(X))
    want = torch.func.vmap(lambda r: torch.func.jvp(lambda t: (t * 2, t.argmax()), (r,),
                                                    (torch.ones_like(r),)))(torch.tensor(X))
    for g, w in zip(tl.func._flatten(got)[0], torch.utils._pytree.tree_leaves(want)):
        np.testing.assert_array_equal(_np(g), w.numpy())


# --- 6. autograd.functional with vectorize=True -----------------------------------------------
def _tree_close(a, b, **kw):
    if isinstance(b, (tuple, list)):
        assert isinstance(a, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _tree_close(x, y, **kw)
    else:
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, b, **kw)


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_functional_jacobian_vectorize(strategy, create_graph):
    rng = np.random.default_rng(0)
    X, A, b = rng.standard_normal(4), rng.standard_normal((3, 4)), rng.standard_normal(3)

    def cases(M):
        a, bb = M.tensor(A), M.tensor(b)
        return [(lambda x: M.tanh(a @ x), (M.tensor(X),)),
                (lambda x, y: (M.sin(y @ x) * x[:3], (x ** 3).sum()),
                 (M.tensor(X), M.tensor(A))),
                # (tensorlib also takes a list output, which PyTorch refuses)
                (lambda x: [x * 2, x.sum()] if M is tl else (x * 2, x.sum()), (M.tensor(X),)),
                (lambda x: bb * 1.0, (M.tensor(X),))]          # does not depend on x
    for (f, args), (ft, argst) in zip(cases(tl), cases(torch)):
        for single in (True, False):
            if single and len(args) > 1:
                continue
            ins = args[0] if single else args
            inst = argst[0] if single else argst
            got = tl.autograd.functional.jacobian(f, ins, create_graph=create_graph,
                                                  vectorize=True, strategy=strategy)
            loop = tl.autograd.functional.jacobian(f, ins)
            want = torch.autograd.functional.jacobian(ft, inst, create_graph=create_graph,
                                                      vectorize=True)
            _tree_close(got, want, rtol=1e-12, atol=1e-13)
            _tree_close(got, loop, rtol=1e-12, atol=1e-13)
            if not create_graph:
                for leaf in tl.func._flatten(got)[0]:
                    assert not leaf.requires_grad


def test_functional_jacobian_vectorize_create_graph_differentiable():
    rng = np.random.default_rng(1)
    X, A = rng.standard_normal(4), rng.standard_normal((3, 4))
    res = []
    for M in (tl, torch):
        x, a = M.tensor(X, requires_grad=True), M.tensor(A, requires_grad=True)
        J = M.autograd.functional.jacobian(lambda x, a: M.sin(a @ x) * x[:3], (x, a),
                                           create_graph=True, vectorize=True)
        s = J[0].pow(2).sum() + J[1].sum()
        res.append(M.autograd.grad(s, (x, a)))
    _tree_close(tuple(res[0]), tuple(res[1]), rtol=1e-11)


@pytest.mark.parametrize("outer", ["reverse-mode", "forward-mode"])
def test_functional_hessian_vectorize(outer):
    rng = np.random.default_rng(2)
    X, W, Y = rng.standard_normal(5), rng.standard_normal((5, 3)), rng.standard_normal(3)

    def f1(M):
        w = M.tensor(W)
        return lambda x: M.tanh(x @ w).pow(2).sum()

    def f2(M):
        return lambda x, y: (M.sin(x[:3] * y) * y).sum().reshape(1)
    for create_graph in (False, True):
        got = tl.autograd.functional.hessian(f1(tl), tl.tensor(X), vectorize=True,
                                             outer_jacobian_strategy=outer,
                                             create_graph=create_graph)
        want = torch.autograd.functional.hessian(f1(torch), torch.tensor(X), vectorize=True)
        _tree_close(got, want, rtol=1e-12, atol=1e-13)
        got = tl.autograd.functional.hessian(f2(tl), (tl.tensor(X), tl.tensor(Y)),
                                             vectorize=True, outer_jacobian_strategy=outer,
                                             create_graph=create_graph)
        want = torch.autograd.functional.hessian(f2(torch), (torch.tensor(X), torch.tensor(Y)),
                                                 vectorize=True)
        _tree_close(got, want, rtol=1e-12, atol=1e-13)
        _tree_close(got, tl.autograd.functional.hessian(f2(tl), (tl.tensor(X), tl.tensor(Y))),
                    rtol=1e-12, atol=1e-13)


def test_functional_vectorize_errors():
    x = tl.ones(3, dtype=tl.float64)
    with pytest.raises(TypeError, match="jacobian"):
        tl.autograd.functional.jacobian(lambda t: t * 2, tl.ones(3, dtype=tl.int64),
                                        vectorize=True)
    with pytest.raises(ValueError, match="strategy"):
        tl.autograd.functional.jacobian(lambda t: t * 2, x, vectorize=True, strategy="fast")
    with pytest.raises(ValueError, match="outer_jacobian_strategy"):
        tl.autograd.functional.hessian(lambda t: t.sum(), x, vectorize=True,
                                       outer_jacobian_strategy="x")
    with pytest.raises(ValueError, match="single-element"):
        tl.autograd.functional.hessian(lambda t: t * 2, x, vectorize=True)
    with pytest.raises(TypeError, match="output"):
        tl.autograd.functional.jacobian(lambda t: 3.0, x, vectorize=True)
    # strict keeps the per-element path and its error
    with pytest.raises(RuntimeError, match="strict"):
        tl.autograd.functional.jacobian(lambda t: tl.ones(2, dtype=tl.float64), x, strict=True,
                                        vectorize=True)


def test_functional_vectorize_routes_to_func(monkeypatch):
    """vectorize=True is the batched tl.func path (not one backward pass per element)."""
    import tensorlib.func as tlf
    calls = []
    for name in ("jacrev", "jacfwd"):
        real = getattr(tlf, name)

        def spy(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)
        monkeypatch.setattr(tlf, name, spy)
    x = tl.ones(3, dtype=tl.float64)
    tl.autograd.functional.jacobian(lambda t: t.sin(), x, vectorize=True)
    tl.autograd.functional.jacobian(lambda t: t.sin(), x, vectorize=True,
                                    strategy="forward-mode")
    tl.autograd.functional.hessian(lambda t: t.sin().sum(), x, vectorize=True)
    assert calls == ["jacrev", "jacfwd", "jacrev", "jacrev"]
    calls.clear()
    tl.autograd.functional.jacobian(lambda t: t.sin(), x)
    assert calls == []
