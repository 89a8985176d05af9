"""float32 matrix products on tensorlib's own GEMM where it is the faster, NumPy's BLAS elsewhere.

NumPy's OpenBLAS chooses its kernels when it loads, from ``OPENBLAS_CORETYPE`` or its own
CPU detection; an environment that pins an AVX2 core type on a CPU with full-width AVX-512
units halves the speed of every convolution and linear layer, and nothing can change that
once NumPy is imported. ``tensorlib/_sgemm.h`` is a packed-panel GEMM with an 8 x 32 AVX-512
register tile (1.1-1.9x NumPy's float32 matmul on large products under that setting; see
benchmarks/README.md). :func:`matmul` uses it on CPUs with AVX-512 for the float32 products
that OpenBLAS would thread where it is the faster (stacks of matrices too; the measured
crossovers are at :data:`MIN_WORK`) and leaves the rest (other dtypes, small products,
matrix-vector products) to NumPy, straight away for the small ones.

On CPUs with AVX2 only the kernel has a 6 x 16 tile and runs at 0.8-1.0x OpenBLAS's speed,
and the convolutions use it (tensorlib.ops.nn_conv: one image per thread, no im2col of the
whole batch). Products stay with OpenBLAS, threaded as NumPy runs them, until a convolution
has run on the kernel's threads (:func:`claim_threads`); from then on :func:`matmul` works as
on AVX-512, with the kernel taking the products worth two cores (from
:data:`PARALLEL_WORK`) and OpenBLAS the rest on one thread. After a threaded call OpenBLAS's
workers spin for up to ~0.1 s and take the cores from the next OpenMP kernel: W3's step
(convolutions and a 3136-1024 linear layer) took 114-122 ms with OpenBLAS threaded, 78-96
with the products here; but an MLP's or an LSTM's mid-sized products lose 10-35% on one
OpenBLAS thread (W2, W4), and nothing spins between them that their own threads would slow.

Set ``TENSORLIB_SGEMM=0`` before importing tensorlib to use NumPy's BLAS for everything.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from . import _blas, _ops

# the kernel's instruction set in use: "avx512", "avx2", or "" (none, or TENSORLIB_SGEMM=0)
ISA: str = _ops.SGEMM_ISA if os.environ.get("TENSORLIB_SGEMM", "1") != "0" else ""
ENABLED: bool = bool(ISA)
# every kernel this CPU can run, best first (use_isa takes any of them)
KERNELS: tuple = (("avx512", "avx2")[("avx512", "avx2").index(_ops.SGEMM_ISA):]
                  if _ops.SGEMM_SUPPORTED else ())
# whether tensorlib runs the threads of float32 products (the kernel where it takes them,
# OpenBLAS on one thread elsewhere): always on AVX-512; on AVX2 once claim_threads() was called
OWNS: bool = ISA == "avx512"
# From this many multiply-adds OpenBLAS runs a product on all its threads, which then spin
# for a while after it and take the cores from the next OpenMP kernel (a 512^3 product of
# ours right after such a call took 2.4 ms instead of 0.7). Products below it stay with NumPy
# (one OpenBLAS thread anyway); from it, the ones that suit the kernel come here where it is
# faster (below), and the others run on one OpenBLAS thread (_blas.one_thread).
#
# Where the kernel is faster, one thread each (median µs of a square n^3 float32 product, the
# kernel called directly vs np.matmul, from n = 128 inside _blas.one_thread; AMD EPYC with
# AVX-512, OpenBLAS 0.3.31 with its Haswell kernels; NN: a @ b, NT: a @ b.T, TN: a.T @ b;
# B=16: a stack of 16; benchmarks/ops.py, _small_matmuls):
#
#     n      NN kernel / NumPy   NT kernel / NumPy   TN kernel / NumPy
#     32        1.6 /   1.7         1.8 /   2.1         2.0 /   1.7
#     48        4.2 /   3.0         4.6 /   4.6         3.9 /   3.0
#     64        6.6 /   5.7         7.0 /   8.4         6.1 /   5.7
#     96       18.9 /  16.5        19.7 /  22.7        18.9 /  16.5
#     128      42.7 /  47.7        44.3 /  53.5        40.8 /  48.2
#     192       136 /   144         140 /   160         130 /   148
#     256       321 /   360         323 /   357         313 /   355
#     B=16 64    99 /    82         106 /   126          92 /    82
#     B=16 96   298 /   260         316 /   370         283 /   263
#     B=16 128  933 /  1141        1019 /  3025         891 /   967
#
# NumPy wins below 128^3 where the kernel reads B in place (unit column stride: NN, TN), and
# the kernel wins from 64^3 = MIN_WORK where B's columns are strided (NT, as linear's
# x @ w.T: OpenBLAS's packing of a transposed B is the slower one). Hence two thresholds:
# MIN_WORK for a strided B, IN_PLACE_FACTOR * MIN_WORK for a B read in place.
MIN_WORK = 1 << 18
IN_PLACE_FACTOR = 8
# from this many, both cores: below it waking OpenMP's sleeping team (tensorlib sets the
# passive wait policy) costs ~50 µs, as much as the second core saves
PARALLEL_WORK = 24 << 20
# register-tile occupancy below which the kernel wastes too much: it computes C in whole
# 8 x 32 tiles, so a matrix-vector product would do 32x the work (NumPy takes those)
MIN_OCCUPANCY = 0.5
# and depth below which each tile's store (and a shallow panel's packing) outweighs its sums:
# 100000 x 10 x 10 took 765 µs against OpenBLAS's 206; at k = 16 the kernel on one core
# (2048 x 16 x 64: 28 µs) still beats OpenBLAS on one (42 µs)
MIN_DEPTH = 16
# matrix-vector products of matrices this large (16 MiB) run on tensorlib's loops on all
# threads: below it a second core saves less than waking it costs, and one OpenBLAS thread
# reads as fast as one of ours
GEMV_PARALLEL = 4 << 20
# depth from which a product with few result columns runs transposed (on a fuller tile): the
# transposed result costs a copy of m * n floats, against m * n * k multiply-adds saved from
# the wasted tile (2048 x 512 x 8: 217 -> 187 µs; 256 x 4096 x 16: 491 -> 226 µs; but
# 100000 x 16 x 10: 499 -> 721 µs)
TRANSPOSE_DEPTH = 32
_MR, _NR = _ops.sgemm_tile()      # the register tile
_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
# the largest matrix dimension the kernel takes: it counts in 32-bit ints, rounded up to whole
# register tiles
MAX_DIM = 2**31 - 1024


def occupancy(m: int, n: int) -> float:
    """The fraction of the register tiles' work that lands in an (m, n) result."""
    if m <= 0 or n <= 0:
        return 0.0
    return m / (-(-m // _MR) * _MR) * n / (-(-n // _NR) * _NR)


def suits(m: int, n: int, k: int, min_occupancy: float = MIN_OCCUPANCY,
          min_depth: int = MIN_DEPTH) -> bool:
    """Whether an (m, k) @ (k, n) product suits the kernel's tile: no dimension past
    :data:`MAX_DIM`, enough depth to amortise each tile's store, and enough of the tiles
    filled."""
    return (max(m, n, k) <= MAX_DIM and k >= min_depth
            and occupancy(m, n) >= min_occupancy)


def _min_work(col_stride: int) -> int:
    """The multiply-adds from which the kernel beats NumPy, for a B of this column stride
    (bytes): see the table at :data:`MIN_WORK`. On AVX2, from :data:`PARALLEL_WORK`: one
    OpenBLAS thread is 5-15% faster than one of the kernel's (32^3-1024^3, AMD EPYC Zen 3)."""
    if ISA == "avx2":
        return PARALLEL_WORK
    return MIN_WORK * IN_PLACE_FACTOR if col_stride == 4 else MIN_WORK


def _route(a: np.ndarray, b: np.ndarray, may_flip: bool = True) -> str | None:
    """Where a product of 2-D float32 arrays goes: "direct" (the kernel), "transposed" (the
    kernel computes (a @ b).T = b.T @ a.T, for a result with few columns, which fills more of
    the register tile that way), or None (NumPy)."""
    m, k = a.shape
    n = b.shape[1]
    work = m * n * k
    if work < MIN_WORK or b.shape[0] != k or not (_aligned(a) and _aligned(b)):
        return None
    direct = occupancy(m, n)
    if direct > 2 / 3:      # no flip could fill the tile 1.5x fuller: skip its sums
        return "direct" if work >= _min_work(b.strides[1]) and suits(m, n, k) else None
    direct = direct if suits(m, n, k) else 0.0
    # (the flipped product's B is a.T: its column stride is a's row stride)
    flipped = (occupancy(n, m) if may_flip and k >= TRANSPOSE_DEPTH
               and work >= _min_work(a.strides[0]) and suits(n, m, k) else 0.0)
    if flipped >= 1.5 * direct and flipped:   # worth the copy only for a much fuller tile
        return "transposed"
    return "direct" if direct and work >= _min_work(b.strides[1]) else None


def _aligned(a: np.ndarray) -> bool:
    return a.strides[0] % 4 == 0 and a.strides[1] % 4 == 0


def numpy_blas(dtype):
    """The context for a product of ``dtype`` left to NumPy's BLAS: OpenBLAS on one thread
    (:func:`_blas.one_thread`) where this kernel takes the large float32 products, so that
    OpenBLAS's spinning workers do not slow the OpenMP kernels around it; else nothing."""
    return _blas.one_thread() if OWNS and dtype == _F32 else contextlib.nullcontext()


def _threads(work: int) -> int:
    return 1 if work < PARALLEL_WORK else 0     # 0: all of OpenMP's threads


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, on tensorlib's GEMM for float32 products of 2 or more
    dimensions (any strides: transposed views are read in place; batch dimensions broadcast)
    large enough for OpenBLAS to thread, and on its matrix-vector loops for large matrices
    times a vector; NumPy for the rest. float16 products are computed in float32 and rounded
    once (as PyTorch's CPU matmul accumulates them): NumPy's float16 loop has no BLAS and
    was ~8x slower than PyTorch."""
    if a.ndim >= 2 and b.ndim >= 2:
        # matrix-matrix products (and stacks), the common case, decided in as few steps as
        # possible: the general path below costs 2-4 µs, as much as a 48 x 48 product
        m, k = a.shape[-2:]
        n = b.shape[-1]
        if (k > 1 and m > 1 and n > 1 and a.dtype == b.dtype     # (1s: the special cases)
                and a.dtype.char in "fdFD"):
            if m * n * k < MIN_WORK:     # one OpenBLAS thread anyway (each, in a stack)
                # (out=None passed on costs NumPy 0.6 µs)
                return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
            if a.ndim == 2 == b.ndim:
                if OWNS and a.dtype == _F32:
                    route = _route(a, b)
                    if route is not None:
                        return _product(a, b, out, route)
                    if _blas.threaded():
                        with _blas.one_thread():
                            return np.matmul(a, b, out=out)
                return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    if (a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == 1 and b.shape[-2] == 1
            and a.dtype == b.dtype and a.dtype.kind == "f" and a.dtype != _F16):
        # an inner dimension of 1 (outer products: vmap(hessian), MAML's meta-gradients):
        # each entry is one product, which broadcasting computes 3-6x faster than NumPy's
        # matmul loop, with the same values; batch dims broadcast alike
        return np.multiply(a, b) if out is None else np.multiply(a, b, out=out)
    if a.dtype == _F16 and b.dtype == _F16:
        c = matmul(a.astype(_F32), b.astype(_F32))
        if out is None:
            return c.astype(_F16)
        np.copyto(out, c, casting="same_kind")
        return out
    if OWNS and a.dtype == _F32 and b.dtype == _F32 and a.ndim >= 1 and b.ndim >= 1:
        if a.ndim <= 2 and b.ndim <= 2:
            c = _matvec(a, b, out)
            if c is not None:
                return c
        if a.ndim == 2 and b.ndim == 2:
            route = _route(a, b)
            if route is not None:
                return _product(a, b, out, route)
        elif out is None and a.ndim >= 2 and b.ndim >= 2:
            c = _batched(a, b)
            if c is not None:
                return c
        # OpenBLAS would thread this (a stack: each product, NumPy makes one call per matrix)
        work = (a.shape[-2] * a.shape[-1] * b.shape[-1] if a.ndim >= 2 and b.ndim >= 2
                else a.size * (b.shape[-1] if b.ndim >= 2 else 1))
        if work >= MIN_WORK and _blas.threaded():
            with _blas.one_thread():
                return np.matmul(a, b, out=out)
    return np.matmul(a, b, out=out)


def _matvec(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
    """A matrix times a vector (1-D, or a matrix's single row or column) on ``_ops.sgemv``,
    for matrices of at least :data:`GEMV_PARALLEL` elements: reading the matrix is the whole
    cost, and both cores read it faster. None for everything else."""
    if a.ndim == 2 and (b.ndim == 1 or b.shape[1] == 1):
        mat, vec = a, b.reshape(-1) if b.ndim == 2 else b
    elif b.ndim == 2 and (a.ndim == 1 or a.shape[0] == 1):
        mat, vec = b.T, a.reshape(-1) if a.ndim == 2 else a
    else:
        return None
    m, k = mat.shape
    if (not _ops.SGEMV_SUPPORTED or m * k < GEMV_PARALLEL or vec.shape[0] != k
            or max(m, k) > MAX_DIM or 4 not in mat.strides or not _aligned(mat)):
        return None
    shape = a.shape[:-1] + b.shape[1:]
    if out is not None and out.shape != shape:
        return None     # NumPy's error
    y = np.empty(m, np.float32)
    _ops.sgemv(mat, np.ascontiguousarray(vec), y, 0)
    if out is None:
        return y.reshape(shape)
    np.copyto(out, y.reshape(shape))
    return out


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None, route: str) -> np.ndarray:
    m, k = a.shape
    n = b.shape[1]
    if out is not None and not _writable_result(out, a, b, (m, n)):
        return np.matmul(a, b, out=out)
    if route == "direct":
        out = np.empty((m, n), np.float32) if out is None else out
        _ops.sgemm(a, b, out, 1.0, 0.0, _threads(m * n * k))
        return out
    ct = np.empty((n, m), np.float32)
    _ops.sgemm(b.T, a.T, ct, 1.0, 0.0, _threads(m * n * k))
    if out is None:
        return np.ascontiguousarray(ct.T)
    np.copyto(out, ct.T)
    return out


def _batched(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Stacked products on ``_ops.sgemm_batched`` (each thread takes whole products), or None
    where NumPy should take them: mismatched shapes (for NumPy's own error), products too
    small or too skinny for the kernel, stacks that would need a copy."""
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    each = m * n * k
    # (the size tests first: np.broadcast_shapes alone costs 2.7 µs)
    if k != k2 or each < _min_work(b.strides[-1]) or not suits(m, n, k):
        return None
    if a.shape[:-2] == b.shape[:-2]:
        batch = a.shape[:-2]
    else:
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            return None
    nb = 1
    for d in batch:
        nb *= d
    a3, b3 = _stack(a, batch, nb), _stack(b, batch, nb)
    if a3 is None or b3 is None:
        return None
    c = np.empty(batch + (m, n), np.float32)
    _ops.sgemm_batched(a3, b3, c.reshape(nb, m, n), _threads(nb * each))
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
    if not (OWNS and a.dtype == b.dtype == _F32 and a.ndim == b.ndim == 2
            and _route(a, b, may_flip=False) == "direct"
            and _writable_result(c, a, b, (a.shape[0], b.shape[1]))):
        return False
    _ops.sgemm(a, b, c, alpha, 1.0, _threads(a.shape[0] * a.shape[1] * b.shape[1]))
    return True


def _writable_result(c: np.ndarray, a: np.ndarray, b: np.ndarray, shape) -> bool:
    """Whether the kernel can write ``c``: float32 of ``shape`` with unit column stride and
    rows that do not overlap, writeable, and sharing no memory with an input (it would read
    what it already overwrote)."""
    return (isinstance(c, np.ndarray) and c.dtype == _F32 and c.shape == shape
            and c.strides[1] == 4 and c.strides[0] % 4 == 0 and c.flags.writeable
            and (shape[0] <= 1 or c.strides[0] >= 4 * shape[1])
            and not np.may_share_memory(c, a) and not np.may_share_memory(c, b))


@contextlib.contextmanager
def use_isa(isa: str, owns: bool | None = None):
    """Run the kernel for ``isa`` ("avx512" or "avx2", at most what the CPU has) inside the
    block, with the routing that goes with it (``owns``: :data:`OWNS`, by default as a fresh
    process has it): the tests run the AVX2 kernel and its routes on AVX-512 CPUs. Not
    thread-safe: nothing else may run a product meanwhile."""
    global ISA, ENABLED, OWNS, _MR, _NR
    if isa not in ("avx512", "avx2"):
        raise ValueError(f"use_isa: isa must be 'avx512' or 'avx2', not {isa!r}")
    if isa not in KERNELS:
        raise RuntimeError(f"use_isa: this CPU cannot run the {isa} kernel")
    saved = ISA, ENABLED, OWNS, _MR, _NR
    old = _ops._sgemm_select(isa)
    try:
        ISA, ENABLED, OWNS = isa, True, owns if owns is not None else isa == "avx512"
        _MR, _NR = _ops.sgemm_tile()
        yield
    finally:
        _ops._sgemm_select(old)
        ISA, ENABLED, OWNS, _MR, _NR = saved


def claim_threads() -> None:
    """From now on tensorlib runs the threads of large float32 products (see the module's
    docstring): the convolutions call this when they run on the kernel's threads."""
    global OWNS
    OWNS = ENABLED
