"""The float32 sum/mean/max/min kernels (_reduce.h) against NumPy in float64, with the
shapes, axes, NaN/inf placements and thread counts that pick or skip them."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _ops

@pytest.fixture(autouse=True)
def _kernels_for_every_size(monkeypatch):
    """The kernels serve arrays from reduction._KERNEL_MIN elements; these small shapes
    test them too."""
    from tensorlib.ops import reduction
    monkeypatch.setattr(reduction, "_KERNEL_MIN", 1)


SHAPES = [(300,), (7, 256), (3, 5, 40), (2, 3, 4, 33), (1, 4096), (513, 17), (1000, 1),
          (300, 1500), (5, 70, 3)]


def _axes_cases(nd):
    yield None
    for k in range(nd):
        yield tuple(range(k, nd))          # trailing axes: the row kernels
    yield (0,)                              # a leading or middle run: the column kernel
    if nd > 2:
        yield (1,)
        yield (0, 1)
        yield (0, nd - 1)                   # not adjacent: NumPy


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_mean_match_float64(shape, keepdims):
    rng = np.random.default_rng(len(shape) * 7 + shape[-1])
    x = (rng.standard_normal(shape) * 100 + 3).astype(np.float32)
    t = tl.tensor(x)
    for axes in _axes_cases(len(shape)):
        want = x.astype(np.float64).sum(axis=axes, keepdims=keepdims)
        scale = np.abs(x).astype(np.float64).sum(axis=axes, keepdims=keepdims)
        got = t.sum(dim=axes, keepdim=keepdims).numpy()
        assert got.dtype == np.float32 and got.shape == want.shape, (axes, got.shape)
        # a pairwise float32 sum's error is a few ulps of sum(|x|); allow 8
        assert np.all(np.abs(got - want) <= 8 * np.finfo(np.float32).eps * scale + 1e-30), axes
        n = x.size // max(want.size, 1)
        got_mean = t.mean(dim=axes, keepdim=keepdims).numpy()
        np.testing.assert_allclose(got_mean, want / n,
                                   atol=float(8 * np.finfo(np.float32).eps * scale.max() / n))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["amax", "amin"])
def test_extremes_match_numpy(shape, op):
    rng = np.random.default_rng(shape[-1])
    x = rng.standard_normal(shape).astype(np.float32)
    t = tl.tensor(x)
    for axes in _axes_cases(len(shape)):
        for keepdims in (False, True):
            want = getattr(np, op)(x, axis=axes, keepdims=keepdims)
            got = getattr(t, op)(dim=axes, keepdim=keepdims).numpy()
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [16, 17, 31, 32, 33, 47, 48, 256, 1000])
def test_extremes_keep_nan_anywhere(n):
    """A NaN in the first block, the vector body or the scalar tail makes the row NaN."""
    base = np.arange(n, dtype=np.float32) - n / 2
    for pos in sorted({0, 5, 15, 16, n // 2, n - 17, n - 1} & set(range(n))):
        x = np.stack([base, base.copy()])
        x[1, pos] = np.nan
        for op in ("amax", "amin"):
            got = getattr(tl.tensor(x), op)(dim=-1).numpy()
            assert got[0] == getattr(np, op)(base) and np.isnan(got[1]), (op, pos)


def test_inf_and_nan_in_sums():
    x = np.ones((3, 600), np.float32)
    x[0, 599] = np.inf
    x[1, 10] = np.inf
    x[1, 500] = -np.inf
    x[2, 333] = np.nan
    got = tl.tensor(x).sum(dim=-1).numpy()
    assert got[0] == np.inf and np.isnan(got[1]) and np.isnan(got[2])
    assert tl.tensor(x[:1]).sum().item() == np.inf


def test_full_sum_is_accurate_and_thread_independent():
    """A full sum of 2**21 values: float64-class accuracy, and the same bits for 1 or 2
    threads (chunks are summed in a fixed order)."""
    rng = np.random.default_rng(0)
    x = rng.random(1 << 21).astype(np.float32)
    exact = x.astype(np.float64).sum()
    t = tl.tensor(x)
    before = tl.get_num_threads()
    try:
        tl.set_num_threads(1)
        one = t.sum().item()
        tl.set_num_threads(2)
        two = t.sum().item()
    finally:
        tl.set_num_threads(before)
    assert one == two
    # float32 pairwise (NumPy) is within ~1e-7 relative here; ours is as good or better
    assert abs(one - exact) <= 2 * abs(np.float32(x.sum()) - exact) + 1e-6 * exact


def test_direct_kernel_checks():
    with pytest.raises(ValueError, match="row count"):
        _ops.sum_rows_f32(np.ones((3, 4), np.float32), np.empty(2, np.float32))
    with pytest.raises(ValueError, match="row count"):
        _ops.extreme_rows_f32(np.ones((3, 0), np.float32), np.empty(3, np.float32), False)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 6), n=st.integers(1, 700), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-30, 1.0, 1e30]))
def test_rows_property(rows, n, seed, scale):
    x = (np.random.default_rng(seed).standard_normal((rows, n)) * scale).astype(np.float32)
    t = tl.tensor(x)
    want = x.astype(np.float64).sum(-1)
    got = t.sum(-1).numpy()
    tol = 8 * np.finfo(np.float32).eps * np.abs(x).astype(np.float64).sum(-1)
    # float32 rounding of the result itself at tiny scales: allow one subnormal step
    assert np.all(np.abs(got - want) <= tol + 1.5e-45)
    np.testing.assert_array_equal(t.amax(-1).numpy(), x.max(-1))
    np.testing.assert_array_equal(t.amin(-1).numpy(), x.min(-1))


def test_gradients_unchanged():
    x = tl.tensor(np.random.default_rng(1).standard_normal((4, 300)).astype(np.float32),
                  requires_grad=True)
    (x.sum(-1) * tl.arange(4.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.repeat(np.arange(4.0)[:, None], 300, 1))
    x.grad = None
    x.amax(-1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.numpy() == x.numpy().max(-1,
                                                   keepdims=True)).astype(np.float32))


@pytest.mark.parametrize("shape,axis", [((1_000_000, 3), 0), ((4, 100_000, 4), 1),
                                        ((300, 2048), 0)])
def test_long_leading_axis_is_accurate(shape, axis):
    """numerics trial F3: summing 1e6 rows of 0.1 along dim 0 was 1e-2 off (row by row)."""
    x = np.full(shape, 0.1, np.float32)
    exact = x.astype(np.float64).sum(axis)
    got = tl.tensor(x).sum(axis).numpy()
    np.testing.assert_allclose(got, exact, rtol=3e-7)
    np.testing.assert_allclose(tl.tensor(x).mean(axis).numpy(), exact / shape[axis], rtol=3e-7)


@pytest.mark.parametrize("shape,axis", [((100_000, 4), 0), ((4, 100_000, 4), 1),
                                        ((8, 4096), -1)])
@pytest.mark.parametrize("correction", [0, 1])
def test_var_std_with_an_offset(shape, axis, correction):
    """var along dim 0 of data offset by 1e4 was ~55 for a true 1.0 (numerics F3); with a
    spread of 0.01 along the last dim, 0.3% off (audio trial): both as float64 now."""
    rng = np.random.default_rng(1)
    for spread in (1.0, 0.01):
        x = (1e4 + spread * rng.standard_normal(shape)).astype(np.float32)
        want = x.astype(np.float64).var(axis, ddof=correction)
        got = tl.tensor(x).var(axis, correction=correction).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-5)
        np.testing.assert_allclose(tl.tensor(x).std(axis, correction=correction).numpy(),
                                   np.sqrt(want), rtol=1e-5)


def test_var_keeps_numpys_edge_cases():
    x = np.ones((3, 300), np.float32)
    x[1, 7] = np.nan
    x[2, 9] = np.inf
    v = tl.tensor(x).var(-1).numpy()
    assert v[0] == 0 and np.isnan(v[1]) and np.isnan(v[2])
    one = tl.tensor(np.ones((1, 300), np.float32)).var(0, correction=1).numpy()
    assert np.isnan(one).all()      # no degrees of freedom, as before


def test_var_of_huge_values_stays_finite():
    """Review: squared float32 deviations overflowed (rows of 3e38 gave NaN, PyTorch 0)."""
    torch = pytest.importorskip("torch")
    for v in (3e38, 1e30):
        x = np.full((4, 300), v, np.float32)
        np.testing.assert_array_equal(tl.tensor(x).var(-1).numpy(),
                                      torch.tensor(x).var(-1).numpy())
    x = (np.random.default_rng(0).standard_normal((4, 3000)) * 1e19).astype(np.float32)
    np.testing.assert_allclose(tl.tensor(x).std(-1).numpy(), torch.tensor(x).std(-1).numpy(),
                               rtol=1e-5)
