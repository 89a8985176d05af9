"""Composite tensor utilities against NumPy and PyTorch: diagonals, moveaxis, repeat_interleave,
meshgrid, isclose/allclose, lerp, nan_to_num, quantile/median, rand_like, inference_mode.
Gradients by finite differences in float64 (second order where the function is smooth)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)


def rn(*shape):
    return rng.standard_normal(shape)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), m=st.integers(1, 5), lead=st.integers(0, 2),
       offset=st.integers(-6, 6), axes=st.sampled_from([(-2, -1), (-1, -2), (0, -1)]))
def test_diagonal_and_trace_match_numpy(n, m, lead, offset, axes):
    a = rng.standard_normal((2,) * lead + (n, m))
    if lead == 0 and axes == (0, -1):
        axes = (0, 1)
    np.testing.assert_array_equal(tl.diagonal(tl.tensor(a), offset, *axes).numpy(),
                                  np.diagonal(a, offset, *axes))
    np.testing.assert_allclose(tl.trace(tl.tensor(a), offset, *axes).numpy(),
                               np.trace(a, offset, *axes), atol=1e-12)


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
def test_diag_matches_numpy_and_has_gradients(k):
    v, a = rn(3), rn(3, 4)
    np.testing.assert_array_equal(tl.diag(tl.tensor(v), k).numpy(), np.diag(v, k))
    np.testing.assert_array_equal(tl.diag(tl.tensor(a), k).numpy(), np.diag(a, k))
    np.testing.assert_array_equal(tl.diag(tl.tensor([1, 2]), k).numpy(), np.diag([1, 2], k))
    w = tl.tensor(rn(*np.diag(v, k).shape))
    vg, ag = tl.tensor(v, requires_grad=True), tl.tensor(a, requires_grad=True)
    assert tl.autograd.gradcheck(lambda t: (tl.diag(t, k) * w).sum(), [vg])
    assert tl.autograd.gradcheck(lambda t: tl.diag(t, k).sum() * 2, [ag])
    assert tl.autograd.gradcheck(lambda t: tl.trace(t.tanh(), 1), [ag])


def test_diagonal_is_a_writable_view_as_in_pytorch():
    # NumPy's diagonal is read-only and tensorlib's was a copy: m.diagonal().add_(1) did
    # nothing, silently
    for lib in (torch, tl):
        m = lib.zeros(3, 4)
        m.diagonal().add_(1.0)
        m.diagonal(1).fill_(2.0) if lib is torch else m.diagonal(1).mul_(0).add_(2.0)
        x = lib.arange(24.0).reshape(2, 3, 4)
        x.diagonal(0, 0, 2).mul_(-1)
        if lib is torch:
            want_m, want_x = m.numpy(), x.numpy()
    np.testing.assert_array_equal(m.numpy(), want_m)
    np.testing.assert_array_equal(x.numpy(), want_x)
    # gradients through an in-place op on the view, against PyTorch
    a = rn(3, 3)
    grads = []
    for lib in (torch, tl):
        w = lib.tensor(a, requires_grad=True)
        c = w @ w.T
        c.diagonal().add_(w[0] ** 2)
        c.diagonal(-1).mul_(3.0)
        (c * c).sum().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)


def test_diagonal_errors():
    with pytest.raises(ValueError, match="at least 2 dims"):
        tl.diagonal(tl.ones(3))
    with pytest.raises(ValueError, match="the same axis"):
        tl.diagonal(tl.ones(2, 2), 0, 1, -1)
    with pytest.raises(ValueError, match="1-d or 2-d"):
        tl.diag(tl.ones(2, 2, 2))


@pytest.mark.parametrize("src, dst", [(0, -1), (-1, 0), ((0, 1), (2, 0)), ([2, 0], [0, 1]),
                                      (1, 1)])
def test_moveaxis_matches_numpy_and_torch(src, dst):
    a = rn(2, 3, 4)
    want = np.moveaxis(a, src, dst)
    np.testing.assert_array_equal(tl.moveaxis(tl.tensor(a), src, dst).numpy(), want)
    np.testing.assert_array_equal(tl.movedim(tl.tensor(a), src, dst).numpy(),
                                  torch.movedim(torch.tensor(a), src, dst).numpy())
    wt = tl.tensor(rn(*want.shape))
    assert tl.autograd.gradcheck(lambda t: (tl.moveaxis(t, src, dst) * wt).sum(),
                                 [tl.tensor(a, requires_grad=True)])
    with pytest.raises(ValueError, match="repeated axis"):
        tl.moveaxis(tl.tensor(a), (0, 0), (1, 2))
    with pytest.raises(ValueError, match="2 source axes but 1 destinations"):
        tl.moveaxis(tl.tensor(a), (0, 1), 2)


@pytest.mark.parametrize("repeats, axis", [(2, None), (3, 1), ([1, 0, 2], 0), ([2], 1),
                                           (np.array([0, 1, 3, 1]), -1)])
def test_repeat_interleave_matches_torch(repeats, axis):
    a = rn(3, 4) if axis != 0 else rn(3, 2)
    want = torch.repeat_interleave(torch.tensor(a), torch.tensor(repeats), dim=axis).numpy()
    got = tl.repeat_interleave(tl.tensor(a), repeats, axis)
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(
        tl.repeat_interleave(tl.tensor(a), tl.tensor(np.asarray(repeats)), axis).numpy(), want)
    r = tl.tensor(rn(*want.shape))
    assert tl.autograd.gradcheck(lambda t: (tl.repeat_interleave(t, repeats, axis) * r).sum(),
                                 [tl.tensor(a, requires_grad=True)])


def test_repeat_interleave_errors():
    x = tl.ones(3)
    with pytest.raises(ValueError, match="repeats of shape \\(2,\\) for an axis of size 3"):
        tl.repeat_interleave(x, [1, 2])
    with pytest.raises(ValueError, match="must not be negative"):
        tl.repeat_interleave(x, -1)
    with pytest.raises(TypeError, match="must be integers"):
        tl.repeat_interleave(x, 1.5)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_meshgrid_matches_numpy_and_torch(indexing, n):
    xs = [rn(k + 2) for k in range(n)]
    got = tl.meshgrid(*[tl.tensor(x) for x in xs], indexing=indexing)
    for g, w in zip(got, np.meshgrid(*xs, indexing=indexing)):
        np.testing.assert_array_equal(g.numpy(), w)
    for g, w in zip(got, torch.meshgrid(*[torch.tensor(x) for x in xs], indexing=indexing)):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert len(tl.meshgrid([tl.tensor(x) for x in xs], indexing=indexing)) == n
    ws = [tl.tensor(rn(*g.shape)) for g in got]
    assert tl.autograd.gradcheck(
        lambda *ts: sum((g * w).sum() for g, w in zip(tl.meshgrid(*ts, indexing=indexing), ws)),
        [tl.tensor(x, requires_grad=True) for x in xs])
    with pytest.raises(ValueError, match="indexing must be"):
        tl.meshgrid(tl.ones(2), indexing="ji")


def test_isclose_allclose_match_numpy():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e10, 0.0, np.inf, 1.0])
    b = np.array([1.0 + 1e-9, np.nan, np.inf, np.inf, 1.00001e10, 1e-9, 1.0, 1.1])
    for kw in ({}, dict(equal_nan=True), dict(rtol=0.2, atol=0.0), dict(atol=1e-8, rtol=0)):
        np.testing.assert_array_equal(tl.isclose(tl.tensor(a), tl.tensor(b), **kw).numpy(),
                                      np.isclose(a, b, **kw))
        assert tl.allclose(tl.tensor(a[:1]), tl.tensor(b[:1]), **kw) == \
            np.allclose(a[:1], b[:1], **kw)
    assert tl.allclose(tl.tensor(a), tl.tensor(a), equal_nan=True)
    assert not tl.allclose(tl.tensor(a), tl.tensor(a))
    assert tl.isclose(tl.tensor([1.0, 2.0]), 1.0).numpy().tolist() == [True, False]


def test_lerp_matches_torch_with_gradients():
    s, e, w = rn(3, 4), rn(3, 4), rng.uniform(0, 1, (3, 4))
    np.testing.assert_allclose(tl.lerp(tl.tensor(s), tl.tensor(e), tl.tensor(w)).numpy(),
                               torch.lerp(torch.tensor(s), torch.tensor(e),
                                          torch.tensor(w)).numpy(), atol=1e-14)
    np.testing.assert_allclose(tl.lerp(tl.tensor(s), tl.tensor(e), 0.3).numpy(),
                               torch.lerp(torch.tensor(s), torch.tensor(e), 0.3).numpy(),
                               atol=1e-14)
    ins = [tl.tensor(a, requires_grad=True) for a in (s, e, w)]
    assert tl.autograd.gradcheck(lambda a, b, c: (tl.lerp(a, b, c) ** 2).sum(), ins)
    assert tl.autograd.gradgradcheck(lambda a, b, c: (tl.lerp(a, b, c) ** 2).sum(), ins)


def test_nan_to_num_matches_numpy():
    for dt in (np.float32, np.float64):
        a = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0], dtype=dt)
        np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(a)).numpy(), np.nan_to_num(a))
        kw = dict(nan=-1.0, posinf=9.0, neginf=-9.0)
        np.testing.assert_array_equal(tl.nan_to_num(tl.tensor(a), **kw).numpy(),
                                      np.nan_to_num(a, **kw))
        assert tl.nan_to_num(tl.tensor(a)).dtype == dt
    x = tl.tensor([np.nan, 2.0, np.inf], requires_grad=True)
    tl.nan_to_num(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(tl.nan_to_num(tl.tensor([1, 2])).numpy(), [1, 2])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), data=st.data())
def test_quantile_matches_numpy(shape, data):
    a = rng.standard_normal(shape)
    if data.draw(st.booleans(), label="ties"):
        a = np.round(a)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)),
                     label="axis")
    q = data.draw(st.one_of(st.floats(0, 1), st.lists(st.floats(0, 1), min_size=1,
                                                       max_size=3)), label="q")
    method = data.draw(st.sampled_from(["linear", "lower", "higher", "nearest", "midpoint"]),
                       label="method")
    keep = data.draw(st.booleans(), label="keepdims")
    got = tl.quantile(tl.tensor(a), q, axis=axis, keepdims=keep, method=method).numpy()
    want = np.quantile(a, q, axis=axis, keepdims=keep, method=method)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_median_and_quantile_details():
    a = rn(4, 6)
    np.testing.assert_allclose(tl.median(tl.tensor(a)).numpy(), np.median(a))
    np.testing.assert_allclose(tl.median(tl.tensor(a), axis=1, keepdims=True).numpy(),
                               np.median(a, axis=1, keepdims=True))
    b = a.copy()
    b[1, 2] = np.nan
    np.testing.assert_array_equal(np.isnan(tl.median(tl.tensor(b), axis=1).numpy()),
                                  np.isnan(np.median(b, axis=1)))
    # PyTorch's median is the lower middle value
    np.testing.assert_allclose(tl.quantile(tl.tensor(a), 0.5, axis=1, method="lower").numpy(),
                               torch.median(torch.tensor(a), dim=1).values.numpy())
    qt = torch.tensor([0.1, 0.9], dtype=torch.float64)
    np.testing.assert_allclose(tl.quantile(tl.tensor(a), [0.1, 0.9], axis=0).numpy(),
                               torch.quantile(torch.tensor(a), qt, dim=0).numpy(), atol=1e-12)
    assert tl.median(tl.tensor([3, 1, 2, 8])).item() == 2      # ints: the lower middle value
    np.testing.assert_allclose(tl.median(tl.tensor([3.0, 1, 2, 8])).numpy(), 2.5)
    assert tl.autograd.gradcheck(lambda t: tl.quantile(t, [0.3, 0.75], axis=1).sum(),
                                 [tl.tensor(a, requires_grad=True)])
    with pytest.raises(ValueError, match="q must lie in"):
        tl.quantile(tl.tensor(a), 1.5)
    with pytest.raises(ValueError, match="method must be one of"):
        tl.quantile(tl.tensor(a), 0.5, method="hazen")
    with pytest.raises(ValueError, match="axis is empty"):
        tl.quantile(tl.ones(0), 0.5)


def test_composites_capture_and_replay():
    w = tl.tensor(rn(3), requires_grad=True)

    @tl.function
    def f(x):
        m = tl.diag(w) + tl.moveaxis(x, 0, 1)
        return tl.quantile(tl.repeat_interleave(m, 2, axis=0), 0.4, axis=0).sum() + \
            tl.trace(m) + tl.lerp(m, m.tanh(), 0.25).sum()
    for _ in range(2):
        x = tl.tensor(rn(3, 3))
        with tl.no_grad():
            got = f(x)
        want = f.fn(x)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert f.trace_count == 1


def test_rand_like_and_inference_mode():
    t = tl.ones(2, 3, dtype=tl.float64)
    r = tl.rand_like(t)
    assert r.shape == (2, 3) and r.dtype == np.float64 and 0 <= r.numpy().min()
    with pytest.raises(tl.errors.DTypeError, match="randn_like"):     # as PyTorch's
        tl.randn_like(tl.arange(4))
    assert tl.randn_like(tl.arange(4), dtype=tl.float32).dtype == np.float32
    tl.manual_seed(3)
    a = tl.randn_like(t).numpy()
    tl.manual_seed(3)
    np.testing.assert_array_equal(a, tl.randn(2, 3, dtype=tl.float64).numpy())
    x = tl.ones(2, requires_grad=True)
    with tl.inference_mode():
        assert not (x * 2).requires_grad
    with tl.inference_mode(False):
        assert (x * 2).requires_grad

    @tl.inference_mode()
    def f():
        return (x * 2).requires_grad
    assert not f()


def test_host_read_arguments_refuse_capture():
    # counts and quantile levels given as graph inputs are read on the host: a captured graph
    # would freeze them, so capture says so instead (a constant made inside may be read)
    from tensorlib.graph import CaptureError
    x, r, q = tl.tensor(rn(4)), tl.tensor([1, 2, 0, 1]), tl.tensor(0.5)
    with pytest.raises(CaptureError, match="while tracing"):
        with tl.capture(x, r):
            tl.repeat_interleave(x, r)
    with pytest.raises(CaptureError, match="while tracing"):
        with tl.capture(x, q):
            tl.quantile(x, q)
    with tl.capture(x):
        tl.repeat_interleave(x, tl.tensor([1, 2, 0, 1]))


def test_tensor_methods_forward_to_the_functions():
    a = rn(3, 4)
    x = tl.tensor(a)
    np.testing.assert_array_equal(x.diagonal(1).numpy(), a.diagonal(1))
    np.testing.assert_allclose(x.trace().numpy(), a.trace())
    np.testing.assert_array_equal(x.moveaxis(0, 1).numpy(), np.moveaxis(a, 0, 1))
    np.testing.assert_allclose(x.median(axis=1).numpy(), np.median(a, axis=1))
    np.testing.assert_allclose(x.quantile(0.3).numpy(), np.quantile(a, 0.3))
    assert x.isclose(x).all().item() and x.allclose(x)
    np.testing.assert_array_equal(x.repeat_interleave(2, 0).numpy(), np.repeat(a, 2, 0))
    np.testing.assert_array_equal(tl.tensor([2, 0, 2]).unique().numpy(), [0, 2])
    np.testing.assert_array_equal(tl.tensor([0, 3]).nonzero()[0].numpy(), [1])
