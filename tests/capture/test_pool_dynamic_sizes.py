"""Pooling over dynamic sizes: the pool ops derive their output size from their input
(ceil_mode is an attribute), so a captured graph and an ONNX export with dynamic spatial
axes pool inputs of any length without tracing again."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")


def _models():
    return [
        (nn.MaxPool1d(2), torch.nn.MaxPool1d(2), (2, 3, 10)),
        (nn.MaxPool1d(3, 2, ceil_mode=True), torch.nn.MaxPool1d(3, 2, ceil_mode=True), (2, 3, 10)),
        (nn.AvgPool1d(3, 2, padding=1), torch.nn.AvgPool1d(3, 2, padding=1), (2, 3, 10)),
        (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
         torch.nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 9, 10)),
        (nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
         torch.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), (2, 3, 9, 10)),
    ]


@pytest.mark.parametrize("k", range(5))
def test_captured_pool_serves_every_length_from_one_graph(k):
    m, tm, shape = _models()[k]
    spec = tl.TensorSpec((None,) + shape[1:-1] + (None,))
    f = tl.function(lambda x: m(x), input_signature=[spec])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "traced again at other sizes"
        for n, t in ((2, shape[-1]), (3, shape[-1] + 7), (1, shape[-1] + 1)):
            x = np.random.default_rng(t).standard_normal((n,) + shape[1:-1] + (t,))
            x = x.astype(np.float32)
            np.testing.assert_allclose(f(tl.tensor(x)).numpy(), tm(torch.tensor(x)).numpy(),
                                       rtol=1e-6, atol=1e-6)
    assert f.trace_count == 1


@pytest.mark.parametrize("k", range(5))
def test_pool_exports_with_dynamic_spatial_axes(k, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m, tm, shape = _models()[k]
    x = tl.randn(*shape)
    path = tmp_path / "pool.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.onnx.export(m, (x,), path, dynamic_axes={0: {0: "B", len(shape) - 1: "T"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    for t in (shape[-1] + 5, shape[-1] + 8):
        x2 = np.random.default_rng(t).standard_normal(shape[:-1] + (t,)).astype(np.float32)
        want = tm(torch.tensor(x2)).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x2})[0]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        with tl.no_grad():
            np.testing.assert_allclose(back(x2).numpy(), want, rtol=1e-6, atol=1e-6)


def test_captured_training_step_with_pooling_matches_eager_at_each_length():
    def make():
        tl.manual_seed(0)
        conv = nn.Conv1d(2, 4, 3, padding=1)
        opt = tl.optim.SGD(conv.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = nn.functional.max_pool1d(conv(x), 2, ceil_mode=True).pow(2).mean()
            loss.backward()
            opt.step()
            return loss
        return step
    xs = [tl.tensor(np.random.default_rng(t).standard_normal((3, 2, t)).astype(np.float32))
          for t in (12, 15, 12, 9)]
    f = tl.function(make(), input_signature=[tl.TensorSpec((None, 2, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the backward may trace per length
        got = [f(x).item() for x in xs]
    eager = make()
    np.testing.assert_allclose(got, [eager(x).item() for x in xs], rtol=1e-5)


def test_conv_transpose_follows_dynamic_spatial_dims_captured_and_in_onnx(tmp_path):
    """A U-Net decoder's ConvTranspose2d: its output size comes from output_padding and the
    input, so one graph serves every size and ONNX export takes dynamic H and W (CV
    trial)."""
    ort = pytest.importorskip("onnxruntime")
    tm = torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
    m = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    f = tl.function(lambda x: m(x), input_signature=[tl.TensorSpec((None, 4, None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((2, 4, 8, 8), (1, 4, 12, 16), (3, 4, 8, 8)):
            x = np.random.default_rng(shape[2]).standard_normal(shape).astype(np.float32)
            with tl.no_grad():
                got = f(tl.tensor(x)).numpy()
            np.testing.assert_allclose(got, tm(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                       atol=1e-5)
    assert f.trace_count == 1
    path = tmp_path / "ct.onnx"
    tl.onnx.export(m, (tl.randn(2, 4, 8, 8),), path, dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    x = np.random.default_rng(9).standard_normal((3, 4, 10, 6)).astype(np.float32)
    want = tm(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], want,
                               rtol=1e-5, atol=1e-5)
    with tl.no_grad():
        np.testing.assert_allclose(back(x).numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_upsampling_follows_dynamic_spatial_dims(align_corners, tmp_path):
    """nn.Upsample(scale_factor=2, mode="bilinear") under capture with None H/W: one graph
    for every size, and ONNX export with dynamic H and W (CV trial: a U-Net decoder)."""
    ort = pytest.importorskip("onnxruntime")
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align_corners)

    def want(x):
        return torch.nn.functional.interpolate(torch.tensor(x), scale_factor=2,
                                               mode="bilinear",
                                               align_corners=align_corners).numpy()
    f = tl.function(lambda x: up(x), input_signature=[tl.TensorSpec((None, 3, None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((2, 3, 8, 8), (1, 3, 5, 7), (3, 3, 8, 8)):
            x = np.random.default_rng(shape[3]).standard_normal(shape).astype(np.float32)
            with tl.no_grad():
                np.testing.assert_allclose(f(tl.tensor(x)).numpy(), want(x), atol=1e-6)
    assert f.trace_count == 1
    path = tmp_path / "up.onnx"
    tl.onnx.export(up, (tl.randn(2, 3, 8, 8),), path, dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(4).standard_normal((1, 3, 5, 9)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], want(x),
                               atol=1e-6)
    # the op's gradient (its adjoint op) matches PyTorch's
    ref = torch.tensor(x, requires_grad=True)
    torch.nn.functional.interpolate(ref, scale_factor=2, mode="bilinear",
                                    align_corners=align_corners).pow(2).sum().backward()
    from tensorlib.ops.nn_resize_linear import resize_linear
    xt = tl.tensor(x, requires_grad=True)
    resize_linear(resize_linear(xt, 2, 2.0, align_corners), 3, 2.0,
                  align_corners).pow(2).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), ref.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolate_to_a_size_read_from_none_dims_follows_them(mode):
    """size=(x.shape[2] * 2, x.shape[3] * 2) under capture is those whole factors, so one
    graph serves every size (CV trial: it was fixed at the traced numbers)."""
    f = tl.function(lambda x: nn.functional.interpolate(
        x, size=(x.shape[2] * 2, x.shape[3] * 2), mode=mode),
        input_signature=[tl.TensorSpec((None, 3, None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((1, 3, 4, 5), (2, 3, 6, 3)):
            x = np.random.default_rng(shape[2]).standard_normal(shape).astype(np.float32)
            with tl.no_grad():
                got = f(tl.tensor(x)).numpy()
            want = torch.nn.functional.interpolate(
                torch.tensor(x), size=(shape[2] * 2, shape[3] * 2), mode=mode).numpy()
            np.testing.assert_allclose(got, want, atol=1e-6)
    assert f.trace_count == 1
