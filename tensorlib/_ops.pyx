# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""CPU kernels in Cython.

Every function here trusts its caller: shapes, dtypes, contiguity and index
ranges are checked in Python (the op registry's ``check``/forward functions)
before a kernel runs, so bad input never reaches unchecked memory access.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport erf as c_erf

cnp.import_array()

ctypedef fused floating:
    float
    double


def _erf_kernel(floating[::1] x, floating[::1] out):
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in prange(n, schedule="static"):
            out[i] = c_erf(x[i])


def erf(x):
    """Elementwise error function (float32/float64; other floats computed in float32)."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    if not a.flags.c_contiguous:
        a = a.copy()  # (ascontiguousarray would turn 0-d into 1-d)
    out = np.empty_like(a)
    if a.size:
        _erf_kernel(a.reshape(-1), out.reshape(-1))
    return out
