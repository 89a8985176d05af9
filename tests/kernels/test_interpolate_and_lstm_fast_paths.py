"""Correctness of the CPU speed fixes of round 19: linear/bilinear/trilinear interpolate (one
blended-gather op per axis, its gather adjoint; PyTorch's inf/NaN behaviour) and the
float32 LSTM sequence loop (contiguous W_hh^T, kernel choice by batch), against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
INF = float("inf")


def _both(shape, seed=0, dtype=np.float64):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return (tl.tensor(x, requires_grad=True),
            torch.tensor(x, requires_grad=True))


def _check_interp(shape, seed=0, **kw):
    x, xt = _both(shape, seed)
    y, yt = F.interpolate(x, **kw), TF.interpolate(xt, **kw)
    assert tuple(y.shape) == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(yt.shape))
    y.backward(tl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=0.5),
                                dict(scale_factor=3.7), dict(scale_factor=0.3),
                                dict(size=13), dict(size=1), dict(size=40),
                                dict(scale_factor=1.6, recompute_scale_factor=True)])
def test_linear_values_and_grads(kw, align_corners):
    _check_interp((2, 3, 17), mode="linear", align_corners=align_corners, **kw)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=(0.5, 3)),
                                dict(size=(7, 20)), dict(size=(1, 5))])
def test_bilinear_values_and_grads(kw, align_corners):
    _check_interp((2, 2, 9, 11), mode="bilinear", align_corners=align_corners, **kw)


def test_trilinear_values_and_grads():
    _check_interp((1, 2, 4, 5, 6), mode="trilinear", scale_factor=(2, 0.6, 1.5))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), out=st.integers(1, 70), ac=st.booleans(), seed=st.integers(0, 99))
def test_linear_sizes_hypothesis(n, out, ac, seed):
    _check_interp((1, 2, n), seed, mode="linear", size=out, align_corners=ac)


def test_grad_of_grad_linear():
    x = tl.tensor(np.random.default_rng(3).standard_normal((1, 2, 6)), requires_grad=True)
    g = tl.tensor(np.random.default_rng(4).standard_normal((1, 2, 15)), requires_grad=True)
    y = F.interpolate(x, size=15, mode="linear")
    (gx,) = tl.grad(y, x, grad_outputs=g, create_graph=True)
    (gg,) = tl.grad((gx * gx).sum(), g)
    xt = torch.tensor(x.numpy(), requires_grad=True)
    gt = torch.tensor(g.numpy(), requires_grad=True)
    (gxt,) = torch.autograd.grad(TF.interpolate(xt, size=15, mode="linear"), xt, gt,
                                 create_graph=True)
    (ggt,) = torch.autograd.grad((gxt * gxt).sum(), gt)
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("vals", [[INF, 2., 3., 4.], [1., INF, 3., 4.], [1., 2., 3., INF],
                                  [INF, -INF, 3., 4.], [1., 2., -INF, INF], [-INF, 1., 2., 5.]])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=2, align_corners=True),
                                dict(size=3), dict(scale_factor=0.5)])
@pytest.mark.filterwarnings("ignore:invalid value")
def test_linear_inf_like_torch(vals, kw):
    x = np.asarray([[vals]], np.float32)
    y = F.interpolate(tl.tensor(x), mode="linear", **kw).numpy()
    yt = TF.interpolate(torch.tensor(x), mode="linear", **kw).numpy()
    np.testing.assert_allclose(y, yt, rtol=1e-6)   # NaN and inf where PyTorch has them


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("ac", [False, True])
def test_bilinear_inf_like_torch(ac):
    x = np.asarray([[[[INF, 1., 2.], [2., 3., -INF], [0., 1., 5.]]]], np.float32)
    y = F.interpolate(tl.tensor(x), scale_factor=2, mode="bilinear", align_corners=ac)
    yt = TF.interpolate(torch.tensor(x), scale_factor=2, mode="bilinear", align_corners=ac)
    np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-6)


def test_float32_matches_torch():
    x = np.random.default_rng(5).standard_normal((2, 3, 50, 40)).astype(np.float32)
    y = F.interpolate(tl.tensor(x), size=(77, 31), mode="bilinear").numpy()
    yt = TF.interpolate(torch.tensor(x), size=(77, 31), mode="bilinear").numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=2e-5)


def test_interpolate_errors():
    with pytest.raises(ValueError, match="interpolate"):
        F.interpolate(tl.randn(1, 2, 3, 4), scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="interpolate"):
        F.interpolate(tl.randn(1, 2, 3), scale_factor=0.1, mode="linear")
    with pytest.raises(TypeError, match="interpolate"):
        F.interpolate(tl.tensor(np.ones((1, 1, 3), np.int64)), scale_factor=2, mode="linear")


@pytest.mark.filterwarnings("ignore:invalid value")
def test_resize_linear_op_inf_and_grad():
    from tensorlib.ops.nn_resize_linear import resize_linear
    x = np.asarray([[[1., INF, 3., 4.]]], np.float32)
    np.testing.assert_allclose(
        resize_linear(tl.tensor(x), 2, 2.0, False).numpy(),
        TF.interpolate(torch.tensor(x), scale_factor=2, mode="linear").numpy(), rtol=1e-6)
    xg, xt = _both((2, 3, 7), 6)
    y = resize_linear(xg, 2, 2.0, True)
    yt = TF.interpolate(xt, scale_factor=2, mode="linear", align_corners=True)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


# --- LSTM: the kernel (N = 1 or tiny), the NumPy loop and the GEMM loop ------------------------
@pytest.mark.parametrize("H,N,bi", [(16, 1, False), (32, 4, True), (128, 4, False),
                                    (256, 4, False), (256, 2, True), (64, 16, False)])
def test_lstm_float32_matches_torch(H, N, bi):
    torch.manual_seed(0)
    mt = torch.nn.LSTM(12, H, batch_first=True, bidirectional=bi)
    m = tl.nn.LSTM(12, H, batch_first=True, bidirectional=bi)
    m.load_state_dict(mt.state_dict())
    x = np.random.default_rng(1).standard_normal((N, 9, 12)).astype(np.float32)
    h0 = np.random.default_rng(2).standard_normal((2 if bi else 1, N, H)).astype(np.float32)
    xl = tl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    y, (h, c) = m(xl, (tl.tensor(h0), tl.tensor(h0 * 0.5)))
    yt, (ht, ct) = mt(xt, (torch.tensor(h0), torch.tensor(h0 * 0.5)))
    for a, b in ((y, yt), (h, ht), (c, ct)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    (y.sum() + c.sum()).backward()
    (yt.sum() + ct.sum()).backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    for (name, p), pt in zip(m.named_parameters(), mt.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=name)


def test_lstm_no_grad_and_reverse_float32():
    from tensorlib.ops.nn_rnn_seq import lstm_seq
    rng = np.random.default_rng(7)
    T, N, I, H = 6, 4, 5, 256
    arrs = [rng.standard_normal(s).astype(np.float32) * 0.1
            for s in ((T, N, I), (N, H), (N, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    with tl.no_grad():
        y, h, c = lstm_seq(*[tl.tensor(a) for a in arrs], reverse=True)
    xt = torch.tensor(arrs[0][::-1].copy())
    yt, ht, ct = torch._VF.lstm(xt, (torch.tensor(arrs[1])[None], torch.tensor(arrs[2])[None]),
                                  [torch.tensor(a) for a in arrs[3:]], True, 1, 0.0, False,
                                  False, False)
    np.testing.assert_allclose(y.numpy(), yt.numpy()[::-1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(h.numpy(), ht[0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), ct[0].numpy(), rtol=1e-4, atol=1e-6)


def test_lstm_seq_errors():
    from tensorlib.ops.nn_rnn_seq import lstm_seq
    with pytest.raises(ValueError, match="lstm_seq"):
        lstm_seq(tl.randn(3, 2, 4), tl.zeros(2, 5), tl.zeros(2, 5), tl.randn(20, 4),
                 tl.randn(16, 5))


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_lstm_matrix_vector_path_matches_torch(batch):
    """H 512 with a few rows: the loop's per-row matrix-vector products (W_hh >= 4 MiB)."""
    from tensorlib import _ops
    if not _ops.SGEMM_SUPPORTED:
        pytest.skip("the matrix-vector path needs AVX-512")
    torch.manual_seed(0)
    tm = torch.nn.LSTM(8, 512, batch_first=True)
    m = tl.nn.LSTM(8, 512, batch_first=True)
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((batch, 6, 8)).astype(np.float32)
    with tl.no_grad(), torch.no_grad():
        y, (h, c) = m(tl.tensor(x))
        ty, (th, tc) = tm(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(c.numpy(), tc.numpy(), rtol=2e-5, atol=2e-6)
