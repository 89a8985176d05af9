"""Strided float32 convolutions against PyTorch: the input gradient (col2im at any stride,
AVX-512 in tensorlib/_im2col.h), the weight gradient and forward (im2col at column stride 2),
and conv_transpose2d (the input-gradient op), with odd sizes, dilation, groups, NaN/inf,
empty batches and non-contiguous inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops import nn_conv

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional


def _close(got, ref, tol=2e-5):
    got, ref = np.asarray(got), np.asarray(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    scale = max(1.0, float(np.abs(ref[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(got[finite], ref[finite], rtol=tol, atol=tol * scale)


def _fwd_bwd(x, w, gout, dtype=np.float32, **geo):
    """(out, dx, dw) of tensorlib and of PyTorch for conv2d(x, w, **geo) with output grad."""
    lx = tl.tensor(x.astype(dtype), requires_grad=True)
    lw = tl.tensor(w.astype(dtype), requires_grad=True)
    out = F.conv2d(lx, lw, **geo)
    out.backward(tl.tensor(gout.astype(dtype)))
    tx = torch.tensor(x.astype(dtype), requires_grad=True)
    tw = torch.tensor(w.astype(dtype), requires_grad=True)
    ref = TF.conv2d(tx, tw, **geo)
    ref.backward(torch.tensor(gout.astype(dtype)))
    return ((out.numpy(), lx.grad.numpy(), lw.grad.numpy()),
            (ref.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()))


CASES = [  # (N, C, O, H, W, k, stride, padding, dilation, groups)
    (2, 8, 16, 20, 20, 3, 2, 1, 1, 1),        # ResNet 3x3 stride 2
    (2, 8, 16, 20, 22, 1, 2, 0, 1, 1),        # 1x1 stride-2 downsample
    (1, 3, 8, 37, 41, 7, 2, 3, 1, 1),         # 7x7 stride-2 stem, odd sizes
    (2, 8, 12, 23, 19, 3, 2, 2, 2, 2),        # dilation 2, groups 2
    (2, 4, 6, 33, 29, 3, (2, 3), (1, 0), 1, 1),
    (2, 4, 6, 17, 50, 5, 3, 2, (1, 2), 1),
    (3, 6, 6, 9, 40, 4, (1, 2), 1, 1, 3),     # stride 2 along W only
    (2, 5, 7, 15, 70, 3, 5, 1, 3, 1),
    (4, 16, 16, 12, 12, 4, 2, 1, 1, 1),       # a GAN's 4x4 stride 2
]


@pytest.mark.parametrize("case", CASES)
def test_strided_conv_grads_match_torch(case):
    N, C, O, H, W, k, s, p, d, g = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // g, k, k)) * 0.2
    geo = dict(stride=s, padding=p, dilation=d, groups=g)
    shape = TF.conv2d(torch.zeros(N, C, H, W), torch.zeros(O, C // g, k, k), **geo).shape
    gout = rng.standard_normal(tuple(shape))
    for dtype, tol in ((np.float32, 2e-5), (np.float64, 1e-10)):
        got, ref = _fwd_bwd(x, w, gout, dtype, **geo)
        for a, b in zip(got, ref):
            _close(a, b, tol)


@settings(max_examples=40, deadline=None)
@given(H=st.integers(1, 40), W=st.integers(1, 40), k=st.integers(1, 5), sh=st.integers(1, 4),
       sw=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3), seed=st.integers(0, 99))
def test_im2col_col2im_kernels_match_unfold_fold(H, W, k, sh, sw, p, d, seed):
    """The float32 kernels directly, at every stride: im2col = unfold, col2im = fold."""
    if d * (k - 1) + 1 > min(H, W) + 2 * p:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    Ho = (H + 2 * p - d * (k - 1) - 1) // sh + 1
    Wo = (W + 2 * p - d * (k - 1) - 1) // sw + 1
    cols = np.empty((3 * k * k, 2 * Ho * Wo), np.float32)
    _ops.im2col(x, cols, k, k, sh, sw, p, p, d, d, Ho, Wo)
    ref = TF.unfold(torch.tensor(x), k, dilation=d, padding=p, stride=(sh, sw))
    ref = ref.permute(1, 0, 2).reshape(3 * k * k, -1).numpy()
    np.testing.assert_array_equal(cols, ref)
    c2 = rng.standard_normal(cols.shape).astype(np.float32)
    out = np.full((2, 3, H, W), np.nan, np.float32)     # col2im overwrites every element
    _ops.col2im(c2, out, k, k, sh, sw, p, p, d, d, Ho, Wo)
    folded = TF.fold(torch.tensor(c2.reshape(3 * k * k, 2, -1).transpose(1, 0, 2)), (H, W), k,
                     dilation=d, padding=p, stride=(sh, sw)).numpy()
    np.testing.assert_allclose(out, folded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_propagate_as_torch(bad):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 15, 17))
    w = rng.standard_normal((6, 4, 3, 3)) * 0.2
    x[0, 1, 4, 5] = bad
    gout = rng.standard_normal((2, 6, 8, 9))
    gout[1, 0, 3, 4] = bad
    got, ref = _fwd_bwd(x, w, gout, stride=2, padding=1)
    for a, b in zip(got, ref):
        _close(a, b)
    # a non-finite weight: the input gradient (the forward's taps on the zero padding give
    # NaN here, where PyTorch's direct kernel skips them)
    w[2, 3, 1, 2] = bad
    got, ref = _fwd_bwd(x * 0, w, rng.standard_normal((2, 6, 8, 9)), stride=2, padding=1)
    _close(got[1], ref[1])


def test_empty_batch_and_noncontiguous_inputs():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    lx = tl.tensor(np.zeros((0, 4, 9, 9), np.float32), requires_grad=True)
    out = F.conv2d(lx, tl.tensor(w), stride=2, padding=1)
    assert tuple(out.shape) == (0, 6, 5, 5)
    out.sum().backward()
    assert tuple(lx.grad.shape) == (0, 4, 9, 9)
    # a channels-last layout and a W-strided slice reach the kernels as views
    base = rng.standard_normal((2, 21, 19, 4)).astype(np.float32)
    lx = tl.tensor(base, requires_grad=True)
    y = F.conv2d(lx.permute(0, 3, 1, 2)[:, :, :, ::2], tl.tensor(w), stride=2, padding=1)
    gout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(tl.tensor(gout))
    tx = torch.tensor(base, requires_grad=True)
    ty = TF.conv2d(tx.permute(0, 3, 1, 2)[:, :, :, ::2], torch.tensor(w), stride=2, padding=1)
    ty.backward(torch.tensor(gout))
    _close(y.numpy(), ty.detach().numpy())
    _close(lx.grad.numpy(), tx.grad.numpy())
    assert tuple(lx.grad.shape) == (2, 21, 19, 4)


@pytest.mark.parametrize("geo", [dict(stride=2, padding=1, output_padding=1),
                                 dict(stride=(2, 3), padding=(0, 2), dilation=2, groups=2),
                                 dict(stride=3, padding=1, output_padding=(2, 0))])
def test_conv_transpose2d_strided_matches_torch(geo):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 11, 13)).astype(np.float32)
    w = (rng.standard_normal((6, 4, 4, 3)) * 0.2).astype(np.float32)
    lx, lw = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    out = F.conv_transpose2d(lx, lw, **geo)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ref = TF.conv_transpose2d(tx, tw, **geo)
    gout = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    out.backward(tl.tensor(gout))
    ref.backward(torch.tensor(gout))
    _close(out.numpy(), ref.detach().numpy())
    _close(lx.grad.numpy(), tx.grad.numpy())
    _close(lw.grad.numpy(), tw.grad.numpy())


def test_strided_input_grad_direct_kernel_paths():
    """The per-image (large maps) and chunked (small maps) float32 input-gradient paths."""
    rng = np.random.default_rng(6)
    for N, H in ((3, 40), (16, 6)):
        g = rng.standard_normal((N, 8, (H + 1) // 2, (H + 1) // 2)).astype(np.float32)
        w = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
        got = nn_conv._input_grad_cpu(g, w, stride=(2, 2), padding=(1, 1, 1, 1),
                                      dilation=(1, 1), groups=1, input_hw=(H, H))
        ref = torch.nn.grad.conv2d_input((N, 5, H, H), torch.tensor(w), torch.tensor(g),
                                         stride=2, padding=1)
        _close(got, ref.numpy())


def test_strided_conv_gradgradcheck():
    rng = np.random.default_rng(7)
    x = tl.tensor(rng.standard_normal((1, 2, 7, 6)), requires_grad=True)
    w = tl.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    fn = lambda a, b: F.conv2d(a, b, stride=2, padding=1)  # noqa: E731
    assert tl.autograd.gradcheck(fn, (x, w))
    assert tl.autograd.gradgradcheck(fn, (x, w))
    ft = lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1)  # noqa: E731
    w2 = tl.tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=True)
    assert tl.autograd.gradgradcheck(ft, (x, w2))
