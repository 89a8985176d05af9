"""cumsum / cumprod / logcumsumexp on the CPU scan kernel (``_scan_kernels.cum_scan``):
float64 bit for bit PyTorch's sequential scan, float32 with a double accumulator, every
axis, NaN/inf, 0-d/empty, non-contiguous and odd shapes; gradients vs PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import _scan_cpu

torch = pytest.importorskip("torch")

NAMES = ("cumsum", "cumprod", "logcumsumexp")


def _data(name, shape, dtype, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    if name == "cumprod":
        a = 1 + 1e-3 * a           # products that neither vanish nor overflow
    return a.astype(dtype)


def _tl(name, x, dim):
    return tl.logcumsumexp(x, dim) if name == "logcumsumexp" else getattr(x, name)(dim)


def _torch(name, x, dim):
    return getattr(torch, name)(x, dim)


def _sequential(name, a, axis):
    """The running loop in double, element by element (PyTorch's CPU order)."""
    m = np.moveaxis(a.astype(np.float64), axis, -1)
    out = np.empty(m.shape)
    acc = np.full(m.shape[:-1], {"cumsum": 0.0, "cumprod": 1.0}.get(name, -np.inf))
    for j in range(m.shape[-1]):
        acc = acc + m[..., j] if name == "cumsum" else (
            acc * m[..., j] if name == "cumprod" else np.logaddexp(acc, m[..., j]))
        out[..., j] = acc
    return np.moveaxis(out, -1, axis).astype(a.dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape,dim", [((1000,), 0), ((37, 53), 1), ((37, 53), 0),
                                       ((9, 7, 5), 1), ((3, 600), -1), ((17, 3), 1)])
def test_float64_bit_equal_to_torch_and_a_sequential_loop(name, shape, dim):
    a = _data(name, shape, np.float64)
    got = _tl(name, tl.tensor(a), dim).numpy()
    np.testing.assert_array_equal(got, _torch(name, torch.tensor(a), dim).numpy())
    np.testing.assert_array_equal(got, _sequential(name, a, dim % a.ndim))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [0, 1])
def test_float32_accumulates_in_double(name, dim):
    a = _data(name, (300, 41), np.float32, seed=1)
    got = _tl(name, tl.tensor(a), dim).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _sequential(name, a, dim))
    np.testing.assert_allclose(got, _torch(name, torch.tensor(a), dim).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_kernel_used_for_float64_when_built():
    from tensorlib import _scan_kernels as K
    if not hasattr(K, "cum_scan"):
        pytest.skip("kernel not built yet")
    a = _data("cumsum", (5, 9), np.float64)
    for name in NAMES:
        np.testing.assert_array_equal(_scan_cpu.cum_float(a, 1, name),
                                      _sequential(name, a, 1))
    with pytest.raises(ValueError, match="cum_scan: op"):
        K.cum_scan(a.reshape(5, 9, 1), np.empty((5, 9, 1)), 3)
    with pytest.raises(ValueError, match="out must have"):
        K.cum_scan(a.reshape(5, 9, 1), np.empty((5, 8, 1)), 0)
    with pytest.raises(ValueError, match="name must be"):
        _scan_cpu.cum_float(a, 1, "cummax")
    assert _scan_cpu.cum_float(a.astype(np.int64), 1, "cumsum") is None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_and_inf(name, dtype):
    a = _data(name, (6, 12), np.float64, seed=2)
    a[1, 3] = np.nan
    a[2, 0] = np.inf
    a[3, 5] = -np.inf
    a[4, 2] = np.inf
    a[4, 7] = -np.inf
    a[5, :] = -np.inf
    a = a.astype(dtype)
    for dim in (0, 1):
        got = _tl(name, tl.tensor(a), dim).numpy()
        want = _torch(name, torch.tensor(a), dim).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        fin = ~np.isnan(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_zero_d_empty_and_non_contiguous(name):
    z = tl.tensor(np.float64(0.5))
    assert _tl(name, z, 0).numpy() == _torch(name, torch.tensor(0.5, dtype=torch.float64),
                                             0).numpy()
    for shape, dim in [((0,), 0), ((3, 0), 1), ((0, 4), 0), ((0, 4), 1)]:
        e = np.zeros(shape)
        assert _tl(name, tl.tensor(e), dim).shape == shape
    a = _data(name, (40, 30), np.float64, seed=3)
    t = tl.tensor(a)[:, ::3].T          # strided, transposed
    want = _torch(name, torch.tensor(a)[:, ::3].T, 1).numpy()
    np.testing.assert_array_equal(_tl(name, t, 1).numpy(), want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [0, 1])
def test_gradients_match_torch(name, dim):
    a = _data(name, (5, 7), np.float64, seed=4)
    g = np.random.default_rng(5).standard_normal(a.shape)
    x = tl.tensor(a, requires_grad=True)
    _tl(name, x, dim).backward(tl.tensor(g))
    tx = torch.tensor(a, requires_grad=True)
    _torch(name, tx, dim).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradgradcheck(name):
    a = _data(name, (3, 4), np.float64, seed=6)
    x = tl.tensor(a, requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: _tl(name, t, 1), (x,))
