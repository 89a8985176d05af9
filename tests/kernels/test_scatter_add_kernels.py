"""The CPU scatter-add kernels (``scatter_add``, ``index_add``, ``index_put(accumulate=True)``,
fancy indexing's and ``gather``'s backward, ``scatter_reduce`` sum/mean) against PyTorch:
duplicates, empty indices, broadcast (expanded) and written-out row indices, integer and
both float dtypes, gradients; each with SciPy's sparse path and with the NumPy one. Also
PyTorch's index checks: negative indices, a 0-d ``index_select`` index, ``index_add``'s
dtype rule."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops import _scipy

torch = pytest.importorskip("torch")

DTYPES = ["float32", "float64", "int32", "int64"]
SPARSE = pytest.mark.parametrize("sparse", [True, False], ids=["scipy", "numpy"])


@contextlib.contextmanager
def _scipy_on(on: bool):
    """SciPy's sparse product on or off (off: the NumPy forms run)."""
    old = _scipy.DISABLED
    _scipy.DISABLED = not on
    try:
        yield
    finally:
        _scipy.DISABLED = old


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-50, 50, shape).astype(dtype)


def _close(got, want, dtype):
    got = got.numpy() if hasattr(got, "numpy") and not isinstance(got, np.ndarray) else got
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.dtype == want.dtype
    if np.dtype(dtype).kind == "f":
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
    else:
        np.testing.assert_array_equal(got, want)


def _scatter_index(rng, kind, idx_shape, d, n):
    """An index of ``idx_shape`` along ``d`` into ``n``: ``general`` (each element its own
    target), ``rows`` (the same along the other dims, written out in full)."""
    if kind == "general":
        return rng.integers(0, n, idx_shape)
    col = rng.integers(0, n, idx_shape[d])
    shape = [1] * len(idx_shape)
    shape[d] = idx_shape[d]
    return np.broadcast_to(col.reshape(shape), idx_shape).copy()


# --- scatter_add (PyTorch's form), with a smaller index window ---------------------------
@SPARSE
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), ndim=st.integers(1, 3), dtype=st.sampled_from(DTYPES),
       kind=st.sampled_from(["general", "rows"]), window=st.booleans())
def test_scatter_add_matches_torch(sparse, seed, ndim, dtype, kind, window):
    rng = np.random.default_rng(seed)
    xs = tuple(int(v) for v in rng.integers(1, 5, ndim))
    d = int(rng.integers(0, ndim))
    m = int(rng.integers(0, 12))             # 0: an empty index; > n: duplicates
    idx_shape = tuple(m if i == d else (int(rng.integers(1, xs[i] + 1)) if window else xs[i])
                      for i in range(ndim))
    src_shape = tuple(k + (1 if window else 0) for k in idx_shape)
    x, src = _values(rng, xs, dtype), _values(rng, src_shape, dtype)
    idx = _scatter_index(rng, kind, idx_shape, d, xs[d])
    want = torch.tensor(x).scatter_add(d, torch.tensor(idx), torch.tensor(src))
    with _scipy_on(sparse):
        got = tl.tensor(x).scatter_add(d, tl.tensor(idx), tl.tensor(src))
        inplace = tl.tensor(x)
        inplace.scatter_add_(d, tl.tensor(idx), tl.tensor(src))
    _close(got, want, dtype)
    _close(inplace, want, dtype)


@SPARSE
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_add_expanded_index_matches_torch(sparse, dtype):
    # the GNN form: a (E, 1) index expanded over the features (a zero-stride view)
    rng = np.random.default_rng(0)
    N, E, F = 7, 40, 5
    i = rng.integers(0, N, (E, 1))
    x, src = _values(rng, (N, F), dtype), _values(rng, (E, F), dtype)
    want = torch.tensor(x).scatter_add_(0, torch.tensor(i).expand(-1, F), torch.tensor(src))
    with _scipy_on(sparse):
        got = tl.tensor(x).scatter_add_(0, tl.tensor(i).expand(-1, F), tl.tensor(src))
    _close(got, want, dtype)


@SPARSE
def test_scatter_add_tensorlib_form_wraps_negative_indices(sparse):
    # tensorlib's own order keeps NumPy's rule (it is take_along_axis's gradient)
    rng = np.random.default_rng(3)
    x, src = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    idx = rng.integers(-4, 4, (6, 3))
    want = x.copy()
    np.add.at(want, (idx % 4, np.arange(3)[None, :].repeat(6, 0)), src)
    rows = np.broadcast_to(rng.integers(-4, 4, (6, 1)), (6, 3)).copy()
    want_rows = x.copy()
    np.add.at(want_rows, rows[:, 0] % 4, src)
    with _scipy_on(sparse):
        got = tl.scatter_add(tl.tensor(x), tl.tensor(idx), tl.tensor(src), 0)
        got_rows = tl.scatter_add(tl.tensor(x), tl.tensor(rows), tl.tensor(src), 0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(got_rows.numpy(), want_rows, rtol=1e-12)


# --- index_add ---------------------------------------------------------------------------
@SPARSE
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), ndim=st.integers(1, 3), dtype=st.sampled_from(DTYPES),
       alpha=st.sampled_from([None, 2]))
def test_index_add_matches_torch(sparse, seed, ndim, dtype, alpha):
    rng = np.random.default_rng(seed)
    xs = tuple(int(v) for v in rng.integers(1, 5, ndim))
    d = int(rng.integers(0, ndim))
    m = int(rng.integers(0, 12))
    idx = rng.integers(0, xs[d], m)
    src_shape = xs[:d] + (m,) + xs[d + 1:]
    x, src = _values(rng, xs, dtype), _values(rng, src_shape, dtype)
    kw = {} if alpha is None else {"alpha": alpha}
    want = torch.tensor(x).index_add(d, torch.tensor(idx), torch.tensor(src), **kw)
    with _scipy_on(sparse):
        got = tl.tensor(x).index_add(d, tl.tensor(idx), tl.tensor(src), **kw)
        inplace = tl.tensor(x)
        inplace.index_add_(d, tl.tensor(idx), tl.tensor(src), **kw)
    _close(got, want, dtype)
    _close(inplace, want, dtype)


@SPARSE
def test_index_add_tensorlib_form_wraps_negative_indices(sparse):
    x, src = np.zeros((3, 2)), np.arange(8.0).reshape(4, 2)
    with _scipy_on(sparse):
        got = tl.index_add(tl.tensor(x), tl.tensor([-1, 0, -1, 2]), tl.tensor(src), 0)
    np.testing.assert_array_equal(got.numpy(), [[2, 3], [0, 0], [10, 13]])


# --- index_put(accumulate=True) and fancy indexing's backward ------------------------------
KEYS = {
    "rows": lambda rng, s: (rng.integers(0, s[0], 30),),
    "rows_negative": lambda rng, s: (rng.integers(-s[0], s[0], 30),),
    "two_arrays": lambda rng, s: (rng.integers(0, s[0], 20), rng.integers(0, s[1], 20)),
    "bool_mask": lambda rng, s: (rng.random(s[:2]) < 0.5,),
    "index_block": lambda rng, s: (rng.integers(0, s[0], (4, 5)), rng.integers(0, s[1], 5)),
}


@SPARSE
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", sorted(KEYS))
def test_index_put_accumulate_matches_torch(sparse, dtype, key):
    rng = np.random.default_rng(1)
    xs = (6, 4, 3)
    x = _values(rng, xs, dtype)
    k = KEYS[key](rng, xs)
    target = np.zeros(xs)[k].shape
    v = _values(rng, target, dtype)
    want = torch.tensor(x).index_put(tuple(torch.tensor(a) for a in k), torch.tensor(v),
                                     accumulate=True)
    with _scipy_on(sparse):
        got = tl.tensor(x).index_put(tuple(tl.tensor(a) for a in k), tl.tensor(v),
                                     accumulate=True)
        inplace = tl.tensor(x)
        inplace.index_put_(tuple(tl.tensor(a) for a in k), tl.tensor(v), accumulate=True)
    _close(inplace, want, dtype)
    _close(got, want, dtype)


GETITEM_KEYS = [
    lambda rng: (rng.integers(0, 5, 12),),
    lambda rng: (slice(None), rng.integers(-4, 4, 9)),
    lambda rng: (rng.integers(0, 5, (3, 4)), None, slice(None)),
    lambda rng: (rng.integers(0, 5, 6), slice(None), rng.integers(0, 3, 6)),
    lambda rng: (Ellipsis, rng.integers(0, 3, 7)),
    lambda rng: (rng.random((5, 4)) < 0.5,),
    lambda rng: (1, slice(None), rng.integers(0, 3, 5)),
    lambda rng: (rng.integers(0, 5, 0),),
]


@SPARSE
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", range(len(GETITEM_KEYS)))
def test_fancy_index_gradient_matches_torch(sparse, dtype, which):
    rng = np.random.default_rng(which)
    x = _values(rng, (5, 4, 3), dtype)
    k = GETITEM_KEYS[which](rng)
    tk = tuple(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in k)
    xt = torch.tensor(x, requires_grad=True)
    out_t = xt[tk]
    g = _values(rng, tuple(out_t.shape), dtype)
    out_t.backward(torch.tensor(g))
    with _scipy_on(sparse):
        xl = tl.tensor(x, requires_grad=True)
        out = xl[tuple(tl.tensor(a) if isinstance(a, np.ndarray) else a for a in k)]
        assert tuple(out.shape) == tuple(out_t.shape)
        out.backward(tl.tensor(g))
    _close(xl.grad, xt.grad, dtype)


# --- gather's backward, embedding-style take, scatter_reduce sum/mean ---------------------
@SPARSE
@pytest.mark.parametrize("kind", ["expanded", "rows", "general"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gather_forward_and_backward_match_torch(sparse, kind, dtype):
    rng = np.random.default_rng(2)
    N, E, F = 6, 25, 4
    x = _values(rng, (N, F), dtype)
    if kind == "general":
        i = rng.integers(0, N, (E, F))
    else:
        i = np.broadcast_to(rng.integers(0, N, (E, 1)), (E, F))
        i = i.copy() if kind == "rows" else i
    ti = torch.tensor(np.ascontiguousarray(i))
    li = tl.tensor(np.ascontiguousarray(i))
    if kind == "expanded":
        ti = torch.tensor(i[:, :1]).expand(-1, F)
        li = tl.tensor(i[:, :1]).expand(-1, F)
    g = _values(rng, (E, F), dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt.gather(0, ti)
    yt.backward(torch.tensor(g))
    with _scipy_on(sparse):
        xl = tl.tensor(x, requires_grad=True)
        y = xl.gather(0, li)
        y.backward(tl.tensor(g))
    _close(y, yt, dtype)
    _close(xl.grad, xt.grad, dtype)


@SPARSE
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_index_select_backward_matches_torch(sparse, dtype):
    rng = np.random.default_rng(4)
    x = _values(rng, (7, 3, 2), dtype)
    i = rng.integers(0, 3, 20)
    g = _values(rng, (7, 20, 2), dtype)
    xt = torch.tensor(x, requires_grad=True)
    xt.index_select(1, torch.tensor(i)).backward(torch.tensor(g))
    with _scipy_on(sparse):
        xl = tl.tensor(x, requires_grad=True)
        xl.index_select(1, tl.tensor(i)).backward(tl.tensor(g))
    _close(xl.grad, xt.grad, dtype)


@SPARSE
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31), reduce=st.sampled_from(["sum", "mean"]),
       include_self=st.booleans(), dtype=st.sampled_from(["float32", "float64"]),
       kind=st.sampled_from(["general", "rows", "expanded"]))
def test_scatter_reduce_sum_mean_match_torch(sparse, seed, reduce, include_self, dtype, kind):
    rng = np.random.default_rng(seed)
    N, E, F = int(rng.integers(1, 6)), int(rng.integers(0, 15)), int(rng.integers(1, 4))
    x, src = _values(rng, (N, F), dtype), _values(rng, (E, F), dtype)
    i = _scatter_index(rng, "general" if kind == "general" else "rows", (E, F), 0, N)
    g = _values(rng, (N, F), dtype)
    ti, li = torch.tensor(i), tl.tensor(i)
    if kind == "expanded":
        ti = torch.tensor(i[:, :1]).expand(-1, F)
        li = tl.tensor(i[:, :1]).expand(-1, F)
    xt, st_ = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
    yt = xt.scatter_reduce(0, ti, st_, reduce, include_self=include_self)
    yt.backward(torch.tensor(g))
    with _scipy_on(sparse):
        xl, sl = tl.tensor(x, requires_grad=True), tl.tensor(src, requires_grad=True)
        y = xl.scatter_reduce(0, li, sl, reduce, include_self=include_self)
        y.backward(tl.tensor(g))
    _close(y, yt, dtype)
    _close(xl.grad, xt.grad, dtype)
    _close(sl.grad, st_.grad, dtype)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_scatter_reduce_integer_mean_matches_torch(dtype):
    rng = np.random.default_rng(5)
    x, src = _values(rng, (4, 3), dtype), _values(rng, (10, 3), dtype)
    i = np.broadcast_to(rng.integers(0, 4, (10, 1)), (10, 3)).copy()
    for inc in (True, False):
        want = torch.tensor(x).scatter_reduce(0, torch.tensor(i), torch.tensor(src), "mean",
                                              include_self=inc)
        got = tl.tensor(x).scatter_reduce(0, tl.tensor(i), tl.tensor(src), "mean",
                                          include_self=inc)
        _close(got, want, dtype)


def test_scatter_reduce_empty_index_keeps_src_connected():
    src = tl.tensor(np.ones((0, 2)), requires_grad=True)
    x = tl.tensor(np.arange(4.0).reshape(2, 2))
    out = x.scatter_reduce(0, tl.tensor(np.zeros((0, 2), np.int64)), src, "sum",
                           include_self=False)
    (gs,) = tl.grad(out.sum(), [src])
    assert tuple(gs.shape) == (0, 2)
    np.testing.assert_array_equal(out.numpy(), np.arange(4.0).reshape(2, 2))


# --- finite differences in float64 ---------------------------------------------------------
@SPARSE
def test_gradcheck_scatter_ops(sparse):
    rng = np.random.default_rng(6)
    x = tl.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    src = tl.tensor(rng.standard_normal((9, 3)), requires_grad=True)
    rows = tl.tensor(rng.integers(0, 4, (9, 1))).expand(-1, 3)
    gen = tl.tensor(rng.integers(0, 4, (9, 3)))
    i1 = tl.tensor(rng.integers(0, 4, 9))
    with _scipy_on(sparse):
        assert tl.autograd.gradcheck(lambda a, s: a.scatter_add(0, rows, s), (x, src))
        assert tl.autograd.gradcheck(lambda a, s: a.scatter_add(0, gen, s), (x, src))
        assert tl.autograd.gradcheck(lambda a, s: a.index_add(0, i1, s), (x, src))
        assert tl.autograd.gradcheck(lambda a: a[i1] * a[i1], (x,))
        assert tl.autograd.gradgradcheck(lambda a: a.gather(0, rows) ** 2, (x,))
        assert tl.autograd.gradcheck(
            lambda a, s: a.scatter_reduce(0, rows, s, "mean", include_self=False), (x, src))


# --- PyTorch's index checks ----------------------------------------------------------------
def test_torch_forms_refuse_negative_indices():
    x = tl.zeros(3, 2)
    with pytest.raises(IndexError,
                       match=r"index_add: index -1 is out of bounds for dimension 0 with size 3"):
        x.index_add(0, tl.tensor([-1]), tl.ones(1, 2))
    with pytest.raises(IndexError, match=r"index_add: index -1 is out of bounds"):
        x.index_add_(0, tl.tensor([0, -1]), tl.ones(2, 2))
    with pytest.raises(IndexError, match=r"scatter_add: index -1 is out of bounds for dimension 0"):
        x.scatter_add(0, tl.tensor([[-1, 0]]), tl.ones(1, 2))
    with pytest.raises(IndexError, match=r"scatter_add: index -3 is out of bounds"):
        x.scatter_add_(0, tl.tensor([[0, 0]]).expand(2, 2) - 3, tl.ones(2, 2))
    # as PyTorch: index_fill still counts a negative index from the end
    np.testing.assert_array_equal(x.index_fill(0, tl.tensor([-1]), 1.0).numpy(),
                                  [[0, 0], [0, 0], [1, 1]])


def test_index_select_zero_d_index_keeps_the_dim():
    x = np.arange(12.0).reshape(3, 4)
    for d in (0, 1):
        want = torch.tensor(x).index_select(d, torch.tensor(1))
        got = tl.tensor(x).index_select(d, tl.tensor(1))
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert tuple(tl.index_select(tl.tensor(x), 0, tl.tensor(2)).shape) == (1, 4)


def test_index_add_refuses_another_source_dtype():
    x = tl.zeros(3, 2)
    with pytest.raises(TypeError, match=r"self \(float32\) and source \(float64\) must have "
                                        r"the same dtype"):
        x.index_add(0, tl.tensor([1]), tl.ones(1, 2, dtype=tl.float64))
    with pytest.raises(TypeError, match=r"source \(int64\)"):
        x.index_add_(0, tl.tensor([1]), tl.ones(1, 2, dtype=tl.int64))
