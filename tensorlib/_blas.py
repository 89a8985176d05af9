"""GEMM with accumulation (``C += alpha * A^T @ B``) from the BLAS NumPy already loaded.

NumPy's ``matmul`` always writes a fresh result; BLAS's ``gemm`` can add into an existing
matrix (``beta = 1``). A captured SGD step uses that to fold the update into the weight
gradient: ``p -= lr * g^T @ x`` in one call, without writing the gradient and reading it
back (``passes.fusion.fuse_sgd_gemm``). The library is the OpenBLAS that NumPy's wheels
bundle (ILP64 ``scipy_cblas_*gemm64_``) or a system CBLAS that NumPy linked (LP64
``cblas_*gemm``); where neither is found :data:`AVAILABLE` is False and the pass leaves
graphs alone.
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


_CORENAME = ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
             "openblas_get_corename")
_THREADS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"))
_corename = None    # OpenBLAS's name for the kernels it picked, when the library says
_threads = None     # (get, set) of OpenBLAS's thread count, when the library has them


def _load():
    global _corename, _threads
    root = os.path.dirname(os.path.dirname(np.__file__))
    names = [("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", ctypes.c_int64),
             ("cblas_sgemm64_", "cblas_dgemm64_", ctypes.c_int64),
             ("cblas_sgemm", "cblas_dgemm", ctypes.c_int)]
    paths = sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*")))
    paths += sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs",
                                           "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _CORENAME:
            f = getattr(lib, name, None)
            if f is not None:
                f.restype, f.argtypes = ctypes.c_char_p, []
                _corename = f
                break
        for get, set_ in _THREADS:
            g, st = getattr(lib, get, None), getattr(lib, set_, None)
            if g is not None and st is not None:
                g.restype, g.argtypes = ctypes.c_int, []
                st.restype, st.argtypes = None, [ctypes.c_int]
                _threads = (g, st)
                break
        for s, d, idx in names:
            fs, fd = getattr(lib, s, None), getattr(lib, d, None)
            if fs is None or fd is None:
                continue
            fns = {}
            for dtype, f, real in ((np.float32, fs, ctypes.c_float),
                                   (np.float64, fd, ctypes.c_double)):
                f.restype = None
                f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, idx, idx, idx, real,
                              ctypes.c_void_p, idx, ctypes.c_void_p, idx, real,
                              ctypes.c_void_p, idx]
                fns[np.dtype(dtype)] = f
            return fns
    return {}


_GEMM = _load() if os.environ.get("TENSORLIB_BLAS", "1") != "0" else {}
AVAILABLE = bool(_GEMM)


def core() -> str | None:
    """The kernel set NumPy's OpenBLAS chose when it loaded ('Haswell', 'SkylakeX', ...), or
    None where that is not OpenBLAS or it does not say."""
    if _corename is None:
        return None
    name = _corename()
    return name.decode() if name else None


_lock = threading.Lock()
_depth = 0          # one_thread blocks open, over all Python threads
_saved = 1          # OpenBLAS's thread count before the outermost one


class _OneThread:
    """The block :func:`one_thread` returns; one shared instance (the state is the module's):
    a generator-based context manager cost 2-3 µs per product, as much as a 48 x 48 product
    itself. OpenBLAS's count is set only when it is not 1 already."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth, _saved
        if _threads is None:
            return
        with _lock:     # nested or concurrent blocks (Python threads): the outermost restores
            if _depth == 0:
                _saved = _threads[0]()
                if _saved != 1:
                    _threads[1](1)
            _depth += 1

    def __exit__(self, *exc) -> bool:
        global _depth
        if _threads is None:
            return False
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved != 1:
                _threads[1](_saved)
        return False


_ONE_THREAD = _OneThread()


def one_thread() -> _OneThread:
    """Run NumPy's OpenBLAS on one thread inside the block. After a threaded call its worker
    threads spin for a while and take the cores from the next OpenMP kernel: a W3 training
    step took 42 ms instead of 23 when its 64 x 1024 x 10 classifier product (left to NumPy)
    ran threaded. tensorlib wraps the float32 products it leaves to NumPy in this wherever its
    own GEMM takes the large ones (tensorlib._gemm)."""
    return _ONE_THREAD


def threaded() -> bool:
    """Whether NumPy's OpenBLAS would run a large product on more than one thread (a 0.1 µs
    question, where entering :func:`one_thread` costs 0.5 µs)."""
    return _threads is not None and _threads[0]() != 1


def supports(dtype) -> bool:
    """Whether :func:`add_at_b` can run on arrays of ``dtype``."""
    return np.dtype(dtype) in _GEMM


def add_at_b(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float) -> bool:
    """``c += alpha * a.T @ b`` in place for 2-D ``a`` (N, M), ``b`` (N, K), ``c`` (M, K) of
    one float dtype. Returns False (and changes nothing) when it cannot run: no BLAS, other
    dtypes or shapes, ``c`` not a writeable C-contiguous array, or ``c`` overlapping an
    input (BLAS would read what it already overwrote)."""
    f = _GEMM.get(c.dtype)
    if (f is None or a.dtype != c.dtype or b.dtype != c.dtype or a.ndim != 2 or b.ndim != 2
            or c.ndim != 2 or a.shape[0] != b.shape[0] or c.shape != (a.shape[1], b.shape[1])
            or not c.flags.c_contiguous or not c.flags.writeable
            or np.may_share_memory(c, a) or np.may_share_memory(c, b)):
        return False
    if c.size == 0:
        return True
    from . import _gemm
    if _gemm.add_product(c, a.T, b, alpha):     # float32 on an AVX-512 CPU: the faster GEMM
        return True
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    n, m = a.shape
    k = b.shape[1]
    with _gemm.numpy_blas(c.dtype):
        f(_ROW_MAJOR, _TRANS, _NO_TRANS, m, k, n, alpha, a.ctypes.data, m, b.ctypes.data, k,
          1.0, c.ctypes.data, k)
    return True
