"""What tensorlib runs on: versions, CPU kernels, threads, BLAS and GPUs (``tl.show_config``)."""
from __future__ import annotations

import os
import platform
import sys

import numpy as np


def _numpy_blas() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:   # older NumPy, or a build that does not say
        return "unknown"


def _gemm_status() -> str:
    from . import _gemm, _ops
    if _gemm.ENABLED:
        isa = {"avx512": "AVX-512", "avx2": "AVX2"}[_gemm.ISA]
        return f"tensorlib {isa} GEMM (tensorlib/_sgemm.h)"
    why = "TENSORLIB_SGEMM=0" if _ops.SGEMM_SUPPORTED else "no AVX-512 or AVX2 on this CPU"
    return f"NumPy's BLAS ({why})"


def _cuda() -> dict:
    from . import cuda
    info: dict = {"available": cuda.is_available(), "devices": []}
    try:
        import cupy
        info["cupy"] = cupy.__version__
    except ImportError:
        info["cupy"] = None
    if info["available"]:
        info["devices"] = [cuda.get_device_name(i) for i in range(cuda.device_count())]
    return info


def config() -> dict:
    """The settings and libraries that decide tensorlib's speed here, as a dict."""
    from . import __version__, _blas, _malloc, _ops
    return {
        "tensorlib": {"version": __version__, "path": os.path.dirname(__file__)},
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "cpu": {"machine": platform.machine(), "avx512": _ops.SGEMM_ISA == "avx512",
                "float32 matmul": _gemm_status(), "threads": _ops.max_threads(),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
                "heap settings applied": _malloc.applied},
        "numpy": {"version": np.__version__, "blas": _numpy_blas(),
                  "blas kernels": _blas.core(),
                  "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")},
        "cuda": _cuda(),
    }


def show_config(mode: str = "stdout") -> dict | None:
    """Print (``mode='stdout'``) or return (``mode='dicts'``) :func:`config`: versions, which
    float32 GEMM runs, OpenMP threads, NumPy's BLAS and the kernels it chose, and GPUs.

    >>> tl.show_config()        # doctest: +SKIP
    tensorlib:
      version: 0.1.0
    ...
    """
    cfg = config()
    if mode == "dicts":
        return cfg
    if mode != "stdout":
        raise ValueError(f"show_config: mode must be 'stdout' or 'dicts', got {mode!r}")
    for section, items in cfg.items():
        print(f"{section}:")
        for k, v in items.items():
            print(f"  {k}: {v}")
    return None
