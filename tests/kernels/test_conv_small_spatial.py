"""Session 22: small-spatial convolutions (shifted-view GEMMs for stride-1 float32 forwards,
the batched GEMM for small maps' forward and input gradient) against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _gemm
from tensorlib.errors import ShapeError
from tensorlib.ops import nn_conv

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional


def _close(got, ref, dtype):
    ref = np.asarray(ref)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(np.asarray(got), ref, rtol=tol, atol=tol * scale)


def _check(xs, ws, dtype=np.float32, bias=True, seed=0, transposed=False, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) * 0.2).astype(dtype)
    nb = ws[1] * kw.get("groups", 1) if transposed else ws[0]
    b = rng.standard_normal(nb).astype(dtype) if bias else None
    nd = len(xs) - 2
    ours = {1: F.conv1d, 2: F.conv2d}[nd] if not transposed else F.conv_transpose2d
    theirs = {1: TF.conv1d, 2: TF.conv2d}[nd] if not transposed else TF.conv_transpose2d
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    lx, lw = (tl.tensor(a, requires_grad=True) for a in (x, w))
    lb = None if b is None else tl.tensor(b, requires_grad=True)
    ref = theirs(tx, tw, tb, **kw)
    out = ours(lx, lw, lb, **kw)
    _close(out.numpy(), ref.detach().numpy(), dtype)
    g = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    ref.backward(torch.tensor(g))
    out.backward(tl.tensor(g))
    _close(lx.grad.numpy(), tx.grad.numpy(), dtype)
    _close(lw.grad.numpy(), tw.grad.numpy(), dtype)
    if b is not None:
        _close(lb.grad.numpy(), tb.grad.numpy(), dtype)


SMALL = [
    ((64, 64, 7, 7), (64, 64, 3, 3), dict(padding=1)),
    ((64, 128, 7, 7), (64, 128, 3, 3), dict(padding=1)),
    ((64, 32, 14, 14), (32, 32, 3, 3), dict(stride=2, padding=1)),
    ((8, 96, 14, 14), (32, 96, 3, 3), dict(padding=1)),
    ((70, 64, 7, 7), (16, 64, 3, 3), dict(padding=1)),      # chunks of 32, 32, 6 images
    ((5, 3, 6, 9), (4, 3, 2, 4), dict(padding="same")),     # asymmetric 'same' padding
    ((3, 4, 9, 8), (6, 4, 3, 3), dict(padding=(2, 1), dilation=2)),
    ((3, 4, 5, 7), (6, 4, 1, 3), dict(padding=(0, 1))),
    ((3, 4, 7, 5), (6, 4, 3, 1), dict(padding=(1, 0))),
    ((2, 4, 6, 6), (5, 4, 3, 3), dict()),                   # no padding
    ((2, 4, 6, 6), (5, 4, 3, 3), dict(padding=(1, 3))),     # more padding than the gap
    ((4, 8, 7, 7), (8, 2, 3, 3), dict(padding=1, groups=4)),
    ((1, 2, 1, 1), (3, 2, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ws,kw", SMALL)
def test_small_conv2d_matches_torch(xs, ws, kw, dtype):
    _check(xs, ws, dtype, **kw)
    _check(xs, ws, dtype, bias=False, seed=1, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv1d_and_transposed_match_torch(dtype):
    _check((32, 64, 128), (64, 64, 3), dtype, padding=1)
    _check((4, 8, 20), (6, 8, 5), dtype, padding=2, dilation=2)
    _check((64, 64, 7, 7), (64, 64, 4, 4), dtype, transposed=True, stride=2, padding=1)
    _check((6, 8, 5, 5), (8, 4, 3, 3), dtype, transposed=True, stride=1, padding=1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(1, 12), o=st.integers(1, 12), h=st.integers(1, 10),
       wd=st.integers(1, 10), kh=st.integers(1, 4), kw=st.integers(1, 4),
       p=st.tuples(st.integers(0, 3), st.integers(0, 3)), d=st.integers(1, 2),
       seed=st.integers(0, 100))
def test_random_stride1_geometries_match_torch(n, c, o, h, wd, kh, kw, p, d, seed):
    if h + 2 * p[0] < d * (kh - 1) + 1 or wd + 2 * p[1] < d * (kw - 1) + 1:
        return
    _check((n, c, h, wd), (o, c, kh, kw), np.float32, seed=seed, padding=p, dilation=d)


def test_non_contiguous_input_and_weight():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 9, 16, 32)).astype(np.float32)
    w = rng.standard_normal((9, 12, 3, 3)).astype(np.float32)
    xs, ws = x[:, :, ::2, ::4].transpose(0, 1, 3, 2), w.transpose(1, 0, 2, 3)
    ref = TF.conv2d(torch.tensor(xs), torch.tensor(ws), padding=1).numpy()
    got = F.conv2d(tl.tensor(x)[:, :, ::2, ::4].permute(0, 1, 3, 2),
                   tl.tensor(w).permute(1, 0, 2, 3), padding=1).numpy()
    _close(got, ref, np.float32)


def test_double_backward_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 7, 7))
    w = rng.standard_normal((5, 4, 3, 3))
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    lx, lw = (tl.tensor(a, requires_grad=True) for a in (x, w))
    (tgx,) = torch.autograd.grad((TF.conv2d(tx, tw, padding=1) ** 2).sum(), tx,
                                 create_graph=True)
    (lgx,) = tl.autograd.grad((F.conv2d(lx, lw, padding=1) ** 2).sum(), lx, create_graph=True)
    _close(lgx.numpy(), tgx.detach().numpy(), np.float64)
    ta, tb = torch.autograd.grad((tgx ** 2).sum(), (tx, tw))
    la, lb = tl.autograd.grad((lgx ** 2).sum(), (lx, lw))
    _close(la.numpy(), ta.numpy(), np.float64)
    _close(lb.numpy(), tb.numpy(), np.float64)


@pytest.mark.skipif(_gemm.ISA != "avx512", reason="small maps shift on AVX-512 only")
def test_shifted_path_is_chosen_for_small_stride1_float32(monkeypatch):
    calls = []
    real = nn_conv._conv_shifted
    monkeypatch.setattr(nn_conv, "_conv_shifted", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = tl.tensor(np.ones((2, 3, 7, 7), np.float32))
    F.conv2d(x, tl.tensor(np.ones((4, 3, 3, 3), np.float32)), padding=1)
    assert calls == [1]
    F.conv2d(x, tl.tensor(np.ones((4, 3, 3, 3), np.float32)), padding=1, stride=2)
    F.conv2d(x.double(), tl.tensor(np.ones((4, 3, 3, 3))), padding=1)
    F.conv2d(tl.tensor(np.ones((2, 3, 32, 32), np.float32)),
             tl.tensor(np.ones((4, 3, 3, 3), np.float32)), padding=1)
    assert calls == [1]
    fits = dict(groups=1, sh=1, sw=1, dh=1, dw=1, kh=3, kw=3, H=7, W=7, HW=49)
    assert nn_conv._shifted_fits(np.float32, pt=1, pb=1, pl=1, pr=1, **fits)
    assert not nn_conv._shifted_fits(np.float32, pt=1, pb=1, pl=3, pr=3, **fits)
    assert not nn_conv._shifted_fits(np.float64, pt=1, pb=1, pl=1, pr=1, **fits)
    assert not nn_conv._shifted_fits(np.float32, pt=1, pb=1, pl=1, pr=1,
                                     **{**fits, "groups": 2})


@pytest.mark.skipif(not _gemm.ENABLED, reason="no tensorlib GEMM on this CPU")
def test_avx2_shifts_only_few_output_channels():
    """On AVX2 the shifted-view GEMMs take few output channels (memory-bound there) but not
    small maps, where the per-image kernels were twice as fast."""
    fits = dict(groups=1, sh=1, sw=1, pt=1, pb=1, pl=1, pr=1, dh=1, dw=1, kh=3, kw=3)
    with _gemm.use_isa("avx2"):
        assert not nn_conv._shifted_fits(np.float32, H=7, W=7, HW=49, O=64, **fits)
        assert nn_conv._shifted_fits(np.float32, H=256, W=256, HW=65536, O=2, **fits)
        assert not nn_conv._shifted_fits(np.float32, H=256, W=256, HW=65536, O=4, **fits)


@pytest.mark.skipif(not _gemm.ENABLED, reason="no tensorlib GEMM on this CPU")
def test_small_maps_forward_and_input_grad_take_the_batched_gemm():
    from tensorlib import _ops
    kw = dict(N=64, groups=1, m=64, n=49, k=576, hw=49)
    assert nn_conv._image_threads(np.float32, min_hw=nn_conv._MIN_IMAGE_HW_FWD, **kw) == 0
    assert nn_conv._image_threads(np.float32, **kw) == _ops.max_threads()   # weight grad


def test_errors_name_the_function():
    x = tl.tensor(np.ones((2, 3, 7, 7), np.float32))
    with pytest.raises(ShapeError, match="conv2d"):
        F.conv2d(x, tl.tensor(np.ones((4, 5, 3, 3), np.float32)), padding=1)
    with pytest.raises(ShapeError, match="conv2d"):
        F.conv2d(x, tl.tensor(np.ones((4, 3, 9, 9), np.float32)))
    with pytest.raises(ShapeError, match="conv_transpose2d"):
        F.conv_transpose2d(x, tl.tensor(np.ones((4, 3, 3, 3), np.float32)))


# --- gradients of small stride-1 convolutions (the im2col paths) ----------------------------
GRADS = [
    ((64, 64, 7, 7), (64, 64, 3, 3), dict(padding=1)),
    ((70, 16, 7, 7), (8, 16, 3, 3), dict(padding=1)),       # several chunks, a short last one
    ((33, 20, 5, 6), (7, 20, 3, 2), dict(padding=(2, 0), dilation=(1, 2))),
    ((4, 3, 9, 8), (5, 3, 4, 3), dict(padding="same", dilation=2)),
    ((3, 300, 4, 4), (9, 300, 2, 2), dict()),
    ((2, 5, 7, 7), (300, 5, 3, 3), dict(padding=1)),
    ((3, 4, 6, 6), (5, 4, 3, 3), dict(padding=(2, 1))),      # dx: zero padding on one side
    ((4, 3, 9, 8), (5, 3, 4, 2), dict(padding="same")),       # asymmetric padding
]


@pytest.mark.parametrize("xs,ws,kw", GRADS)
def test_stride1_gradients_match_torch(xs, ws, kw):
    _check(xs, ws, np.float32, **kw)
    _check(xs, ws, np.float32, bias=False, seed=2, **kw)


@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=1, padding=0),
                                dict(stride=1, padding=2, dilation=2, output_padding=1)])
def test_stride1_transposed_matches_torch(kw):
    _check((5, 8, 6, 7), (8, 6, 3, 3), np.float32, transposed=True, **kw)
    _check((5, 8, 6, 7), (8, 6, 3, 3), np.float64, transposed=True, **kw)


def test_non_contiguous_gradients_match_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 14, 8, 16)).astype(np.float32)
    w = rng.standard_normal((7, 5, 3, 3)).astype(np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    lx, lw = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    ref = TF.conv2d(tx[:, ::2, :, ::2].transpose(2, 3), tw.transpose(0, 1), padding=1)
    out = F.conv2d(lx[:, ::2, :, ::2].permute(0, 1, 3, 2), lw.permute(1, 0, 2, 3), padding=1)
    _close(out.numpy(), ref.detach().numpy(), np.float32)
    g = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    ref.backward(torch.tensor(g))
    out.backward(tl.tensor(g))
    _close(lx.grad.numpy(), tx.grad.numpy(), np.float32)
    _close(lw.grad.numpy(), tw.grad.numpy(), np.float32)


def test_float32_double_backward_matches_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 7, 7)).astype(np.float32)
    w = (rng.standard_normal((5, 6, 3, 3)) * 0.3).astype(np.float32)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    lx, lw = (tl.tensor(a, requires_grad=True) for a in (x, w))
    tgx, tgw = torch.autograd.grad((TF.conv2d(tx, tw, padding=1) ** 2).sum(), (tx, tw),
                                   create_graph=True)
    lgx, lgw = tl.autograd.grad((F.conv2d(lx, lw, padding=1) ** 2).sum(), (lx, lw),
                                create_graph=True)
    _close(lgx.numpy(), tgx.detach().numpy(), np.float32)
    _close(lgw.numpy(), tgw.detach().numpy(), np.float32)
    ta, tb = torch.autograd.grad((tgx ** 2).sum() + (tgw ** 3).sum(), (tx, tw))
    la, lb = tl.autograd.grad((lgx ** 2).sum() + (lgw ** 3).sum(), (lx, lw))
    _close(la.numpy(), ta.numpy(), np.float32)
    _close(lb.numpy(), tb.numpy(), np.float32)

