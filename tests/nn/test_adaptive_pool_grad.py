"""Adaptive max pooling (1-d/2-d/3-d): the gradient goes to the element the returned index
names (ties after ReLU, all-zero windows, overlapping windows, NaN), as PyTorch's, eagerly,
under capture (static and None dims) and to second order; zero output sizes give empty
results. Values, indices and gradients against PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

F = tl.nn.functional
torch = pytest.importorskip("torch")
TF = torch.nn.functional

FNS = {1: (F.adaptive_max_pool1d, TF.adaptive_max_pool1d),
       2: (F.adaptive_max_pool2d, TF.adaptive_max_pool2d),
       3: (F.adaptive_max_pool3d, TF.adaptive_max_pool3d)}

# (input shape, output size): even tiling, overlapping windows, global, larger than the input,
# None sides, unbatched
CASES = [((2, 3, 8), 4), ((2, 3, 5), 2), ((1, 2, 7), 10), ((3, 9), 4), ((2, 3, 6), 1),
         ((2, 3, 8, 8), (4, 2)), ((2, 3, 13, 13), (4, 4)), ((1, 2, 5, 7), (3, 4)),
         ((2, 3, 4, 5), (7, 9)), ((2, 5, 6), (None, 4)), ((2, 3, 6, 6), 1),
         ((1, 2, 4, 8, 8), (2, 4, 4)), ((1, 2, 5, 7, 6), (2, 3, 4)), ((2, 1, 3, 4, 5), 1),
         ((2, 3, 4, 5), (3, None, 2)), ((1, 1, 1, 4, 4), (1, 2, 2)), ((1, 2, 3, 3, 3), 5)]


def _nd(shape, out) -> int:
    """The pooled dims: a tuple's length, else the batched input's spatial dims."""
    return len(out) if isinstance(out, tuple) else max(len(shape) - 2, 1)


def _input(shape, kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "relu":      # whole windows tied at 0
        return np.maximum(rng.standard_normal(shape) - 0.8, 0).astype(dtype)
    if kind == "ints":      # ties everywhere, inside windows and between them
        return rng.integers(0, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _compare(shape, out, nd, a, ret):
    fn, tfn = FNS[nd]
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    r, rt = fn(x, out, return_indices=True), tfn(xt, out, return_indices=True)
    np.testing.assert_array_equal(r[0].detach().numpy(), rt[0].detach().numpy())
    np.testing.assert_array_equal(r[1].numpy(), rt[1].numpy())
    assert r[1].dtype == np.int64
    y = r[0] if ret else fn(x, out)
    w = np.random.default_rng(1).standard_normal(tuple(rt[0].shape)).astype(a.dtype)
    (y * tl.tensor(w)).sum().backward()
    (rt[0] * torch.tensor(w)).sum().backward()
    tol = 1e-12 if a.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    return r, x.grad.numpy(), w


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["zeros", "relu", "ints", "randn"])
@pytest.mark.parametrize("shape,out", CASES)
def test_values_indices_and_gradient_match_torch(shape, out, kind, dtype):
    nd = _nd(shape, out)
    _compare(shape, out, nd, _input(shape, kind, dtype), ret=kind != "ints")


@pytest.mark.parametrize("shape,out", CASES)
def test_gradient_is_the_scatter_at_the_returned_indices(shape, out):
    nd = _nd(shape, out)
    (y, idx), grad, w = _compare(shape, out, nd, _input(shape, "ints", np.float64), True)
    want = np.zeros(shape).reshape(-1, int(np.prod(shape[-nd:])))
    lead = want.shape[0]
    np.add.at(want, (np.arange(lead)[:, None], idx.numpy().reshape(lead, -1)),
              w.reshape(lead, -1))
    np.testing.assert_allclose(grad, want.reshape(shape), rtol=1e-13, atol=1e-15)


def test_trial_examples():
    a = tl.zeros((1, 1, 1, 4, 4), requires_grad=True)
    y, i = F.adaptive_max_pool3d(a, (1, 2, 2), return_indices=True)
    y.sum().backward()
    assert i.flatten().tolist() == [0, 2, 8, 10]
    want = np.zeros((4, 4))
    want[::2, ::2] = 1
    np.testing.assert_array_equal(a.grad.numpy()[0, 0, 0], want)
    b = tl.zeros((1, 1, 1, 1, 5), requires_grad=True)
    tl.nn.AdaptiveMaxPool3d((1, 1, 2))(b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy().ravel(), [1, 0, 1, 0, 0])


@pytest.mark.parametrize("nd,shape,out", [(1, (2, 3, 7), 3), (2, (2, 2, 7, 9), (3, 4)),
                                          (2, (1, 2, 6, 6), 3), (3, (1, 2, 5, 6, 7), (2, 3, 4)),
                                          (3, (1, 2, 4, 4, 4), 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_values_indices_and_gradient(nd, shape, out, dtype):
    a = _input(shape, "ints", dtype, seed=3)
    flat = a.reshape(-1)
    flat[::5] = np.nan
    flat[1::7] = np.nan
    fn, tfn = FNS[nd]
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, i = fn(x, out, return_indices=True)
    yt, it = tfn(xt, out, return_indices=True)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())   # NaN == NaN
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), data=st.data())
def test_hypothesis_tied_inputs(nd, data):
    sizes = data.draw(st.lists(st.integers(1, 9), min_size=nd, max_size=nd))
    outs = data.draw(st.lists(st.integers(1, 10), min_size=nd, max_size=nd))
    shape = (2, 2) + tuple(sizes)
    out = outs[0] if nd == 1 else tuple(outs)
    a = _input(shape, "ints", np.float64, seed=sum(sizes) * 7 + sum(outs))
    _compare(shape, out, nd, a, ret=True)


@pytest.mark.parametrize("nd,shape,out", [(1, (1, 2, 7), 3), (2, (1, 2, 5, 7), (3, 4)),
                                          (2, (1, 1, 4, 6), (2, 3)),
                                          (3, (1, 1, 3, 5, 4), (2, 2, 3))])
def test_second_order_gradient(nd, shape, out):
    fn, tfn = FNS[nd]
    a = np.random.default_rng(5).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    x = tl.tensor(a, requires_grad=True)
    # the backward is a scatter through the indices: linear in g, so (at non-tied points)
    # the second derivative through x is zero and the one through g is the gather
    assert tl.autograd.gradgradcheck(lambda t: fn(t, out), (x,))
    g = np.random.default_rng(6).standard_normal(tuple(tfn(torch.tensor(a), out).shape))
    v = np.random.default_rng(7).standard_normal(shape)
    gl = tl.tensor(g, requires_grad=True)
    (dx,) = tl.grad(fn(x, out), x, gl, create_graph=True)
    (ggl,) = tl.grad((dx * tl.tensor(v)).sum(), gl)
    xt, gt = torch.tensor(a, requires_grad=True), torch.tensor(g, requires_grad=True)
    (dxt,) = torch.autograd.grad(tfn(xt, out), xt, gt, create_graph=True)
    (ggt,) = torch.autograd.grad((dxt * torch.tensor(v)).sum(), gt)
    np.testing.assert_allclose(ggl.numpy(), ggt.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd,spec,out,sizes", [
    (2, (2, 3, 7, 9), (3, 4), [(2, 3, 7, 9)]),
    (2, (2, 3, 8, 8), (4, 2), [(2, 3, 8, 8)]),
    (3, (1, 2, 4, 6, 5), (2, 3, 2), [(1, 2, 4, 6, 5)]),
    (1, (2, 3, None), 3, [(2, 3, 7), (2, 3, 9), (2, 3, 12)]),
    (2, (2, 3, None, 6), (3, 4), [(2, 3, 7, 6), (2, 3, 9, 6)]),
])
def test_captured_training_step_matches_torch(nd, spec, out, sizes):
    fn, tfn = FNS[nd]

    def step(x, w):
        y, i = fn(x, out, return_indices=True)
        (gx,) = tl.grad((y * w).sum(), x)
        return y, i, gx
    w_spec = tuple(tfn(torch.zeros(sizes[0]), out).shape)    # the same for every size here
    f = tl.function(step, input_signature=[tl.TensorSpec(spec, tl.float64),
                                           tl.TensorSpec(w_spec, tl.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, shape in enumerate(sizes):
            a = _input(shape, "ints", np.float64, seed=k)
            xt = torch.tensor(a, requires_grad=True)
            yt, it = tfn(xt, out, return_indices=True)
            w = np.random.default_rng(k).standard_normal(tuple(yt.shape))
            (yt * torch.tensor(w)).sum().backward()
            y, i, gx = f(tl.tensor(a, requires_grad=True), tl.tensor(w))
            np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
            np.testing.assert_array_equal(i.numpy(), it.numpy())
            np.testing.assert_allclose(gx.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    # (a training step over None dims is traced once per shape: documented, see the warning)
    assert f.trace_count == (1 if None not in spec else len(sizes))


@pytest.mark.parametrize("module,shape", [
    (lambda: tl.nn.AdaptiveMaxPool2d((3, 4)), (2, 3, 7, 9)),
    (lambda: tl.nn.AdaptiveMaxPool2d((4, 2)), (2, 3, 8, 8)),
    (lambda: tl.nn.AdaptiveMaxPool3d((2, 3, 2)), (1, 2, 5, 7, 4)),
    (lambda: tl.nn.AdaptiveMaxPool3d(1), (1, 2, 4, 6, 4)),
    (lambda: tl.nn.AdaptiveMaxPool1d(3), (2, 3, 8))])
def test_onnx_export_matches_onnxruntime(module, shape, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = module()
    x = _input(shape, "relu", np.float32)
    path = str(tmp_path / "amp.onnx")
    tl.onnx.export(m, (tl.tensor(x),), path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_array_equal(got, m(tl.tensor(x)).numpy())


@pytest.mark.parametrize("nd,shape,out", [
    (3, (1, 3, 4, 4, 4), (0, 1, 1)), (3, (3, 4, 4, 4), (2, 0, 3)), (2, (2, 3, 4, 5), (0, 2)),
    (2, (3, 4, 5), (2, 0)), (1, (2, 3, 5), 0), (2, (1, 2, 3, 3), 0)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_zero_output_size_is_empty(nd, shape, out, kind):
    fn = getattr(F, f"adaptive_{kind}_pool{nd}d")
    tfn = getattr(TF, f"adaptive_{kind}_pool{nd}d")
    x = tl.randn(*shape, requires_grad=True)
    want = tfn(torch.randn(*shape), out)
    y = fn(x, out)
    assert tuple(y.shape) == tuple(want.shape)
    y.sum().backward()          # (PyTorch's backward refuses an empty grad_output)
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(shape, np.float32))
    if kind == "max":
        y, i = fn(x, out, return_indices=True)
        assert tuple(i.shape) == tuple(want.shape) and i.dtype == np.int64


def test_modules_with_zero_output_size():
    assert tl.nn.AdaptiveAvgPool3d((0, 1, 1))(tl.randn(1, 3, 4, 4, 4)).shape == (1, 3, 0, 1, 1)
    assert tl.nn.AdaptiveMaxPool3d((1, 0, 1))(tl.randn(1, 3, 4, 4, 4)).shape == (1, 3, 1, 0, 1)


@pytest.mark.parametrize("fn,out", [(F.adaptive_max_pool2d, (-1, 2)),
                                    (F.adaptive_avg_pool2d, (2, -3)),
                                    (F.adaptive_max_pool3d, (1, -1, 1)),
                                    (F.adaptive_avg_pool3d, -2), (F.adaptive_max_pool1d, -1)])
def test_negative_output_size_raises(fn, out):
    nd = 3 if "3d" in fn.__name__ else 2 if "2d" in fn.__name__ else 1
    with pytest.raises(ValueError, match=f"{fn.__name__}.*non-negative"):
        fn(tl.randn(*(1, 2) + (4,) * nd), out)
