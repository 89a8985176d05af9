"""Hypothesis fuzz of the NN ops with odd inputs: every call either matches an
independent NumPy computation or raises a clear error that names the op."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.nn._kernels import adam_update_, sgd_update_
from tensorlib.ops.registry import REGISTRY

CLEAR = (ValueError, TypeError, IndexError)
DTYPES = st.sampled_from([np.float32, np.float64, np.float64, np.int64, np.float16])


def _arr(draw, shape, dtype):
    seed = draw(st.integers(0, 2**16))
    a = np.random.default_rng(seed).standard_normal(shape)
    if draw(st.booleans()) and len(shape) == 4:
        a = np.asfortranarray(a)   # non-contiguous input
    return a.astype(dtype)


def _expect_clear(op, fn):
    """Run fn; return its result, or None after checking the error is a clear one."""
    try:
        return fn()
    except CLEAR as e:
        assert op in str(e), f"error does not name {op}: {e}"
        return None


def _close(got, want, dtype):
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@given(st.data())
def test_conv2d_fuzz(data):
    d = data.draw
    N, C, H, W = d(st.integers(0, 2)), d(st.integers(1, 3)), d(st.integers(0, 6)), \
        d(st.integers(0, 6))
    groups = d(st.sampled_from([1, 1, 2, 3]))
    O = d(st.integers(1, 3)) * (groups if d(st.booleans()) else 1)
    k = (d(st.integers(1, 8)), d(st.integers(1, 8)))
    stride = d(st.sampled_from([1, 2, 5, 9, 0, (1, 3)]))
    padding = d(st.sampled_from([0, 1, 2, -1, 10, "same", "valid", "bogus", 10**12, (0, 3)]))
    dilation = d(st.sampled_from([1, 2, 3, 0]))
    dtype = d(DTYPES)
    x = _arr(d, (N, C, H, W), dtype)
    w = _arr(d, (O, max(C // groups, 1), *k), d(st.sampled_from([dtype, dtype, np.float32])))
    b = _arr(d, (O,), dtype) if d(st.booleans()) else None
    out = _expect_clear("conv2d", lambda: F.conv2d(
        tl.tensor(x), tl.tensor(w), None if b is None else tl.tensor(b), stride, padding,
        dilation, groups))
    if out is None:
        return
    node_attrs = dict(stride=(stride,) * 2 if isinstance(stride, int) else stride,
                      dilation=(dilation,) * 2, groups=groups)
    from tensorlib.ops.nn_conv import _padding
    node_attrs["padding"] = _padding("conv2d", padding, k, node_attrs["dilation"],
                                     node_attrs["stride"], 2)
    want = REGISTRY["conv2d"].fwd(np, x, w, *([] if b is None else [b]), **node_attrs)
    assert out.shape == want.shape and out.dtype == np.dtype(dtype)
    _close(out.numpy(), want, dtype)


@given(st.data())
def test_pool_fuzz(data):
    d = data.draw
    shape = (d(st.integers(0, 2)), d(st.integers(1, 2)), d(st.integers(1, 7)),
             d(st.integers(1, 7)))
    if d(st.booleans()):
        shape = shape[1:]
    k = d(st.sampled_from([1, 2, 3, 8, 0, (1, 4)]))
    stride = d(st.sampled_from([None, 1, 2, 5, 0]))
    padding = d(st.sampled_from([0, 1, 2, -1]))
    dilation = d(st.sampled_from([1, 2]))
    ceil = d(st.booleans())
    dtype = d(DTYPES)
    x = _arr(d, shape, dtype)
    res = _expect_clear("max_pool2d", lambda: F.max_pool2d(
        tl.tensor(x), k, stride, padding, dilation, ceil, return_indices=True))
    if res is not None:
        out, idx = res
        x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)
        attrs = dict(kernel=(k, k) if isinstance(k, int) else k, dilation=(dilation,) * 2,
                     padding=(padding,) * 2, ceil_mode=ceil)
        attrs["stride"] = attrs["kernel"] if stride is None else (stride,) * 2
        want, want_idx = REGISTRY["max_pool2d"].fwd(np, x4, **attrs)
        _close(out.numpy().reshape(want.shape), want, dtype)
        np.testing.assert_array_equal(idx.numpy().reshape(want.shape), want_idx)
    avg = _expect_clear("avg_pool2d", lambda: F.avg_pool2d(tl.tensor(x), k, stride, padding,
                                                           ceil_mode=ceil))
    if avg is not None:
        assert np.isfinite(avg.numpy()).all()


@given(st.data())
def test_embedding_and_losses_fuzz(data):
    d = data.draw
    V, D = d(st.integers(0, 4)), d(st.integers(0, 3))
    idx = np.asarray(d(st.lists(st.integers(-3, 6), max_size=5)), dtype=d(st.sampled_from(
        [np.int64, np.int32, np.float64])))
    w = _arr(d, (V, D), d(DTYPES))
    out = _expect_clear("embedding", lambda: F.embedding(tl.tensor(idx), tl.tensor(w)))
    if out is not None:
        np.testing.assert_array_equal(out.numpy(), w[idx])
        assert ((idx >= 0) & (idx < V)).all()
    C = d(st.integers(0, 4))
    logits = _arr(d, (len(idx), C), d(DTYPES))
    red = d(st.sampled_from(["mean", "sum", "none", "avg"]))
    loss = _expect_clear("cross_entropy", lambda: F.cross_entropy(
        tl.tensor(logits), tl.tensor(idx), reduction=red))
    if loss is not None:
        assert ((idx >= 0) & (idx < C)).all() and red != "avg"


@given(st.data())
def test_optimizer_kernels_fuzz(data):
    d = data.draw
    shape = d(st.sampled_from([(0,), (3,), (2, 3), (3, 2)]))
    p = tl.tensor(_arr(d, (2, 3), d(DTYPES)))
    g = tl.tensor(_arr(d, shape, d(DTYPES)))
    before = p.numpy().copy()
    res = _expect_clear("sgd_update_", lambda: sgd_update_(p, g, lr=0.1) or True)
    if res:
        np.testing.assert_allclose(p.numpy(), before - 0.1 * g.numpy(), rtol=1e-3, atol=1e-6)
    else:
        np.testing.assert_array_equal(p.numpy(), before)
    _expect_clear("adam_update_", lambda: adam_update_(p, g, tl.zeros_like(g), tl.zeros_like(g),
                                                       step=d(st.integers(0, 2))))


def test_noncontiguous_param_is_refused():
    p = tl.from_numpy(np.zeros((3, 4), np.float32).T)
    with pytest.raises(ValueError, match="sgd_update_: param must be C-contiguous"):
        sgd_update_(p, tl.zeros(4, 3), lr=0.1)


def test_max_pool2d_grad_rejects_bad_indices():
    from tensorlib.ops.nn_pool import MAX_POOL2D_GRAD
    g = tl.ones(1, 1, 2, 2)
    with pytest.raises(IndexError, match="max_pool2d_grad"):
        tl.apply(MAX_POOL2D_GRAD, g, tl.tensor(np.full((1, 1, 2, 2), 99)), input_hw=(3, 3))
