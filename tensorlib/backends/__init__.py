"""Array backends: NumPy for ``cpu`` devices, CuPy for ``cuda`` devices.

Op kernels are written against an array module ``xp``; this module picks it.
"""
from __future__ import annotations

import numpy as np

from .._device import Device

_cupy = None
_INIT_HOOKS: list = []  # called once with the CuPy module when CUDA is first used


def cupy():
    """Import CuPy lazily; raise a clear error when it or a GPU is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise RuntimeError("CUDA device requested but CuPy is not installed: "
                               "pip install 'tensorlib[cuda]'") from e
        if not cp.is_available():
            raise RuntimeError("CUDA device requested but no CUDA GPU is available "
                               "(tl.cuda.is_available() is False)")
        _cupy = cp
        for hook in _INIT_HOOKS:
            hook(cp)
    return _cupy


def root_buffer(a):
    """The array whose memory ``a`` views (``a`` itself when it owns it): NumPy and CuPy
    views chain through ``.base``."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def xp_for(device: Device):
    if device.type == "cpu":
        return np
    if device.type == "vmap":       # inside tl.vmap: unbatched values of the level
        from ..vmap.batched import array_module
        return array_module(device)
    return cupy()


def xp_of(array):
    if isinstance(array, np.ndarray):
        return np
    from ..vmap.batched import BatchedArray, array_module
    if type(array) is BatchedArray:
        return array_module(array.dev)
    return cupy()


def to_device(array, device: Device):
    """Copy ``array`` onto ``device`` (no copy when it already lives there)."""
    if device.type == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    if device.type == "vmap":       # a constant inside tl.vmap: the same for every example
        from ..vmap.batched import to_level
        return to_level(array, device)
    cp = cupy()
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


def device_of_array(array) -> Device:
    if isinstance(array, np.ndarray):
        return Device("cpu")
    return Device(f"cuda:{array.device.id}")


# PyTorch's user-facing switches (torch.backends.cudnn/cuda/mps), as attributes scripts set
from . import cuda, cudnn, mps  # noqa: E402, F401
