"""SciPy's LAPACK and BLAS wrappers when SciPy is installed (an optional dependency).

NumPy has no LU, triangular solve or LDL of its own: with SciPy the CPU kernels call LAPACK
(``getrf``, ``potrf``, ``sytrf``) and BLAS (``trsm``) directly; without it they use their
NumPy forms (batched elimination, substitution), and the LDL functions, which need LAPACK's
Bunch-Kaufman pivoting, raise an error that says to install SciPy. The scatter ops use its
sparse products and the real FFTs its pocketfft (float32 kept in float32) the same way.
"""
from __future__ import annotations

from types import ModuleType

DISABLED = False        # tests set it to check the NumPy forms


def lapack() -> ModuleType | None:
    if DISABLED:
        return None
    try:
        from scipy.linalg import lapack as mod
    except ImportError:
        return None
    return mod


def blas() -> ModuleType | None:
    if DISABLED:
        return None
    try:
        from scipy.linalg import blas as mod
    except ImportError:
        return None
    return mod


def fft() -> ModuleType | None:
    if DISABLED:
        return None
    try:
        import scipy.fft as mod
    except ImportError:
        return None
    return mod


def require(what: str) -> ModuleType:
    mod = lapack()
    if mod is None:
        raise RuntimeError(f"{what} needs SciPy's LAPACK (Bunch-Kaufman pivoting, which NumPy "
                           "lacks): pip install scipy")
    return mod
