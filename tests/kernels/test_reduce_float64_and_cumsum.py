"""float64 sum/mean/var kernels (_reduce.h: the column cascade shared with float32, the
row cascade) and the int64/float64 cumsum kernel, against exact sums, NumPy and PyTorch:
values, gradients, NaN/inf, empty and 0-size axes, non-contiguous inputs, keepdim, dim
tuples. No timings."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _ops

torch = pytest.importorskip("torch")

HAS_CUMSUM = hasattr(_ops, "cumsum_mid")


@pytest.fixture(autouse=True)
def _kernels_for_every_size(monkeypatch):
    """The kernels serve arrays from reduction._KERNEL_MIN elements; small shapes too."""
    from tensorlib.ops import reduction
    monkeypatch.setattr(reduction, "_KERNEL_MIN", 1)


def _exact_sum(x, axes, keepdims):
    """Correctly rounded sums (math.fsum) over ``axes``, and the sums of |x|."""
    nd = x.ndim
    if isinstance(axes, int):
        axes = (axes,)
    axes = tuple(range(nd)) if axes is None else tuple(a % nd for a in axes)
    rest = [i for i in range(nd) if i not in axes]
    moved = np.transpose(x, rest + list(axes)).reshape([x.shape[i] for i in rest] + [-1])
    flat = moved.reshape(-1, moved.shape[-1])
    want = np.array([math.fsum(r) for r in flat]).reshape(moved.shape[:-1])
    scale = np.abs(moved).sum(-1)
    if keepdims:
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        want, scale = want.reshape(shape), scale.reshape(shape)
    return want, scale


SHAPES = [(300,), (7, 256), (3, 5, 40), (2, 3, 4, 33), (1, 4096), (513, 17), (1000, 1),
          (2000, 3), (1001, 8), (257, 15), (300, 16), (5, 70, 3), (100, 4), (90, 33)]


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
def test_f64_sum_mean_exact_and_torch(shape, keepdims):
    rng = np.random.default_rng(len(shape) * 7 + shape[-1])
    x = rng.standard_normal(shape) * 100 + 3
    t, tt = tl.tensor(x), torch.tensor(x)
    for axes in _axes_cases(len(shape)):
        want, scale = _exact_sum(x, axes, keepdims)
        got = t.sum(dim=axes, keepdim=keepdims).numpy()
        assert got.dtype == np.float64 and got.shape == want.shape, (axes, got.shape)
        # a cascade / pairwise float64 sum: a few ulps of sum(|x|)
        assert np.all(np.abs(got - want) <= 1e-14 * scale), axes
        np.testing.assert_allclose(got, np.sum(x, axis=axes, keepdims=keepdims), rtol=1e-12,
                                   atol=1e-13 * scale.max())
        tdim = tuple(range(len(shape))) if axes is None else axes
        np.testing.assert_allclose(got, tt.sum(dim=tdim, keepdim=keepdims).numpy(),
                                   rtol=1e-12, atol=1e-13 * scale.max())
        n = x.size // max(want.size, 1)
        got_mean = t.mean(dim=axes, keepdim=keepdims).numpy()
        assert got_mean.dtype == np.float64
        np.testing.assert_allclose(got_mean, want / n, rtol=1e-12, atol=1e-14 * scale.max() / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 2, 3, 4, 5, 7, 8, 11, 15, 16, 17])
@pytest.mark.parametrize("rows", [1, 2, 31, 33, 257, 1000, 4099])
def test_narrow_columns_every_tail(dtype, cols, rows):
    """Narrow columns are summed as wider rows, the leftover rows at the end: every count
    of leftover rows and every width around the switch."""
    x = (np.random.default_rng(rows * 31 + cols).standard_normal((rows, cols)) * 10
         ).astype(dtype)
    got = tl.tensor(x).sum(0).numpy()
    want, scale = _exact_sum(x.astype(np.float64), (0,), False)
    eps = np.finfo(dtype).eps
    assert got.dtype == dtype
    assert np.all(np.abs(got - want) <= 8 * eps * scale + 1e-300)


def test_f64_long_axes_accurate():
    """1e6 rows of 0.1 down dim 0, and a 1e6-long row: float64 pairwise-class accuracy."""
    x = np.full((1_000_000, 3), 0.1)
    np.testing.assert_allclose(tl.tensor(x).sum(0).numpy(), math.fsum(x[:, 0]), rtol=1e-13)
    np.testing.assert_allclose(tl.tensor(x).mean(0).numpy(), 0.1, rtol=1e-13)
    y = np.random.default_rng(3).random((2, 1_000_003))
    got = tl.tensor(y).sum(1).numpy()
    np.testing.assert_allclose(got, [math.fsum(r) for r in y], rtol=1e-14)
    assert abs(tl.tensor(y).sum().item() - math.fsum(y.ravel())) <= 1e-14 * y.sum()


@pytest.mark.parametrize("shape,axis", [((20000, 8), 0), ((4, 5000, 4), 1), ((3000, 16), -1),
                                        ((200, 4), (0, 1))])
@pytest.mark.parametrize("correction", [0, 1])
def test_f64_var_std(shape, axis, correction):
    rng = np.random.default_rng(1)
    for offset, spread in ((0.0, 1.0), (1e6, 0.01)):
        x = offset + spread * rng.standard_normal(shape)
        # the reference in extended precision: with an offset of 1e6 the data's own
        # rounding leaves NumPy and PyTorch ~1e-8 apart
        want = np.var(x.astype(np.longdouble), axis=axis, ddof=correction).astype(np.float64)
        got = tl.tensor(x).var(axis, correction=correction).numpy()
        assert got.dtype == np.float64
        rtol = 1e-12 if offset == 0 else 1e-7
        np.testing.assert_allclose(got, want, rtol=rtol)
        tv = torch.tensor(x).var(axis, correction=correction).numpy()
        np.testing.assert_allclose(got, tv, rtol=rtol)
        np.testing.assert_allclose(tl.tensor(x).std(axis, correction=correction).numpy(),
                                   np.sqrt(want), rtol=rtol)


def test_f64_var_spread_1_matches_numpy_1e12():
    x = np.random.default_rng(2).standard_normal((5000, 8)) * 3 + 1
    for axis in (0, 1):
        np.testing.assert_allclose(tl.tensor(x).var(axis).numpy(), np.var(x, axis, ddof=1),
                                   rtol=1e-12)


@pytest.mark.parametrize("op", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("shape,axis", [((600, 8), 0), ((400, 16), 1), ((3, 500, 3), 1),
                                        ((50, 60), None), ((40, 50), (0, 1))])
def test_f64_gradients_match_torch(op, shape, axis):
    x = np.random.default_rng(4).standard_normal(shape)
    w = np.random.default_rng(5).standard_normal(np.sum(x, axis=axis).shape)
    a = tl.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    tdim = tuple(range(len(shape))) if axis is None else axis
    ya = getattr(a, op)(axis) if axis is not None else getattr(a, op)()
    yb = getattr(b, op)(tdim)
    np.testing.assert_allclose(ya.numpy(), yb.detach().numpy(), rtol=1e-12, atol=1e-13)
    (ya * tl.tensor(w)).sum().backward()
    (yb * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("shape,axis", [((3, 600), -1), ((3, 5), -1), ((600, 3), 0),
                                        ((600, 40), 0), ((3, 5000), -1)])
def test_f64_inf_nan_propagate(shape, axis):
    x = np.ones(shape)
    other = 1 - (axis % 2)          # index along the kept dim
    pos = [0, 0]
    for row, val in [(0, np.inf), (1, np.nan)]:
        pos = [0, 0]
        pos[other] = row
        for at in (0, shape[axis % 2] // 2, shape[axis % 2] - 1):
            pos[axis % 2] = at
            x[tuple(pos)] = val
    pos[other] = 2
    pos[axis % 2] = 0
    x[tuple(pos)] = np.inf
    pos[axis % 2] = shape[axis % 2] - 1
    x[tuple(pos)] = -np.inf
    t = tl.tensor(x)
    for op in ("sum", "mean"):
        got = getattr(t, op)(axis).numpy()
        want = getattr(torch.tensor(x), op)(axis).numpy()
        np.testing.assert_array_equal(got[:3], want[:3])
        assert got[0] == np.inf and np.isnan(got[1]) and np.isnan(got[2]), (op, got[:3])
    v = t.var(axis).numpy()
    assert np.isnan(v[:3]).all()
    np.testing.assert_array_equal(tl.tensor(x).sum().numpy(), np.sum(x))


@pytest.mark.parametrize("shape,axis", [((0, 8), 0), ((8, 0), 1), ((0, 8), 1), ((8, 0), 0),
                                        ((0,), 0), ((3, 0, 4), 1), ((3, 0, 4), (0, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_and_zero_size_axes(shape, axis, dtype):
    x = np.ones(shape, dtype)
    t, tt = tl.tensor(x), torch.tensor(x)
    np.testing.assert_array_equal(t.sum(axis).numpy(), tt.sum(axis).numpy())
    np.testing.assert_array_equal(t.sum(axis, keepdim=True).numpy(),
                                  tt.sum(axis, keepdim=True).numpy())
    np.testing.assert_array_equal(t.mean(axis).numpy(), tt.mean(axis).numpy())
    np.testing.assert_array_equal(tl.tensor(x).cumsum(0).numpy(), np.cumsum(x, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_fall_back(dtype):
    base = np.random.default_rng(6).standard_normal((400, 64)).astype(dtype)
    eps = np.finfo(dtype).eps
    for x in (base[:, ::3], base.T, base[::2], base[:, 5:9]):
        t = tl.tensor(x)
        for axis in (0, 1, None, (0, 1)):
            want, scale = _exact_sum(x.astype(np.float64), axis, False)
            got = t.sum(axis).numpy() if axis is not None else t.sum().numpy()
            assert np.all(np.abs(got - want) <= 8 * eps * scale + 1e-300), axis


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.int32, np.bool_, np.float32])
@pytest.mark.parametrize("shape", [(1000, 1000), (3, 4, 500), (5000,), (2, 3000, 1), (7, 9)])
def test_cumsum_matches_numpy_and_torch(dtype, shape):
    rng = np.random.default_rng(7)
    x = (rng.integers(-1000, 1000, shape) if dtype != np.bool_
         else rng.integers(0, 2, shape)).astype(dtype)
    if dtype in (np.float64, np.float32):
        x = x * 0.37
    t = tl.tensor(x)
    for axis in range(-len(shape), len(shape)):
        got = t.cumsum(axis).numpy()
        want = torch.tensor(x).cumsum(axis).numpy()
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        if dtype == np.float32:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
        else:
            np.testing.assert_array_equal(got, np.cumsum(x, axis, dtype=want.dtype))
            if dtype != np.float64:
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_cumsum_int64_wraps_as_numpy():
    x = np.array([[2**62, 2**62, 2**62, 5]] * 600, np.int64)
    for axis in (0, 1):
        np.testing.assert_array_equal(tl.tensor(x).cumsum(axis).numpy(), np.cumsum(x, axis))


def test_cumsum_non_contiguous_and_nan():
    x = np.random.default_rng(8).standard_normal((300, 40))
    x[10, 3] = np.nan
    x[20, 5] = np.inf
    for view in (x.T, x[:, ::2]):
        for axis in (0, 1):
            np.testing.assert_array_equal(tl.tensor(view).cumsum(axis).numpy(),
                                          np.cumsum(view, axis))
    i = np.arange(12000, dtype=np.int64).reshape(40, 300)[:, ::3]
    np.testing.assert_array_equal(tl.tensor(i).cumsum(0).numpy(), np.cumsum(i, 0))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumsum_f64_gradient_matches_torch(axis):
    x = np.random.default_rng(9).standard_normal((64, 50))
    w = np.random.default_rng(10).standard_normal((64, 50))
    a = tl.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    (a.cumsum(axis) * tl.tensor(w)).sum().backward()
    (b.cumsum(axis) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_errors_name_the_function():
    with pytest.raises(Exception, match="sum"):
        tl.tensor(np.ones((3, 4))).sum(2)
    with pytest.raises(Exception, match="cumsum"):
        tl.tensor(np.ones((3, 4), np.int64)).cumsum(5)


def test_direct_kernel_checks():
    with pytest.raises(ValueError, match="sum_rows_f64.*row count"):
        _ops.sum_rows_f64(np.ones((3, 4)), np.empty(2))
    with pytest.raises(ValueError, match="sum_mid"):
        _ops.sum_mid(np.ones((2, 3, 4)), np.empty((2, 3)))
    with pytest.raises(ValueError, match="cumsum_mid"):
        _ops.cumsum_mid(np.ones((2, 3, 4)), np.empty((2, 3, 5)))
    with pytest.raises((ValueError, TypeError)):
        _ops.sum_rows_f64(np.ones((3, 4), np.float32), np.empty(3))
    out = np.full(3, 7.0)
    _ops.sum_rows_f64(np.ones((3, 0)), out)
    np.testing.assert_array_equal(out, 0.0)
    out = np.full((2, 4), 7.0)
    _ops.sum_mid(np.ones((2, 0, 4)), out)
    np.testing.assert_array_equal(out, 0.0)


@settings(max_examples=80, deadline=None)
@given(rows=st.integers(1, 700), cols=st.integers(1, 40), seed=st.integers(0, 2**16),
       axis=st.sampled_from([0, 1, None]), scale=st.sampled_from([1e-300, 1.0, 1e300]))
def test_f64_property(rows, cols, seed, axis, scale):
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * scale
    t = tl.tensor(x)
    want, s = _exact_sum(x, None if axis is None else (axis,), False)
    got = t.sum(axis).numpy() if axis is not None else t.sum().numpy()
    assert np.all(np.abs(got - want) <= 1e-14 * s + 1e-320)
    if axis is not None:
        c = t.cumsum(axis).numpy()
        np.testing.assert_array_equal(c, np.cumsum(x, axis))
