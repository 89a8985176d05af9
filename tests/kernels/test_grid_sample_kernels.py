"""grid_sample's 4-d kernels (_grid2d.h) against PyTorch: the vectorised forward
with few channels and the fused first-order backward (``_ops.grid_sample_2d_backward``), values
and gradients (input and grid) in every 'nearest'/'bilinear' mode x padding x align_corners,
C = 1..5, float32 and float64, NaN/inf/out-of-range grid points, non-contiguous inputs, the
double backward (the registry path), and the kernels' own argument checks."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _ops

torch = pytest.importorskip("torch")

MODES = ["bilinear", "nearest"]
PADS = ["zeros", "border", "reflection"]
COMBOS = list(itertools.product(MODES, PADS, [False, True]))
FUSED_BWD = hasattr(_ops, "grid_sample_2d_backward")
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _ids(c):
    return "-".join(str(v) for v in c)


def _grid(rng, shape, dtype, lo=-1.2, hi=1.2):
    return rng.uniform(lo, hi, shape).astype(dtype)


def _both(x, grid, mode, pad, align, go=None, want=(True, True)):
    """(out, dx, dgrid) of tensorlib and of PyTorch for the incoming gradient go."""
    tx = torch.tensor(x, requires_grad=want[0])
    tg = torch.tensor(grid, requires_grad=want[1])
    tout = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode=pad,
                                           align_corners=align)
    lx = tl.tensor(x, requires_grad=want[0])
    lg = tl.tensor(grid, requires_grad=want[1])
    lout = F.grid_sample(lx, lg, mode=mode, padding_mode=pad, align_corners=align)
    if go is None:
        go = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(x.dtype)
    tout.backward(torch.tensor(go))
    lout.backward(tl.tensor(go))

    def grads(a, b, conv):
        return (conv(a.grad) if want[0] else None), (conv(b.grad) if want[1] else None)
    return ((lout.numpy(),) + grads(lx, lg, lambda t: t.numpy()),
            (tout.detach().numpy(),) + grads(tx, tg, lambda t: t.numpy()))


def _close(ours, theirs, dtype, scale=1.0):
    for a, b in zip(ours, theirs):
        if a is None:
            assert b is None
            continue
        tol = TOL[dtype]
        np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("C", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_channels_values_and_grads(combo, C, dtype):
    mode, pad, align = combo
    rng = np.random.default_rng(C)
    x = rng.standard_normal((2, C, 7, 9)).astype(dtype)
    grid = _grid(rng, (2, 5, 11, 2), dtype)
    ours, theirs = _both(x, grid, mode, pad, align)
    # grid gradients sum C * 4 products of order-1 values: a few float32 ulps of their size
    _close(ours, theirs, dtype, scale=10 * C)
    if mode == "nearest":
        assert not np.any(ours[2])       # PyTorch's zeros


def _grads(x, grid, mode, pad, align, go, create_graph):
    lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)
    out = F.grid_sample(lx, lg, mode=mode, padding_mode=pad, align_corners=align)
    dx, dg = tl.autograd.grad(out, [lx, lg], tl.tensor(go), create_graph=create_graph)
    return out.numpy(), dx.numpy(), dg.numpy()


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_nan_inf_and_far_points(combo):
    """Values against PyTorch; gradients against the registry path (create_graph), since
    PyTorch's own backward crashes on huge grid points."""
    mode, pad, align = combo
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 3, 6, 5))
    grid = _grid(rng, (1, 4, 8, 2), np.float64, -3, 3)
    grid[0, 0, :4, 0] = [np.nan, np.inf, -np.inf, 1e30]
    grid[0, 1, :4, 1] = [np.nan, -1e30, 2 ** 40, -np.inf]
    grid[0, 2, 0] = [np.nan, np.nan]
    grid[0, 3, :4] = [[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [0.0, 0.0]]
    go = rng.standard_normal((1, 3, 4, 8))
    fused = _grads(x, grid, mode, pad, align, go, False)
    slow = _grads(x, grid, mode, pad, align, go, True)
    want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid), mode=mode,
                                           padding_mode=pad, align_corners=align).numpy()
    if pad == "zeros" and mode == "bilinear":
        # the registry path's grid gradient is NaN in both components of a NaN/inf point,
        # PyTorch's (and the fused kernel's) only in the component read with NaN weights
        # (test_nan_inf_grads_vs_torch)
        slow = slow[:2]
    for a, b in zip(fused, (want,) + slow[1:]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not FUSED_BWD, reason="the registry path's grid gradient is NaN in both "
                    "components of a NaN point (PyTorch's in one)")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("align", [False, True])
def test_nan_inf_grads_vs_torch(mode, align):
    # (PyTorch's backward survives NaN/inf points only under 'zeros' padding)
    x = np.random.default_rng(9).standard_normal((1, 2, 6, 5))
    grid = np.zeros((1, 2, 4, 2))
    grid[0, 0, :, 0] = [np.nan, np.inf, -np.inf, 0.3]
    grid[0, 0, :, 1] = [0.2, 0.1, -0.3, np.nan]
    grid[0, 1] = [[np.nan, np.nan], [np.inf, -np.inf], [0.5, -0.25], [-1.0, 1.0]]
    ours, theirs = _both(x, grid, mode, "zeros", align)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_far_out_of_range_grads_vs_torch(combo):
    mode, pad, align = combo
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 6, 5))
    grid = _grid(rng, (2, 5, 7, 2), np.float64, -3.5, 3.5)
    grid[0, 0, :3] = [[1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]]     # corners, centre
    ours, theirs = _both(x, grid, mode, pad, align)
    _close(ours, theirs, np.float64)


@pytest.mark.parametrize("want", [(True, False), (False, True)])
@pytest.mark.parametrize("mode", MODES)
def test_one_gradient_only(want, mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 6))
    grid = _grid(rng, (2, 3, 4, 2), np.float64)
    ours, theirs = _both(x, grid, mode, "border", False, want=want)
    _close(ours, theirs, np.float64)


def test_non_contiguous_inputs_and_gradient():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 9, 6, 3)).astype(np.float32)
    x = base.transpose(0, 3, 2, 1)                     # (2, 3, 6, 9), not contiguous
    gbase = _grid(rng, (2, 2, 7, 5), np.float32)
    grid = gbase.transpose(0, 2, 3, 1)                 # (2, 7, 5, 2)
    go = rng.standard_normal((2, 3, 5, 7)).astype(np.float32).transpose(0, 1, 3, 2)
    lx = tl.tensor(x, requires_grad=True)
    lg = tl.tensor(grid, requires_grad=True)
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    tg = torch.tensor(np.ascontiguousarray(grid), requires_grad=True)
    for mode in MODES:
        lx.grad = lg.grad = tx.grad = tg.grad = None
        lout = F.grid_sample(lx.permute(0, 1, 2, 3), lg, mode=mode, align_corners=False)
        tout = torch.nn.functional.grid_sample(tx, tg, mode=mode, align_corners=False)
        lout.backward(tl.tensor(go))
        tout.backward(torch.tensor(np.ascontiguousarray(go)))
        _close((lout.numpy(), lx.grad.numpy(), lg.grad.numpy()),
               (tout.detach().numpy(), tx.grad.numpy(), tg.grad.numpy()), np.float32, 10)


def test_sum_backward_broadcast_gradient():
    # .sum().backward() feeds a broadcast (stride-0) gradient
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    grid = _grid(rng, (3, 6, 6, 2), np.float32)
    lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    F.grid_sample(lx, lg, align_corners=True).sum().backward()
    torch.nn.functional.grid_sample(tx, tg, align_corners=True).sum().backward()
    _close((lx.grad.numpy(), lg.grad.numpy()), (tx.grad.numpy(), tg.grad.numpy()),
           np.float32, 10)


@pytest.mark.parametrize("pad", PADS)
def test_double_backward_matches_torch(pad):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 6))
    grid = _grid(rng, (2, 4, 3, 2), np.float64, -0.9, 0.9)
    lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    lo = F.grid_sample(lx, lg, padding_mode=pad, align_corners=False)
    to = torch.nn.functional.grid_sample(tx, tg, padding_mode=pad, align_corners=False)
    ldx, ldg = tl.autograd.grad((lo * lo).sum(), [lx, lg], create_graph=True)
    tdx, tdg = torch.autograd.grad((to * to).sum(), [tx, tg], create_graph=True)
    _close((ldx.numpy(), ldg.numpy()), (tdx.detach().numpy(), tdg.detach().numpy()),
           np.float64)
    (ldx.sum() + (ldg * ldg).sum()).backward()
    (tdx.sum() + (tdg * tdg).sum()).backward()
    _close((lx.grad.numpy(),), (tx.grad.numpy(),), np.float64)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(COMBOS), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6),
       st.integers(1, 5), st.integers(1, 5), st.integers(0, 2 ** 31 - 1))
def test_random_shapes(combo, C, H, W, Ho, Wo, seed):
    mode, pad, align = combo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, C, H, W)).astype(np.float32)
    grid = _grid(rng, (2, Ho, Wo, 2), np.float32, -1.5, 1.5)
    ours, theirs = _both(x, grid, mode, pad, align)
    _close(ours, theirs, np.float32, scale=10 * C)


def test_errors_name_grid_sample():
    x = tl.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match="grid_sample"):
        F.grid_sample(x, tl.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match="grid_sample"):
        F.grid_sample(x, tl.randn(2, 3, 3, 2))
    with pytest.raises(TypeError, match="grid_sample"):
        F.grid_sample(x, tl.randn(1, 3, 3, 2).double())


@pytest.mark.skipif(not FUSED_BWD, reason="extension built before grid_sample_2d_backward")
def test_backward_kernel_checks():
    x = np.zeros((2, 3, 4, 5), np.float32)
    grid = np.zeros((2, 6, 7, 2), np.float32)
    g = np.zeros((2, 3, 6, 7), np.float32)
    gx, gg = np.empty_like(x), np.empty_like(grid)
    _ops.grid_sample_2d_backward(x, grid, g, gx, gg, 1, 0, False)
    assert not gx.any() and not gg.any()
    bad = [(x, grid[:1], g, gx, gg), (x, grid, g[:, :2], gx, gg),
           (x, grid, g, gx[:, :2], gg), (x, grid, g, gx, gg[..., :1])]
    for args in bad:
        with pytest.raises(ValueError, match="grid_sample_2d_backward"):
            _ops.grid_sample_2d_backward(*[np.ascontiguousarray(a) for a in args], 1, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d_backward"):
        _ops.grid_sample_2d_backward(x, grid, g, gx, gg, 2, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d_backward"):
        _ops.grid_sample_2d_backward(x, grid, g, gx, gg, 1, 3, False)


@pytest.mark.skipif(not FUSED_BWD, reason="extension built before grid_sample_2d_backward")
def test_fused_backward_is_used(monkeypatch):
    calls = []
    real = _ops.grid_sample_2d_backward

    def spy(*a):
        calls.append(1)
        return real(*a)
    monkeypatch.setattr(_ops, "grid_sample_2d_backward", spy)
    lx = tl.randn(1, 2, 4, 4, requires_grad=True)
    lg = (tl.rand(1, 3, 3, 2) * 2 - 1).requires_grad_()
    F.grid_sample(lx, lg, align_corners=False).sum().backward()
    assert calls
    calls.clear()       # grad of grad: the registry ops
    tl.autograd.grad(F.grid_sample(lx, lg, align_corners=False).sum(), [lx], create_graph=True)
    assert not calls


@pytest.fixture(params=[0, 1], ids=["baseline", "avx2"])
def vec_level(request):
    old = _ops._vec_cap(request.param)
    yield request.param
    _ops._vec_cap(old)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_instruction_set(vec_level, combo, dtype):
    # the scalar copy (no gathers, no fused multiply-adds) and the AVX2 one; Wo = 13 runs
    # whole vectors and a scalar tail
    mode, pad, align = combo
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    grid = _grid(rng, (2, 4, 13, 2), dtype, -1.4, 1.4)
    ours, theirs = _both(x, grid, mode, pad, align)
    _close(ours, theirs, dtype, scale=30)


def test_threads_agree():
    rng = np.random.default_rng(12)
    # (large enough for both kernels to split their work: PAR_MIN)
    x = rng.standard_normal((8, 3, 40, 40)).astype(np.float32)
    grid = _grid(rng, (8, 64, 64, 2), np.float32)
    go = tl.tensor(rng.standard_normal((8, 3, 64, 64)).astype(np.float32))
    res = []
    for n in (1, 2):
        old = tl.get_num_threads()
        tl.set_num_threads(n)
        try:
            lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)
            out = F.grid_sample(lx, lg, align_corners=False)
            out.backward(go)
            res.append((out.numpy(), lx.grad.numpy(), lg.grad.numpy()))
        finally:
            tl.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)
