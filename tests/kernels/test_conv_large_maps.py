"""Session 23: large-map float32 convolutions (tiles of output rows: im2col of a tile, then
its GEMM; the stride-1 input gradient as a flipped-kernel forward) against PyTorch."""
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
needs_gemm = pytest.mark.skipif(not _gemm.ENABLED, reason="no tensorlib GEMM on this CPU")


def _close(got, ref, dtype=np.float32):
    ref = np.asarray(ref)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    finite = np.isfinite(ref)
    scale = max(1.0, float(np.abs(ref[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(np.asarray(got), ref, rtol=tol, atol=tol * scale)


@pytest.fixture
def spy(monkeypatch):
    """Counts the tiled kernels' calls; tiny thresholds so small shapes take them, in tiles
    of a few rows (a partial last tile included), and no shifted-view forwards."""
    calls = {"conv": 0, "wgrad": 0}
    conv, wgrad = nn_conv._conv_tiled, nn_conv._weight_grad_tiled

    def conv_spy(*a, **k):
        calls["conv"] += 1
        return conv(*a, **k)

    def wgrad_spy(*a, **k):
        calls["wgrad"] += 1
        return wgrad(*a, **k)

    monkeypatch.setattr(nn_conv, "TILED_ISAS", ("avx512", "avx2"))   # AVX2's GEMM too
    monkeypatch.setattr(nn_conv, "_conv_tiled", conv_spy)
    monkeypatch.setattr(nn_conv, "_weight_grad_tiled", wgrad_spy)
    monkeypatch.setattr(nn_conv, "TILE_MIN_BYTES", 0)
    monkeypatch.setattr(nn_conv, "_SHIFTED_MAX_HW", 0)     # small maps' stride-1 forwards
    monkeypatch.setattr(nn_conv, "TILE_BYTES", 1)
    monkeypatch.setattr(nn_conv, "_TILE_MIN_COLS", 20)
    monkeypatch.setattr(nn_conv, "_TILE_MAX_COLS", 20)
    return calls


def _run(xs, ws, dtype=np.float32, bias=True, seed=0, transposed=False, x_fn=None, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    if x_fn is not None:
        x = x_fn(x)
    w = (rng.standard_normal(ws) * 0.2).astype(dtype)
    nb = ws[1] * kw.get("groups", 1) if transposed else ws[0]
    b = rng.standard_normal(nb).astype(dtype) if bias else None
    ours, theirs = ((F.conv_transpose2d, TF.conv_transpose2d) if transposed
                    else (F.conv2d, TF.conv2d))
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


CASES = [
    ((1, 8, 13, 11), (8, 8, 3, 3), dict(padding=1)),          # 20-column tiles: 2 rows of 11
    ((3, 8, 9, 7), (16, 8, 3, 3), dict(padding=1)),           # batch > 1, partial last tile
    ((2, 6, 12, 10), (8, 6, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 11, 13), (8, 4, 3, 3), dict(padding=2, dilation=2)),
    ((2, 5, 10, 9), (8, 5, 2, 4), dict(padding="same")),      # asymmetric padding
    ((2, 4, 10, 9), (8, 4, 3, 3), dict()),                    # no padding
    ((2, 4, 9, 9), (8, 4, 3, 3), dict(padding=(3, 4))),       # padding past the kernel's reach
    ((2, 8, 9, 10), (8, 4, 3, 3), dict(padding=1, groups=2)),
    ((1, 4, 21, 5), (8, 4, 3, 3), dict(stride=(2, 1), padding=(1, 0))),
]


@needs_gemm
@pytest.mark.parametrize("xs,ws,kw", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_tiled_matches_torch(spy, xs, ws, kw, bias):
    _run(xs, ws, bias=bias, **kw)
    assert spy["conv"] >= 1 and spy["wgrad"] == 1
    if kw.get("stride", 1) == 1:    # forward and input gradient both tiled
        assert spy["conv"] == 2


@pytest.mark.skipif(_gemm.ISA not in nn_conv.TILED_ISAS, reason="no tiles on this CPU's GEMM")
def test_tiled_default_thresholds():
    """64 -> 64 3x3 at 48x48: 5.3 MB of im2col columns per image, tiled as it comes."""
    calls = []
    orig = nn_conv._conv_tiled
    try:
        nn_conv._conv_tiled = lambda *a, **k: (calls.append(1), orig(*a, **k))[1]
        _run((2, 64, 48, 48), (64, 64, 3, 3), padding=1)
    finally:
        nn_conv._conv_tiled = orig
    assert len(calls) == 2


@needs_gemm
def test_tiled_conv_transpose_stride1(spy):
    _run((2, 8, 9, 11), (8, 6, 3, 3), transposed=True, padding=1)
    _run((2, 8, 9, 11), (8, 3, 3, 3), transposed=True, padding=(0, 2), groups=2, dilation=2)
    assert spy["conv"] >= 2


@needs_gemm
def test_tiled_nan_inf_propagate(spy):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 10, 9)).astype(np.float32)
    x[0, 1, 3, 4] = np.nan
    x[1, 2, 9, 0] = np.inf
    x[1, 0, 0, 8] = -np.inf
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    out = F.conv2d(tl.tensor(x), tl.tensor(w), padding=1).numpy()
    assert spy["conv"] == 1
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref))
    _close(np.where(np.isfinite(out), out, 0), np.where(np.isfinite(ref), ref, 0))
    # gradients: a NaN in g reaches every input and weight position it touches
    g = np.ones(ref.shape, np.float32)
    g[1, 3, 4, 4] = np.nan
    lx, lw = tl.tensor(np.nan_to_num(x), requires_grad=True), tl.tensor(w, requires_grad=True)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (np.nan_to_num(x), w))
    F.conv2d(lx, lw, padding=1).backward(tl.tensor(g))
    TF.conv2d(tx, tw, padding=1).backward(torch.tensor(g))
    np.testing.assert_array_equal(np.isnan(lx.grad.numpy()), np.isnan(tx.grad.numpy()))
    np.testing.assert_array_equal(np.isnan(lw.grad.numpy()), np.isnan(tw.grad.numpy()))


@needs_gemm
def test_tiled_noncontiguous_input(spy):
    _run((2, 10, 9, 8), (8, 8, 3, 3), padding=1,
         x_fn=lambda a: a.transpose(0, 3, 2, 1)[:, :8])
    assert spy["conv"] == 2


def test_float64_keeps_old_path(spy):
    _run((2, 4, 10, 9), (8, 4, 3, 3), dtype=np.float64, padding=1)
    assert spy["conv"] == 0 and spy["wgrad"] == 0


@needs_gemm
def test_tiled_grad_of_grad(spy):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 4, 8, 7))
    w = rng.standard_normal((6, 4, 3, 3)) * 0.3
    lx, lw = tl.tensor(x.astype(np.float32), requires_grad=True), tl.tensor(
        w.astype(np.float32), requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    gx = tl.autograd.grad((F.conv2d(lx, lw, padding=1) ** 2).sum(), lx, create_graph=True)[0]
    (gx ** 2).sum().backward()
    tgx = torch.autograd.grad((TF.conv2d(tx, tw, padding=1) ** 2).sum(), tx,
                              create_graph=True)[0]
    (tgx ** 2).sum().backward()
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_errors_name_conv2d(spy):
    x = tl.tensor(np.zeros((1, 4, 9, 9), np.float32))
    with pytest.raises(ShapeError, match="conv2d"):
        F.conv2d(x, tl.tensor(np.zeros((8, 5, 3, 3), np.float32)), padding=1)
    with pytest.raises(ShapeError, match="conv2d"):
        F.conv2d(x, tl.tensor(np.zeros((8, 4, 11, 11), np.float32)))
    assert spy["conv"] == 0


@needs_gemm
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 6), o=st.integers(2, 9), h=st.integers(3, 14),
       w=st.integers(3, 14), k=st.integers(1, 3), s=st.integers(1, 2), p=st.integers(0, 2),
       d=st.integers(1, 2), cols=st.integers(8, 64))
def test_tiled_hypothesis(n, c, o, h, w, k, s, p, d, cols):
    if d * (k - 1) + 1 > min(h, w) + 2 * p:
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nn_conv, "TILE_MIN_BYTES", 0)
        mp.setattr(nn_conv, "_SHIFTED_MAX_HW", 0)
        mp.setattr(nn_conv, "TILE_BYTES", 1)
        mp.setattr(nn_conv, "_TILE_MIN_COLS", cols)
        mp.setattr(nn_conv, "_TILE_MAX_COLS", cols)
        _run((n, c, h, w), (o, c, k, k), seed=n * 100 + h, stride=s, padding=p, dilation=d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [False, True])
def test_kernel_covering_the_whole_map_is_one_product(dtype, bias):
    """A kernel as large as the (unpadded) map: one output position, computed as a single
    matrix product (the DCGAN latent layer's input gradient); values and gradients as torch."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 7, 4, 3)).astype(dtype)
    w = rng.standard_normal((5, 7, 4, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype) if bias else None
    lx, lw = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    lb = tl.tensor(b, requires_grad=True) if bias else None
    tb = torch.tensor(b, requires_grad=True) if bias else None
    got = tl.nn.functional.conv2d(lx, lw, lb)
    want = torch.nn.functional.conv2d(tx, tw, tb)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    g = rng.standard_normal(tuple(want.shape)).astype(dtype)
    got.backward(tl.tensor(g))
    want.backward(torch.tensor(g))
    for a, c in ((lx, tx), (lw, tw)) + (((lb, tb),) if bias else ()):
        np.testing.assert_allclose(a.grad.numpy(), c.grad.numpy(), rtol=tol, atol=tol)
