"""Fixes of the newfeat review trial 18, compared against PyTorch."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops._util import ValueRangeError

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


# --- 1: share_memory_ moves the whole storage ---------------------------------------------
def test_share_memory_keeps_views():
    x = tl.zeros(4)
    v = x[:2]
    x.share_memory_()
    x.add_(1)
    tx = torch.zeros(4)
    tv = tx[:2]
    tx.share_memory_()
    tx.add_(1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    v.add_(5)
    tv.add_(5)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    assert v.is_shared() and x.is_shared()


def test_share_memory_of_view_moves_base():
    base, tb = tl.arange(6.), torch.arange(6.)
    w, tw = base[2:4], tb[2:4]
    r = base.reshape(2, 3).T
    w.share_memory_()
    tw.share_memory_()
    w.add_(1)
    tw.add_(1)
    np.testing.assert_array_equal(base.numpy(), tb.numpy())
    assert base.is_shared() == tb.is_shared() is True
    np.testing.assert_array_equal(r.numpy(), tb.reshape(2, 3).T.numpy())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_share_memory_view_written_by_child():
    p = tl.zeros(3)
    q = p[1:]
    p.share_memory_()
    pid = os.fork()
    if pid == 0:
        q.add_(7)
        os._exit(0)
    os.waitpid(pid, 0)
    np.testing.assert_array_equal(p.numpy(), [0, 7, 7])


# --- 2: integer fills with floats ---------------------------------------------------------
_INT = [("uint8", torch.uint8), ("int8", torch.int8), ("int32", torch.int32),
        ("int64", torch.int64)]
_VALUES = [-1.0, -0.5, 255.5, 254.9, 127.5, -128.9, 1e10, float("nan"), float("inf"),
           -float("inf"), -1, 300, True, -2.7]


def _fills(lib, dt, v):
    z = lambda: lib.zeros(2, dtype=dt)  # noqa: E731
    idx = lib.tensor([0])

    def setitem():
        t = z()
        t[0] = v
        return t
    return {"fill_": lambda: z().fill_(v), "setitem": setitem,
            "index_fill": lambda: z().index_fill(0, idx, v)}


@pytest.mark.parametrize("name,tdt", _INT)
@pytest.mark.parametrize("v", _VALUES)
def test_int_fills_like_torch(name, tdt, v):
    ours, theirs = _fills(tl, getattr(tl, name), v), _fills(torch, tdt, v)
    for k in ours:
        try:
            want = theirs[k]().numpy()
        except RuntimeError:
            with pytest.raises(ValueRangeError, match="without overflow"):
                ours[k]()
            continue
        got = ours[k]().numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"{k} {v}")


@pytest.mark.parametrize("name,tdt", [("uint8", torch.uint8), ("int8", torch.int8)])
@pytest.mark.parametrize("alpha", [300, 200, 255, -1, -128, 127, -129, 2])
@pytest.mark.parametrize("op", ["add_", "sub_"])
def test_inplace_alpha_like_torch(name, tdt, alpha, op):
    a = np.array([1, 2])
    t = torch.tensor(a, dtype=tdt)
    x = tl.tensor(a, dtype=getattr(tl, name))
    try:
        want = getattr(t.clone(), op)(t, alpha=alpha).numpy()
    except RuntimeError:
        with pytest.raises(ValueRangeError):
            getattr(x.clone(), op)(x, alpha=alpha)
        return
    np.testing.assert_array_equal(getattr(x.clone(), op)(x, alpha=alpha).numpy(), want)


def test_inplace_float_alpha_on_int_refused():
    x = tl.tensor([1, 2], dtype=tl.int32)
    with pytest.raises(TypeError, match="alpha"):
        x.add_(x, alpha=2.5)
    y = tl.tensor([1., 2.])
    np.testing.assert_allclose(y.clone().add_(y, alpha=2.5).numpy(), [3.5, 7.0])


def test_where_with_float_still_promotes():
    r = tl.where(tl.tensor([True, False]), tl.zeros(2, dtype=tl.int32), 2.5)
    assert r.dtype == np.float32 and r.numpy().tolist() == [0.0, 2.5]


# --- 3: float16 einsum accumulates in float32 ---------------------------------------------
@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(8, 256), (256, 8)]),
                                       ("ij,jk,kl->il", [(8, 64), (64, 64), (64, 8)]),
                                       ("ii->", [(64, 64)]),
                                       ("bij,bj->bi", [(2, 8, 128), (2, 128)])])
def test_einsum_float16_like_torch(eq, shapes):
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal(s).astype(np.float16) for s in shapes]
    got = tl.einsum(eq, *map(tl.tensor, arrs))
    want = torch.einsum(eq, *map(torch.tensor, arrs)).numpy()
    assert got.dtype == np.float16
    exact = np.einsum(eq, *[a.astype(np.float64) for a in arrs])
    err, terr = np.abs(got.numpy() - exact).max(), np.abs(want - exact).max()
    assert err <= terr * 1.01 + 1e-3


def test_einsum_float16_grad():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 32)), rng.standard_normal((32, 3))
    x = tl.tensor(a.astype(np.float16), requires_grad=True)
    tx = torch.tensor(a.astype(np.float16), requires_grad=True)
    tl.einsum("ij,jk->ik", x, tl.tensor(b.astype(np.float16))).sum().backward()
    torch.einsum("ij,jk->ik", tx, torch.tensor(b.astype(np.float16))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy().astype(np.float32),
                               tx.grad.numpy().astype(np.float32), atol=2e-2)


# --- 4: Tensor.new reads a tuple as data --------------------------------------------------
@pytest.mark.parametrize("args", [((2, 3),), ((),), ([1, 2],), ((2.5, 1),), ((True, False),),
                                  ([[1, 2], [3, 4]],)])
def test_new_sequence_is_data(args):
    got = tl.ones(2, dtype=tl.float64).new(*args)
    want = torch.ones(2, dtype=torch.float64).new(*args)
    assert got.dtype == np.float64 and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_new_sizes():
    x = tl.ones(2, dtype=tl.float64)
    assert x.new(2, 3).shape == (2, 3)
    assert x.new(torch.Size([4, 5])).shape == (4, 5)
    assert x.new(*tl.ones(4, 5).shape).shape == (4, 5)
    assert x.new().shape == (0,)
    with pytest.raises(TypeError, match="Tensor.new"):
        x.new(2.5)
    with pytest.raises(TypeError, match="Tensor.new"):
        x.new((2,), 3)


# --- 5: float32 matrix_exp accuracy -------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([1.0, 50.0, 100.0]))
def test_matrix_exp_float32_accuracy(seed, scale):
    m = (np.random.default_rng(seed).standard_normal((5, 5)) * scale / 5).astype(np.float32)
    ref = torch.linalg.matrix_exp(torch.tensor(m, dtype=torch.float64)).numpy()
    got = tl.linalg.matrix_exp(tl.tensor(m))
    assert got.dtype == np.float32
    want = torch.linalg.matrix_exp(torch.tensor(m)).numpy()
    nrm = np.abs(ref).max()
    assert np.abs(got.numpy() - ref).max() / nrm <= max(np.abs(want - ref).max() / nrm, 1e-6)


def test_matrix_exp_float32_grad():
    m = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    x, tx = tl.tensor(m, requires_grad=True), torch.tensor(m, requires_grad=True)
    tl.linalg.matrix_exp(x).sum().backward()
    torch.linalg.matrix_exp(tx).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


# --- 7: custom_fwd(cast_inputs=float32) ---------------------------------------------------
def test_custom_fwd_cast_inputs_float32():
    class MyMM(tl.autograd.Function):
        @staticmethod
        @tl.amp.custom_fwd(device_type="cpu", cast_inputs=tl.float32)
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return tl.matmul(x, w)

        @staticmethod
        @tl.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return tl.matmul(g, w.T), tl.matmul(x.T, g)

    class TMM(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x @ w

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g @ w.T, x.T @ g
    a = np.random.default_rng(0).standard_normal((3, 4))
    b = np.random.default_rng(1).standard_normal((4, 2))
    x = tl.tensor(a.astype(np.float16), requires_grad=True)
    w = tl.tensor(b.astype(np.float32), requires_grad=True)
    tx = torch.tensor(a.astype(np.float16), requires_grad=True)
    tw = torch.tensor(b.astype(np.float32), requires_grad=True)
    with tl.autocast("cpu", dtype=tl.float16):
        y = MyMM.apply(x, w)
    with torch.autocast("cpu", dtype=torch.float16):
        ty = TMM.apply(tx, tw)
    assert y.dtype == np.float32 and ty.dtype == torch.float32
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.dtype == np.float16 and w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6)


def test_custom_fwd_cast_inputs_refuses_int():
    with pytest.raises(TypeError, match="custom_fwd: cast_inputs"):
        tl.amp.custom_fwd(device_type="cpu", cast_inputs=tl.int32)


# --- 9: keywords, init.sparse_, Linear(0, n), compat.v1, zero_grad -----------------------
def test_torch_keyword_names():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3, 3))
    s, v = np.array([1., 2., 3.]), np.array([0.5, 2., 4.])
    x, tx = tl.tensor(m), torch.tensor(m)
    pairs = [
        (tl.swapaxes(x, axis0=0, axis1=1), torch.swapaxes(tx, axis0=0, axis1=1)),
        (F.softmax(input=x, dim=1), torch.nn.functional.softmax(input=tx, dim=1)),
        (tl.outer(tl.tensor(s), vec2=tl.tensor(v)),
         torch.outer(torch.tensor(s), vec2=torch.tensor(v))),
        (tl.trace(input=x), torch.trace(input=tx)),
        (tl.searchsorted(sorted_sequence=tl.tensor(s), input=tl.tensor(v)),
         torch.searchsorted(sorted_sequence=torch.tensor(s), input=torch.tensor(v))),
        (tl.unique(input=tl.tensor([3, 1, 3])), torch.unique(input=torch.tensor([3, 1, 3]))),
        (tl.polygamma(1, input=tl.tensor(s)), torch.polygamma(1, input=torch.tensor(s))),
        (tl.true_divide(x, other=2), torch.true_divide(tx, other=2)),
    ]
    for a, b in pairs:
        np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-8)  # (polygamma: torch ~5e-10)
    assert tl.equal(x, other=x) is torch.equal(tx, other=tx) is True
    assert tl.swapaxes(x, 0, 1).shape == tl.swapaxes(x, axis1=0, axis2=1).shape == (3, 3)
    with pytest.raises(TypeError, match="swapaxes"):
        tl.swapaxes(x, axis0=0, axis2=1)


def test_keyword_grads():
    m = np.random.default_rng(2).standard_normal((2, 3))
    x, tx = tl.tensor(m, requires_grad=True), torch.tensor(m, requires_grad=True)
    (F.softmax(input=x, dim=1)[:, 0].sum() + tl.trace(input=tl.swapaxes(x, axis0=0, axis1=1)[:2])
     ).backward()
    (torch.nn.functional.softmax(input=tx, dim=1)[:, 0].sum()
     + torch.trace(input=torch.swapaxes(tx, axis0=0, axis1=1)[:2])).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_init_sparse():
    w = tl.empty(10, 6)
    tl.nn.init.sparse_(w, 0.3, std=0.5, generator=tl.Generator().manual_seed(0))
    tw = torch.empty(10, 6)
    torch.nn.init.sparse_(tw, 0.3, std=0.5)
    zeros = (w.numpy() == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros, (tw.numpy() == 0).sum(axis=0))
    assert np.all(zeros == math.ceil(0.3 * 10))
    with pytest.raises(ValueError, match="sparse_"):
        tl.nn.init.sparse_(tl.empty(3), 0.1)
    with pytest.warns(FutureWarning):
        tl.nn.init.sparse(tl.empty(4, 2), 0.5)


def test_linear_zero_in_features():
    with pytest.warns(UserWarning, match="zero-element"):
        lin = tl.nn.Linear(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        tlin = torch.nn.Linear(0, 3)
    np.testing.assert_array_equal(lin(tl.zeros(2, 0)).detach().numpy(),
                                  tlin(torch.zeros(2, 0)).detach().numpy())
    assert lin.weight.shape == tuple(tlin.weight.shape)
    with pytest.raises(ValueError, match="Linear"):
        tl.nn.Linear(-1, 3)


def test_compat_v1_latest_checkpoint(tmp_path):
    import tensorlib.compat.v1 as tf
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    v = tf.Variable(3.0, name="v_ckpt")
    saver = tf.train.Saver([v])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        saver.save(sess, str(tmp_path / "model"), global_step=1)
        saver.save(sess, str(tmp_path / "model"), global_step=5)
    path = tf.train.latest_checkpoint(str(tmp_path))
    assert path == str(tmp_path / "model-5")
    with tf.Session() as sess:
        saver.restore(sess, path)
        assert float(sess.run(v)) == 3.0


@pytest.mark.parametrize("padding", ["SAME", "VALID", [[0, 0], [1, 2], [0, 1], [0, 0]]])
def test_compat_v1_conv2d_dilations(padding):
    import tensorlib.compat.v1 as tf
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 7, 8, 2)).astype(np.float32)
    k = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    out = tf.nn.conv2d(tf.constant(x), tf.constant(k), strides=[1, 1, 1, 1], padding=padding,
                       dilations=[1, 2, 2, 1])
    with tf.Session() as sess:
        got = sess.run(out)
    tx = torch.tensor(x).permute(0, 3, 1, 2)
    if isinstance(padding, list):
        tx = torch.nn.functional.pad(tx, (0, 1, 1, 2))
    elif padding == "SAME":     # the dilated kernel covers 5 cells: 2 before, 2 after
        tx = torch.nn.functional.pad(tx, (2, 2, 2, 2))
    want = torch.nn.functional.conv2d(tx, torch.tensor(k).permute(3, 2, 0, 1), dilation=2)
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_compat_v1_conv2d_bad_padding():
    import tensorlib.compat.v1 as tf
    with pytest.raises(ValueError, match="explicit padding"):
        tf.nn.conv2d(tf.constant(np.zeros((1, 3, 3, 1), np.float32)),
                     tf.constant(np.zeros((1, 1, 1, 1), np.float32)), strides=[1, 1, 1, 1],
                     padding=[[1, 0], [0, 0], [0, 0], [0, 0]])


def test_zero_grad_keeps_object_and_expanded():
    p = tl.zeros(3, requires_grad=True)
    base = tl.ones(1)
    p.grad = base.expand(3)
    g = p.grad
    tp = torch.zeros(3, requires_grad=True)
    tbase = torch.ones(1)
    tp.grad = tbase.expand(3)
    tl.optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    torch.optim.SGD([tp], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad is g
    np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
    np.testing.assert_array_equal(base.numpy(), tbase.numpy())
    q = tl.ones(3, requires_grad=True)
    (q * 2).sum().backward()
    gq = q.grad
    tl.optim.SGD([q], lr=0.1).zero_grad(set_to_none=False)
    assert q.grad is gq and q.grad.numpy().tolist() == [0, 0, 0]
    (q * 3).sum().backward()
    assert q.grad is gq and q.grad.numpy().tolist() == [3, 3, 3]


def test_zero_grad_detaches_grad_with_history():
    p = tl.ones(3, requires_grad=True)
    (p * p).sum().backward(create_graph=True)
    g = p.grad
    assert g.grad_fn is not None
    tl.optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad is g and g.grad_fn is None and g.numpy().tolist() == [0, 0, 0]


@pytest.mark.parametrize("call", [
    lambda L: L.add(L.tensor([1, 2], dtype=L.uint8), L.tensor([1, 2], dtype=L.uint8), alpha=300),
    lambda L: L.add(L.tensor([1, 2]), L.tensor([1, 2]), alpha=2.5),
    lambda L: L.sub(L.tensor([1, 2], dtype=L.int8), L.tensor([1, 2], dtype=L.int8), alpha=-128),
    lambda L: L.tensor([1, 2], dtype=L.uint8).masked_fill(L.tensor([True, False]), -1.0),
    lambda L: L.tensor([1, 2], dtype=L.uint8).masked_fill(L.tensor([True, False]), float("nan")),
])
def test_out_of_range_alpha_and_masked_fill_values_raise_as_pytorch(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        call(tl)


def test_in_range_alpha_and_masked_fill_values_match_pytorch():
    for call in (lambda L: L.add(L.tensor([1, 2], dtype=L.uint8),
                                 L.tensor([1, 2], dtype=L.uint8), alpha=-1),
                 lambda L: L.tensor([1, 2], dtype=L.uint8).masked_fill(
                     L.tensor([True, False]), 2.7),
                 lambda L: L.add(L.tensor([1.0, 2.0]), L.tensor([1, 2]), alpha=2.5)):
        assert call(tl).tolist() == call(torch).tolist()
