"""Scatter/index family (trial23 GNN findings 1, 2, 4, 5): captured graphs refuse the
indices eager refuses, dtype mismatches refused as PyTorch, torch-style error classes, and
the fast unique/searchsorted/isin paths against PyTorch."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.errors import DTypeError, IndexRangeError, ShapeError

torch = pytest.importorskip("torch")

X = np.arange(12.0).reshape(4, 3)


def _z(x):
    return tl.zeros(4, 3, dtype=x.dtype)


# op name -> (tensorlib fn(x, i), torch fn(x, i)); i is a 1-d int64 index of length 2
STRICT_OPS = {
    "index_add": (lambda x, i: _z(x).index_add(0, i, x[:2]),
                  lambda x, i: torch.zeros(4, 3, dtype=x.dtype).index_add(0, i, x[:2])),
    "scatter_add": (lambda x, i: _z(x).scatter_add(0, i.reshape(1, 2), x[:1, :2]),
                    lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter_add(
                        0, i.reshape(1, 2), x[:1, :2])),
    "scatter": (lambda x, i: _z(x).scatter(0, i.reshape(1, 2), x[:1, :2]),
                lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter(
                    0, i.reshape(1, 2), x[:1, :2])),
    "scatter_value": (lambda x, i: _z(x).scatter(0, i.reshape(1, 2), 2.0),
                      lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter(
                          0, i.reshape(1, 2), 2.0)),
    "scatter_reduce_add": (lambda x, i: _z(x).scatter(0, i.reshape(1, 2), x[:1, :2],
                                                      reduce="add"),
                           lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter(
                               0, i.reshape(1, 2), x[:1, :2], reduce="add")),
    "scatter_reduce_sum": (lambda x, i: _z(x).scatter_reduce(0, i.reshape(1, 2), x[:1, :2],
                                                             "sum"),
                           lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter_reduce(
                               0, i.reshape(1, 2), x[:1, :2], "sum")),
    "scatter_reduce_mean": (lambda x, i: _z(x).scatter_reduce(
        0, i.reshape(1, 2), x[:1, :2], "mean", include_self=False),
        lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter_reduce(
            0, i.reshape(1, 2), x[:1, :2], "mean", include_self=False)),
    "scatter_reduce_amax": (lambda x, i: _z(x).scatter_reduce(0, i.reshape(1, 2), x[:1, :2],
                                                              "amax"),
                            lambda x, i: torch.zeros(4, 3, dtype=x.dtype).scatter_reduce(
                                0, i.reshape(1, 2), x[:1, :2], "amax")),
    "gather": (lambda x, i: x.gather(0, i.reshape(1, 2)),
               lambda x, i: x.gather(0, i.reshape(1, 2))),
    "index_select": (lambda x, i: x.index_select(0, i), lambda x, i: x.index_select(0, i)),
}
# ops whose PyTorch form counts a negative index from the end
WRAP_OPS = {
    "index_fill": (lambda x, i: _z(x).index_fill(0, i, 2.0),
                   lambda x, i: torch.zeros(4, 3, dtype=x.dtype).index_fill(0, i, 2.0)),
    "index_put": (lambda x, i: _z(x).index_put((i,), x[:2]),
                  lambda x, i: torch.zeros(4, 3, dtype=x.dtype).index_put((i,), x[:2])),
    "index_put_acc": (lambda x, i: _z(x).index_put((i,), x[:2], accumulate=True),
                      lambda x, i: torch.zeros(4, 3, dtype=x.dtype).index_put(
                          (i,), x[:2], accumulate=True)),
    "put_acc": (lambda x, i: _z(x).put(i, x[0, :2], accumulate=True),
                lambda x, i: torch.zeros(4, 3, dtype=x.dtype).put(i, x[0, :2],
                                                                  accumulate=True)),
}


def _replay(fn):
    f = tl.function(fn)
    with tl.no_grad():
        f(tl.tensor(X), tl.tensor([0, 1]))          # traced with valid indices
    return f


@pytest.mark.parametrize("name", sorted(STRICT_OPS))
@pytest.mark.parametrize("bad", [[0, -1], [0, 4], [2, -5]])
def test_captured_refuses_what_eager_and_torch_refuse(name, bad):
    fn, tfn = STRICT_OPS[name]
    with pytest.raises((RuntimeError, IndexError)):
        tfn(torch.tensor(X), torch.tensor(bad))
    with pytest.raises(IndexRangeError):
        fn(tl.tensor(X), tl.tensor(bad))
    f = _replay(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tl.no_grad(), pytest.raises(IndexRangeError, match=r"index -?\d+ is out of"):
            f(tl.tensor(X), tl.tensor(bad))


@pytest.mark.parametrize("name", sorted(STRICT_OPS) + sorted(WRAP_OPS))
def test_captured_replay_values_equal_eager_and_torch(name):
    fn, tfn = {**STRICT_OPS, **WRAP_OPS}[name]
    f = _replay(fn)
    good = [[2, 3], [1, 1]] + ([[0, -1], [-4, 3]] if name in WRAP_OPS else [])
    for i in good:
        with tl.no_grad():
            got = f(tl.tensor(X), tl.tensor(i)).numpy()
        np.testing.assert_allclose(got, fn(tl.tensor(X), tl.tensor(i)).numpy())
        np.testing.assert_allclose(got, tfn(torch.tensor(X), torch.tensor(i)).numpy())


@pytest.mark.parametrize("name", sorted(WRAP_OPS))
def test_wrapping_ops_refuse_out_of_range_captured(name):
    fn, _ = WRAP_OPS[name]
    bad = [0, 12] if name == "put_acc" else [0, -5]
    with pytest.raises(IndexError):
        fn(tl.tensor(X), tl.tensor(bad))
    f = _replay(fn)
    with tl.no_grad(), pytest.raises(IndexError):
        f(tl.tensor(X), tl.tensor(bad))


def test_index_copy_eager_and_captured_agree():
    def fn(x, i):
        return _z(x).index_copy(0, i, x[:2])
    f = _replay(fn)
    for i in ([3, 0], [1, 2]):
        with tl.no_grad():
            np.testing.assert_array_equal(f(tl.tensor(X), tl.tensor(i)).numpy(),
                                          fn(tl.tensor(X), tl.tensor(i)).numpy())
    with tl.no_grad(), pytest.raises(IndexError):
        f(tl.tensor(X), tl.tensor([0, 4]))


def test_index_copy_refuses_negative_index():
    with pytest.raises(IndexError):
        _z(tl.tensor(X)).index_copy(0, tl.tensor([0, -1]), tl.tensor(X[:2]))


# --- dtypes ----------------------------------------------------------------------------------
I2 = np.array([0, 1])
DT_FORMS = {
    "scatter_add": lambda m, x, i, s: m.scatter_add(x, 0, i, s),
    "scatter_add_method": lambda m, x, i, s: x.scatter_add(0, i, s),
    "scatter_add_": lambda m, x, i, s: x.scatter_add_(0, i, s),
    "scatter": lambda m, x, i, s: m.scatter(x, 0, i, s),
    "scatter_method": lambda m, x, i, s: x.scatter(0, i, s),
    "scatter_": lambda m, x, i, s: x.scatter_(0, i, s),
    "scatter_reduce_add": lambda m, x, i, s: x.scatter(0, i, s, reduce="add"),
    "scatter_reduce": lambda m, x, i, s: x.scatter_reduce(0, i, s, "sum"),
    "index_add": lambda m, x, i, s: x.index_add(0, i, s),
    "index_add_": lambda m, x, i, s: x.index_add_(0, i, s),
    "index_put": lambda m, x, i, s: x.index_put((i,), s),
    "index_put_": lambda m, x, i, s: x.index_put_((i,), s),
    "index_put_acc": lambda m, x, i, s: x.index_put((i,), s, accumulate=True),
    "index_put_acc_": lambda m, x, i, s: x.index_put_((i,), s, accumulate=True),
    "index_put_fn": lambda m, x, i, s: m.index_put(x, (i,), s),
    "index_copy": lambda m, x, i, s: x.index_copy(0, i, s),
    "index_copy_": lambda m, x, i, s: x.index_copy_(0, i, s),
    "index_copy_fn": lambda m, x, i, s: m.index_copy(x, 0, i, s),
    "put": lambda m, x, i, s: x.put(i, s),
    "put_": lambda m, x, i, s: x.put_(i, s),
    "put_acc_": lambda m, x, i, s: x.put_(i, s, accumulate=True),
}
DT_PAIRS = [("int64", "float64"), ("float32", "float64"), ("float64", "float32"),
            ("float32", "int64")]


@pytest.mark.parametrize("form", sorted(DT_FORMS))
@pytest.mark.parametrize("dst,src", DT_PAIRS)
def test_dtype_mismatch_refused_as_torch(form, dst, src):
    fn = DT_FORMS[form]
    sv = np.array([0.6, 1.7]).astype(src)
    with pytest.raises(RuntimeError):
        fn(torch, torch.zeros(2, dtype=getattr(torch, dst)), torch.tensor(I2),
           torch.tensor(sv))
    with pytest.raises(DTypeError, match=rf"(?s){dst}.*{src}|{src}.*{dst}"):
        fn(tl, tl.zeros(2, dtype=getattr(tl, dst)), tl.tensor(I2), tl.tensor(sv))
    # requires_grad takes the recorded path, not the in-place fast path
    if dst.startswith("float") and not form.endswith("_"):
        with pytest.raises(DTypeError):
            fn(tl, tl.zeros(2, dtype=getattr(tl, dst), requires_grad=True), tl.tensor(I2),
               tl.tensor(sv))


@pytest.mark.parametrize("form", sorted(DT_FORMS))
def test_same_dtype_values_equal_torch(form):
    fn = DT_FORMS[form]
    sv = np.array([0.6, 1.7])
    a = fn(tl, tl.full((3,), 0.5, dtype=tl.float64), tl.tensor(np.array([2, 0])),
           tl.tensor(sv))
    b = fn(torch, torch.full((3,), 0.5, dtype=torch.float64), torch.tensor(np.array([2, 0])),
           torch.tensor(sv))
    np.testing.assert_allclose(a.numpy(), b.numpy())


def test_scalar_sources_still_accepted():
    i = tl.tensor(I2)
    np.testing.assert_array_equal(tl.zeros(2, dtype=tl.int64).scatter(0, i, 2.9).numpy(),
                                  torch.zeros(2, dtype=torch.int64).scatter(
                                      0, torch.tensor(I2), 2.9).numpy())
    np.testing.assert_array_equal(tl.zeros(2, dtype=tl.int64).index_put((i,), 3).numpy(), [3, 3])
    np.testing.assert_array_equal(tl.zeros(2).index_put_((i,), 1.5).numpy(), [1.5, 1.5])
    np.testing.assert_array_equal(tl.zeros(2).scatter_(0, i, 2).numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(tl.zeros(2, dtype=tl.int64).index_fill(0, i, 2.9).numpy(),
                                  torch.zeros(2, dtype=torch.int64).index_fill(
                                      0, torch.tensor(I2), 2.9).numpy())


def test_gnn_weighted_degree_refused_not_truncated():
    w = tl.tensor([0.6, 0.7, 0.9])
    with pytest.raises(DTypeError, match="scatter_add"):
        tl.zeros(2, dtype=tl.int64).scatter_add(0, tl.tensor([0, 0, 1]), w)
    with pytest.raises(DTypeError, match="scatter_add_"):
        tl.zeros(3, 2).scatter_add_(0, tl.tensor([[0, 0], [1, 1]]),
                                    tl.ones(2, 2, dtype=tl.float64))


def test_dtype_refused_under_capture():
    f = tl.function(lambda x, i, s: x.index_put((i,), s, accumulate=True))
    with tl.no_grad(), pytest.raises(DTypeError):
        f(tl.zeros(2, dtype=tl.int64), tl.tensor(I2), tl.tensor([0.6, 0.7]))


# --- error classes -----------------------------------------------------------------------------
SHAPE_CASES = [
    (lambda m, f: m.zeros(4, 3, dtype=f).index_add(0, m.tensor([0, 1, 2]), m.ones(2, 3, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).index_add(0, m.tensor([[0, 1]]), m.ones(2, 3, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).scatter_add(0, m.tensor([0, 1]), m.ones(2, 3, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).scatter_add(0, m.tensor([[0, 1, 0]] * 3),
                                                     m.ones(2, 3, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).scatter_add(0, m.tensor([[0, 1, 0, 0]]),
                                                     m.ones(2, 4, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).scatter(0, m.tensor([0, 1]), m.ones(2, 3, dtype=f))),
    (lambda m, f: m.zeros(4, 3, dtype=f).gather(0, m.tensor([0, 1]))),
    (lambda m, f: m.zeros(4, 3, dtype=f).gather(0, m.tensor([[0, 1, 0, 0]]))),
    (lambda m, f: m.zeros(4, 3, dtype=f).index_put((m.tensor([0, 1]),), m.ones(3, 3, dtype=f))),
]


@pytest.mark.parametrize("k", range(len(SHAPE_CASES)))
def test_shape_errors_are_shape_errors(k):
    case = SHAPE_CASES[k]
    with pytest.raises((RuntimeError, IndexError)):
        case(torch, torch.float64)
    with pytest.raises(ShapeError):
        case(tl, tl.float64)


DTYPE_CASES = [
    lambda m, x: x.index_add(0, m.tensor([0.0, 1.0]), x[:2]),
    lambda m, x: x.scatter_add(0, m.tensor([[0.0, 1.0, 0.0]]), x[:1]),
    lambda m, x: x.scatter(0, m.tensor([[0.0, 1.0, 0.0]]), x[:1]),
    lambda m, x: x.gather(0, m.tensor([[0.0, 1.0, 0.0]])),
    lambda m, x: x.index_add(0, m.tensor([0, 1]), x[:2].float()),
]


@pytest.mark.parametrize("k", range(len(DTYPE_CASES)))
def test_dtype_errors_are_dtype_errors(k):
    case = DTYPE_CASES[k]
    with pytest.raises(RuntimeError):
        case(torch, torch.tensor(X))
    with pytest.raises(DTypeError):
        case(tl, tl.tensor(X))


# --- values and gradients vs PyTorch (float64) ---------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), m=st.integers(0, 6), c=st.integers(1, 3), seed=st.integers(0, 99))
def test_index_add_scatter_add_grads_match_torch(n, m, c, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, c))
    src = rng.standard_normal((m, c))
    idx = rng.integers(0, n, m)
    sidx = rng.integers(0, n, (m, c))
    res = []
    for mod in (tl, torch):
        x = mod.tensor(base, requires_grad=True)
        s = mod.tensor(src, requires_grad=True)
        i, si = mod.tensor(idx), mod.tensor(sidx)
        out = x.index_add(0, i, s, alpha=2.0) * 3 + x.scatter_add(0, si, s) ** 2 \
            + x.scatter(0, si, s).sin() + x.index_put((i,), s, accumulate=True)
        out.sum().backward()
        res.append([out.detach().numpy(), x.grad.numpy(), s.grad.numpy()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --- unique / searchsorted / isin vs PyTorch ---------------------------------------------------
_VALS = st.sampled_from(["int64", "int32", "float64", "float32"])


def _data(rng, dt, n, spread):
    if dt.startswith("int"):
        return rng.integers(-spread, spread, n).astype(dt)
    a = rng.integers(-spread, spread, n).astype(dt) / 4
    a[rng.random(n) < 0.01] = np.nan
    return a


@settings(max_examples=30, deadline=None)
@given(dt=_VALS, n=st.sampled_from([0, 1, 7, 600, 5000]),
       spread=st.sampled_from([3, 1000, 10 ** 8]), seed=st.integers(0, 99),
       inv=st.booleans(), cnt=st.booleans(), srt=st.booleans())
def test_unique_matches_torch(dt, n, spread, seed, inv, cnt, srt):
    d = _data(np.random.default_rng(seed), dt, n, spread)
    a = tl.unique(tl.tensor(d), sorted=srt, return_inverse=inv, return_counts=cnt)
    b = torch.unique(torch.tensor(d), sorted=True, return_inverse=inv, return_counts=cnt)
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.numpy().dtype == y.numpy().dtype
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_unique_dim_matches_torch():
    e = np.random.default_rng(0).integers(0, 30, (2, 3000))
    a = tl.unique(tl.tensor(e), dim=1, return_inverse=True, return_counts=True)
    b = torch.unique(torch.tensor(e), dim=1, return_inverse=True, return_counts=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@settings(max_examples=30, deadline=None)
@given(dt=_VALS, n=st.sampled_from([1, 50, 6000]), m=st.sampled_from([1, 100, 6000]),
       rows=st.sampled_from([0, 1, 3]), seed=st.integers(0, 99),
       side=st.sampled_from(["left", "right"]), i32=st.booleans(), sorter=st.booleans())
def test_searchsorted_matches_torch(dt, n, m, rows, seed, side, i32, sorter):
    rng = np.random.default_rng(seed)
    shape = (rows, n) if rows else (n,)
    seq = np.sort(_data(rng, dt, int(np.prod(shape)), 500).reshape(shape), -1)
    v = _data(rng, dt, (rows or 1) * m, 600).reshape((rows, m) if rows else (m,))
    kw = {"side": side, "out_int32": i32}
    targs, args = (torch.tensor(seq), torch.tensor(v)), (tl.tensor(seq), tl.tensor(v))
    if sorter:
        perm = np.stack([rng.permutation(n) for _ in range(rows or 1)]).reshape(shape)
        un = np.take_along_axis(seq, perm, -1)
        so = np.argsort(perm, -1)
        targs = (torch.tensor(un), torch.tensor(v))
        args = (tl.tensor(un), tl.tensor(v))
        a = tl.searchsorted(*args, sorter=tl.tensor(so), **kw)
        b = torch.searchsorted(*targs, sorter=torch.tensor(so), **kw)
    else:
        a, b = tl.searchsorted(*args, **kw), torch.searchsorted(*targs, **kw)
    assert a.numpy().dtype == b.numpy().dtype
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@settings(max_examples=30, deadline=None)
@given(dt=_VALS, n=st.sampled_from([1, 100, 6000]), m=st.sampled_from([1, 70, 6000]),
       spread=st.sampled_from([5, 3000, 10 ** 8]), seed=st.integers(0, 99),
       invert=st.booleans())
def test_isin_matches_torch(dt, n, m, spread, seed, invert):
    rng = np.random.default_rng(seed)
    a, b = _data(rng, dt, n, spread).reshape(-1, 1), _data(rng, dt, m, spread)
    got = tl.isin(tl.tensor(a), tl.tensor(b), invert=invert).numpy()
    want = torch.isin(torch.tensor(a), torch.tensor(b), invert=invert).numpy()
    np.testing.assert_array_equal(got, want)
