"""Session 22e: einsum as one matrix product in the output's layout, max/min(dim=) and
argmax/argmin on amax's fast path, gather of whole trailing rows, histc by bincount,
one_hot by rows of an identity, random ``*_like`` refusing integer inputs, and the indexing
message naming the right dimension. Values and gradients against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib.errors import DTypeError
from tensorlib.ops.linalg import _einsum_matmul

torch = pytest.importorskip("torch")


def _pair(a, requires_grad=True):
    return (tl.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _close(t, ref, **kw):
    np.testing.assert_allclose(t.numpy(), ref.detach().numpy(), **kw)


# --- einsum --------------------------------------------------------------------------------
# sizes large enough (>= 100000 multiply-adds) for the BLAS route
EINSUM_CASES = [
    ("sec,ecd->sd", {"s": 128, "e": 4, "c": 20, "d": 16}),
    ("sd,ecd->sec", {"s": 128, "e": 4, "c": 20, "d": 16}),
    ("bij,bjk->bik", {"b": 4, "i": 40, "j": 30, "k": 50}),
    ("bhqd,bhkd->bhqk", {"b": 2, "h": 3, "q": 40, "k": 30, "d": 16}),
    ("ij,jk->ik", {"i": 60, "j": 50, "k": 40}),
    ("ij,jk->ki", {"i": 60, "j": 50, "k": 40}),
    ("bij,bjk->ibk", {"b": 4, "i": 40, "j": 30, "k": 50}),     # interleaved: one copy
    ("bij,bjk->bki", {"b": 4, "i": 40, "j": 30, "k": 50}),
    ("bijx,bjky->bik", {"b": 3, "i": 30, "j": 20, "k": 40, "x": 3, "y": 2}),  # summed alone
    ("bi,bj->bij", {"b": 64, "i": 50, "j": 40}),               # no contraction
]


@pytest.mark.parametrize("sub,size", EINSUM_CASES)
@pytest.mark.parametrize("layout", ["c", "transposed"])
def test_einsum_values_grads_and_layout_match_torch(sub, size, layout):
    rng = np.random.default_rng(0)
    lhs, out = sub.split("->")
    arrays = []
    for s in lhs.split(","):
        a = rng.standard_normal([size[c] for c in s])
        if layout == "transposed":      # a non-contiguous operand, same values
            a = np.ascontiguousarray(a.T).T
        arrays.append(a)
    pairs = [_pair(a) for a in arrays]
    y = tl.einsum(sub, *[p[0] for p in pairs])
    ty = torch.einsum(sub, *[p[1] for p in pairs])
    _close(y, ty, rtol=1e-10, atol=1e-10)
    assert y._data.flags.c_contiguous       # no transposed view for the next op to copy
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(tl.tensor(g))
    ty.backward(torch.tensor(g))
    for (t, tt) in pairs:
        _close(t.grad, tt.grad, rtol=1e-10, atol=1e-10)
        assert t.grad._data.flags.c_contiguous


def test_einsum_float32_moe_case_matches_torch():
    rng = np.random.default_rng(1)
    a = (rng.random((256, 4, 40)) < 0.1).astype(np.float32)
    w = rng.standard_normal((4, 40, 16)).astype(np.float32)
    (x, tx), (o, to) = _pair(a), _pair(w)
    y, ty = tl.einsum("sec,ecd->sd", x, o), torch.einsum("sec,ecd->sd", tx, to)
    assert y.dtype == tl.float32
    _close(y, ty, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal((256, 16)).astype(np.float32)
    y.backward(tl.tensor(g))
    ty.backward(torch.tensor(g))
    _close(x.grad, tx.grad, rtol=1e-5, atol=1e-5)
    _close(o.grad, to.grad, rtol=1e-5, atol=1e-4)


def test_einsum_grad_of_grad_matches_torch():
    rng = np.random.default_rng(2)
    (a, ta), (b, tb) = _pair(rng.standard_normal((4, 30, 40))), \
        _pair(rng.standard_normal((4, 40, 50)))
    y = tl.einsum("bij,bjk->bik", a, b)
    ty = torch.einsum("bij,bjk->bik", ta, tb)
    (ga,) = tl.autograd.grad((y * y).sum(), [a], create_graph=True)
    (tga,) = torch.autograd.grad((ty * ty).sum(), [ta], create_graph=True)
    (gb,) = tl.autograd.grad((ga * ga).sum(), [b])
    (tgb,) = torch.autograd.grad((tga * tga).sum(), [tb])
    _close(gb, tgb, rtol=1e-9, atol=1e-6)


_LETTERS = "abcdefg"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_einsum_matmul_route_matches_numpy(data):
    """The BLAS route itself, on random two-operand subscripts: NumPy's values, C order,
    or None (NumPy's own loop) for what it does not take."""
    sa = "".join(data.draw(st.permutations(_LETTERS))[:data.draw(st.integers(1, 4))])
    sb = "".join(data.draw(st.permutations(_LETTERS))[:data.draw(st.integers(1, 4))])
    avail = sorted(set(sa + sb))
    out = "".join(data.draw(st.permutations(avail))[:data.draw(st.integers(0, len(avail)))])
    sub = f"{sa},{sb}->{out}"
    size = {c: data.draw(st.integers(1, 4)) for c in avail}
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.complex128]))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    a = rng.standard_normal([size[c] for c in sa]).astype(dtype)
    b = rng.standard_normal([size[c] for c in sb]).astype(dtype)
    if data.draw(st.booleans()):
        a = np.ascontiguousarray(a.T).T
    r = _einsum_matmul(a, b, sub)
    if r is None:
        return
    want = np.einsum(sub, a, b)
    assert r.shape == want.shape and r.dtype == want.dtype and r.flags.c_contiguous
    np.testing.assert_allclose(r, want, rtol=1e-4, atol=1e-4)


def test_einsum_matmul_route_declines_diagonals_broadcasting_and_ints():
    a, b = np.ones((3, 3)), np.ones((3, 4))
    assert _einsum_matmul(a, b, "ii,ij->j") is None
    assert _einsum_matmul(np.ones((1, 4)), np.ones((3, 4)), "ij,kj->ik") is not None
    assert _einsum_matmul(np.ones((1, 4)), np.ones((3, 4)), "ij,ij->ij") is None
    assert _einsum_matmul(np.ones((2, 3), np.int64), np.ones((3, 4), np.int64),
                          "ij,jk->ik") is None


def test_einsum_errors_are_unchanged():
    with pytest.raises(ValueError, match="einsum"):
        tl.einsum("ij,jk->ik", tl.ones(200, 300), tl.ones(301, 400))


# --- max / min with dim, argmax / argmin ---------------------------------------------------
MAX_SHAPES = [((64, 8, 16), -1), ((32, 40, 24), 2), ((64, 63), 1), ((8, 16, 64, 32), 1),
              ((16, 8, 512), 0), ((8, 70, 300), 1), ((4, 5, 6), 1)]


@pytest.mark.parametrize("shape,dim", MAX_SHAPES)
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_dim_values_indices_grads_match_torch(shape, dim, name, dtype):
    rng = np.random.default_rng(3)
    # a few levels: many ties, which take the first index, as PyTorch
    a = rng.integers(-3, 4, shape).astype(dtype)
    x, tx = _pair(a)
    v, i = getattr(x, name)(dim=dim)
    tv, ti = getattr(tx, name)(dim=dim)
    _close(v, tv)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert i.dtype == tl.int64
    g = rng.standard_normal(tuple(tv.shape)).astype(dtype)
    v.backward(tl.tensor(g))
    tv.backward(torch.tensor(g))
    _close(x.grad, tx.grad)


@pytest.mark.parametrize("shape,dim", MAX_SHAPES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin_match_torch(shape, dim, keepdim):
    rng = np.random.default_rng(4)
    for a in (rng.standard_normal(shape).astype(np.float32),
              rng.integers(-5, 5, shape).astype(np.float32),
              rng.integers(-5, 5, shape), rng.integers(0, 9, shape).astype(np.uint8)):
        t = torch.tensor(a)
        for f in ("argmax", "argmin"):
            got = getattr(tl, f)(tl.tensor(a), dim=dim, keepdim=keepdim).numpy()
            np.testing.assert_array_equal(got, getattr(torch, f)(t, dim=dim,
                                                                 keepdim=keepdim).numpy())


def test_max_dim_non_contiguous_input_matches_torch():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((16, 64, 32)).astype(np.float32)
    x, tx = _pair(a)
    for d in (0, 1, 2):
        xs, txs = x.transpose(0, 2)[:, ::2], tx.transpose(0, 2)[:, ::2]
        v, i = xs.max(dim=d)
        tv, ti = txs.max(dim=d)
        _close(v, tv)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        v.sum().backward()
        tv.sum().backward()
        _close(x.grad, tx.grad)


@pytest.mark.parametrize("shape,dim", [((64, 8, 16), -1), ((8, 16, 64, 32), 1)])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim_nan_matches_torch(shape, dim, name):
    rng = np.random.default_rng(6)
    a = rng.standard_normal(shape).astype(np.float32)
    a[rng.random(shape) < 0.05] = np.nan
    x, tx = _pair(a)
    v, i = getattr(x, name)(dim=dim)
    tv, ti = getattr(tx, name)(dim=dim)
    _close(v, tv)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    v.backward(tl.ones(tuple(v.shape)))
    tv.backward(torch.ones(tuple(tv.shape)))
    _close(x.grad, tx.grad)


def test_max_dim_empty_and_zero_rows():
    with pytest.raises(ValueError, match="max"):
        tl.zeros(4, 0).max(dim=1)
    with pytest.raises(IndexError):
        torch.zeros(4, 0).max(dim=1)
    v, i = tl.zeros(0, 16).max(dim=1)        # no rows: empty results, as PyTorch
    tv, ti = torch.zeros(0, 16).max(dim=1)
    assert tuple(v.shape) == tuple(tv.shape) and tuple(i.shape) == tuple(ti.shape)


# --- gather of whole trailing rows -----------------------------------------------------------
GATHER_CASES = [((4, 50, 16), 1, (4, 30, 1)), ((3, 40, 8, 5), 1, (3, 20, 1, 1)),
                ((50, 6, 7), 0, (20, 1, 1)), ((2, 3, 40, 8), 2, (2, 3, 25, 1)),
                ((2, 3, 40, 8), -2, (2, 3, 25, 1))]


@pytest.mark.parametrize("shape,dim,ishape", GATHER_CASES)
def test_gather_expanded_index_values_grads_match_torch(shape, dim, ishape):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shape)
    d = dim % len(shape)
    idx = rng.integers(0, shape[d], ishape)        # repeats: gradients add up
    x, tx = _pair(a)
    full = [-1] * d + [-1] + list(shape[d + 1:])
    y = tl.gather(x, dim, tl.tensor(idx).expand(*full))
    ty = torch.gather(tx, dim, torch.tensor(idx).expand(*full))
    _close(y, ty)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(tl.tensor(g))
    ty.backward(torch.tensor(g))
    _close(x.grad, tx.grad, rtol=1e-12)


def test_gather_expanded_index_non_contiguous_input_and_grad_of_grad():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((6, 16, 40))
    x, tx = _pair(a)
    idx = rng.integers(0, 40, (6, 1, 1)).repeat(1, 1)
    xs, txs = x.transpose(1, 2), tx.transpose(1, 2)       # (6, 40, 16), strided
    y = tl.gather(xs, 1, tl.tensor(idx).expand(-1, -1, 16))
    ty = torch.gather(txs, 1, torch.tensor(idx).expand(-1, -1, 16))
    _close(y, ty)
    (g,) = tl.autograd.grad((y ** 2).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad((ty ** 2).sum(), [tx], create_graph=True)
    _close(g, tg)
    (gg,) = tl.autograd.grad((g ** 3).sum(), [x])
    (tgg,) = torch.autograd.grad((tg ** 3).sum(), [tx])
    _close(gg, tgg)


def test_gather_expanded_index_errors_and_take_along_axis_wraps():
    x = tl.ones(2, 10, 4)
    bad = tl.tensor(np.array([[[3], [10]], [[0], [1]]])).expand(-1, -1, 4)
    with pytest.raises(IndexError, match="gather"):
        tl.gather(x, 1, bad)
    with pytest.raises(IndexError, match="gather"):
        tl.gather(x, 1, -bad.abs() - 1)
    a = np.arange(80.0).reshape(2, 10, 4)
    neg = np.array([[[-1], [2]], [[-10], [0]]])
    got = tl.take_along_axis(tl.tensor(a), tl.tensor(neg).expand(-1, -1, 4), 1).numpy()
    np.testing.assert_array_equal(got, np.take_along_axis(a, np.broadcast_to(neg, (2, 2, 4)),
                                                          1))


def test_gather_empty_index():
    x, tx = _pair(np.ones((2, 5, 4)))
    y = tl.gather(x, 1, tl.zeros((2, 0, 1), dtype=tl.int64).expand(-1, -1, 4))
    ty = torch.gather(tx, 1, torch.zeros((2, 0, 1), dtype=torch.long).expand(-1, -1, 4))
    assert tuple(y.shape) == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    _close(x.grad, tx.grad)


# --- histc / one_hot -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bins,lo,hi", [(8, 0, 0), (5, -1, 1), (100, 0, 0), (3, -0.5, 0.2),
                                        (7, 0.25, 0.25)])
def test_histc_matches_torch(dtype, bins, lo, hi):
    rng = np.random.default_rng(9)
    v = rng.standard_normal(8192).astype(dtype)
    v[::101] = -3
    if lo != hi:
        v[::97] = np.inf
        v[::89] = np.nan            # ignored with an explicit range, as PyTorch
    got = tl.histc(tl.tensor(v), bins, lo, hi)
    want = torch.histc(torch.tensor(v), bins, lo, hi)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-4, 4, width=32), min_size=0, max_size=60),
       st.integers(1, 12), st.sampled_from([(0.0, 0.0), (-1.0, 1.0), (-4.0, 0.5)]))
def test_histc_edges_match_torch(vals, bins, rng_):
    v = np.array(vals, np.float32)
    got = tl.histc(tl.tensor(v), bins, *rng_).numpy()
    np.testing.assert_array_equal(got, torch.histc(torch.tensor(v), bins, *rng_).numpy())


def test_histc_errors():
    with pytest.raises(Exception, match="histc"):
        tl.histc(tl.tensor([1.0, np.nan]), 4)
    with pytest.raises(TypeError, match="histc"):
        tl.histc(tl.tensor([1, 2]), 4)
    with pytest.raises(ValueError, match="histc"):
        tl.histc(tl.tensor([1.0]), 4, 2, 1)


@pytest.mark.parametrize("shape,classes", [((4096, 2), 8), ((5,), 3), ((3, 4), 100),
                                           ((0, 2), 4), ((), 5), ((7, 3), -1)])
def test_one_hot_matches_torch(shape, classes):
    rng = np.random.default_rng(10)
    i = rng.integers(0, 5 if classes == -1 else classes, shape)
    for dt in (np.int64, np.int32):
        got = tl.nn.functional.one_hot(tl.tensor(i.astype(dt)), classes)
        want = torch.nn.functional.one_hot(torch.tensor(i), classes)
        assert got.dtype == tl.int64 and tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_one_hot_errors():
    with pytest.raises(ValueError, match="one_hot"):
        tl.nn.functional.one_hot(tl.tensor([0, 8]), 8)
    with pytest.raises(ValueError, match="one_hot"):
        tl.nn.functional.one_hot(tl.tensor([-1, 2]), 80)
    with pytest.raises(TypeError, match="one_hot"):
        tl.nn.functional.one_hot(tl.tensor([0.0, 1.0]), 3)


# --- random *_like ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_random_like_refuses_integer_inputs_as_torch(name, dtype):
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(torch.zeros(3, dtype=getattr(torch, dtype)))
    x = tl.zeros(3, dtype=getattr(tl, dtype))
    with pytest.raises(DTypeError, match=f"{name}.*dtype=tl.float32"):
        getattr(tl, name)(x)
    # a floating dtype= makes it valid, in both
    for tdt, ldt in ((torch.float64, tl.float64), (torch.float32, tl.float32)):
        assert getattr(torch, name)(torch.zeros(3, dtype=getattr(torch, dtype)),
                                    dtype=tdt).dtype == tdt
        r = getattr(tl, name)(x, dtype=ldt)
        assert r.dtype == ldt and tuple(r.shape) == (3,)


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
def test_random_like_keeps_float_and_complex_dtypes(name):
    for ldt, tdt in ((tl.float16, torch.float16), (tl.float64, torch.float64),
                     (tl.complex64, torch.complex64)):
        assert getattr(torch, name)(torch.zeros(2, dtype=tdt)).dtype == tdt
        assert getattr(tl, name)(tl.zeros(2, dtype=ldt)).dtype == ldt
    with pytest.raises(DTypeError, match="floating dtype"):
        getattr(tl, name)(tl.ones(2), dtype=tl.int64)


def test_randint_like_stays_valid():
    r = tl.randint_like(tl.zeros(4, dtype=tl.int64), 0, 5)
    assert r.dtype == tl.int64 and 0 <= int(r.min()) and int(r.max()) < 5


# --- the indexing message ------------------------------------------------------------------
@pytest.mark.parametrize("key,dim", [
    (lambda m: (m.arange(2).view(-1, 1), m.tensor([[0, 10]])), 1),
    (lambda m: (m.tensor([0, 2]),), 0),
    (lambda m: (slice(None), m.tensor([11])), 1),
    (lambda m: (Ellipsis, m.tensor([3])), 2),
    (lambda m: (None, m.tensor([1]), m.tensor([-11])), 1),
])
def test_index_error_names_the_dimension(key, dim):
    with pytest.raises(IndexError, match=f"for dimension {dim} with size"):
        tl.zeros(2, 10, 3)[key(tl)]


def test_index_error_of_broadcast_index_arrays_as_torch():
    # (PyTorch numbers a lone index array after a slice within its own subspace: dim 0)
    with pytest.raises(IndexError, match="index 10 is out of bounds for dimension 1 with "
                                         "size 10"):
        torch.zeros(2, 10, 3)[torch.arange(2).view(-1, 1), torch.tensor([[0, 10]])]
    with pytest.raises(IndexError, match="index 10 is out of bounds for dimension 1 with "
                                         "size 10"):
        tl.zeros(2, 10, 3)[tl.arange(2).view(-1, 1), tl.tensor([[0, 10]])]


@pytest.mark.parametrize("shape,dim", [((64, 8, 16), -1), ((8, 16, 64, 32), 1), ((5, 7), 0)])
def test_max_dim_and_gather_grad_of_grad_match_torch(shape, dim):
    rng = np.random.default_rng(11)
    x, tx = _pair(rng.standard_normal(shape))
    v, _ = x.max(dim=dim)
    tv, _ = tx.max(dim=dim)
    (g,) = tl.autograd.grad((v ** 3).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad((tv ** 3).sum(), [tx], create_graph=True)
    _close(g, tg)
    (gg,) = tl.autograd.grad((g ** 2).sum(), [x])
    (tgg,) = torch.autograd.grad((tg ** 2).sum(), [tx])
    _close(gg, tgg)
    d = dim % len(shape)
    idx = rng.integers(0, shape[d], shape)           # a general (not expanded) index
    y = tl.gather(x, d, tl.tensor(idx))
    ty = torch.gather(tx, d, torch.tensor(idx))
    (g,) = tl.autograd.grad((y ** 3).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad((ty ** 3).sum(), [tx], create_graph=True)
    _close(g, tg)
    (gg,) = tl.autograd.grad((g ** 2).sum(), [x])
    (tgg,) = torch.autograd.grad((tg ** 2).sum(), [tx])
    _close(gg, tgg)
