"""F.grid_sample's vectorised tap setup (session 20): PyTorch parity of values and both
gradients where the CPU kernels work a few images at a time, for reflected bicubic taps
far away (the float path beside the reflection table), and the plan shared by the forward
and backward is never reused for a grid whose values changed."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_grid

torch = pytest.importorskip("torch")

from test_grid_sample import _torch_vs_tl  # noqa: E402  (its comparison, as arrays below)

MODES = ["bilinear", "nearest", "bicubic"]
PADS = ["zeros", "border", "reflection"]
COMBOS = ([(4, *c) for c in itertools.product(MODES, PADS, [False, True])]
          + [(5, *c) for c in itertools.product(["bilinear", "nearest"], PADS, [False, True])])


def _ids(c):
    return "-".join(str(v) for v in c)


def _both(x, grid, mode, pad, align, seed=0):
    """(ours, torch's) output, input gradient and grid gradient under a random cotangent,
    as arrays (test_grid_sample's comparison)."""
    return [(a.numpy(), b.detach().numpy())
            for a, b in _torch_vs_tl(x, grid, mode, pad, align, seed)]


def _check(pairs, dtype):
    rtol, atol = (1e-9, 1e-10) if dtype == np.float64 else (2e-5, 2e-5)
    for what, (got, ref) in zip(("output", "input grad", "grid grad"), pairs):
        assert got.shape == ref.shape and got.dtype == ref.dtype, what
        scale = max(1.0, float(np.abs(ref[np.isfinite(ref)]).max(initial=0)))
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * scale, equal_nan=True,
                                   err_msg=what)


@pytest.fixture
def small_chunks(monkeypatch):
    # a chunk of combined taps far smaller than one batch: every kernel runs image by image
    # (or a few images at a time) and the slices must line up
    monkeypatch.setattr(nn_grid, "_TAP_CHUNK", 40)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
# (the fixture holds for every example alike)
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_chunked_kernels_match_torch(small_chunks, combo, dtype, data):
    nd, mode, pad, align = combo
    sp = tuple(data.draw(st.integers(1, 5)) for _ in range(nd - 2))
    gsp = tuple(data.draw(st.integers(1, 4)) for _ in range(nd - 2))
    N, C = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31 - 1)))
    x = rng.standard_normal((N, C) + sp).astype(dtype)
    grid = rng.uniform(-2.5, 2.5, (N,) + gsp + (nd - 2,))
    # some points exactly on pixel centres and edges (taps, borders, folds)
    edges = np.arange(-9, 10) / 4
    pick = rng.random(grid.shape) < 0.3
    grid[pick] = rng.choice(edges, int(pick.sum()))
    _check(_both(x, grid.astype(dtype), mode, pad, align), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_far_bicubic_reflection_matches_torch(dtype, align, n):
    # tame bases use the reflection table; beyond 2**20 pixels, NaN and inf the float code:
    # both beside each other in one grid
    u = [0.3, -4.7, 17.2, 2.0 ** 20 - 3.5, 2.0 ** 20 + 2.5, -(2.0 ** 20) - 1.25, 3.3e6,
         -2.5e8, 1e10, 12345.678]
    half = (n - 1) / 2 if align else n / 2
    coords = np.array(u) / max(half, 0.5)
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, 3, n, n + 2)).astype(dtype)
    grid = rng.uniform(-1, 1, (2, 1, len(u), 2))
    grid[0, 0, :, 0] = coords
    grid[1, 0, :, 1] = coords[::-1]
    pairs = _both(x, grid.astype(dtype), "bicubic", "reflection", align)
    # (float32: millions of pixels out, PyTorch's grid gradient rounds the fraction its own
    # way, before this change too; float64 checks the gradient there)
    _check(pairs if dtype == np.float64 else pairs[:2], dtype)
    bad = grid.copy()
    bad[0, 0, :3, 0] = [np.nan, np.inf, -np.inf]
    with torch.no_grad():
        want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(bad.astype(dtype)),
                                               mode="bicubic", padding_mode="reflection",
                                               align_corners=align).numpy()
    got = F.grid_sample(tl.tensor(x), tl.tensor(bad.astype(dtype)), mode="bicubic",
                        padding_mode="reflection", align_corners=align).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("mode", MODES)
def test_plan_is_not_reused_after_the_grid_changes_in_place(mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 5))
    g = rng.uniform(-1.2, 1.2, (2, 4, 3, 2))
    lg = tl.from_numpy(g)                      # shares g's memory
    lx = tl.tensor(x)
    for step in range(3):
        got = F.grid_sample(lx, lg, mode=mode, padding_mode="border").numpy()
        want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(g), mode=mode,
                                               padding_mode="border", align_corners=False).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"step {step}")
        g[0, step] += 0.37                     # same array object, new values
    lg.add_(0.05)                              # in place through tensorlib too
    got = F.grid_sample(lx, lg, mode=mode, padding_mode="border").numpy()
    want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(lg.numpy()),
                                           mode=mode, padding_mode="border",
                                           align_corners=False).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_plan_is_keyed_on_everything_it_depends_on():
    # the same grid values over another input size, padding or alignment: no reuse
    rng = np.random.default_rng(1)
    g = rng.uniform(-1.3, 1.3, (1, 3, 4, 2))
    lg = tl.tensor(g)
    for size, pad, align in [((4, 4), "zeros", False), ((5, 3), "zeros", False),
                             ((5, 3), "reflection", False), ((5, 3), "reflection", True)]:
        x = rng.standard_normal((1, 2) + size)
        got = F.grid_sample(tl.tensor(x), lg, mode="bicubic", padding_mode=pad,
                            align_corners=align).numpy()
        want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(g),
                                               mode="bicubic", padding_mode=pad,
                                               align_corners=align).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=str(size))


def test_cached_and_fresh_plans_give_the_same_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    g = rng.uniform(-1.1, 1.1, (3, 5, 4, 2)).astype(np.float32)

    def run(clear: bool):
        lx = tl.tensor(x, requires_grad=True)
        lg = tl.tensor(g, requires_grad=True)
        y = F.grid_sample(lx, lg, mode="bicubic", padding_mode="reflection")
        if clear:
            nn_grid._last_plan = None
        (y * y).sum().backward()
        return y.numpy(), lx.grad.numpy(), lg.grad.numpy()

    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a, b)


def test_plan_is_dropped_with_its_grid():
    g = np.random.default_rng(3).uniform(-1, 1, (1, 2, 2, 2))
    F.grid_sample(tl.ones(1, 1, 3, 3, dtype=tl.float64), tl.tensor(g))
    import gc
    gc.collect()
    assert nn_grid._last_plan is None


def test_float32_setup_makes_no_float64_arrays():
    # the per-axis taps of a float32 grid stay float32 (the weights) and integer (the taps)
    g = np.random.default_rng(4).uniform(-1.5, 1.5, (2, 3, 3, 2)).astype(np.float32)
    for mode, pad in itertools.product(MODES, PADS):
        plan = nn_grid._Plan(np, g, 2, (4, 5), mode, pad, False)
        for a in plan.axes:
            for order in range(4):
                w = a.weights(order)
                assert w is None or w.dtype == np.float32, (mode, pad, order)
            assert a.offsets(5).dtype == np.int64


def test_errors_still_name_the_function():
    with pytest.raises(ValueError, match="grid_sample: mode must be one of"):
        F.grid_sample(tl.ones(1, 1, 2, 2), tl.zeros(1, 1, 1, 2), mode="area")
    with pytest.raises(ValueError, match="grid_sample: input and grid batch sizes differ"):
        F.grid_sample(tl.ones(2, 1, 2, 2), tl.zeros(3, 1, 1, 2))
