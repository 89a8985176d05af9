"""How many threads tensorlib's CPU kernels use, as ``torch.set_num_threads`` does."""
from __future__ import annotations

import operator

from . import _ops


def get_num_threads() -> int:
    """The number of threads tensorlib's CPU kernels (Cython, the float32 GEMM) run on."""
    return _ops.max_threads()


def set_num_threads(n: int) -> None:
    """Run tensorlib's CPU kernels on ``n`` threads from now on (``n >= 1``).

    NumPy's own BLAS keeps its setting (``OPENBLAS_NUM_THREADS`` or threadpoolctl set
    that). The default is OpenMP's: ``OMP_NUM_THREADS``, else one per core.

    >>> tl.set_num_threads(1)     # e.g. one worker process per core
    """
    if isinstance(n, bool):
        raise TypeError("set_num_threads: n must be an integer, got a bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}") \
            from None
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    _ops.set_threads(n)
