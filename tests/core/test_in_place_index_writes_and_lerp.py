"""Direct in-place writes of the indexing methods and the one-temporary lerp (session 20,
findings F2/F4): values, gradients, version counters, views and errors against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _pair(a):
    return tl.tensor(a.copy()), torch.tensor(a.copy())


def _close(t, r, tol=1e-12):
    np.testing.assert_allclose(t.detach().numpy(), r.detach().numpy(), rtol=tol, atol=tol)


rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4))
SRC = rng.standard_normal((3, 4))
IDX = np.array([4, 0, 2])


# each case: (method, tensorlib args, torch args) built from (x, src, idx) pairs
def _cases():
    ix_l, ix_t = tl.tensor(IDX), torch.tensor(IDX)
    dup_l, dup_t = tl.tensor([1, 1, 5]), torch.tensor([1, 1, 5])
    sidx = rng.integers(0, 6, (2, 4))
    si_l, si_t = tl.tensor(sidx), torch.tensor(sidx)
    s_l, s_t = tl.tensor(SRC), torch.tensor(SRC)
    m = rng.random((6, 4)) > 0.5
    return [
        ("index_copy_", (0, ix_l, s_l), (0, ix_t, s_t)),
        ("index_copy_", (1, tl.tensor([3, 0]), tl.tensor(X[:, :2].copy())),
         (1, torch.tensor([3, 0]), torch.tensor(X[:, :2].copy()))),
        ("index_put_", ((ix_l,), s_l), ((ix_t,), s_t)),
        ("index_put_", ((ix_l,), s_l[0]), ((ix_t,), s_t[0])),       # broadcast
        ("index_put_", ((dup_l,), s_l, True), ((dup_t,), s_t, True)),   # duplicates add
        ("index_put_", ((tl.tensor([-1, 0]), tl.tensor([2, -3])),
                        tl.tensor([1.5, 2.5], dtype=tl.float64)),
         ((torch.tensor([-1, 0]), torch.tensor([2, -3])),
          torch.tensor([1.5, 2.5], dtype=torch.float64))),
        ("index_put_", ((tl.tensor(m),), tl.tensor(3.0, dtype=tl.float64)), ((torch.tensor(m),),
                                                          torch.tensor(3.0, dtype=torch.float64))),
        ("index_fill_", (1, tl.tensor([0, -1]), 7.0), (1, torch.tensor([0, -1]), 7.0)),
        ("index_add_", (0, dup_l, s_l), (0, dup_t, s_t)),
        ("index_add_", (0, ix_l, s_l), (0, ix_t, s_t)),
        ("scatter_", (0, si_l, s_l), (0, si_t, s_t)),
        ("scatter_", (1, si_l[:, :2], 2.5), (1, si_t[:, :2].remainder(4), 2.5)),
        ("scatter_add_", (0, si_l, s_l), (0, si_t, s_t)),
        ("masked_fill_", (tl.tensor(m), -2.0), (torch.tensor(m), -2.0)),
        ("put_", (tl.tensor([0, -1, 5]), tl.tensor([1.0, 2.0, 3.0], dtype=tl.float64)),
         (torch.tensor([0, -1, 5]), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))),
        ("put_", (tl.tensor([2, 2, 5]), tl.tensor([1.0, 2.0, 3.0], dtype=tl.float64),
                  True),
         (torch.tensor([2, 2, 5]), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), True)),
    ]


CASES = _cases()


def _fix(case):
    # the second scatter_ case: the same index on both sides (remainder made it fit dim 1)
    name, la, ta = case
    if name == "scatter_" and not isinstance(la[2], tl.Tensor):
        idx = ta[1].numpy()
        la = (la[0], tl.tensor(idx), la[2])
    if name == "scatter_" and isinstance(la[2], tl.Tensor) or name == "scatter_add_":
        # scatter_ with duplicates is unspecified in PyTorch: use distinct targets per column
        if name == "scatter_":
            idx = np.array([[0, 3, 1, 5], [2, 4, 5, 0]])
            la, ta = (0, tl.tensor(idx), la[2]), (0, torch.tensor(idx), ta[2])
    return name, la, ta


@pytest.mark.parametrize("case", [_fix(c) for c in CASES], ids=lambda c: c[0])
def test_inplace_index_values_version_views(case):
    name, la, ta = case
    x, xt = _pair(X)
    view = x[1:]                        # a view made before the write sees it
    v0 = x._version[0]
    out = getattr(x, name)(*la)
    getattr(xt, name)(*ta)
    assert out is x
    _close(x, xt)
    _close(view, xt[1:])
    assert x._version[0] == v0 + 1


@pytest.mark.parametrize("case", [_fix(c) for c in CASES], ids=lambda c: c[0])
def test_inplace_index_on_view_writes_base(case):
    name, la, ta = case
    base, bt = _pair(np.concatenate([X, X]))
    getattr(base[:6], name)(*la)
    getattr(bt[:6], name)(*ta)
    _close(base, bt)


@pytest.mark.parametrize("name", ["index_copy_", "index_add_", "index_put_", "scatter_",
                                  "scatter_add_"])
def test_inplace_index_gradients(name):
    """With a source that requires grad the recorded path still runs: gradients of self's
    earlier history and of the source match PyTorch."""
    ix = np.array([4, 0, 2])
    sidx = np.array([[0, 3, 1, 5], [2, 4, 5, 0], [1, 1, 3, 3]])
    w, wt = tl.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    s, stt = tl.tensor(SRC, requires_grad=True), torch.tensor(SRC, requires_grad=True)
    y, yt = w * 2.0, wt * 2.0
    if name in ("index_copy_", "index_add_"):
        getattr(y, name)(0, tl.tensor(ix), s * 3.0)
        getattr(yt, name)(0, torch.tensor(ix), stt * 3.0)
    elif name == "index_put_":
        y.index_put_((tl.tensor(ix),), s * 3.0, accumulate=True)
        yt.index_put_((torch.tensor(ix),), stt * 3.0, accumulate=True)
    else:
        getattr(y, name)(0, tl.tensor(sidx[:2]), (s * 3.0)[:2])
        getattr(yt, name)(0, torch.tensor(sidx[:2]), (stt * 3.0)[:2])
    g = rng.standard_normal((6, 4))
    (y * tl.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    _close(y, yt)
    _close(w.grad, wt.grad)
    _close(s.grad, stt.grad)


def test_inplace_index_no_grad_on_leaf_requiring_grad():
    x = tl.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="index_copy_.*leaf"):
        x.index_copy_(0, tl.tensor(IDX), tl.tensor(SRC))
    with tl.no_grad():                  # the fast path: no record, the history kept
        x.index_copy_(0, tl.tensor(IDX), tl.tensor(SRC))
    xt = torch.tensor(X)
    xt.index_copy_(0, torch.tensor(IDX), torch.tensor(SRC))
    _close(x, xt)
    assert x.requires_grad and x.grad_fn is None


def test_inplace_index_errors_from_general_form():
    x = tl.tensor(X)
    with pytest.raises((IndexError, ValueError)):
        x.index_copy_(0, tl.tensor([9]), tl.tensor(SRC[:1]))
    with pytest.raises(ValueError, match="index_copy"):
        x.index_copy_(0, tl.tensor(IDX), tl.tensor(SRC[:2]))
    with pytest.raises((IndexError, ValueError), match="index_add"):
        x.index_add_(0, tl.tensor([-1, 0, 1]), tl.tensor(SRC))
    with pytest.raises(ValueError, match="index_put"):
        x.index_put_((tl.tensor(IDX),), tl.ones(2, 4, dtype=tl.float64))
    with pytest.raises((IndexError, ValueError), match="scatter"):
        x.scatter_(0, tl.tensor([[7, 0]]), tl.tensor(SRC))
    with pytest.raises(TypeError, match="index_fill"):
        x.index_fill_(0, tl.tensor([0.5]), 1.0)
    ro = tl.zeros(3).expand(2, 3)
    with pytest.raises(ValueError, match="read-only"):
        ro.index_fill_(0, tl.tensor([0]), 1.0)
    np.testing.assert_array_equal(x.numpy(), X)     # nothing written by a failed call


def test_source_aliasing_self():
    x, xt = _pair(X)
    x.index_copy_(0, tl.tensor([1, 2, 3]), x[0:3])
    xt.index_copy_(0, torch.tensor([1, 2, 3]), xt[0:3].clone())
    _close(x, xt)


def test_dtype_cast_and_int_self():
    a = np.arange(12, dtype=np.int64).reshape(4, 3)
    x, xt = _pair(a)
    x.index_fill_(0, tl.tensor([1]), -3)
    xt.index_fill_(0, torch.tensor([1]), -3)
    x.masked_fill_(x > 6, 100)
    xt.masked_fill_(xt > 6, 100)
    np.testing.assert_array_equal(x.numpy(), xt.numpy())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 7), k=st.integers(0, 6), acc=st.booleans(), seed=st.integers(0, 99))
def test_index_put_hypothesis(n, k, acc, seed):
    r = np.random.default_rng(seed)
    a = r.standard_normal((n, 3))
    idx = r.integers(-n, n, k)
    if not acc:
        idx = np.unique(idx % n)         # PyTorch leaves duplicate writes unspecified
    v = r.standard_normal((idx.size, 3))
    x, xt = _pair(a)
    x.index_put_((tl.tensor(idx),), tl.tensor(v), accumulate=acc)
    xt.index_put_((torch.tensor(idx),), torch.tensor(v), accumulate=acc)
    _close(x, xt)


# --- lerp ---------------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.0, 0.01, 0.3, 0.5, 0.7, 1.0, -0.6, 1.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lerp_values(w, dtype):
    a = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal((5, 7)).astype(dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    x, xt = _pair(a)
    e, et = _pair(b)
    _close(tl.lerp(x, e, w), torch.lerp(xt, et, w), tol)
    v0 = x._version[0]
    view = x[2]
    x.lerp_(e, w)
    xt.lerp_(et, w)
    _close(x, xt, tol)
    _close(view, xt[2], tol)
    assert x._version[0] == v0 + 1
    if w == 1.0:
        np.testing.assert_array_equal(x.numpy(), b)


def test_lerp_gradients_and_leaf():
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    e, et = tl.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    for w in (0.2, 0.8):
        y, yt = x * 1.0, xt * 1.0
        y.lerp_(e, w)
        yt.lerp_(et, w)
        (y ** 2).sum().backward()
        (yt ** 2).sum().backward()
        _close(x.grad, xt.grad)
        _close(e.grad, et.grad)
        z, zt = tl.lerp(x, e, w), torch.lerp(xt, et, w)
        _close(z, zt)
    with pytest.raises(RuntimeError, match="lerp_.*leaf"):
        x.lerp_(e, 0.5)
    with tl.no_grad():
        x.lerp_(e, 0.5)
    assert x.requires_grad


@pytest.mark.parametrize("w", [0.01, 0.9])
def test_foreach_lerp_(w):
    xs = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,), (2, 2, 2))]
    es = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5,), (2, 2, 2))]
    tx, ttx = [tl.tensor(a.copy()) for a in xs], [torch.tensor(a.copy()) for a in xs]
    te, tte = [tl.tensor(a) for a in es], [torch.tensor(a) for a in es]
    v0 = [t._version[0] for t in tx]
    tl._foreach_lerp_(tx, te, w)
    torch._foreach_lerp_(ttx, tte, w)
    for a, b, v in zip(tx, ttx, v0):
        _close(a, b, 1e-6)
        assert a._version[0] == v + 1


def test_add_alpha_values():
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x, xt = _pair(a)
    x.mul_(0.99).add_(tl.tensor(b), alpha=0.01)
    xt.mul_(0.99).add_(torch.tensor(b), alpha=0.01)
    _close(x, xt)


def test_lerp_0d():
    x, e = tl.tensor(1.0), tl.tensor(3.0)
    _close(tl.lerp(x, e, 0.25), torch.lerp(torch.tensor(1.0), torch.tensor(3.0), 0.25))
    x.lerp_(e, 0.75)
    assert float(x) == float(torch.tensor(1.0).lerp_(torch.tensor(3.0), 0.75))
