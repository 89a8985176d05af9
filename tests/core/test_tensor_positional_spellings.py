"""Fixes from the 17th user trial (tensor manipulation): PyTorch's positional spellings
(``x.var(False)``, ``unique(x, sorted, return_inverse, ...)``, ``x.sum(())``), NaN tensor
bounds in ``clamp``, bool ``scatter_reduce``, ``searchsorted(side=, right=)``, RuntimeError
error classes, uint8 ``where`` conditions, capture of ``isin``/``searchsorted``/``bucketize``,
and the counting ``unique`` / selecting ``kthvalue`` fast paths."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

NAN = float("nan")


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _same(a, b):
    a, b = _np(a), _np(b)
    assert a.shape == tuple(b.shape)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


# --- 1. var/std: a positional bool is unbiased ------------------------------------------------
@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_var_std_positional_unbiased(fn, unbiased):
    a = np.random.default_rng(0).standard_normal((3, 4))
    xt = torch.tensor(a, requires_grad=True)
    xl = tl.tensor(a, requires_grad=True)
    want = getattr(torch, fn)(xt, unbiased)
    got = getattr(tl, fn)(xl, unbiased)
    _same(got, want)
    _same(getattr(xl, fn)(unbiased), getattr(xt, fn)(unbiased))
    want.backward()
    got.backward()
    _same(xl.grad, xt.grad)
    # dim then unbiased (then keepdim) keeps working
    _same(getattr(tl, fn)(xl, 1, unbiased, True), getattr(torch, fn)(xt, 1, unbiased, True))


def test_var_positional_bool_with_correction_refused():
    with pytest.raises(TypeError, match="var: a bool in the dim slot"):
        tl.var(tl.ones(3), True, unbiased=False)


# --- 2. unique's positional order -------------------------------------------------------------
def test_unique_positional_order_as_torch():
    x = [[0, 1, 1, 2], [2, 2, 0, 0], [1, 1, 1, 0]]
    want = torch.unique(torch.tensor(x), True, True, True)
    got = tl.unique(tl.tensor(x), True, True, True)
    assert len(got) == 3
    for g, w in zip(got, want):
        _same(g, w)
    got_m, want_m = tl.tensor(x).unique(True, True), torch.tensor(x).unique(True, True)
    assert len(got_m) == len(want_m) == 2
    for g, w in zip(got_m, want_m):
        _same(g, w)
    assert isinstance(tl.tensor(x).unique(True), tl.Tensor)
    # dim as the 5th positional, and NumPy's axis= keyword
    for g, w in zip(tl.unique(tl.tensor(x), True, False, True, 1),
                    torch.unique(torch.tensor(x), True, False, True, 1)):
        _same(g, w)
    _same(tl.unique(tl.tensor(x), axis=0), torch.unique(torch.tensor(x), dim=0))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int8", "uint8", "int16", "int32", "int64", "bool"]),
       st.lists(st.integers(-200, 200), min_size=1, max_size=40),
       st.booleans(), st.booleans(), st.booleans(), st.integers(0, 3))
def test_unique_ints_match_torch(dtype, vals, sort, inverse, counts, spread):
    a = np.array(vals, dtype=np.int64) * (10 ** (spread * 4))   # wide ranges take the sort path
    a = a.astype(dtype)
    want = torch.unique(torch.from_numpy(a.copy()), sort, inverse, counts)
    got = tl.unique(tl.tensor(a), sort, inverse, counts)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.dtype(str(w.dtype).replace("torch.", ""))
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_unique_int_extremes_and_2d_inverse():
    a = np.array([[2 ** 63 - 1, -2 ** 63], [0, 2 ** 63 - 1]], dtype=np.int64)
    for g, w in zip(tl.unique(tl.tensor(a), return_inverse=True, return_counts=True),
                    torch.unique(torch.from_numpy(a), return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    b = np.array([[5, 3], [3, 9]], dtype=np.int32)
    for g, w in zip(tl.unique(tl.tensor(b), return_inverse=True),
                    torch.unique(torch.from_numpy(b), return_inverse=True)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


# --- 3. clamp with NaN tensor bounds ----------------------------------------------------------
def _clamp_case(lib, fn, with_lo, with_hi, req=True):
    x = lib.tensor([1., 2., -1., NAN, 0.5, 5., -3., 0.], dtype=lib.float64, requires_grad=req)
    lo = lib.tensor([NAN, 0., 0., 0., 0.5, 0., 2., 0.], dtype=lib.float64, requires_grad=req)
    hi = lib.tensor([3., 1., NAN, 1., 0.5, 6., 1., 0.], dtype=lib.float64, requires_grad=req)
    if fn == "clamp":
        y = lib.clamp(x, lo if with_lo else None, hi if with_hi else None)
    elif fn == "method":
        y = x.clamp(min=lo if with_lo else None, max=hi if with_hi else None)
    elif fn == "clamp_min":
        y = lib.clamp_min(x, lo)
    else:
        y = lib.clamp_max(x, hi)
    if not req:
        return (y,)
    gx, glo, ghi = [torch.zeros(8, dtype=torch.float64) if g is None else g for g in
                    (lib.autograd.grad((y * y).sum(), [x, lo, hi], allow_unused=True))]
    return y, gx, glo, ghi


@pytest.mark.parametrize("fn,with_lo,with_hi", [
    ("clamp", True, True), ("clamp", True, False), ("clamp", False, True),
    ("method", True, True), ("clamp_min", True, False), ("clamp_max", False, True)])
@pytest.mark.parametrize("req", [True, False])
def test_clamp_nan_tensor_bounds(fn, with_lo, with_hi, req):
    for g, w in zip(_clamp_case(tl, fn, with_lo, with_hi, req),
                    _clamp_case(torch, fn, with_lo, with_hi, req)):
        _same(g, w)


def test_clamp_tensor_bounds_second_order_and_ints():
    a = np.array([0.3, -2.0, 1.5])
    xt, xl = torch.tensor(a, requires_grad=True), tl.tensor(a, requires_grad=True)
    lo = np.array([0.0, -1.0, NAN])
    yt = torch.clamp(xt, min=torch.tensor(lo)) ** 3
    yl = tl.clamp(xl, min=tl.tensor(lo)) ** 3
    (gt,) = torch.autograd.grad(yt.sum(), xt, create_graph=True)
    (gl,) = tl.autograd.grad(yl.sum(), xl, create_graph=True)
    _same(gl, gt)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    (hl,) = tl.autograd.grad(gl.sum(), xl)
    _same(hl, ht)
    i = np.array([1, 5, -3])
    _same(tl.clamp(tl.tensor(i), tl.tensor([0, 0, 0]), tl.tensor([2, 2, 2])),
          torch.clamp(torch.tensor(i), torch.tensor([0, 0, 0]), torch.tensor([2, 2, 2])))


# --- 4. positional empty dims -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "var", "std", "logsumexp"])
@pytest.mark.parametrize("empty", [(), []])
def test_positional_empty_dim_reduces_all(name, empty):
    a = np.random.default_rng(1).random((3, 6))
    xt, xl = torch.tensor(a, requires_grad=True), tl.tensor(a, requires_grad=True)
    got = getattr(tl, name)(xl, empty)
    if name != "logsumexp":     # torch's logsumexp refuses an empty dim (a shape error)
        _same(got, getattr(torch, name)(xt, empty))
        _same(getattr(xl, name)(empty), getattr(xt, name)(empty))
    # the gradient against every dim spelled out: torch's var/std backward with dim=()
    # reads it as no reduction and gives inf
    want = getattr(torch, name)(xt, (0, 1))
    _same(got, want)
    want.backward()
    got.backward()
    _same(xl.grad, xt.grad)


def test_numpy_axis_keyword_empty_still_reduces_none():
    x = tl.ones(2, 3)
    assert x.sum(axis=()).shape == (2, 3)
    assert tl.amax(x, axis=()).shape == (2, 3)
    assert x.sum(1, True).shape == (2, 1)


# --- 5. bool scatter_reduce -------------------------------------------------------------------
@pytest.mark.parametrize("include_self", [True, False])
def test_bool_scatter_reduce_sum_keeps_bool(include_self):
    out = []
    for L in (torch, tl):
        x, i, s = L.tensor([True, False, False]), L.tensor([0, 0, 2]), L.tensor([True, True, False])
        out.append(x.scatter_reduce(0, i, s, "sum", include_self=include_self))
    assert out[1].dtype == np.bool_
    np.testing.assert_array_equal(out[1].numpy(), out[0].numpy())


# --- 6. searchsorted side/right ---------------------------------------------------------------
@pytest.mark.parametrize("side", [None, "left", "right"])
@pytest.mark.parametrize("right", [None, False, True])
def test_searchsorted_side_and_right(side, right):
    s, v = [1., 2., 2., 5.], [2., 0., 7.]
    kw = {k: val for k, val in (("side", side), ("right", right)) if val is not None}
    try:
        want = torch.searchsorted(torch.tensor(s), torch.tensor(v), **kw)
    except RuntimeError as e:
        with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
            tl.searchsorted(tl.tensor(s), tl.tensor(v), **kw)
        assert "opposites" in str(e)
        return
    _same(tl.searchsorted(tl.tensor(s), tl.tensor(v), **kw), want)


# --- 7. error classes -------------------------------------------------------------------------
_X = np.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize("call", [
    lambda L: L.tensor(_X).gather(1, L.tensor([[9]])),
    lambda L: L.tensor(_X).scatter(1, L.tensor([[9]]), 1.0),
    lambda L: L.tensor(_X).scatter_add(1, L.tensor([[9]]), L.ones(1, 1, dtype=L.float64)),
    lambda L: L.tensor(_X).index_add(0, L.tensor([9]), L.ones(1, 4, dtype=L.float64)),
    lambda L: L.tensor(_X).scatter_reduce(1, L.tensor([[9]]), L.ones(1, 1, dtype=L.float64),
                                          "amax"),
    lambda L: L.tensor(_X).topk(9),
    lambda L: L.bincount(L.tensor([-1])),
    lambda L: L.bincount(L.tensor([[1]])),
    lambda L: L.histc(L.tensor([NAN, 1.])),
    lambda L: L.tensor(_X).masked_fill(L.tensor(_X) > 0, L.ones(2, dtype=L.float64)),
    lambda L: L.tensor([1, 2]).clamp_(0.5, 1.5),
    lambda L: L.tensor([1, 2]).__iadd__(1.5),
    lambda L: L.tensor([1, 2]).__imul__(0.5),
    lambda L: L.tensor([1, 2]).__itruediv__(2),
    lambda L: L.tensor([True]).__iadd__(1),
])
def test_errors_are_runtime_errors(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(RuntimeError):
        call(tl)


def test_index_errors_stay_index_errors():
    from tensorlib.errors import IndexRangeError
    assert issubclass(IndexRangeError, IndexError) and issubclass(IndexRangeError, RuntimeError)
    x = tl.tensor(_X)
    with pytest.raises(IndexError, match="out of range in self"):    # torch: IndexError
        torch.tensor(_X).index_select(0, torch.tensor([9]))
    with pytest.raises(IndexRangeError, match="index 9 is out of range for dim 0 of size 3"):
        x.index_select(0, tl.tensor([9]))
    # torch's take_along_dim reads out of bounds unchecked; tensorlib refuses
    with pytest.raises(IndexRangeError, match="index 9 is out of range for dim 1 of size 4"):
        tl.take_along_dim(x, tl.tensor([[9]]), 1)
    with pytest.raises(IndexRangeError, match="index 9 is out of range for dim 1 of size 4"):
        x.gather(1, tl.tensor([[9]]))


def test_where_uint8_condition_as_torch():
    c = np.array([1, 0, 2], dtype=np.uint8)
    want = torch.where(torch.from_numpy(c), torch.ones(3), torch.zeros(3))
    with pytest.warns(UserWarning, match="uint8 condition"):
        got = tl.where(tl.tensor(c), tl.ones(3), tl.zeros(3))
    _same(got, want)
    with pytest.warns(UserWarning, match="uint8 condition"):
        _same(tl.ones(3).where(tl.tensor(c), tl.zeros(3)), want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="bool"):
            tl.where(tl.tensor([1, 0]), tl.ones(2), tl.zeros(2))   # int64: refused as torch


# --- 8. capture -------------------------------------------------------------------------------
def test_isin_captured():
    test = tl.tensor([1, 2])
    f = tl.function(lambda i: tl.isin(i, test))
    g = tl.function(lambda i: tl.isin(i, test, invert=True))
    for v in ([1, 3, 2], [5, 1, 2, 2, 7]):
        want = torch.isin(torch.tensor(v), torch.tensor([1, 2]))
        _same(f(tl.tensor(v)), want)
        _same(g(tl.tensor(v)), ~want)


@pytest.mark.parametrize("right", [False, True])
def test_bucketize_and_searchsorted_captured(right):
    b = [-1., 0., 0., 1.]
    f = tl.function(lambda x: tl.bucketize(x, tl.tensor(b), right=right))
    h = tl.function(lambda s, v: tl.searchsorted(s, v, right=right, out_int32=True))
    rng = np.random.default_rng(3)
    for n in (4, 9):
        x = np.round(rng.standard_normal(n) * 2) / 2
        x[0] = NAN
        _same(f(tl.tensor(x)), torch.bucketize(torch.tensor(x), torch.tensor(b), right=right))
        s = np.sort(rng.integers(0, 9, (2, 5)), axis=1)
        v = rng.integers(-1, 10, (2, n))
        got = h(tl.tensor(s), tl.tensor(v))
        assert got.dtype == np.int32
        _same(got, torch.searchsorted(torch.tensor(s), torch.tensor(v), right=right))


# --- 9/10. fast paths -------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 1), st.data())
def test_kthvalue_matches_torch(r, c, dim, data):
    a = np.random.default_rng(data.draw(st.integers(0, 10 ** 6))).standard_normal((r, c))
    if data.draw(st.booleans()):
        a[0, 0] = NAN
    k = data.draw(st.integers(1, a.shape[dim]))
    keep = data.draw(st.booleans())
    xt, xl = torch.tensor(a, requires_grad=True), tl.tensor(a, requires_grad=True)
    want, got = torch.kthvalue(xt, k, dim, keep), tl.kthvalue(xl, k, dim, keep)
    _same(got.values, want.values)
    # indices may differ only among ties: they must point at the same value
    _same(np.take_along_axis(a, got.indices.numpy() if keep else
                             np.expand_dims(got.indices.numpy(), dim), dim),
          np.take_along_axis(a, want.indices.numpy() if keep else
                             np.expand_dims(want.indices.numpy(), dim), dim))
    want.values.sum().backward()
    got.values.sum().backward()
    _same(xl.grad, xt.grad)


def test_kthvalue_out_of_range():
    with pytest.raises(ValueError, match="kthvalue: k=4 is out of range"):
        tl.kthvalue(tl.ones(2, 3), 4, 1)
