"""Statistics and API gaps a classical-ML user trial found, checked against PyTorch:
batched ``searchsorted`` with ``sorter``/``out_int32``; ``median``/``nanmedian`` of empty and
all-NaN input; ``quantile`` differentiable in ``q``; ``cov`` promoting to ``aweights``' dtype;
``round(decimals=)``, ``poisson``, ``F.pdist``, ``histogram``/``histogramdd``, the scaled
special functions, ``multigammaln``, ``zeta``, ``svd_lowrank``/``pca_lowrank``; integer
scalars out of a dtype's range; Categorical's probability clamp.

``test_public_names_are_wired`` checks the public ``tl.*`` names of the new functions.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.nn import functional as F
from tensorlib.ops import special_fns, statistics
from tensorlib.ops._util import as_operands, weak_scalar, wrap_int
from tensorlib.ops.histogram import histogram, histogramdd
from tensorlib.ops.lowrank import pca_lowrank, svd_lowrank
from tensorlib.ops.rounding import round as round_
from tensorlib.random import poisson

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

FAST = settings(max_examples=40, deadline=None)


def _eq(a, b):
    np.testing.assert_array_equal(np.asarray(a.numpy()), b.detach().numpy())
    assert str(a.dtype).replace("tensorlib.", "") == str(b.dtype).replace("torch.", "")


def _close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a.detach().numpy()), b.detach().numpy(), **kw)


# --- 1. searchsorted --------------------------------------------------------------------------
_vals = st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, math.nan, math.inf])


@FAST
@given(st.integers(0, 3), st.integers(0, 6), st.integers(0, 5), st.booleans(), st.booleans(),
       st.booleans(), st.data())
def test_searchsorted_batched_matches_torch(batch, m, v, right, use_sorter, out_int32, data):
    lead = (batch,) if batch else ()
    seq = np.array(data.draw(st.lists(_vals, min_size=int(np.prod(lead + (m,))),
                                      max_size=int(np.prod(lead + (m,))))),
                   np.float64).reshape(lead + (m,))
    vals = np.array(data.draw(st.lists(_vals, min_size=int(np.prod(lead + (v,))),
                                       max_size=int(np.prod(lead + (v,))))),
                    np.float64).reshape(lead + (v,))
    if use_sorter:
        ts = torch.tensor(seq)
        order = torch.argsort(ts, dim=-1, stable=True)
        kw_t, kw_l = {"sorter": order}, {"sorter": tl.tensor(order.numpy())}
    else:
        seq = np.sort(seq, axis=-1)
        kw_t, kw_l = {}, {}
    want = torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=right,
                              out_int32=out_int32, **kw_t)
    got = tl.searchsorted(tl.tensor(seq), tl.tensor(vals), right=right, out_int32=out_int32,
                          **kw_l)
    _eq(got, want)


def test_searchsorted_side_scalar_and_1d_sequence_with_nd_values():
    s = torch.tensor([1.0, 3.0, 3.0, 5.0])
    v = torch.tensor([[3.0, 0.0], [6.0, 3.0]])
    for kw in ({"side": "left"}, {"side": "right"}, {"right": True}):
        _eq(tl.searchsorted(tl.tensor(s.numpy()), tl.tensor(v.numpy()), **kw),
            torch.searchsorted(s, v, **kw))
    _eq(tl.searchsorted(tl.tensor(s.numpy()), 3.0, side="right"),
        torch.searchsorted(s, 3.0, side="right"))
    # int sequence, float values: compared in the common type, as torch
    _eq(tl.searchsorted(tl.tensor([1, 3, 5]), tl.tensor([2.5, 3.0])),
        torch.searchsorted(torch.tensor([1, 3, 5]), torch.tensor([2.5, 3.0])))


def test_searchsorted_errors():
    a = tl.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="leading dims match"):
        tl.searchsorted(a, tl.tensor([[1.0], [2.0], [3.0]]))
    with pytest.raises(ValueError, match="scalar value needs a 1-d"):
        tl.searchsorted(a, 1.0)
    with pytest.raises(ValueError, match="opposites"):
        tl.searchsorted(tl.tensor([1.0]), tl.tensor([1.0]), side="left", right=True)
    with pytest.raises(ValueError, match="sorter of shape"):
        tl.searchsorted(tl.tensor([1.0, 2.0]), tl.tensor([1.0]), sorter=tl.tensor([0]))
    with pytest.raises(IndexError, match="out of range"):
        tl.searchsorted(tl.tensor([1.0, 2.0]), tl.tensor([1.0]), sorter=tl.tensor([0, 2]))
    with pytest.raises(ValueError, match="bucketize: boundaries must be 1-d"):
        tl.bucketize(tl.tensor([1.0]), a)


# --- 2. median / nanmedian --------------------------------------------------------------------
def test_median_and_nanmedian_of_empty_are_nan():
    for shape in ((0,), (2, 0)):
        got = tl.median(tl.zeros(shape))
        assert got.shape == () and math.isnan(got.item())
        assert math.isnan(torch.median(torch.zeros(shape)).item())
        got = statistics.nanmedian(tl.zeros(shape, dtype=tl.float64))
        assert got.dtype == tl.float64 and math.isnan(got.item())
    with pytest.raises(ValueError, match="size 0"):
        statistics.nanmedian(tl.zeros((2, 0)), 1)


@pytest.mark.parametrize("n", list(range(1, 40)) + [64, 100, 257, 1000])
def test_nanmedian_all_nan_row_index_matches_torch(n):
    x = np.full((2, n), np.nan)
    x[1, : (n + 1) // 2] = np.arange((n + 1) // 2)     # a second row with some values
    got = statistics.nanmedian(tl.tensor(x), 1)
    want = torch.nanmedian(torch.tensor(x), 1)
    _eq(got.indices, want.indices)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_nanmedian_all_nan_row_length_4_gives_index_2():
    assert statistics.nanmedian(tl.tensor([math.nan] * 4), 0).indices.item() == 2


@FAST
@given(st.integers(1, 7), st.integers(1, 4), st.data())
def test_nanmedian_dim_matches_torch(n, rows, data):
    # distinct values (ties pick an implementation-defined index in torch)
    vals = data.draw(st.permutations(list(range(n * rows))))
    x = np.array(vals, np.float64).reshape(rows, n)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n * rows, max_size=n * rows)))
    x[mask.reshape(rows, n)] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    got, want = statistics.nanmedian(xl, 1), torch.nanmedian(xt, 1)
    _eq(got.indices, want.indices)
    np.testing.assert_array_equal(got.values.numpy(), want.values.detach().numpy())
    got.values.sum().backward()
    want.values.sum().backward()
    np.testing.assert_array_equal(xl.grad.numpy(), xt.grad.numpy())


# --- 3. quantile differentiable in q ----------------------------------------------------------
@pytest.mark.parametrize("dim", [None, 1])
def test_quantile_gradient_in_q_matches_torch(dim):
    x = np.array([[3.0, 1.0, 4.0, 1.5, 9.0], [2.0, 7.0, np.nan, 0.5, 1.0],
                  [2.0, 2.0, 5.0, -1.0, 0.0]])
    q = np.array([0.0, 0.25, 0.6, 1.0])
    qt, ql = torch.tensor(q, requires_grad=True), tl.tensor(q, requires_grad=True)
    xt, xl = torch.tensor(x, requires_grad=True), tl.tensor(x, requires_grad=True)
    want = torch.quantile(xt, qt, dim=dim)
    got = tl.quantile(xl, ql, dim=dim)
    assert got.requires_grad
    _close(got, want, equal_nan=True)
    w = np.random.default_rng(0).standard_normal(tuple(want.shape))
    (want * torch.tensor(w)).nansum().backward()
    tl.nansum(got * tl.tensor(w)).backward()
    _close(ql.grad, qt.grad, atol=1e-12)
    _close(xl.grad, xt.grad, atol=1e-12)


def test_quantile_q_gradcheck_float64():
    x = tl.tensor(np.array([[3.0, 1.0, 4.0, 1.5], [2.0, 7.0, 0.3, 0.5]]))
    q = tl.tensor([0.3, 0.55, 0.9], dtype=tl.float64, requires_grad=True)
    tl.autograd.gradcheck(lambda q: tl.quantile(x, q, dim=1), [q])


def test_quantile_q_without_grad_stays_a_constant():
    q = tl.tensor([0.5])
    assert not tl.quantile(tl.tensor([1.0, 2.0]), q).requires_grad
    # a q that needs no grad still gives the x-gradient
    x = tl.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert tl.quantile(x, q).requires_grad


# --- 4. cov promotion -------------------------------------------------------------------------
@pytest.mark.parametrize("xdt,wdt", [("float32", "float64"), ("float64", "float32"),
                                     ("float32", "float32")])
def test_cov_promotes_to_the_aweights_dtype(xdt, wdt):
    r = np.random.default_rng(1)
    x = r.standard_normal((3, 6)).astype(xdt)
    aw = r.random(6).astype(wdt)
    fw = np.array([1, 2, 1, 3, 1, 2])
    want = torch.cov(torch.tensor(x), fweights=torch.tensor(fw), aweights=torch.tensor(aw))
    got = statistics.cov(tl.tensor(x), fweights=tl.tensor(fw), aweights=tl.tensor(aw))
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    _close(got, want, rtol=1e-5)


# --- 5. round, poisson, pdist, histogram, special, lowrank -----------------------------------
@FAST
@given(st.integers(-3, 4), st.sampled_from(["float32", "float64", "float16"]),
       st.lists(st.floats(-1e4, 1e4, width=16), min_size=1, max_size=8))
def test_round_decimals_matches_torch(decimals, dt, vals):
    x = np.array(vals, dt)
    _eq(round_(tl.tensor(x), decimals=decimals), torch.round(torch.tensor(x), decimals=decimals))


def test_round_decimals_gradient_is_zero_and_errors():
    x = tl.tensor([1.234, 5.678], requires_grad=True)
    round_(x, decimals=1).sum().backward()
    assert np.all(x.grad.numpy() == 0)
    with pytest.raises(TypeError, match="floating-point"):
        round_(tl.tensor([1, 2]), decimals=1)


def test_poisson_with_generator():
    rates = tl.tensor([0.0, 0.5, 4.0, 30.0])
    a = poisson(rates, generator=tl.Generator().manual_seed(3))
    b = poisson(rates, generator=tl.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == tl.float32 and a.numpy()[0] == 0 and not a.requires_grad
    big = poisson(tl.full((20000,), 4.0, dtype=tl.float64), generator=tl.Generator(0)).numpy()
    assert abs(big.mean() - 4.0) < 0.1 and abs(big.var() - 4.0) < 0.25
    assert np.all(big == np.floor(big))
    with pytest.raises(ValueError, match="non-negative"):
        poisson(tl.tensor([-1.0]))
    with pytest.raises(TypeError, match="floating-point"):
        poisson(tl.tensor([1]))


def test_functional_pdist_is_exported():
    x = np.random.default_rng(2).standard_normal((5, 3))
    _close(F.pdist(tl.tensor(x), p=1.5), torch.nn.functional.pdist(torch.tensor(x), p=1.5))
    assert "pdist" in F.__all__


@FAST
@given(st.sampled_from(["float32", "float64"]), st.integers(1, 12), st.booleans(),
       st.booleans(), st.booleans(), st.data())
def test_histogram_matches_torch(dt, bins, with_range, weighted, density, data):
    vals = data.draw(st.lists(st.sampled_from([-1.5, -1.0, -1 / 3, 0.0, 0.1, 1 / 3, 0.7, 1.0,
                                               2.5]), min_size=1, max_size=30))
    x = np.array(vals, dt)
    w = np.linspace(0.5, 2.0, x.size).astype(dt)
    kw = {"range": (-1.0, 1.0)} if with_range else {}
    kw_t = dict(kw, weight=torch.tensor(w)) if weighted else kw
    kw_l = dict(kw, weight=tl.tensor(w)) if weighted else kw
    want = torch.histogram(torch.tensor(x), bins, density=density, **kw_t)
    got = histogram(tl.tensor(x), bins, density=density, **kw_l)
    _eq(got.bin_edges, want.bin_edges)
    _close(got.hist, want.hist, rtol=1e-5, atol=1e-7)
    assert got.hist.dtype == got.bin_edges.dtype == tl.as_tensor(x).dtype


def test_histogram_explicit_edges_and_errors():
    x = torch.tensor([0.0, 1.0, 1.0, 2.5, 3.0, 9.0, -1.0])
    e = torch.tensor([0.0, 1.0, 2.0, 3.0])
    want = torch.histogram(x, e)
    got = histogram(tl.tensor(x.numpy()), tl.tensor(e.numpy()))
    _eq(got.hist, want.hist)
    _eq(got.bin_edges, want.bin_edges)
    with pytest.raises(ValueError, match="not finite"):
        histogram(tl.tensor([1.0, math.inf]), 3)
    with pytest.raises(TypeError, match="floating point"):
        histogram(tl.tensor([1, 2]), 3)
    empty = histogram(tl.tensor(np.zeros(0, np.float32)), 3)
    _eq(empty.bin_edges, torch.histogram(torch.zeros(0), 3).bin_edges)


@pytest.mark.parametrize("density", [False, True])
def test_histogramdd_matches_torch(density):
    r = np.random.default_rng(4)
    x = r.standard_normal((4, 30, 3)).astype(np.float32)
    w = r.random((4, 30)).astype(np.float32)
    for bins, rng in (([3, 4, 5], None), (4, [-1, 1, -2, 2, 0, 1])):
        want = torch.histogramdd(torch.tensor(x), bins, range=rng, weight=torch.tensor(w),
                                 density=density)
        got = histogramdd(tl.tensor(x), bins, range=rng, weight=tl.tensor(w), density=density)
        _close(got.hist, want.hist, rtol=1e-5, atol=1e-6)
        for a, b in zip(got.bin_edges, want.bin_edges):
            _eq(a, b)
    edges = [torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([-3.0, 0.0, 3.0]),
             torch.tensor([-0.5, 0.5])]
    want = torch.histogramdd(torch.tensor(x[0]), edges)
    got = histogramdd(tl.tensor(x[0]), [tl.tensor(e.numpy()) for e in edges])
    _eq(got.hist, want.hist)


_SPECIAL_X = np.array([-800.0, -40.0, -5.0, -1.5, -1e-3, 0.0, 1e-3, 0.7, 3.0, 12.0, 29.0,
                       31.0, 200.0, 800.0])


@pytest.mark.parametrize("name", ["erfcx", "i0e", "i1e"])
@pytest.mark.parametrize("scipy", [True, False])
def test_scaled_special_functions_match_torch(name, scipy, monkeypatch):
    if not scipy:
        monkeypatch.setattr(special_fns, "_sc", None)
    x = _SPECIAL_X if name != "erfcx" else _SPECIAL_X[(_SPECIAL_X > -30)]
    for dt in (np.float64, np.float32):
        got = getattr(tl.special, name)(tl.tensor(x.astype(dt)))
        want = getattr(torch.special, name)(torch.tensor(x.astype(dt)))
        _close(got, want, rtol=1e-12 if dt == np.float64 else 2e-6, atol=0)
    assert math.isinf(tl.special.erfcx(tl.tensor([-40.0])).item())


@pytest.mark.parametrize("name", ["erfcx", "i0e", "i1e"])
def test_scaled_special_gradients(name):
    x = np.array([-2.5, -0.3, 0.0, 0.4, 1.7, 35.0])
    xl = tl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    getattr(tl.special, name)(xl).sum().backward()
    getattr(torch.special, name)(xt).sum().backward()
    _close(xl.grad, xt.grad, rtol=1e-10, atol=1e-12)
    y = tl.tensor([-2.5, -0.3, 0.4, 1.7], dtype=tl.float64, requires_grad=True)
    fn = getattr(tl.special, name)
    tl.autograd.gradcheck(fn, [y])
    tl.autograd.gradgradcheck(fn, [y])


def test_multigammaln_matches_torch_with_gradient():
    x = np.array([1.6, 2.5, 3.0, 7.25])
    for p in (1, 2, 3, 5):
        xl, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        got, want = tl.special.multigammaln(xl, p), torch.special.multigammaln(xt, p)
        _close(got, want, rtol=1e-12)
        got.sum().backward()
        want.sum().backward()
        _close(xl.grad, xt.grad, rtol=1e-10)
    with pytest.raises(ValueError, match="positive integer"):
        tl.special.multigammaln(tl.tensor([3.0]), 0)


@pytest.mark.parametrize("scipy", [True, False])
def test_zeta_matches_torch(scipy, monkeypatch):
    if not scipy:
        monkeypatch.setattr(special_fns, "_sc", None)
    s = np.array([0.5, 1.0, 1.5, 2.0, 2.0, 3.0, 2.5, 4.0, 30.0, 2.0, 7.0])
    q = np.array([1.0, 1.0, 0.3, 0.0, -1.5, -1.5, -1.5, 2.0, 1.0, 1e3, 0.01])
    got = tl.special.zeta(tl.tensor(s), tl.tensor(q))
    want = torch.special.zeta(torch.tensor(s), torch.tensor(q))
    _close(got, want, rtol=1e-10, equal_nan=True)
    _eq(tl.special.zeta(tl.tensor([2]), tl.tensor([1])).round(),
        torch.special.zeta(torch.tensor([2]), torch.tensor([1])).round())
    _close(tl.special.zeta(2.0, tl.tensor([1.0, 2.0])),
           torch.special.zeta(2.0, torch.tensor([1.0, 2.0])))


def test_zeta_gradient_in_q_only():
    s = np.array([2.0, 3.5, 1.5])
    q = np.array([[1.5], [2.0]])
    sl, st_ = tl.tensor(s), torch.tensor(s)
    ql, qt = tl.tensor(q, requires_grad=True), torch.tensor(q, requires_grad=True)
    tl.special.zeta(sl, ql).sum().backward()
    torch.special.zeta(st_, qt).sum().backward()
    _close(ql.grad, qt.grad, rtol=1e-10)
    tl.autograd.gradcheck(lambda q: tl.special.zeta(sl, q),
                          [tl.tensor(q, requires_grad=True)])
    sx = tl.tensor(s, requires_grad=True)
    with pytest.raises(NotImplementedError, match="not implemented"):
        tl.special.zeta(sx, ql).sum().backward()


def _subspace_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a @ a.T - b @ b.T).max())


@pytest.mark.parametrize("shape,rank,q", [((60, 40), 4, 6), ((30, 80), 5, 5), ((50, 50), 1, 3)])
def test_svd_lowrank_finds_the_exact_subspace_of_a_low_rank_matrix(shape, rank, q):
    tl.manual_seed(0)
    r = np.random.default_rng(5)
    a = r.standard_normal((shape[0], rank)) @ r.standard_normal((rank, shape[1]))
    u, s, v = svd_lowrank(tl.tensor(a), q=q, niter=2)
    assert u.shape == (shape[0], q) and s.shape == (q,) and v.shape == (shape[1], q)
    ue, se, vhe = np.linalg.svd(a)
    np.testing.assert_allclose(s.numpy()[:rank], se[:rank], rtol=1e-10)
    assert np.all(s.numpy()[rank:] < 1e-10 * se[0])
    assert _subspace_gap(u.numpy()[:, :rank], ue[:, :rank]) < 1e-10
    assert _subspace_gap(v.numpy()[:, :rank], vhe[:rank].T) < 1e-10
    np.testing.assert_allclose(u.numpy()[:, :rank].T @ u.numpy()[:, :rank], np.eye(rank),
                               atol=1e-12)
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ v.numpy().T, a, atol=1e-9)


def test_svd_lowrank_batched_with_m_and_gradient():
    tl.manual_seed(1)
    r = np.random.default_rng(6)
    a = r.standard_normal((3, 20, 3)) @ r.standard_normal((3, 3, 12))
    m = r.standard_normal((1, 12))
    u, s, v = svd_lowrank(tl.tensor(a + m), q=3, M=tl.tensor(m))
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False)[:, :3],
                               rtol=1e-10)
    x = tl.tensor(a, requires_grad=True)
    svd_lowrank(x, q=3)[1].sum().backward()
    # d(sum of singular values)/dA = U V^T for a matrix of exactly that rank
    ue, _, vhe = np.linalg.svd(a)
    np.testing.assert_allclose(x.grad.numpy(), ue[..., :3] @ vhe[..., :3, :], atol=1e-8)


def test_pca_lowrank_matches_the_centered_svd():
    tl.manual_seed(2)
    r = np.random.default_rng(7)
    a = r.standard_normal((100, 2)) @ r.standard_normal((2, 6)) + r.standard_normal(6) * 10
    u, s, v = pca_lowrank(tl.tensor(a), q=4)
    c = a - a.mean(0)
    _, se, vhe = np.linalg.svd(c)
    np.testing.assert_allclose(s.numpy()[:2], se[:2], rtol=1e-10)
    assert _subspace_gap(v.numpy()[:, :2], vhe[:2].T) < 1e-10
    assert pca_lowrank(tl.tensor(a)).V.shape == (6, 6)          # q = min(6, m, n)
    assert pca_lowrank(tl.tensor(a), center=False).S[0].item() > s[0].item()
    with pytest.raises(ValueError, match="q must be an int"):
        svd_lowrank(tl.tensor(a), q=7)


# --- 6. integer scalars out of range -------------------------------------------------------------
@pytest.mark.parametrize("dt", ["uint8", "int8", "int16", "int32", "int64"])
@pytest.mark.parametrize("value", [-1, 200, 256, -129, 300, 70000, 2**31, 2**63, -(2**63)])
def test_wrap_int_is_torchs_conversion(dt, value):
    x = np.array([0, 1, 100], dt)
    xt = torch.tensor(x)
    if value < 2**63:
        assert wrap_int(value, np.dtype(dt)) == torch.tensor([value]).to(xt.dtype).item()
    # the ops that compute in the integer dtype: torch wraps the scalar
    for op in ("add", "sub", "mul", "eq", "ne", "gt", "lt", "ge", "le", "bitwise_and",
               "bitwise_xor"):
        want = getattr(torch, op)(xt, value)
        got = getattr(tl, op)(*as_operands(tl.tensor(x), value, wrap=True))
        _eq(got, want)


def test_wrap_int_rejects_beyond_64_bits_and_strict_default():
    with pytest.raises(OverflowError, match="64 bits"):
        wrap_int(2**64, np.uint8)
    with pytest.raises(OverflowError, match="out of bounds"):
        weak_scalar(256, tl.tensor([1], dtype=tl.uint8))
    assert weak_scalar(256, tl.tensor([1], dtype=tl.uint8), wrap=True).item() == 0
    assert weak_scalar(-1, tl.tensor([1], dtype=tl.uint8), wrap=True).item() == 255
    assert weak_scalar(2**63, tl.tensor([True]), wrap=True).item() == -(2**63)


def test_integer_operators_with_out_of_range_scalars_match_torch():
    u = np.array([0, 5, 255], np.uint8)
    i = np.array([-128, 0, 100, 127], np.int8)
    _eq(tl.tensor(u) > -1, torch.tensor(u) > -1)
    _eq(tl.tensor(u) == 256, torch.tensor(u) == 256)
    _eq(tl.tensor(i) + 200, torch.tensor(i) + 200)


# --- 7. Categorical's probability clamp -------------------------------------------------------
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_categorical_zero_probability_matches_torch(dt):
    p = np.array([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], dt)
    pl, pt = tl.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    dl = tl.distributions.Categorical(probs=pl)
    dtorch = torch.distributions.Categorical(probs=pt)
    _close(dl.logits, dtorch.logits, rtol=1e-6)
    v = np.array([0, 2, 1])
    lp_l, lp_t = dl.log_prob(tl.tensor(v)), dtorch.log_prob(torch.tensor(v))
    _close(lp_l, lp_t, rtol=1e-6)
    (lp_l.sum() + dl.entropy().sum()).backward()
    (lp_t.sum() + dtorch.entropy().sum()).backward()
    _close(pl.grad, pt.grad, rtol=1e-5)
    oh_l = tl.distributions.OneHotCategorical(probs=tl.tensor(p))
    oh_t = torch.distributions.OneHotCategorical(probs=torch.tensor(p))
    one_hot = np.eye(3, dtype=dt)[v]
    _close(oh_l.log_prob(tl.tensor(one_hot)), oh_t.log_prob(torch.tensor(one_hot)), rtol=1e-6)
    _close(oh_l.entropy(), oh_t.entropy(), rtol=1e-6)


# --- the public names (bound in files other engineers own) ----------------------------------
def test_public_names_are_wired():
    assert tl.histogram is histogram and tl.histogramdd is histogramdd
    assert tl.svd_lowrank is svd_lowrank and tl.pca_lowrank is pca_lowrank
    # (nanmedian takes PyTorch's out= through a wrapper: tensorlib.ops.out_arg)
    assert tl.poisson is poisson and tl.nanmedian.__wrapped__ is statistics.nanmedian
    assert tl.cov is statistics.cov
    assert tl.round(tl.tensor([1.25]), decimals=1).item() == pytest.approx(1.2)
    assert tl.tensor([1.0], requires_grad=True).numpy(force=True).shape == (1,)
