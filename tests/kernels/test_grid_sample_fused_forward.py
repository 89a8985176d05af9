"""Session 21d: grid_sample's fused 4-d forward (``_ops.grid_sample_2d``, _grid2d.h) against
PyTorch: values bit-close in every 'nearest'/'bilinear' mode x padding x align_corners,
float32 and float64, NaN/inf/huge grid points, pixel centres, half-pixel ties and reflection
folds, edge shapes (1-pixel inputs, single points, many channels), gradients unchanged
(input and grid), and the kernel's own argument checks."""
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
DTYPES = [np.float32, np.float64]



def _ids(c):
    return "-".join(str(v) for v in c)


def _torch_sample(x, grid, mode, pad, align, grad=False):
    tx = torch.tensor(x, requires_grad=grad)
    tg = torch.tensor(grid, requires_grad=grad)
    out = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode=pad,
                                          align_corners=align)
    return tx, tg, out


def _check(x, grid, mode, pad, align, exact=False):
    got = F.grid_sample(tl.tensor(x), tl.tensor(grid), mode=mode, padding_mode=pad,
                        align_corners=align).numpy()
    want = _torch_sample(x, grid, mode, pad, align)[2].numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    if exact or mode == "nearest":
        np.testing.assert_array_equal(got, want)
    else:
        # the fused kernel rounds as PyTorch's (fused multiply-adds included)
        tol = 1e-6 if x.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)


def _special_grid(n: int, align: bool) -> np.ndarray:
    """Normalised coordinates at pixel centres, half-pixel ties, borders and folds."""
    u = np.concatenate([np.arange(-2 * n - 1, 3 * n + 2), np.arange(-2 * n - 1, 3 * n + 2) + 0.5])
    if align:
        return 2 * u / (n - 1) - 1 if n > 1 else np.zeros_like(u)
    return (2 * u + 1) / n - 1


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_random_grid_matches_torch(combo, dtype):
    mode, pad, align = combo
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 9)).astype(dtype)
    grid = rng.uniform(-2.5, 2.5, (3, 6, 11, 2)).astype(dtype)
    _check(x, grid, mode, pad, align)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_special_points_match_torch(combo, dtype):
    mode, pad, align = combo
    H, W = 4, 5
    gx, gy = _special_grid(W, align), _special_grid(H, align)
    m = max(len(gx), len(gy))
    gx, gy = np.resize(gx, m), np.resize(gy, m)[::-1]
    grid = np.stack([gx, gy], -1)[None, None].astype(dtype)       # (1, 1, m, 2)
    grid = np.concatenate([grid, grid[..., ::-1]], axis=1)         # (1, 2, m, 2)
    x = np.random.default_rng(1).standard_normal((1, 3, H, W)).astype(dtype)
    _check(x, grid, mode, pad, align)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nan_inf_huge_points_match_torch(combo, dtype):
    mode, pad, align = combo
    bad = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9, -3e9, 0.25]
    pts = np.array(list(itertools.product(bad, bad)), dtype)        # every pairing
    grid = pts.reshape(1, 8, 8, 2)
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 4)).astype(dtype)
    _check(x, grid, mode, pad, align)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 1, 1, 6), (1, 3, 5, 1)],
                         ids=["1x1", "1xW", "Hx1"])
def test_one_pixel_axes_match_torch(combo, shape):
    mode, pad, align = combo
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    grid = rng.uniform(-1.5, 1.5, (shape[0], 3, 4, 2))
    grid[0, 0, :2] = [[-1, -1], [1, 1]]
    _check(x, grid, mode, pad, align)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_shapes_and_channels_match_torch(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 37, 20, 23)).astype(dtype)
    grid = rng.uniform(-1.2, 1.2, (4, 33, 1, 2)).astype(dtype)   # one-point rows
    for mode, pad, align in COMBOS:
        _check(x, grid, mode, pad, align)
    grid = rng.uniform(-1.2, 1.2, (4, 1, 300, 2)).astype(dtype)  # one long row
    for mode, pad, align in COMBOS:
        _check(x, grid, mode, pad, align)


def test_empty_batch_and_channels():
    for shape, gshape in [((0, 2, 3, 3), (0, 2, 2, 2)), ((2, 0, 3, 3), (2, 2, 2, 2)),
                          ((2, 2, 3, 3), (2, 0, 4, 2))]:
        out = F.grid_sample(tl.zeros(shape), tl.zeros(gshape), align_corners=False)
        assert tuple(out.shape) == (shape[0], shape[1]) + gshape[1:3]


def test_non_contiguous_inputs_match_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 8, 3)).transpose(0, 3, 1, 2)      # (2, 3, 6, 8) strided
    grid = rng.uniform(-1.1, 1.1, (2, 2, 5, 4))[..., ::2]             # strided last axis
    for mode, pad, align in COMBOS:
        _check(np.asarray(x), np.asarray(grid), mode, pad, align)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(COMBOS), st.sampled_from(DTYPES), st.integers(1, 6),
       st.integers(1, 6), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2 ** 31 - 1))
def test_hypothesis_matches_torch(combo, dtype, H, W, Ho, Wo, seed):
    mode, pad, align = combo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    grid = rng.uniform(-2.5, 2.5, (2, Ho, Wo, 2))
    # some points exactly on pixel centres / half-pixel ties
    snap = rng.random(grid.shape) < 0.3
    grid[snap] = np.round(grid[snap] * 4) / 4
    _check(x, grid.astype(dtype), mode, pad, align)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_gradients_match_torch(combo):
    mode, pad, align = combo
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 6))
    grid = rng.uniform(-1.3, 1.3, (2, 4, 3, 2))
    up = rng.standard_normal((2, 3, 4, 3))
    tx, tg, tout = _torch_sample(x, grid, mode, pad, align, grad=True)
    (tout * torch.tensor(up)).sum().backward()
    lx, lg = tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)
    out = F.grid_sample(lx, lg, mode=mode, padding_mode=pad, align_corners=align)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    (out * tl.tensor(up)).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lg.grad.numpy(), tg.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_errors_name_the_function():
    x = tl.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="grid_sample"):
        F.grid_sample(x, tl.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="grid_sample"):
        F.grid_sample(x, tl.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="grid_sample"):
        F.grid_sample(x, tl.zeros((1, 2, 2, 2)), padding_mode="wrap")
    with pytest.raises(TypeError, match="grid_sample"):
        F.grid_sample(x, tl.zeros((1, 2, 2, 2), dtype=tl.float64))


def test_kernel_checks_its_arguments():
    x = np.zeros((2, 3, 4, 5), np.float32)
    g = np.zeros((2, 6, 7, 2), np.float32)
    out = np.zeros((2, 3, 6, 7), np.float32)
    _ops.grid_sample_2d(x, g, out, 1, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x, g[:1], out, 1, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x, np.zeros((2, 6, 7, 3), np.float32), out, 1, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x, g, out[:, :2].copy(), 1, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x, g, out, 1, 3, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x, g, out, 2, 0, False)
    with pytest.raises(ValueError, match="grid_sample_2d"):
        _ops.grid_sample_2d(x[:, :, :0], g, out, 1, 0, False)
