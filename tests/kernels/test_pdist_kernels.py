"""pdist (p = 2) by the differences kernel (``_scan_kernels.pdist_l2`` and its gradient)
against PyTorch: values and gradients in float32/float64, duplicates (gradient 0), NaN/inf,
empty and one-row inputs, odd sizes around the kernel's tiles; and ``_ops.binary_kernel``'s
refusal of bad op codes and byte orders."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops import _scan_cpu

torch = pytest.importorskip("torch")
F = tl.nn.functional


def _pair(x, g=None):
    lx = tl.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out, ref = F.pdist(lx), torch.nn.functional.pdist(tx)
    if g is None:
        g = np.random.default_rng(9).standard_normal(ref.shape).astype(x.dtype)
    out.backward(tl.tensor(g))
    ref.backward(torch.tensor(g))
    return out.numpy(), ref.detach().numpy(), lx.grad.numpy(), tx.grad.numpy()


@pytest.mark.parametrize("n", [2, 3, 17, 130, 161, 300])
@pytest.mark.parametrize("m", [1, 5, 16, 33, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_gradients_match_torch(n, m, dtype):
    x = np.random.default_rng(n * 100 + m).standard_normal((n, m)).astype(dtype)
    x[n // 2] = x[0]                         # a coinciding pair: distance 0, gradient 0
    out, ref, gx, gt = _pair(x)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, gt, rtol=tol * 10, atol=tol * 10 * np.sqrt(n))


def test_kernel_direct_when_built():
    from tensorlib import _scan_kernels as K
    if not hasattr(K, "pdist_l2"):
        pytest.skip("kernel not built yet")
    x = np.random.default_rng(0).standard_normal((50, 7))
    d = _scan_cpu.pdist_l2(x)
    np.testing.assert_allclose(d, torch.pdist(torch.tensor(x)).numpy(), rtol=1e-13)
    with pytest.raises(ValueError, match="pdist_l2"):
        K.pdist_l2(x, np.ascontiguousarray(x.T), np.empty(3))
    with pytest.raises(ValueError, match="pdist_l2_grad"):
        K.pdist_l2_grad(np.ones(3), np.ones(3), x, np.ascontiguousarray(x.T), np.empty(x.shape))
    assert _scan_cpu.pdist_l2(x.astype(np.float16)) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_stay_per_pair(dtype):
    x = np.random.default_rng(1).standard_normal((40, 6))
    x[3, 1] = np.nan
    x[7, 2] = np.inf
    x[9, 2] = np.inf               # inf - inf: NaN for the pair (7, 9)
    x[11, 0] = -np.inf
    x = x.astype(dtype)
    got = F.pdist(tl.tensor(x)).numpy()
    want = torch.pdist(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5)
    # gradients: PyTorch's are NaN wherever a pair's distance is (every row here); tensorlib's
    # weight g / d is 0 for a NaN distance, as its products path gave: compare with that path
    from tensorlib.ops import pairwise

    def grad():
        lx = tl.tensor(x, requires_grad=True)
        F.pdist(lx).sum().backward()
        return lx.grad.numpy()
    got = grad()
    old = pairwise._PD_DIRECT_MAX_M
    pairwise._PD_DIRECT_MAX_M = -1
    try:
        want = grad()
    finally:
        pairwise._PD_DIRECT_MAX_M = old
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = ~np.isnan(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-4, atol=1e-4)


def test_float32_overflow_as_torch():
    x = (np.random.default_rng(0).standard_normal((30, 5)) * 1e19).astype(np.float32)
    got = F.pdist(tl.tensor(x)).numpy()
    want = torch.pdist(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


@pytest.mark.parametrize("shape", [(0, 3), (1, 3), (4, 0)])
def test_empty_and_one_row(shape):
    x = np.zeros(shape)
    lx = tl.tensor(x, requires_grad=True)
    out = F.pdist(lx)
    ref = torch.pdist(torch.tensor(x))
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    out.sum().backward()
    assert lx.grad.shape == shape and not lx.grad.numpy().any()


def test_non_contiguous_input():
    a = np.random.default_rng(2).standard_normal((20, 30))
    x = tl.tensor(a)[::2, 1::3]
    np.testing.assert_allclose(F.pdist(x).numpy(),
                               torch.pdist(torch.tensor(a)[::2, 1::3]).numpy(), rtol=1e-12)


def test_gradgradcheck():
    x = tl.tensor(np.random.default_rng(4).standard_normal((6, 3)), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda a: F.pdist(a), (x,))


# --- _ops.binary_kernel's checks ------------------------------------------------------------
def _add(a, b):
    return np.add(a, b)


def test_binary_kernel_refuses_bad_op_code():
    a, b = np.ones((64, 1)), np.ones((1, 64))
    for code in (-1, 16, 1000):
        with pytest.raises(ValueError, match="binary_kernel: op code"):
            _ops.binary_kernel(_add, code, a, b)
    np.testing.assert_array_equal(_ops.binary_kernel(_add, 0, a, b), a + b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_kernel_refuses_non_native_byte_order(dtype):
    a = np.arange(64.0, dtype=dtype).reshape(64, 1)
    b = np.arange(64.0, dtype=dtype).reshape(1, 64)
    swapped = a.astype(np.dtype(dtype).newbyteorder())
    for x, y in ((swapped, b), (b.T, swapped.T)):
        with pytest.raises(ValueError, match="native byte order"):
            _ops.binary_kernel(_add, 0, x, y)


def test_binary_kernel_mismatched_dtypes_take_the_fallback():
    # mixed dtypes reach it from ordinary broadcasts: NumPy's promotion, never the kernel
    a = np.arange(64.0, dtype=np.float32).reshape(64, 1)
    b = np.arange(64.0).reshape(1, 64)
    got = _ops.binary_kernel(_add, 0, a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, a + b)
