"""Sparse COO elementwise and indexing ops (review C, finding 8): the zero-preserving unary
functions, ``pow(scalar)``, ``index_select``, ``narrow_copy`` and ``sparse_mask``, compared
with PyTorch on values and (float64) gradients, for coalesced and uncoalesced inputs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")


def _coo(seed, shape=(4, 5), nnz=7, dense=(), scale=1.0):
    """Random indices (with duplicates) and values whose duplicate sums stay in
    (-scale, scale)."""
    r = np.random.RandomState(seed)
    ind = np.stack([r.randint(0, n, nnz) for n in shape]).astype(np.int64)
    ind[:, -1] = ind[:, 0]      # at least one duplicate
    val = r.uniform(-scale, scale, (nnz,) + tuple(dense)) / nnz * 2
    return ind, val, tuple(shape) + tuple(dense)


def _coalesce_np(ind, val, size):
    t = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size).coalesce()
    return t._indices().numpy(), t._values().numpy()


def _inputs(seed, coalesced, dense=(), scale=1.0, shape=(4, 5), nnz=7):
    ind, val, size = _coo(seed, shape, nnz, dense, scale)
    if coalesced:
        ind, val = _coalesce_np(ind, val, size)
    return ind, val, size


def _pair(ind, val, size, coalesced):
    """A tensorlib and a torch sparse tensor over float64 values that require grad."""
    v = tl.tensor(val, dtype=tl.float64, requires_grad=True)
    tv = torch.tensor(val, requires_grad=True)
    s = tl.sparse_coo_tensor(tl.tensor(ind), v, size, is_coalesced=coalesced)
    ts = torch.sparse_coo_tensor(torch.tensor(ind), tv, size, is_coalesced=coalesced)
    return s, ts, v, tv


def _np(x):
    if isinstance(x, np.ndarray):
        return x
    if getattr(x, "is_sparse", False):
        x = x.to_dense()
    return x.detach().numpy()


def _close(a, b, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)


def _weight(size, seed=99):
    w = np.random.RandomState(seed).randn(*size)
    return tl.tensor(w), torch.tensor(w)


UNARY = ["abs", "sgn", "sign", "sqrt", "sin", "sinh", "tan", "tanh", "asin", "asinh", "atan",
         "atanh", "ceil", "floor", "round", "trunc", "frac", "expm1", "log1p", "erf", "erfinv",
         "deg2rad", "rad2deg", "relu", "nan_to_num", "square", "neg", "conj", "positive"]
PREDICATES = ["signbit", "isnan", "isinf", "isposinf", "isneginf"]


# --- unary ------------------------------------------------------------------------------
@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_pattern_and_grad(name, coalesced):
    ind, val, size = _inputs(hash(name) % 1000, coalesced, scale=0.9)
    if name == "sqrt":
        val = np.abs(val)
    s, ts, v, tv = _pair(ind, val, size, coalesced)
    out, tout = getattr(s, name)(), getattr(ts, name)()
    assert out.is_sparse and out.shape == tuple(tout.shape)
    assert out.is_coalesced() == tout.is_coalesced()
    assert out._nnz() == tout._nnz()
    np.testing.assert_array_equal(out._indices().numpy(), tout._indices().numpy())
    _close(out._values(), tout._values())
    # gradient w.r.t. the values: PyTorch's sparse backward is missing for most of these, so
    # the reference is the dense function on torch's coalesced values
    w, tw = _weight(size)
    (out.to_dense() * w).sum().backward()
    if name in ("neg", "conj", "positive"):
        ref = getattr(torch.sparse_coo_tensor(torch.tensor(ind), tv, size), name)()
    else:
        c = torch.sparse_coo_tensor(torch.tensor(ind), tv, size).coalesce()
        ref = torch.sparse_coo_tensor(c.indices(), getattr(c.values(), name)(), size)
    (ref.to_dense() * tw).sum().backward()
    _close(v.grad, tv.grad)


@pytest.mark.parametrize("name", ["abs", "neg", "relu", "square", "log1p", "frac"])
@pytest.mark.parametrize("coalesced", [False, True])
def test_unary_sparse_leaf_grad_matches_torch_autograd(name, coalesced):
    """Where PyTorch differentiates the sparse op itself, the leaf gradients agree."""
    ind, val, size = _inputs(5, coalesced, scale=0.9)
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size, requires_grad=True,
                             is_coalesced=coalesced)
    ts = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size,
                                 requires_grad=True, is_coalesced=coalesced)
    w, tw = _weight(size)
    (getattr(s, name)().to_dense() * w).sum().backward()
    (getattr(ts, name)().to_dense() * tw).sum().backward()
    _close(s.grad, ts.grad.to_dense() * (ts.detach().to_dense() != 0))


@pytest.mark.parametrize("name", PREDICATES)
def test_unary_predicates(name):
    ind, val, size = _inputs(3, False)
    val[0], val[1], val[2] = np.nan, np.inf, -np.inf
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    ts = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size)
    out, tout = getattr(s, name)(), getattr(ts, name)()
    assert out.dtype == tl.bool and out.is_coalesced()
    np.testing.assert_array_equal(_np(out), tout.to_dense().numpy())


def test_unary_with_dense_dims_and_arguments():
    ind, val, size = _inputs(4, False, dense=(3,), scale=0.9)
    val[0, 1] = np.nan
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    ts = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size)
    _close(s.tanh(), ts.tanh())
    _close(s.nan_to_num(2.5), ts.nan_to_num(2.5))
    _close(abs(s), ts.abs())
    _close(+s, ts)


def test_unary_second_derivative():
    ind, val, size = _inputs(8, False, scale=0.9)
    v = tl.tensor(val, requires_grad=True)
    s = tl.sparse_coo_tensor(tl.tensor(ind), v, size)
    g, = tl.autograd.grad(s.sin().to_dense().sum(), [v], create_graph=True)
    g2, = tl.autograd.grad(g.sum(), [v])
    # each entry's derivatives are those of sin at its position's summed value; g.sum()
    # counts a position once per entry there
    tot = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size).to_dense()
    at = tot[tuple(torch.tensor(ind))].numpy()
    _, inv, cnt = np.unique(np.ravel_multi_index(tuple(ind), size), return_inverse=True,
                            return_counts=True)
    assert cnt.max() > 1
    _close(g, np.cos(at))
    _close(g2, -np.sin(at) * cnt[inv.reshape(-1)])


def test_unary_without_sparse_support_still_raises():
    ind, val, size = _inputs(0, True)
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    for name in ("cos", "exp", "log", "sigmoid", "reciprocal", "erfc", "narrow"):
        with pytest.raises(NotImplementedError, match=f"{name}: not supported for sparse COO "
                                                      r"tensors .*call \.to_dense\(\)"):
            getattr(s, name)(0, 0, 1) if name == "narrow" else getattr(s, name)()
    with pytest.raises(NotImplementedError, match="__rpow__: not supported"):
        2 ** s


# --- pow --------------------------------------------------------------------------------
@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, 2.5, 1])
def test_pow_scalar(exponent, coalesced):
    ind, val, size = _inputs(11, coalesced)
    val = np.abs(val) + 0.1
    s, ts, v, tv = _pair(ind, val, size, coalesced)
    out, tout = s.pow(exponent), ts.pow(exponent)
    assert out.is_coalesced() and tout.is_coalesced() and out._nnz() == tout._nnz()
    _close(out, tout)
    _close(s ** exponent, tout)
    w, tw = _weight(size)
    (out.to_dense() * w).sum().backward()
    if exponent == 1:   # PyTorch's backward takes pow(self, 0), which it refuses on sparse
        tout = torch.sparse_coo_tensor(torch.tensor(ind), tv, size).coalesce()
    (tout.to_dense() * tw).sum().backward()     # PyTorch differentiates sparse pow
    _close(v.grad, tv.grad)


def test_pow_errors():
    ind, val, size = _inputs(0, True)
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    with pytest.raises(RuntimeError, match="zeroth power"):
        s.pow(0)
    with pytest.raises(RuntimeError, match="zeroth power"):
        s ** 0.0
    with pytest.raises(RuntimeError, match="pow: a sparse tensor's exponent must be a real "
                                           "scalar"):
        s.pow(tl.tensor(2.0))
    with pytest.raises(RuntimeError, match="real scalar"):
        s.pow(2j)


# --- index_select -----------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), coalesced=st.booleans(), dim=st.integers(-3, 2),
       data=st.data())
def test_index_select_matches_torch(seed, coalesced, dim, data):
    ind, val, size = _inputs(seed, coalesced, dense=(3,), nnz=9)
    n = size[dim]
    # PyTorch wraps negative indices on sparse dims only (not on dense ones, nor densely)
    idx = data.draw(st.lists(st.integers(-n if dim % 3 < 2 else 0, n - 1), max_size=6))
    s, ts, v, tv = _pair(ind, val, size, coalesced)
    out = s.index_select(dim, tl.tensor(np.array(idx, np.int64)))
    tout = ts.index_select(dim, torch.tensor(idx, dtype=torch.int64))
    assert out.shape == tuple(tout.shape) and out.sparse_dim() == 2
    assert out.is_coalesced() == tout.is_coalesced()
    _close(out, tout)
    # PyTorch has no sparse index_select backward: the reference goes through to_dense
    w, tw = _weight(tuple(tout.shape), seed)
    (out.to_dense() * w).sum().backward()
    tref = torch.sparse_coo_tensor(torch.tensor(ind), tv, size).to_dense()
    (tref.index_select(dim, torch.tensor(idx, dtype=torch.int64) % n) * tw).sum().backward()
    _close(v.grad, tv.grad)


def test_index_select_errors():
    ind, val, size = _inputs(0, False)
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    with pytest.raises(IndexError, match="index contains 4 that is out of range"):
        s.index_select(0, tl.tensor([1, 4]))
    with pytest.raises(IndexError, match="index contains -6 that is out of range"):
        s.index_select(1, tl.tensor([-6]))
    with pytest.raises(IndexError, match="1-D dense integer tensor"):
        s.index_select(0, tl.tensor([[1]]))
    with pytest.raises(IndexError, match="1-D dense integer tensor"):
        s.index_select(0, tl.tensor([1.0]))
    with pytest.raises(IndexError, match="1-D dense integer tensor"):
        s.index_select(0, [1])
    with pytest.raises(IndexError, match="index_select: dim 2 is out of range"):
        s.index_select(2, tl.tensor([0]))


# --- narrow_copy ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), coalesced=st.booleans(), dim=st.integers(-3, 2),
       data=st.data())
def test_narrow_copy_matches_torch(seed, coalesced, dim, data):
    ind, val, size = _inputs(seed, coalesced, dense=(3,), nnz=9)
    n = size[dim]
    start = data.draw(st.integers(0, n))
    length = data.draw(st.integers(0, n - start))
    s, ts, v, tv = _pair(ind, val, size, coalesced)
    # (PyTorch's sparse narrow_copy refuses negative dims, its dense one takes them)
    out, tout = s.narrow_copy(dim, start, length), ts.narrow_copy(dim % 3, start, length)
    assert out.shape == tuple(tout.shape) and out._nnz() == tout._nnz()
    assert out.is_coalesced() == tout.is_coalesced()
    _close(out, tout)
    w, tw = _weight(tuple(tout.shape), seed)
    (out.to_dense() * w).sum().backward()
    tref = torch.sparse_coo_tensor(torch.tensor(ind), tv, size).to_dense()
    (tref.narrow(dim, start, length) * tw).sum().backward()
    _close(v.grad, tv.grad)


def test_narrow_copy_negative_start_and_errors():
    ind, val, size = _inputs(1, True)
    s = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    ts = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size)
    _close(s.narrow_copy(1, -3, 2), ts.to_dense().narrow(1, -3, 2))
    with pytest.raises(RuntimeError, match="narrow_copy.*outside"):
        s.narrow_copy(0, 3, 2)
    with pytest.raises(RuntimeError, match="length must be non-negative"):
        s.narrow_copy(0, 1, -1)
    with pytest.raises(IndexError, match="narrow_copy: dim -3 is out of range"):
        s.narrow_copy(-3, 0, 1)


# --- sparse_mask ------------------------------------------------------------------------
@pytest.mark.parametrize("dense", [(), (2,)])
@pytest.mark.parametrize("coalesced", [False, True])
def test_dense_sparse_mask(coalesced, dense):
    ind, val, size = _inputs(21, coalesced, dense=dense)
    x = np.random.RandomState(3).randn(*size)
    xt, txt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    m = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size, is_coalesced=coalesced)
    tm = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size,
                                 is_coalesced=coalesced)
    out, tout = xt.sparse_mask(m), txt.sparse_mask(tm)
    assert out.is_sparse and out.is_coalesced() == tout.is_coalesced()
    np.testing.assert_array_equal(out._indices().numpy(), tout._indices().numpy())
    _close(out._values(), tout._values())
    w, tw = _weight(size)
    (out.to_dense() * w).sum().backward()
    (tout.to_dense() * tw).sum().backward()
    _close(xt.grad, txt.grad)
    assert tl.sparse.sparse_mask(xt, m).shape == size


@pytest.mark.parametrize("coalesced", [False, True])
def test_sparse_sparse_mask(coalesced):
    ind, val, size = _inputs(30, False, nnz=10)
    mind, mval, _ = _inputs(31, coalesced, nnz=8)
    s, ts, v, tv = _pair(ind, val, size, False)
    m = tl.sparse_coo_tensor(tl.tensor(mind), tl.tensor(mval), size, is_coalesced=coalesced)
    tm = torch.sparse_coo_tensor(torch.tensor(mind), torch.tensor(mval), size,
                                 is_coalesced=coalesced)
    out, tout = s.sparse_mask(m), ts.sparse_mask(tm)
    assert out.is_coalesced() == tout.is_coalesced()
    np.testing.assert_array_equal(out._indices().numpy(), tout._indices().numpy())
    _close(out._values(), tout._values())
    w, tw = _weight(size)
    (out.to_dense() * w).sum().backward()
    tref = torch.sparse_coo_tensor(torch.tensor(ind), tv, size).to_dense().sparse_mask(tm)
    (tref.to_dense() * tw).sum().backward()
    _close(v.grad, tv.grad)


def test_sparse_mask_errors():
    ind, val, size = _inputs(0, True)
    m = tl.sparse_coo_tensor(tl.tensor(ind), tl.tensor(val), size)
    with pytest.raises(RuntimeError, match=r"sparse_mask\(\): operands have incompatible "
                                           "sizes"):
        tl.ones(4, 4).sparse_mask(m)
    with pytest.raises(TypeError, match="sparse_mask: mask must be a sparse COO tensor"):
        tl.ones(*size).sparse_mask(tl.ones(*size))
    with pytest.raises(RuntimeError, match="same sparse_dim"):
        m.sparse_mask(tl.ones(*size).to_sparse(1))
