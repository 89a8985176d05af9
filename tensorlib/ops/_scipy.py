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


def _module(name: str) -> ModuleType | None:
    if DISABLED:
        return None
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def lapack() -> ModuleType | None:
    return _module("scipy.linalg.lapack")


def blas() -> ModuleType | None:
    return _module("scipy.linalg.blas")


def fft() -> ModuleType | None:
    return _module("scipy.fft")


def sparse() -> ModuleType | None:
    return _module("scipy.sparse")


def require(what: str) -> ModuleType:
    mod = lapack()
    if mod is None:
        raise RuntimeError(f"{what} needs SciPy's LAPACK (Bunch-Kaufman pivoting, which NumPy "
                           "lacks): pip install scipy")
    return mod
