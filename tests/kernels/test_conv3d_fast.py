"""conv3d's 3-D im2col + GEMM ops (conv3d, conv3d_input_grad, conv3d_weight_grad) against
PyTorch: values and gradients over strides, dilations, groups, padding modes, odd sizes,
tiles of depths and of rows, layouts, special values; second derivatives."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_conv

torch = pytest.importorskip("torch")


def _run(xs, ws, stride=1, padding=0, dilation=1, groups=1, bias=True, dtype=np.float64,
         seed=0, layout=None):
    """conv3d forward and x/w/b gradients (for a random output gradient) from both libraries."""
    rng = np.random.default_rng(seed)
    xn = rng.standard_normal(xs).astype(dtype)
    wn = rng.standard_normal(ws).astype(dtype)
    bn = rng.standard_normal(ws[0]).astype(dtype)
    xt = torch.tensor(xn, requires_grad=True)
    wt = torch.tensor(wn, requires_grad=True)
    bt = torch.tensor(bn, requires_grad=True)
    yt = torch.nn.functional.conv3d(xt, wt, bt if bias else None, stride, padding, dilation,
                                    groups)
    gn = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(gn))
    x = tl.tensor(xn, requires_grad=True)
    w = tl.tensor(wn, requires_grad=True)
    b = tl.tensor(bn, requires_grad=True)
    xin = x if layout is None else layout(x)
    y = F.conv3d(xin, w, b if bias else None, stride, padding, dilation, groups)
    y.backward(tl.tensor(gn))
    got = [y.numpy(), x.grad.numpy(), w.grad.numpy()] + ([b.grad.numpy()] if bias else [])
    want = [yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()] + (
        [bt.grad.numpy()] if bias else [])
    return got, want


def _close(got, want, dtype=np.float64):
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))


CASES = [
    # xs, ws, stride, padding, dilation, groups
    ((2, 4, 5, 7, 6), (6, 4, 3, 3, 3), 1, 1, 1, 1),
    ((2, 4, 9, 11, 10), (6, 2, 3, 2, 3), (2, 1, 3), (1, 0, 2), (1, 2, 1), 2),
    ((1, 3, 7, 9, 9), (4, 3, 2, 3, 3), 2, (0, 1, 1), (2, 1, 1), 1),
    ((2, 3, 6, 5, 5), (4, 3, 1, 1, 1), 1, 0, 1, 1),                   # 1x1x1
    ((2, 6, 5, 7, 5), (6, 2, 3, 3, 3), 1, 1, 1, 3),                   # grouped
    ((2, 4, 6, 5, 5), (8, 1, 3, 3, 3), 1, 1, 1, 4),                   # depthwise (2-D path)
    ((2, 1, 6, 5, 5), (3, 1, 3, 3, 3), 1, 2, 1, 1),                   # one channel, wide pad
    ((1, 2, 4, 13, 17), (3, 2, 3, 3, 3), (1, 2, 1), (3, 1, 0), (1, 1, 2), 1),
    ((1, 3, 5, 6, 6), (4, 3, 3, 3, 3), 1, "same", 2, 1),
    ((1, 3, 5, 6, 7), (4, 3, 2, 2, 3), 1, "same", 1, 1),              # uneven 'same'
    ((2, 3, 4, 6, 6), (2, 3, 2, 3, 3), 1, "valid", 1, 1),
    ((2, 3, 3, 8, 8), (5, 3, 3, 7, 7), (1, 2, 2), (1, 3, 3), 1, 1),   # a stem
    ((1, 2, 3, 5, 5), (2, 2, 3, 3, 3), (3, 1, 1), 0, (1, 2, 2), 1),   # depth stride > kd
    ((1, 2, 2, 4, 4), (3, 2, 5, 3, 3), 1, (3, 1, 1), 1, 1),           # pad past the taps
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_and_grads_match_torch(xs, ws, stride, padding, dilation, groups, dtype):
    got, want = _run(xs, ws, stride, padding, dilation, groups, dtype=dtype)
    _close(got, want, dtype)


@pytest.mark.parametrize("tile_bytes", [1, 64 << 10, 1 << 30])
@pytest.mark.parametrize("stride", [1, 2])
def test_tiles_of_rows_and_depths(monkeypatch, tile_bytes, stride):
    """Row tiles of one depth (tiny budget), several depths per tile and whole images."""
    monkeypatch.setattr(nn_conv, "TILE3_BYTES", tile_bytes)
    got, want = _run((2, 3, 7, 23, 19), (4, 3, 3, 3, 2), stride, (1, 2, 0), (2, 1, 1))
    _close(got, want)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 4), o=st.integers(1, 4),
       dhw=st.tuples(st.integers(1, 7), st.integers(1, 8), st.integers(1, 8)),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
       groups=st.sampled_from([1, 2]), bias=st.booleans(), seed=st.integers(0, 100))
def test_random_geometry(n, c, o, dhw, k, s, d, p, groups, bias, seed):
    c, o = c * groups, o * groups
    if any(x + 2 * pp < dd * (kk - 1) + 1 for x, pp, dd, kk in zip(dhw, p, d, k)):
        return
    got, want = _run((n, c) + dhw, (o, c // groups) + k, s, p, d, groups, bias, seed=seed)
    _close(got, want)


def _channels_last_3d(x):
    return x.contiguous(memory_format=tl.channels_last_3d)


def _strided(x):
    # the same values in a non-contiguous view (H and W strides swapped)
    y = x.transpose(3, 4).contiguous().transpose(3, 4)
    assert not y.is_contiguous()
    return y


@pytest.mark.parametrize("layout", [_channels_last_3d, _strided])
def test_non_contiguous_inputs(layout):
    got, want = _run((2, 3, 5, 6, 7), (4, 3, 3, 2, 3), (1, 2, 1), 1, 1, 1, layout=layout)
    _close(got, want)


def test_nan_and_inf_propagate():
    x = np.ones((1, 2, 4, 5, 5))
    x[0, 0, 1, 2, 2] = np.nan
    x[0, 1, 3, 0, 0] = np.inf
    w = np.ones((3, 2, 3, 3, 3)) * 0.5
    got = F.conv3d(tl.tensor(x), tl.tensor(w), padding=1).numpy()
    want = torch.nn.functional.conv3d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)])


def test_empty_batch_and_unbatched():
    w = np.random.default_rng(1).standard_normal((3, 2, 2, 2, 2))
    x = tl.zeros((0, 2, 4, 4, 4), dtype=tl.float64, requires_grad=True)
    wl = tl.tensor(w, requires_grad=True)
    y = F.conv3d(x, wl)
    assert y.shape == (0, 3, 3, 3, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 4, 4, 4)
    np.testing.assert_array_equal(wl.grad.numpy(), np.zeros_like(w))
    xu = np.random.default_rng(2).standard_normal((2, 4, 5, 3))
    np.testing.assert_allclose(
        F.conv3d(tl.tensor(xu), tl.tensor(w), padding=1).numpy(),
        torch.nn.functional.conv3d(torch.tensor(xu), torch.tensor(w), padding=1).numpy(),
        rtol=1e-12, atol=1e-12)


def test_integer_inputs_match_torch():
    rng = np.random.default_rng(4)
    x = rng.integers(-5, 5, (2, 2, 4, 5, 5))
    w = rng.integers(-3, 3, (3, 2, 2, 3, 3))
    got = F.conv3d(tl.tensor(x), tl.tensor(w), stride=(2, 1, 1), padding=1)
    want = torch.nn.functional.conv3d(torch.tensor(x), torch.tensor(w), stride=(2, 1, 1),
                                      padding=1)
    assert got.dtype == tl.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("stride", [1, (2, 1, 2)])
def test_generic_kernels_match_cpu(stride):
    """The array-module versions (other backends, integers) agree with the CPU kernels."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5, 6, 7))
    w = rng.standard_normal((6, 2, 3, 2, 3))
    geo = dict(stride=tuple(stride) if isinstance(stride, tuple) else (stride,) * 3,
               padding=(1, 0, 0, 1, 2, 1), dilation=(1, 2, 1), groups=2)
    y = nn_conv._conv3d_cpu(x, w, **geo)
    np.testing.assert_allclose(nn_conv._conv3d_impl(nn_conv._im2col_xp, np, x, w, **geo), y,
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(
        nn_conv._conv3d_input_grad_impl(nn_conv._col2im_xp, np, g, w, input_dhw=x.shape[2:],
                                        **geo),
        nn_conv._conv3d_input_grad_cpu(g, w, input_dhw=x.shape[2:], **geo),
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        nn_conv._conv3d_weight_grad_impl(nn_conv._im2col_xp, np, x, g, kernel=w.shape[2:],
                                         **geo),
        nn_conv._conv3d_weight_grad_cpu(x, g, kernel=w.shape[2:], **geo),
        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,groups", [(1, 1), ((2, 1, 2), 2)])
def test_gradgradcheck(stride, groups):
    rng = np.random.default_rng(6)
    x = tl.tensor(rng.standard_normal((1, 2, 3, 4, 4)), requires_grad=True)
    w = tl.tensor(rng.standard_normal((2, 2 // groups, 2, 2, 2)), requires_grad=True)
    b = tl.tensor(rng.standard_normal(2), requires_grad=True)

    def fn(x, w, b):
        return F.conv3d(x, w, b, stride=stride, padding=1, groups=groups)
    assert tl.autograd.gradcheck(fn, (x, w, b))
    assert tl.autograd.gradgradcheck(fn, (x, w, b))


def test_double_backward_matches_torch():
    rng = np.random.default_rng(7)
    xn, wn = rng.standard_normal((2, 3, 4, 5, 5)), rng.standard_normal((4, 3, 2, 3, 3))
    x = tl.tensor(xn, requires_grad=True)
    w = tl.tensor(wn, requires_grad=True)
    xt = torch.tensor(xn, requires_grad=True)
    wt = torch.tensor(wn, requires_grad=True)
    gx, = tl.autograd.grad((F.conv3d(x, w, stride=(1, 2, 1), padding=1) ** 2).sum(), [x],
                           create_graph=True)
    (gx ** 2).sum().backward()
    gxt, = torch.autograd.grad((torch.nn.functional.conv3d(xt, wt, stride=(1, 2, 1),
                                                           padding=1) ** 2).sum(), [xt],
                               create_graph=True)
    (gxt ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bad", [
    dict(w=(4, 3, 3, 3, 3)),                        # channels
    dict(groups=3, w=(4, 1, 3, 3, 3)),              # out channels not divisible
    dict(w=(4, 2, 6, 3, 3)),                        # kernel deeper than the input
    dict(bias=(3,)),
])
def test_errors_name_conv3d(bad):
    x = tl.zeros((1, 2, 4, 5, 5))
    w = tl.zeros(bad.get("w", (4, 2, 3, 3, 3)))
    b = tl.zeros(bad["bias"]) if "bias" in bad else None
    with pytest.raises(Exception, match="conv3d"):
        F.conv3d(x, w, b, groups=bad.get("groups", 1))


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from tensorlib._apply import apply
    rng = np.random.default_rng(8)
    w = tl.tensor(rng.standard_normal((4, 3, 3, 2, 3)).astype(np.float32))
    geo = dict(stride=(2, 1, 2), padding=(1, 1, 0, 1, 2, 0), dilation=(1, 2, 1), groups=1)

    class M(tl.nn.Module):
        def forward(self, x):
            y = F.conv3d(x, w, stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1))
            # the input gradient op (a transposed conv) of another geometry, odd sizes
            return y, apply(nn_conv.CONV3D_INPUT_GRAD, y[:, :4], w, input_dhw=(8, 5, 20),
                            **geo)

    x = tl.tensor(rng.standard_normal((2, 3, 6, 9, 8)).astype(np.float32))
    path = str(tmp_path / "c3.onnx")
    tl.onnx.export(M().eval(), (x,), path, input_names=["x"])
    got = ort.InferenceSession(path).run(None, {"x": x.numpy()})
    for g, want in zip(got, M()(x)):
        np.testing.assert_allclose(g, want.numpy(), rtol=1e-4, atol=1e-4)


# --- channels_last 1x1 conv2d: one GEMM on the NHWC views, channels_last out ---------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_channels_last_1x1_conv2d(dtype, bias):
    rng = np.random.default_rng(9)
    xn = rng.standard_normal((2, 5, 7, 3)).astype(dtype)
    w1n = rng.standard_normal((6, 5, 1, 1)).astype(dtype)
    w2n = rng.standard_normal((4, 6, 1, 1)).astype(dtype)
    bn = rng.standard_normal(6).astype(dtype)
    gn = rng.standard_normal((2, 4, 7, 3)).astype(dtype)

    def run(lib, mf, t):
        x = t(xn).contiguous(memory_format=mf).requires_grad_()
        w1, w2, b = (t(a).requires_grad_() for a in (w1n, w2n, bn))
        y1 = lib.nn.functional.conv2d(x, w1.contiguous(memory_format=mf), b if bias else None)
        y = lib.nn.functional.conv2d(y1, w2)
        y.backward(t(gn).contiguous(memory_format=mf))
        assert x.grad.is_contiguous(memory_format=mf)   # the gradient stays NHWC too
        return y1, [y.detach().numpy(), x.grad.numpy(), w1.grad.numpy(), w2.grad.numpy()]
    y1, got = run(tl, tl.channels_last, tl.tensor)
    y1t, want = run(torch, torch.channels_last, torch.tensor)
    assert y1.is_contiguous(memory_format=tl.channels_last) and not y1.is_contiguous()
    assert y1t.is_contiguous(memory_format=torch.channels_last)
    _close(got, want, dtype)


def test_channels_last_1x1_ambiguous_layouts_stay_contiguous():
    """One channel (C order and NHWC alike) and strided or padded 1x1 convs: the usual path,
    a C-order result, as PyTorch's for a C-order input."""
    rng = np.random.default_rng(10)
    for xs, kw in (((2, 1, 4, 4), {}), ((2, 3, 5, 5), {"stride": 2}),
                   ((2, 3, 5, 5), {"padding": 1})):
        xn, wn = rng.standard_normal(xs), rng.standard_normal((4, xs[1], 1, 1))
        x = tl.tensor(xn)
        if xs[1] > 1:
            x = x.contiguous(memory_format=tl.channels_last)
        y = F.conv2d(x, tl.tensor(wn), **kw)
        assert y.is_contiguous()
        want = torch.nn.functional.conv2d(torch.tensor(xn), torch.tensor(wn), **kw)
        np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
