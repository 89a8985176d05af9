"""``tl.backends.cudnn``: PyTorch's cuDNN switches (``torch.backends.cudnn``), as plain
module attributes that scripts set and read.

tensorlib records them and changes nothing by them: it has no cuDNN autotuner, so
``benchmark`` picks no other algorithm; its CPU kernels give the same result on every
run whatever ``deterministic`` says; and CuPy's cuDNN calls keep their own defaults.

>>> tl.backends.cudnn.deterministic = True        # as every CleanRL script does
>>> tl.backends.cudnn.benchmark = False
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["allow_tf32", "benchmark", "benchmark_limit", "deterministic", "enabled", "flags",
           "is_acceptable", "is_available", "version"]

enabled: bool = True            # torch's defaults
benchmark: bool = False
benchmark_limit: int = 10
deterministic: bool = False
allow_tf32: bool = True


def _cudnn():
    """CuPy's cuDNN bindings where CuPy, cuDNN and a GPU are all present, else None."""
    try:
        import cupy
        from cupy.cuda import cudnn
    except Exception:       # noqa: BLE001 - CuPy missing or built without cuDNN
        return None
    try:
        return cudnn if cupy.is_available() else None
    except Exception:       # noqa: BLE001 - a driver without a GPU
        return None


def is_available() -> bool:
    """Whether cuDNN can be used (CuPy with cuDNN and a CUDA GPU); False on a CPU machine."""
    return _cudnn() is not None


def version() -> int | None:
    """cuDNN's version as an int (e.g. 90100), or None where cuDNN is unavailable."""
    lib = _cudnn()
    return None if lib is None else int(lib.getVersion())


def is_acceptable(tensor) -> bool:
    """Whether cuDNN would take ``tensor`` (a CUDA float tensor, with cuDNN enabled)."""
    return bool(enabled and tensor.device.type == "cuda" and tensor.dtype.kind == "f"
                and is_available())


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, deterministic: bool = False,
          allow_tf32: bool = True) -> Iterator[None]:
    """Set all four switches for a block, then put back what was there
    (``torch.backends.cudnn.flags``; its defaults too).

    >>> with tl.backends.cudnn.flags(enabled=True, deterministic=True):
    ...     train()
    """
    g = globals()
    names = ("enabled", "benchmark", "deterministic", "allow_tf32")
    old = {k: g[k] for k in names}
    g.update(enabled=bool(enabled), benchmark=bool(benchmark),
             deterministic=bool(deterministic), allow_tf32=bool(allow_tf32))
    try:
        yield
    finally:
        g.update(old)
