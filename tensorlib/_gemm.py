"""float32 matrix products on tensorlib's own AVX-512 GEMM where it runs, NumPy's BLAS elsewhere.

NumPy's OpenBLAS chooses its kernels when it loads, from ``OPENBLAS_CORETYPE`` or its own
CPU detection; an environment that pins an AVX2 core type on a CPU with full-width AVX-512
units halves the speed of every convolution and linear layer, and nothing can change that
once NumPy is imported. ``tensorlib/_sgemm.h`` is a packed-panel GEMM with an 8 x 32 AVX-512
register tile (1.6-2x NumPy's float32 matmul on the benchmark's shapes under that setting;
see benchmarks/README.md). :func:`matmul` uses it for float32 products on CPUs with AVX-512
(stacks of matrices too) and leaves everything else (other dtypes, vectors, tiny products) to
NumPy.

Set ``TENSORLIB_SGEMM=0`` before importing tensorlib to use NumPy's BLAS for everything.
"""
from __future__ import annotations

import os

import numpy as np

from . import _ops

ENABLED: bool = bool(_ops.SGEMM_SUPPORTED) and os.environ.get("TENSORLIB_SGEMM", "1") != "0"
# below this many multiply-adds NumPy's call costs the same and checks less
MIN_WORK = 1 << 15
# below this many, one thread: waking OpenMP's sleeping team (tensorlib sets the passive
# wait policy) costs ~50 µs, as much as the second core saves on ~25M multiply-adds
PARALLEL_WORK = 24 << 20
_F32 = np.dtype(np.float32)
# the largest matrix dimension the kernel takes: it counts in 32-bit ints, rounded up to whole
# register tiles
MAX_DIM = 2**31 - 1024


def _takes(a: np.ndarray) -> bool:
    return a.dtype == _F32 and a.ndim == 2 and a.strides[0] % 4 == 0 and a.strides[1] % 4 == 0


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, on tensorlib's GEMM when both are float32 arrays of 2 or
    more dimensions (any strides: transposed views are read in place; batch dimensions
    broadcast) and the product is large enough."""
    if (ENABLED and out is None and a.dtype == _F32 and b.dtype == _F32 and a.ndim >= 2
            and b.ndim >= 2 and max(a.ndim, b.ndim) >= 3):
        c = _batched(a, b)
        if c is not None:
            return c
    if (ENABLED and _takes(a) and _takes(b) and a.shape[1] == b.shape[0]
            and max(a.shape[0], a.shape[1], b.shape[1]) <= MAX_DIM):
        m, k = a.shape
        n = b.shape[1]
        work = m * n * k
        if work >= MIN_WORK:
            if out is None:
                out = np.empty((m, n), np.float32)
            elif not _writable_result(out, a, b, (m, n)):
                return np.matmul(a, b, out=out)
            _ops.sgemm(a, b, out, 1.0, 0.0, 1 if work < PARALLEL_WORK else 0)
            return out
    return np.matmul(a, b, out=out)


def _batched(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Stacked products on ``_ops.sgemm_batched``, or None where NumPy should take them
    (mismatched shapes, for NumPy's own error; small products; stacks that would need a copy)."""
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        return None
    nb = 1
    for d in batch:
        nb *= d
    work = nb * m * n * k
    if k != k2 or m * n * k < MIN_WORK or max(m, n, k) > MAX_DIM:
        return None     # each product must be worth a call: NumPy's loop is lighter
    a3, b3 = _stack(a, batch, nb), _stack(b, batch, nb)
    if a3 is None or b3 is None:
        return None
    c = np.empty(batch + (m, n), np.float32)
    _ops.sgemm_batched(a3, b3, c.reshape(nb, m, n), 1 if work < PARALLEL_WORK else 0)
    return c


def _stack(x: np.ndarray, batch: tuple, nb: int) -> np.ndarray | None:
    """``x`` broadcast over ``batch`` as an (nb, rows, cols) view (stride 0 where it repeats),
    or None where that takes a copy."""
    v = np.broadcast_to(x, batch + x.shape[-2:])
    try:
        v = v.reshape((nb,) + x.shape[-2:], copy=False)
    except ValueError:
        return None
    return v if all(s % 4 == 0 for s in v.strides) else None


def add_product(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float) -> bool:
    """``c += alpha * a @ b`` in place when :func:`matmul`'s GEMM takes these arrays; returns
    False (changing nothing) when it does not."""
    if not (ENABLED and _takes(a) and _takes(b) and a.shape[1] == b.shape[0]
            and max(a.shape[0], a.shape[1], b.shape[1]) <= MAX_DIM
            and _writable_result(c, a, b, (a.shape[0], b.shape[1]))):
        return False
    work = a.shape[0] * a.shape[1] * b.shape[1]
    _ops.sgemm(a, b, c, alpha, 1.0, 1 if work < PARALLEL_WORK else 0)
    return True


def _writable_result(c: np.ndarray, a: np.ndarray, b: np.ndarray, shape) -> bool:
    """Whether the kernel can write ``c``: float32 of ``shape`` with unit column stride and
    rows that do not overlap, writeable, and sharing no memory with an input (it would read
    what it already overwrote)."""
    return (isinstance(c, np.ndarray) and c.dtype == _F32 and c.shape == shape
            and c.strides[1] == 4 and c.strides[0] % 4 == 0 and c.flags.writeable
            and (shape[0] <= 1 or c.strides[0] >= 4 * shape[1])
            and not np.may_share_memory(c, a) and not np.may_share_memory(c, b))
