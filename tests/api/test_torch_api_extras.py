"""PyTorch parity for the API added in tensorlib/ops/torch_api.py, tensorlib/_torch_methods.py
and tensorlib/nn/modules_extra.py: values (and, where differentiable, gradients) against
torch on the same float64 inputs, tl.gradcheck for a representative subset, the in-place
random fills' seeding and distributions, and the error messages for bad input."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")
from torch_ref import _close, _grads, _np, _t, _tt  # noqa: E402
pytestmark = [pytest.mark.filterwarnings("ignore:Using torch.cross without specifying the dim"),
              pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmin"),
              pytest.mark.filterwarnings("ignore:invalid value encountered in remainder")]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _a(*shape, seed=0, low=-2.0, high=2.0):
    return _rng(seed).uniform(low, high, shape)


# --- matrix products ---------------------------------------------------------------------------
PRODUCTS = [
    ("mm", lambda a, b: a.mm(b), [(3, 4), (4, 2)]),
    ("mv", lambda a, b: a.mv(b), [(3, 4), (4,)]),
    ("bmm", lambda a, b: a.bmm(b), [(2, 3, 4), (2, 4, 5)]),
    ("addmm", lambda c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0), [(3, 2), (3, 4), (4, 2)]),
    ("baddbmm", lambda c, a, b: c.baddbmm(a, b, beta=0.3, alpha=-1.5),
     [(2, 3, 5), (2, 3, 4), (2, 4, 5)]),
    ("addmv", lambda c, a, b: c.addmv(a, b, beta=2.0, alpha=0.5), [(3,), (3, 4), (4,)]),
    ("addr", lambda c, a, b: c.addr(a, b, beta=-1.0, alpha=3.0), [(3, 4), (3,), (4,)]),
    ("inner", lambda a, b: a.inner(b), [(2, 3, 4), (5, 4)]),
    ("inner0d", lambda a, b: a.inner(b), [(), (2, 3)]),
    ("kron", lambda a, b: a.kron(b), [(2, 3), (3, 2)]),
    ("kron_nd", lambda a, b: a.kron(b), [(2,), (3, 1, 2)]),
    ("cross", lambda a, b: a.cross(b, dim=1), [(2, 3, 4), (2, 3, 4)]),
    ("cross_default", lambda a, b: a.cross(b), [(4, 3), (4, 3)]),
    ("cross_broadcast", lambda a, b: a.cross(b, dim=-1), [(4, 3), (1, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_products_match_torch(name, fn, shapes):
    arrays = [_a(*s, seed=i) for i, s in enumerate(shapes)]
    _grads(fn, fn, arrays)


def test_top_level_mm_mv():
    a, b, v = _a(3, 4), _a(4, 2, seed=1), _a(4, seed=2)
    _grads(tl.mm, torch.mm, [a, b])
    _grads(tl.mv, torch.mv, [a, v])


def test_product_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"mm: .*\(2, 3, 4\).*\(4, 5\)"):
        tl.mm(tl.zeros(2, 3, 4), tl.zeros(4, 5))
    with pytest.raises(ValueError, match=r"mm: shapes \(2, 3\) and \(4, 5\)"):
        tl.zeros(2, 3).mm(tl.zeros(4, 5))
    with pytest.raises(ValueError, match=r"mv: .*\(3,\)"):
        tl.mv(tl.zeros(2, 4), tl.zeros(3))
    with pytest.raises(ValueError, match="mv: expects a 2-D matrix and a 1-D vector"):
        tl.mv(tl.zeros(2, 4), tl.zeros(4, 1))
    with pytest.raises(ValueError, match="addr: vec1 and vec2 must be 1-D"):
        tl.zeros(2, 2).addr(tl.zeros(2, 1), tl.zeros(2))
    with pytest.raises(ValueError, match="addmv: input of shape"):
        tl.zeros(5).addmv(tl.zeros(3, 4), tl.zeros(4))
    with pytest.raises(ValueError, match="cross: no dimension of size 3"):
        tl.zeros(2, 4).cross(tl.zeros(2, 4))
    with pytest.raises(ValueError, match="cross: dim 0"):
        tl.zeros(2, 3).cross(tl.zeros(2, 3), dim=0)
    with pytest.raises(ValueError, match="inner: the last dims"):
        tl.zeros(2, 3).inner(tl.zeros(2, 4))


# --- elementwise --------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scalar=st.sampled_from([None, 2.5, -1.5, 3]))
def test_fmod_remainder_floor_true_divide_match_torch(seed, scalar):
    rng = _rng(seed)
    a = rng.uniform(-10, 10, (3, 4))
    b = rng.uniform(0.5, 4, (4,)) * rng.choice([-1, 1], (4,))
    if scalar is None:
        for name in ("fmod", "remainder"):
            _grads(lambda x, y, n=name: getattr(x, n)(y), lambda x, y, n=name: getattr(x, n)(y),
                   [a, b])
        _grads(lambda x, y: tl.fmod(x, y), lambda x, y: torch.fmod(x, y), [a, b])
        for name in ("floor_divide", "true_divide"):
            _close(getattr(_t(a), name)(_t(b)), getattr(_tt(a), name)(_tt(b)))
    else:
        for name in ("fmod", "remainder", "floor_divide", "true_divide"):
            _close(getattr(_t(a), name)(scalar), getattr(_tt(a), name)(scalar))
        _grads(lambda x: x.fmod(scalar), lambda x: x.fmod(scalar), [a])


def test_fmod_is_exact_and_keeps_integers():
    a = np.array([-1e-20, 5.5, -5.5, 0.0, -0.0, 7.0, -7.0, 1e300])
    b = np.array([1.0, 2.0, 2.0, 3.0, 3.0, -2.0, -2.0, 3.0])
    np.testing.assert_array_equal(tl.fmod(_t(a), _t(b)).numpy(), torch.fmod(_tt(a), _tt(b)))
    np.testing.assert_array_equal(np.signbit(tl.fmod(_t(a), _t(b)).numpy()),
                                  np.signbit(torch.fmod(_tt(a), _tt(b)).numpy()))
    ai, bi = np.array([5, -5, 7, -7]), np.array([3, 3, -2, -2])
    got = tl.tensor(ai).fmod(tl.tensor(bi))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), torch.tensor(ai).fmod(torch.tensor(bi)))
    with pytest.raises(ZeroDivisionError):
        tl.tensor([5]).fmod(tl.tensor([0]))
    _close(tl.fmod(_t([1.0, -1.0]), 0.0), torch.fmod(_tt([1.0, -1.0]), 0.0))


def test_where_clamp_min_max_match_torch():
    a, b = _a(3, 4), _a(3, 4, seed=1)
    cond = _a(3, 4, seed=2) > 0
    _grads(lambda x, y: x.where(tl.tensor(cond), y), lambda x, y: x.where(torch.tensor(cond), y),
           [a, b])
    _close(_t(a).where(tl.tensor(cond), 0.5), _tt(a).where(torch.tensor(cond), 0.5))
    for name in ("clamp_min", "clamp_max"):
        _grads(lambda x, n=name: getattr(x, n)(0.3), lambda x, n=name: getattr(x, n)(0.3), [a])
        _grads(lambda x, y, n=name: getattr(tl, n)(x, y),
               lambda x, y, n=name: getattr(torch, n)(x, y), [a, b])


def test_sign_family_matches_torch():
    a = np.array([-2.5, -0.0, 0.0, 1.5, -np.inf, np.inf, 3.0, -0.7])
    b = np.array([1.0, -1.0, 2.0, -0.0, 0.0, -3.0, np.inf, -np.inf])
    _close(_t(a).sgn(), _tt(a).sgn())
    np.testing.assert_array_equal(_t(a).signbit().numpy(), _tt(a).signbit().numpy())
    ints = np.array([-3, 0, 4])
    np.testing.assert_array_equal(tl.tensor(ints).signbit().numpy(),
                                  torch.tensor(ints).signbit().numpy())
    got, want = _t(a).copysign(_t(b)), _tt(a).copysign(_tt(b))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(np.signbit(got.numpy()), np.signbit(want.numpy()))
    _close(_t(a).copysign(-1.0), _tt(a).copysign(-1.0))
    ci = tl.tensor([1, 2]).copysign(tl.tensor([-1, 1]))
    assert ci.dtype.kind == "f"
    _close(ci, torch.tensor([1, 2]).copysign(torch.tensor([-1, 1])))
    x = _a(4, 5)
    y = _a(4, 5, seed=1)
    _grads(lambda p, q: p.copysign(q), lambda p, q: p.copysign(q), [x, y])
    _grads(lambda p: p.frac(), lambda p: p.frac(), [x * 3])
    _grads(lambda p: p.fix(), lambda p: p.fix(), [x * 3])
    with pytest.raises(TypeError, match="frac: input must be floating point"):
        tl.tensor([1, 2]).frac()


# --- shapes, sizes, memory -----------------------------------------------------------------------
def test_size_and_memory_queries_match_torch():
    a = np.arange(24.0).reshape(2, 3, 4)
    x, y = _t(a), _tt(a)
    assert x.is_contiguous() and y.is_contiguous()
    assert x.stride() == y.stride() and x.stride(1) == y.stride(1) and x.stride(-1) == 1
    for f in (lambda t: t.transpose(0, 2), lambda t: t[:, 1:, ::2], lambda t: t.unsqueeze(1),
              lambda t: t.expand(5, 2, 3, 4), lambda t: t[0], lambda t: t.reshape(2, 1, 12)):
        assert f(x).is_contiguous() == f(y).is_contiguous()
        assert f(x).stride() == f(y).stride(), (f(x).stride(), f(y).stride())
    assert tl.zeros(2, 0, 3).stride() == torch.zeros(2, 0, 3).stride()
    assert _t(3.0).stride() == () == tuple(torch.tensor(3.0).stride())
    with pytest.raises(IndexError, match="stride: dim 3"):
        x.stride(3)
    for dt, tdt in [(tl.float32, torch.float32), (tl.float64, torch.float64),
                    (tl.int64, torch.int64), (tl.uint8, torch.uint8), (tl.bool, torch.bool),
                    (tl.float16, torch.float16)]:
        assert tl.zeros(2, dtype=dt).element_size() == torch.zeros(2, dtype=tdt).element_size()
    assert x.nelement() == y.nelement() == tl.numel(x) == 24
    assert x.ndimension() == 3
    assert tl.is_floating_point(x) and not tl.is_floating_point(tl.tensor([1]))
    with pytest.raises(TypeError, match="is_floating_point"):
        tl.is_floating_point([1.0])


def test_reshape_swap_flip_match_torch():
    a, b = _a(2, 3, 4), _a(6, 4, seed=1)
    _grads(lambda x, y: x.reshape_as(y), lambda x, y: x.reshape_as(y), [a, b])
    _grads(lambda x: x.swapdims(0, 2), lambda x: x.swapdims(0, 2), [a])
    _grads(lambda x: x.fliplr(), lambda x: x.fliplr(), [a])
    _grads(lambda x: x.flipud(), lambda x: x.flipud(), [a])
    with pytest.raises(ValueError, match="fliplr: input must have at least 2 dims"):
        tl.zeros(3).fliplr()
    with pytest.raises(ValueError, match="flipud"):
        _t(1.0).flipud()


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 9), dim=st.integers(-2, 1),
       split=st.one_of(st.integers(1, 5),
                       st.lists(st.integers(-3, 11), min_size=0, max_size=4)))
def test_tensor_split_matches_torch(n, dim, split):
    a = _a(n, n + 1, seed=n)
    got = _t(a).tensor_split(split, dim)
    want = _tt(a).tensor_split(split, dim)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _close(g, w)


def test_tensor_split_hsplit_vsplit_gradients_and_errors():
    a = _a(4, 6)
    for name, arg in [("tensor_split", 4), ("tensor_split", [1, 4]), ("hsplit", 3),
                      ("hsplit", [2, 5]), ("vsplit", 2), ("vsplit", [1])]:
        _grads(lambda x, n=name, g=arg: tl.cat([p.reshape(-1) * (i + 1)
                                                 for i, p in enumerate(getattr(x, n)(g))]),
               lambda x, n=name, g=arg: torch.cat([p.reshape(-1) * (i + 1)
                                                   for i, p in enumerate(getattr(x, n)(g))]),
               [a])
    _close(_t(a).tensor_split(tl.tensor([1, 3]), 1)[1], _tt(a).tensor_split(torch.tensor([1, 3]),
                                                                           1)[1])
    got = _t(np.arange(5.0)).hsplit([2])
    assert [g.shape for g in got] == [(2,), (3,)]
    with pytest.raises(ValueError, match="hsplit: cannot split dimension 1 of size 6 into 4"):
        _t(a).hsplit(4)
    with pytest.raises(ValueError, match="vsplit: expects a tensor with at least 2 dimensions"):
        tl.zeros(4).vsplit(2)
    with pytest.raises(ValueError, match="number of sections must be larger than 0"):
        _t(a).tensor_split(0)


def test_take_along_dim_matches_torch():
    a = _a(3, 5)
    idx = _rng(1).integers(0, 5, (3, 2))
    _grads(lambda x: x.take_along_dim(tl.tensor(idx), 1),
           lambda x: x.take_along_dim(torch.tensor(idx), 1), [a])
    flat = _rng(2).integers(0, 15, (4,))
    _grads(lambda x: x.take_along_dim(tl.tensor(flat)),
           lambda x: x.take_along_dim(torch.tensor(flat)), [a])
    b = _a(1, 5)      # input broadcast against indices outside dim
    _grads(lambda x: x.take_along_dim(tl.tensor(idx), 1),
           lambda x: x.take_along_dim(torch.tensor(idx), 1), [b])
    with pytest.raises(ValueError, match="take_along_dim: input and indices must have the same"):
        _t(a).take_along_dim(tl.tensor([0, 1]), 1)
    with pytest.raises(TypeError, match="take_along_dim: indices must be an integer tensor"):
        _t(a).take_along_dim(_t([[0.0]]), 1)


def test_isin_index_copy_match_torch():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(tl.tensor(a).isin(tl.tensor([2, 6, 9])).numpy(),
                                  torch.isin(torch.tensor(a), torch.tensor([2, 6, 9])).numpy())
    np.testing.assert_array_equal(tl.tensor(a).isin(tl.tensor([2]), invert=True).numpy(),
                                  torch.isin(torch.tensor(a), torch.tensor([2]),
                                             invert=True).numpy())
    x, src = _a(4, 3), _a(4, 2, seed=1)
    idx = np.array([2, 0])
    _grads(lambda p, s: p.index_copy(1, tl.tensor(idx), s),
           lambda p, s: p.index_copy(1, torch.tensor(idx), s), [x, src])
    _grads(lambda p, s: p.index_copy(0, tl.tensor([3]), s),
           lambda p, s: p.index_copy(0, torch.tensor([3]), s), [x, _a(1, 3, seed=2)])
    h = _t(x, True) * 1.0
    h.index_copy_(1, tl.tensor(idx), _t(src))
    _close(h, _tt(x).index_copy(1, torch.tensor(idx), _tt(src)))
    with pytest.raises(ValueError, match=r"index_copy: source of shape \(4, 3\)"):
        _t(x).index_copy(1, tl.tensor(idx), _t(x))


# --- matrices -----------------------------------------------------------------------------------
def test_diag_and_diag_embed_match_torch():
    _grads(lambda x: x.diag(), lambda x: x.diag(), [_a(4)])
    _grads(lambda x: x.diag(1), lambda x: x.diag(1), [_a(3, 4)])
    _grads(lambda x: x.diag(diagonal=-1), lambda x: x.diag(diagonal=-1), [_a(3)])
    m = tl.zeros(2, 2)
    m.diag().add_(1.0)                      # a copy, as torch.diag's
    assert float(m.sum().item()) == 0.0
    for kw in [{}, {"offset": 1}, {"offset": -2, "dim1": 0, "dim2": 2},
               {"dim1": -1, "dim2": 0}]:
        _grads(lambda x, k=kw: x.diag_embed(**k), lambda x, k=kw: x.diag_embed(**k), [_a(2, 3)])
    with pytest.raises(ValueError, match="diag_embed: dim1 and dim2 are the same"):
        tl.zeros(3).diag_embed(dim1=0, dim2=-2)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, -1, -2])
def test_matrix_power_matches_torch(n):
    a = _a(2, 3, 3) + 2 * np.eye(3)
    _grads(lambda x: x.matrix_power(n), lambda x: x.matrix_power(n), [a], rtol=1e-7)


def test_det_logdet_inverse_pinverse_match_torch():
    a = _a(3, 3) + 3 * np.eye(3)
    for name in ("det", "logdet", "inverse"):
        _grads(lambda x, n=name: getattr(x, n)(), lambda x, n=name: getattr(x, n)(), [a],
               rtol=1e-7)
    neg = np.diag([1.0, -2.0, 3.0])
    _close(_t(neg).logdet(), _tt(neg).logdet())
    _close(_t(np.zeros((2, 2))).logdet(), _tt(np.zeros((2, 2))).logdet())
    for shape in [(4, 4), (5, 3), (3, 5), (2, 4, 3)]:
        _grads(lambda x: x.pinverse(), lambda x: x.pinverse(), [_a(*shape, seed=len(shape))],
               rtol=1e-6, atol=1e-8)
    rank1 = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    _close(_t(rank1).pinverse(), _tt(rank1).pinverse(), rtol=1e-7)
    with pytest.raises(ValueError, match=r"matrix_power: expects a square matrix.*\(2, 3\)"):
        tl.zeros(2, 3).matrix_power(2)


def test_dist_cdist_renorm_match_torch():
    a, b = _a(3, 4), _a(3, 4, seed=1)
    for p in (2, 1, 3.5, math.inf):
        _grads(lambda x, y, q=p: x.dist(y, q), lambda x, y, q=p: x.dist(y, q), [a, b])
    _close(_t(a).dist(_t(b), 0), _tt(a).dist(_tt(b), 0))
    _grads(lambda x, y: x.cdist(y), lambda x, y: torch.cdist(x, y), [a, _a(5, 4, seed=2)])
    x = _a(4, 3, 2) * 2
    for p, dim, maxnorm in [(2, 0, 1.0), (1, 1, 2.0), (3, 2, 0.5), (2, -1, 100.0)]:
        _grads(lambda t, q=p, d=dim, m=maxnorm: t.renorm(q, d, m),
               lambda t, q=p, d=dim, m=maxnorm: t.renorm(q, d, m), [x])
    with pytest.raises(ValueError, match="renorm: input needs at least 2 dimensions"):
        tl.zeros(3).renorm(2, 0, 1.0)


# --- reductions and order statistics -------------------------------------------------------------
def test_aminmax_msort_match_torch():
    a = _a(3, 4)
    for kw in [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"keepdim": True}]:
        got, want = _t(a).aminmax(**kw), _tt(a).aminmax(**kw)
        _close(got.min, want.min)
        _close(got.max, want.max)
        _grads(lambda x, k=kw: x.aminmax(**k).min * 2 + x.aminmax(**k).max,
               lambda x, k=kw: x.aminmax(**k).min * 2 + x.aminmax(**k).max, [a])
    _grads(lambda x: x.msort(), lambda x: x.msort(), [a])
    with pytest.raises(ValueError, match="aminmax: cannot reduce a zero-size"):
        tl.zeros(0).aminmax()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(7,), (3, 5), (2, 3, 4)]),
       keepdim=st.booleans())
def test_kthvalue_nanmedian_mode_match_torch(seed, shape, keepdim):
    rng = _rng(seed)
    dim = int(rng.integers(-len(shape), len(shape)))
    n = shape[dim]
    a = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)   # distinct
    k = int(rng.integers(1, n + 1))
    got, want = tl.kthvalue(_t(a), k, dim, keepdim), torch.kthvalue(_tt(a), k, dim, keepdim)
    _close(got.values, want.values)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    kth = lambda x: x.kthvalue(k, dim, keepdim).values       # noqa: E731
    _grads(kth, kth, [a])
    b = a.copy()
    b[rng.random(shape) < 0.3] = np.nan
    got, want = tl.nanmedian(_t(b), dim, keepdim), torch.nanmedian(_tt(b), dim, keepdim)
    _close(got.values, want.values)
    # the index of an all-NaN slice is whatever PyTorch's nth_element leaves first
    some = ~np.isnan(b).all(axis=dim, keepdims=keepdim)
    np.testing.assert_array_equal(got.indices.numpy()[some], want.indices.numpy()[some])
    _close(tl.nanmedian(_t(b)), torch.nanmedian(_tt(b)))
    m = rng.integers(0, 3, shape).astype(np.float64)      # ties: smallest mode, last index
    got, want = tl.mode(_t(m), dim, keepdim), torch.mode(_tt(m), dim, keepdim)
    _close(got.values, want.values)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    mi = rng.integers(-2, 2, shape)
    got, want = tl.mode(tl.tensor(mi), dim), torch.mode(torch.tensor(mi), dim)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    _grads(lambda x: x.mode(dim).values, lambda x: x.mode(dim).values, [m])
    _grads(lambda x: x.nanmedian(dim).values, lambda x: x.nanmedian(dim).values, [a])
    _close(_t(b).nanquantile(0.4, dim), _tt(b).nanquantile(0.4, dim))


def test_order_statistics_edges():
    allnan = _t([[np.nan, np.nan], [1.0, np.nan]])
    got, want = tl.nanmedian(allnan, 1), torch.nanmedian(_tt(_np(allnan)), 1)
    _close(got.values, want.values)
    assert int(got.indices[1].item()) == int(want.indices[1].item()) == 0
    _close(tl.nanmedian(_t([np.nan])), torch.nanmedian(_tt([np.nan])))
    v, i = tl.mode(_t(4.0))
    assert v.shape == () and int(i.item()) == 0
    v, i = tl.kthvalue(_t(2.0), 1)
    assert float(v.item()) == 2.0 and int(i.item()) == 0
    with pytest.raises(ValueError, match="kthvalue: k=4 is out of range for dim 1 of size 3"):
        tl.kthvalue(tl.zeros(2, 3), 4, 1)
    with pytest.raises(ValueError, match="mode: cannot reduce dim 0 of size 0"):
        tl.mode(tl.zeros(0))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.sampled_from([None, 0, 1, -1]),
       keepdim=st.booleans(),
       interpolation=st.sampled_from(["linear", "lower", "higher", "midpoint", "nearest"]),
       q=st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0, (0.1, 0.5, 0.75)]))
def test_nanquantile_matches_torch(seed, dim, keepdim, interpolation, q):
    rng = _rng(seed)
    a = rng.normal(size=(4, 5))
    a[rng.random((4, 5)) < 0.3] = np.nan
    a[1] = np.nan                                       # an all-NaN row
    qt, qw = (tl.tensor(np.array(q)), torch.tensor(q, dtype=torch.float64)) \
        if isinstance(q, tuple) else (q, q)
    got = tl.nanquantile(_t(a), qt, dim, keepdim, interpolation=interpolation)
    want = torch.nanquantile(_tt(a), qw, dim, keepdim, interpolation=interpolation)
    _close(got, want, rtol=1e-12)
    b = rng.normal(size=(4, 5))
    b[rng.random((4, 5)) < 0.3] = np.nan
    _grads(lambda x: tl.nanquantile(x, qt, dim, keepdim, interpolation=interpolation),
           lambda x: torch.nanquantile(x, qw, dim, keepdim, interpolation=interpolation), [b])


def test_nanquantile_errors():
    with pytest.raises(ValueError, match=r"nanquantile: q must lie in \[0, 1\]"):
        tl.nanquantile(tl.zeros(3), 1.5)
    with pytest.raises(TypeError, match="nanquantile: input must be float"):
        tl.nanquantile(tl.tensor([1, 2]), 0.5)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_unique_consecutive_matches_torch(dim):
    a = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3], [1, 1, 2], [1, 1, 2]])
    for inv, cnt in [(False, False), (True, False), (False, True), (True, True)]:
        got = tl.tensor(a).unique_consecutive(inv, cnt, dim)
        want = torch.tensor(a).unique_consecutive(return_inverse=inv, return_counts=cnt,
                                                  dim=dim)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    f = np.array([1.0, 1.0, np.nan, 2.0, 2.0, 2.0, 1.0])
    g, c = _t(f).unique_consecutive(return_counts=True)
    w, wc = torch.unique_consecutive(_tt(f), return_counts=True)
    _close(g, w)
    np.testing.assert_array_equal(c.numpy(), wc.numpy())
    empty = tl.zeros(0).unique_consecutive(return_inverse=True, return_counts=True)
    assert [t.shape for t in empty] == [(0,), (0,), (0,)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bins=st.integers(1, 12),
       rng_=st.sampled_from([(0, 0), (-1, 1), (0.5, 3), (-2, 0)]),
       dt=st.sampled_from([np.float32, np.float64]))
def test_histc_matches_torch(seed, bins, rng_, dt):
    a = _rng(seed).normal(size=50).astype(dt)
    a[:5] = [rng_[0], rng_[1], 0.0, -2.0, 3.0]            # values on the edges
    got = tl.tensor(a).histc(bins, *rng_)
    want = torch.tensor(a).histc(bins, *rng_)
    assert got.dtype == want.numpy().dtype
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_histc_edges_and_errors():
    x = np.array([0.0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(_t(x).histc(5, 0, 5).numpy(), _tt(x).histc(5, 0, 5).numpy())
    np.testing.assert_array_equal(_t([2.0, 2.0]).histc(4).numpy(),
                                  _tt([2.0, 2.0]).histc(4).numpy())
    with pytest.raises(TypeError, match="histc: input must be floating point"):
        tl.tensor([1, 2]).histc()
    with pytest.raises(ValueError, match="histc: bins must be > 0"):
        _t(x).histc(0)


def test_fill_diagonal_matches_torch():
    for shape, wrap in [((3, 3), False), ((7, 3), False), ((7, 3), True), ((3, 5), True),
                        ((2, 2, 2), False)]:
        got = tl.zeros(*shape).fill_diagonal_(2.5, wrap=wrap)
        want = torch.zeros(*shape).fill_diagonal_(2.5, wrap=wrap)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    a = _a(3, 3)
    x, y = _t(a, True), _tt(a, True)
    hx, hy = x * 2, y * 2
    hx.fill_diagonal_(1.0)
    hy.fill_diagonal_(1.0)
    _close(hx, hy)
    hx.sum().backward()
    hy.sum().backward()
    _close(x.grad, y.grad)
    with pytest.raises(ValueError, match="all dimensions of input must be of equal length"):
        tl.zeros(2, 3, 2).fill_diagonal_(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        _t(a, True).fill_diagonal_(0.0)


# --- top-level functions -------------------------------------------------------------------------
def test_stacking_matches_torch():
    cases = [[(3,), (2,)], [(2, 3), (2, 1)], [(), (3,)], [(2, 3, 4), (2, 1, 4)]]
    for name in ("hstack", "vstack", "dstack", "column_stack"):
        for shapes in cases:
            arrays = [_a(*s, seed=i) for i, s in enumerate(shapes)]
            try:
                getattr(torch, name)([_tt(a) for a in arrays])
            except RuntimeError:
                with pytest.raises(ValueError):
                    getattr(tl, name)([_t(a) for a in arrays])
                continue
            _grads(lambda *xs, n=name: getattr(tl, n)(list(xs)),
                   lambda *xs, n=name: getattr(torch, n)(list(xs)), arrays)
    with pytest.raises(ValueError, match="hstack: expects a non-empty"):
        tl.hstack([])


def test_atleast_and_broadcast_match_torch():
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for shape in [(), (3,), (2, 3), (2, 3, 4)]:
            a = _a(*shape)
            assert getattr(tl, name)(_t(a)).shape == tuple(getattr(torch, name)(_tt(a)).shape)
        outs = getattr(tl, name)(_t(1.0), _t([1.0, 2.0]))
        wants = getattr(torch, name)(_tt(1.0), _tt([1.0, 2.0]))
        assert isinstance(outs, tuple)
        assert [o.shape for o in outs] == [tuple(w.shape) for w in wants]
        assert isinstance(getattr(tl, name)([_t(1.0)]), tuple)
    _grads(lambda x: tl.atleast_3d(x) * 1.0, lambda x: torch.atleast_3d(x) * 1.0, [_a(2, 3)])
    assert tl.broadcast_shapes((2, 1), (3,), 1) == tuple(torch.broadcast_shapes((2, 1), (3,), 1))
    with pytest.raises(ValueError, match=r"broadcast_shapes: shapes \(2,\), \(3,\)"):
        tl.broadcast_shapes((2,), (3,))
    a, b = _a(2, 1), _a(3, seed=1)
    _grads(lambda x, y: tl.broadcast_tensors(x, y)[0] * tl.broadcast_tensors(x, y)[1],
           lambda x, y: torch.broadcast_tensors(x, y)[0] * torch.broadcast_tensors(x, y)[1],
           [a, b])
    with pytest.raises(ValueError, match="broadcast_tensors"):
        tl.broadcast_tensors(tl.zeros(2), tl.zeros(3))


def test_index_builders_match_torch():
    for row, col, off in [(3, 3, 0), (4, 6, 1), (5, 2, -1), (0, 3, 0), (3, 4, -5)]:
        for name in ("tril_indices", "triu_indices"):
            got, want = getattr(tl, name)(row, col, off), getattr(torch, name)(row, col, off)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    x, y, z = _a(3), _a(2, seed=1), _a(4, seed=2)
    _grads(lambda *t: tl.cartesian_prod(*t), lambda *t: torch.cartesian_prod(*t), [x, y, z])
    _close(tl.cartesian_prod(_t(x)), torch.cartesian_prod(_tt(x)))
    for r, rep in [(2, False), (3, False), (2, True), (1, False), (4, True)]:
        _grads(lambda t, r=r, rep=rep: tl.combinations(t, r, rep),
               lambda t, r=r, rep=rep: torch.combinations(t, r, rep), [z])
    assert tl.combinations(_t(x), 0).shape == tuple(torch.combinations(_tt(x), 0).shape)
    assert tl.combinations(_t(y), 3).shape == tuple(torch.combinations(_tt(y), 3).shape)
    blocks = [(2, 3), (), (4,), (1, 2)]
    _grads(lambda *t: tl.block_diag(*t), lambda *t: torch.block_diag(*t),
           [_a(*s, seed=i) for i, s in enumerate(blocks)])
    mixed = tl.block_diag(tl.tensor([[1, 2]]), _t([[0.5]]))
    assert mixed.dtype == np.float64
    assert tl.block_diag().shape == tuple(torch.block_diag().shape)
    with pytest.raises(ValueError, match="block_diag: expects tensors of at most 2 dims"):
        tl.block_diag(tl.zeros(1, 1, 1))
    with pytest.raises(ValueError, match="combinations: expects a 1-d tensor"):
        tl.combinations(tl.zeros(2, 2))


def test_logspace_randint_like():
    for args, kw in [((0, 3, 4), {}), ((-2, 2, 5), {"base": 2.0}), ((1, 0, 3), {}),
                     ((0, 2, 3), {"dtype": "int64"}), ((0, 1, 0), {}), ((0, 1, 1), {})]:
        tkw = dict(kw)
        if "dtype" in tkw:
            tkw["dtype"] = torch.int64
        got, want = tl.logspace(*args, **kw), torch.logspace(*args, **tkw)
        assert got.dtype == want.numpy().dtype
        _close(got, want, rtol=1e-6)
    x = tl.zeros(3, 4, dtype=tl.int32)
    tl.manual_seed(3)
    r = tl.randint_like(x, 5)
    assert r.shape == (3, 4) and r.dtype == np.int32
    assert r.numpy().min() >= 0 and r.numpy().max() < 5
    tl.manual_seed(3)
    np.testing.assert_array_equal(tl.randint_like(x, 5).numpy(), r.numpy())
    r2 = tl.randint_like(tl.zeros(1000), -3, 3)
    assert r2.dtype == np.float32 and set(np.unique(r2.numpy())) <= set(range(-3, 3))


# --- in-place random fills -----------------------------------------------------------------------
FILLS = [
    ("exponential_", (2.0,), lambda v: abs(v.mean() - 0.5) < 0.02 and v.min() >= 0),
    ("cauchy_", (1.0, 0.5), lambda v: abs(np.median(v) - 1.0) < 0.03),
    ("log_normal_", (0.0, 0.5), lambda v: abs(np.log(v).mean()) < 0.02 and
     abs(np.log(v).std() - 0.5) < 0.02),
    ("geometric_", (0.25,), lambda v: abs(v.mean() - 4.0) < 0.15 and v.min() >= 1 and
     np.all(v == np.floor(v))),
    ("bernoulli_", (0.3,), lambda v: abs(v.mean() - 0.3) < 0.02 and set(np.unique(v)) <= {0, 1}),
    ("random_", (2, 7), lambda v: set(np.unique(v)) == set(range(2, 7))),
    ("random_", (4,), lambda v: set(np.unique(v)) == set(range(4))),
]


@pytest.mark.parametrize("name,args,ok", FILLS, ids=[f"{f[0]}{f[1]}" for f in FILLS])
def test_random_fills_are_seeded_and_distributed(name, args, ok):
    x = tl.zeros(20000, dtype=tl.float64)
    tl.manual_seed(7)
    out = getattr(x, name)(*args)
    assert out is x
    v = x.numpy().copy()
    assert ok(v), (name, v[:10])
    tl.manual_seed(7)
    np.testing.assert_array_equal(getattr(tl.zeros(20000, dtype=tl.float64), name)(*args).numpy(),
                                  v)
    g1, g2 = tl.Generator().manual_seed(1), tl.Generator().manual_seed(1)
    a = getattr(tl.zeros(50), name)(*args, generator=g1).numpy()
    b = getattr(tl.zeros(50), name)(*args, generator=g2).numpy()
    np.testing.assert_array_equal(a, b)
    assert getattr(tl.zeros(50), name)(*args).dtype == np.float32


def test_random_fills_dtypes_tensor_p_and_errors():
    p = tl.tensor([[0.0], [1.0]])
    b = tl.zeros(2, 500).bernoulli_(p)
    assert b.numpy()[0].sum() == 0 and b.numpy()[1].sum() == 500
    assert tl.zeros(10, dtype=tl.int64).bernoulli_(0.5).dtype == np.int64
    g = tl.zeros(1000, dtype=tl.int64).geometric_(0.5)
    assert g.dtype == np.int64 and g.numpy().min() >= 1
    r = tl.zeros(1000, dtype=tl.uint8).random_()
    assert r.numpy().max() > 200
    f = tl.zeros(1000).random_()
    assert f.numpy().max() > 2 ** 20 and f.numpy().max() <= 2 ** 24
    with pytest.raises(TypeError, match="exponential_: a continuous distribution needs"):
        tl.zeros(3, dtype=tl.int64).exponential_()
    with pytest.raises(ValueError, match=r"geometric_: p must be in \(0, 1\)"):
        tl.zeros(3).geometric_(1.5)
    with pytest.raises(ValueError, match="bernoulli_: p must lie in"):
        tl.zeros(3).bernoulli_(1.5)
    with pytest.raises(ValueError, match="bernoulli_: p of shape"):
        tl.zeros(3).bernoulli_(tl.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="random_: expects 'from' to be less than 'to'"):
        tl.zeros(3).random_(5, 5)
    with pytest.raises(RuntimeError, match="leaf"):
        tl.zeros(3, requires_grad=True).exponential_()


# --- gradcheck (float64) on a representative subset ----------------------------------------------
GRADCHECKS = [
    ("fmod", lambda x, y: tl.fmod(x, y), [(3, 4), (4,)]),
    ("copysign", lambda x, y: x.copysign(y), [(5,), (5,)]),
    ("kron", lambda x, y: x.kron(y), [(2, 2), (2, 3)]),
    ("cross", lambda x, y: x.cross(y, dim=0), [(3, 2), (3, 2)]),
    ("diag_embed", lambda x: x.diag_embed(1, 0, 2), [(2, 3)]),
    ("matrix_power", lambda x: (x + 3 * tl.eye(3, dtype=tl.float64)).matrix_power(-2), [(3, 3)]),
    ("logdet", lambda x: (x + 3 * tl.eye(3, dtype=tl.float64)).logdet(), [(3, 3)]),
    ("pinverse", lambda x: x.pinverse(), [(4, 3)]),
    ("renorm", lambda x: x.renorm(2, 0, 0.5), [(3, 4)]),
    ("take_along_dim", lambda x: x.take_along_dim(tl.tensor([[2, 0]]), 1), [(3, 4)]),
    ("index_copy", lambda x, s: x.index_copy(0, tl.tensor([2, 0]), s), [(3, 4), (2, 4)]),
    ("nanquantile", lambda x: tl.nanquantile(x, tl.tensor([0.3, 0.8], dtype=tl.float64), 1),
     [(3, 5)]),
    ("kthvalue", lambda x: tl.kthvalue(x, 2, 0).values, [(4, 3)]),
    ("block_diag", lambda x, y: tl.block_diag(x, y), [(2, 2), (3,)]),
    ("combinations", lambda x: tl.combinations(x, 2).prod(1), [(4,)]),
    ("lrn", lambda x: nn.LocalResponseNorm(3, alpha=0.5)(x), [(2, 4, 3)]),
    ("lppool2d", lambda x: nn.LPPool2d(2, 2)(x.abs() + 0.5), [(1, 2, 4, 4)]),
]


@pytest.mark.parametrize("name,fn,shapes", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_gradcheck(name, fn, shapes):
    xs = [_t(_a(*s, seed=i + 1) + (0.1 if name == "fmod" and i == 1 else 0), True)
          for i, s in enumerate(shapes)]
    if name == "fmod":      # keep the divisor away from 0 and the quotient off integers
        xs[1] = _t(np.array([1.3, -2.1, 2.7, -0.9]), True)
    assert tl.gradcheck(fn, xs)


# --- nn modules ----------------------------------------------------------------------------------
def test_parameter_dict_registers_like_torch():
    vals = {"b": np.ones(3), "a": np.zeros((2, 2))}
    pd = nn.ParameterDict({k: tl.tensor(v) for k, v in vals.items()})
    tpd = torch.nn.ParameterDict({k: torch.tensor(v) for k, v in vals.items()})
    assert list(pd.keys()) == list(tpd.keys())
    assert list(pd.state_dict()) == list(tpd.state_dict())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pd.values())
    od = OrderedDict([("z", tl.ones(1)), ("y", tl.ones(1))])
    assert list(nn.ParameterDict(od).keys()) == ["z", "y"]
    assert list(nn.ParameterDict([("q", tl.ones(1)), ("p", tl.ones(1))])) == ["q", "p"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.params = nn.ParameterDict({"w": nn.Parameter(tl.ones(2, 2))})
            self.params["bias"] = tl.zeros(2)

        def forward(self, x):
            return x @ self.params["w"] + self.params.bias

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.params = torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.ones(2, 2))})
            self.params["bias"] = torch.zeros(2)

    net = Net()
    assert list(net.state_dict()) == list(TNet().state_dict()) == ["params.w", "params.bias"]
    assert [n for n, _ in net.named_parameters()] == ["params.w", "params.bias"]
    net(tl.ones(3, 2)).sum().backward()
    assert net.params["w"].grad is not None and net.params.bias.grad.shape == (2,)
    sd = {k: v.detach().numpy() * 0 + 5 for k, v in TNet().state_dict().items()}
    net.load_state_dict(sd)
    assert float(net.params["w"].sum().item()) == 20.0
    assert "w" in net.params and len(net.params) == 2
    assert net.params.pop("bias").shape == (2,) and list(net.params) == ["w"]
    assert net.params.get("nope") is None
    net.params.update({"c": tl.ones(1)})
    assert list(net.params.keys()) == ["w", "c"]
    del net.params["c"]
    assert len(list(net.parameters())) == 1
    assert "ParameterDict" in repr(net)
    net.params["x"] = 3.0             # kept as it is, not a parameter (as PyTorch)
    assert net.params["x"] == 3.0 and len(list(net.parameters())) == 1
    with pytest.raises(KeyError, match="ParameterDict has no key 'q'"):
        net.params["q"]


@pytest.mark.parametrize("cls,pad,shape", [
    ("ConstantPad1d", 2, (2, 3, 4)), ("ConstantPad1d", (1, 3), (3, 4)),
    ("ConstantPad2d", (1, 0, 2, 1), (1, 2, 3, 3)), ("ConstantPad2d", 1, (2, 3, 3)),
    ("ConstantPad3d", (1, 1, 0, 2, 1, 0), (1, 2, 2, 3, 2)), ("ConstantPad1d", (-1, 2), (2, 4))])
def test_constant_pads_match_torch(cls, pad, shape):
    m, tm = getattr(nn, cls)(pad, 1.5), getattr(torch.nn, cls)(pad, 1.5)
    _grads(m, tm, [_a(*shape)])


def test_activation_modules_match_torch():
    a = _a(2, 3, 4, 5)
    _grads(nn.Threshold(0.1, -2.0), torch.nn.Threshold(0.1, -2.0), [a])
    for dim in (None, 0, 1, -1):
        _grads(nn.Softmin(dim), torch.nn.Softmin(dim), [a])
        _grads(nn.Softmin(dim), torch.nn.Softmin(dim), [a[0, 0]])
    _grads(nn.Softmax2d(), torch.nn.Softmax2d(), [a])
    _grads(nn.Softmax2d(), torch.nn.Softmax2d(), [a[0]])
    r, tr = nn.RReLU(0.1, 0.3).eval(), torch.nn.RReLU(0.1, 0.3).eval()
    _grads(r, tr, [a])
    x = tl.tensor(a.copy())
    out = nn.Threshold(0.0, 9.0, inplace=True)(x)
    assert out is x and float(x.numpy().max()) == 9.0
    assert "threshold=0.1" in repr(nn.Threshold(0.1, 2.0))
    with pytest.raises(ValueError, match="Softmax2d: expects 3-D or 4-D input"):
        nn.Softmax2d()(tl.zeros(2, 3))


def test_rrelu_training_draws_slopes_in_range():
    a = _a(50, 40)
    x = _t(a, True)
    tl.manual_seed(1)
    m = nn.RReLU(0.1, 0.3)
    assert m.training
    y = m(x)
    y.sum().backward()
    neg = a < 0
    slope = y.detach().numpy()[neg] / a[neg]
    assert slope.min() >= 0.1 and slope.max() <= 0.3 and slope.std() > 0.04
    np.testing.assert_allclose(x.grad.numpy()[neg], slope)
    np.testing.assert_array_equal(x.grad.numpy()[~neg], 1.0)
    np.testing.assert_array_equal(y.detach().numpy()[~neg], a[~neg])
    tl.manual_seed(1)
    np.testing.assert_array_equal(nn.RReLU(0.1, 0.3)(_t(a)).numpy(), y.detach().numpy())
    with pytest.raises(ValueError, match="RReLU: lower"):
        nn.RReLU(0.5, 0.1)


def test_lrn_channel_shuffle_lppool_match_torch():
    for size, shape in [(3, (2, 5, 4)), (2, (2, 6, 3, 3)), (5, (1, 4, 2, 2, 2)), (1, (2, 3, 4))]:
        m = nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.5)
        tm = torch.nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.5)
        _grads(m, tm, [_a(*shape, seed=size)], rtol=1e-7)
    for g, shape in [(2, (2, 4, 3)), (3, (1, 6, 2, 2)), (1, (2, 3, 2))]:
        _grads(nn.ChannelShuffle(g), torch.nn.ChannelShuffle(g), [_a(*shape)])
    pos = _a(2, 3, 9, seed=4, low=0.2, high=2.0)
    for p, k, s, ceil in [(2, 3, None, False), (1.5, 2, 1, False), (3, 4, 2, True)]:
        _grads(nn.LPPool1d(p, k, s, ceil), torch.nn.LPPool1d(p, k, s, ceil), [pos], rtol=1e-7)
    pos2 = _a(2, 2, 6, 7, seed=5, low=0.2, high=2.0)
    for p, k, s, ceil in [(2, 2, None, False), (1.5, (2, 3), 1, False), (4, 3, (2, 1), True)]:
        _grads(nn.LPPool2d(p, k, s, ceil), torch.nn.LPPool2d(p, k, s, ceil), [pos2], rtol=1e-7)
    with pytest.raises(ValueError, match=r"ChannelShuffle: the number of channels \(5\)"):
        nn.ChannelShuffle(2)(tl.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="ConstantPad2d: padding must be an int or 4 ints"):
        nn.ConstantPad2d((1, 2), 0.0)
    with pytest.raises(ValueError, match="LocalResponseNorm: expects 3-D or higher"):
        nn.LocalResponseNorm(2)(tl.zeros(2, 3))


def test_new_ops_run_under_graph_capture():
    def f(x, y):
        return (tl.fmod(x, y) + x.kron(y[:2]).sum() + x.mm(y.reshape(4, 1)).sum()
                + tl.nanquantile(x, 0.5, 1).sum() + x.renorm(2, 0, 1.0).sum())
    x, y = _t(_a(3, 4)), _t(_a(4, seed=1) + 3)
    fn = tl.function(f)
    _close(fn(x, y), f(x, y))
    x2, y2 = _t(_a(3, 4, seed=2)), _t(_a(4, seed=3) + 3)
    _close(fn(x2, y2), f(x2, y2))


@pytest.mark.parametrize("cls, shape", [("LPPool1d", (2, 3, 8)), ("LPPool2d", (2, 3, 4, 4))])
def test_lp_pool_of_infinite_order_is_the_max_of_abs(cls, shape):
    x = _a(*shape, seed=3)
    got = getattr(nn, cls)(float("inf"), 2)(_t(x))
    want = getattr(torch.nn, cls)(float("inf"), 2)(_tt(x))
    _close(got, want)


def test_histc_on_decimal_data_matches_torch_bin_for_bin():
    # values on bin edges (0.3 * 10 = 3.0000000000000004): PyTorch's own rounding
    rng = np.random.default_rng(5)
    for dt in (np.float32, np.float64):
        v = np.round(rng.uniform(-1, 11, 1000), 1).astype(dt)
        for lo, hi, bins in ((0, 10, 100), (0, 1, 10), (0.1, 9.3, 37), (-0.7, 10.2, 13)):
            np.testing.assert_array_equal(tl.tensor(v).histc(bins, lo, hi).numpy(),
                                          torch.tensor(v).histc(bins, lo, hi).numpy())


def test_median_with_a_positional_dim_is_pytorchs():
    a = np.array([[1.0, 5.0, 2.0, 8.0], [3.0, 4.0, 9.0, 0.0]])
    for args in ((1,), (0, True), (-1, False)):
        got, want = tl.tensor(a).median(*args), torch.tensor(a).median(*args)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        got = tl.median(tl.tensor(a), *args)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(tl.tensor(a).median(axis=1).numpy(), np.median(a, axis=1))


def test_norm_and_cdist_gradients_at_zero_coordinates_for_p_below_one():
    for p in (0.5, 0.8):
        x = tl.tensor([1.0, 0.0, -2.0], requires_grad=True)
        xt = torch.tensor([1.0, 0.0, -2.0], requires_grad=True)
        tl.linalg.vector_norm(x, ord=p).backward()
        torch.linalg.vector_norm(xt, ord=p).backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)
        a = tl.tensor([[1.0, 1.0]], requires_grad=True)
        at = torch.tensor([[1.0, 1.0]], requires_grad=True)
        tl.cdist(a, tl.tensor([[0.0, 1.0]]), p=p).sum().backward()
        torch.cdist(at, torch.tensor([[0.0, 1.0]]), p=p).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-6)


def test_fractional_correction_in_var_std_and_their_means():
    x = np.random.default_rng(4).standard_normal((3, 7))
    for c in (0.5, 2.5, 1):
        np.testing.assert_allclose(tl.tensor(x).var(dim=1, correction=c).numpy(),
                                   torch.tensor(x).var(dim=1, correction=c).numpy())
        np.testing.assert_allclose(tl.tensor(x).std(dim=1, correction=c).numpy(),
                                   torch.tensor(x).std(dim=1, correction=c).numpy())
        np.testing.assert_allclose(tl.var_mean(tl.tensor(x), 1, correction=c)[0].numpy(),
                                   torch.var_mean(torch.tensor(x), 1, correction=c)[0].numpy())
    xt = tl.tensor(x, requires_grad=True)
    assert tl.autograd.gradcheck(lambda a: a.var(dim=1, correction=0.5), (xt,))


def test_tutorial_idioms_from_the_pytorch_tutorials():
    # "What is torch.nn really?": x[range(n), t], and TensorDataset batches by slicing
    x = np.arange(12.0).reshape(3, 4)
    t = np.array([0, 3, 1])
    np.testing.assert_array_equal(tl.tensor(x)[range(3), tl.tensor(t)].numpy(),
                                  torch.tensor(x)[range(3), torch.tensor(t)].numpy())
    ds = tl.data.TensorDataset(tl.arange(10).float(), tl.arange(10))
    tds = torch.utils.data.TensorDataset(torch.arange(10).float(), torch.arange(10))
    for key in (slice(2, 5), [1, 7], tl.tensor([3, 0])):
        tkey = torch.tensor(key.numpy()) if isinstance(key, tl.Tensor) else key
        for a, b in zip(ds[key], tds[tkey]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(IndexError):
        ds[[3, 12]]
    # an int tensor asked to require grad: RuntimeError, as PyTorch's
    with pytest.raises(RuntimeError, match="only floating-point and complex tensors can require"):
        tl.tensor([1, 2], requires_grad=True)


def test_pytorch_dtype_names_legacy_constructors_and_utils_data_path():
    assert (tl.float, tl.int, tl.short, tl.bool) == (tl.float32, tl.int32, tl.int16, tl.bool_)
    assert tl.LongTensor([1, 2]).dtype == tl.int64 and tl.FloatTensor(2, 3).shape == (2, 3)
    assert tl.tensor([1.0]).to(tl.int).dtype == torch.tensor([1.0]).to(torch.int).numpy().dtype
    from tensorlib.utils.data import DataLoader, TensorDataset
    assert DataLoader is tl.data.DataLoader and TensorDataset is tl.data.TensorDataset
    with pytest.raises(TypeError, match="LongTensor: pass data"):
        tl.LongTensor(2, 2.5)
