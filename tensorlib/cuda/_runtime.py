"""Device queries, synchronisation and memory statistics (CuPy's memory pool).

Nothing here imports CuPy at module import time; every query answers cleanly
(False, 0) on machines without CuPy or without a GPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backends as _backends

_probe: list = []   # [cupy module or None], filled on first query
_peak: dict[int, int] = {}      # device id -> peak bytes in use since the last reset
_peak_reserved: dict[int, int] = {}


def _cupy_or_none():
    """CuPy when it imports and sees a GPU, else None; never raises."""
    if not _probe:
        cp = None
        try:
            import cupy
            if cupy.is_available():
                cp = cupy
        except Exception:  # any import/driver failure means "no CUDA here"
            cp = None
        _probe.append(cp)
    return _probe[0]


def is_available() -> bool:
    """True when CuPy is installed and at least one CUDA GPU can be used."""
    return _cupy_or_none() is not None


def device_count() -> int:
    """Number of visible CUDA GPUs (0 without CuPy or a GPU)."""
    cp = _cupy_or_none()
    if cp is None:
        return 0
    return int(cp.cuda.runtime.getDeviceCount())


def _index(device) -> int:
    """The CUDA ordinal of ``device`` (None: the current device, int, 'cuda:N' or Device)."""
    from .._device import Device
    if device is None:
        return int(_backends.cupy().cuda.runtime.getDevice())
    if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
        idx = int(device)
    else:
        d = Device(device)
        if d.type != "cuda":
            raise ValueError(f"expected a CUDA device, got {d}")
        idx = d.index
    n = device_count()
    if not 0 <= idx < n:
        raise ValueError(f"CUDA device {idx} does not exist: {n} device(s) visible")
    return idx


def current_device() -> int:
    """The ordinal of the current CUDA device."""
    return _index(None)


def set_device(device) -> None:
    """Make ``device`` the current CUDA device of this thread."""
    _backends.cupy().cuda.runtime.setDevice(_index(device))


def get_device_properties(device=None) -> dict[str, Any]:
    """Name, memory, compute capability and SM count of a CUDA device."""
    cp = _backends.cupy()
    p = cp.cuda.runtime.getDeviceProperties(_index(device))
    name = p["name"]
    return {"name": name.decode() if isinstance(name, bytes) else str(name),
            "total_memory": int(p["totalGlobalMem"]),
            "major": int(p["major"]), "minor": int(p["minor"]),
            "multi_processor_count": int(p["multiProcessorCount"])}


def get_device_name(device=None) -> str:
    return get_device_properties(device)["name"]


def synchronize(device=None) -> None:
    """Wait for every kernel queued on ``device`` (default: the current one) to finish."""
    cp = _backends.cupy()
    with cp.cuda.Device(_index(device)):
        cp.cuda.Device().synchronize()


# --- memory ------------------------------------------------------------------------
def _track_peaks(cp) -> None:
    """Route CuPy's allocations through the pool with a peak-usage probe.

    CuPy's pool keeps current usage only; the peak is recorded here, at each
    allocation, which is the only moment usage can grow.
    """
    pool = cp.get_default_memory_pool()
    malloc = pool.malloc
    used = pool.used_bytes
    total = pool.total_bytes
    peak, peak_res = _peak, _peak_reserved

    def alloc(size):
        mem = malloc(size)
        d = mem.device_id
        u = used()
        if u > peak.get(d, 0):
            peak[d] = u
            t = total()
            if t > peak_res.get(d, 0):
                peak_res[d] = t
        return mem

    cp.cuda.set_allocator(alloc)


def _pool_bytes(device, what: str) -> int:
    cp = _cupy_or_none()
    if cp is None:
        return 0
    pool = cp.get_default_memory_pool()
    with cp.cuda.Device(_index(device)):
        return int(getattr(pool, what)())


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA arrays on ``device`` (0 without a GPU)."""
    return _pool_bytes(device, "used_bytes")


def memory_reserved(device=None) -> int:
    """Bytes CuPy's pool holds from the driver on ``device`` (in use or cached)."""
    return _pool_bytes(device, "total_bytes")


def max_memory_allocated(device=None) -> int:
    """Peak of :func:`memory_allocated` since start or the last reset."""
    if _cupy_or_none() is None:
        return 0
    i = _index(device)
    return max(_peak.get(i, 0), memory_allocated(i))


def max_memory_reserved(device=None) -> int:
    """Peak of :func:`memory_reserved` since start or the last reset."""
    if _cupy_or_none() is None:
        return 0
    i = _index(device)
    return max(_peak_reserved.get(i, 0), memory_reserved(i))


def reset_peak_memory_stats(device=None) -> None:
    """Restart the peaks reported by ``max_memory_allocated``/``max_memory_reserved``."""
    if _cupy_or_none() is None:
        return
    i = _index(device)
    _peak[i] = memory_allocated(i)
    _peak_reserved[i] = memory_reserved(i)


def memory_stats(device=None) -> dict[str, int]:
    """All memory counters of ``device`` in one dict."""
    return {"allocated_bytes": memory_allocated(device),
            "reserved_bytes": memory_reserved(device),
            "max_allocated_bytes": max_memory_allocated(device),
            "max_reserved_bytes": max_memory_reserved(device)}


def empty_cache() -> None:
    """Return cached, unused blocks of CuPy's device and pinned pools to the driver."""
    cp = _cupy_or_none()
    if cp is None:
        return
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


# --- pinned host memory ---------------------------------------------------------------
def pin_memory(x):
    """A copy of ``x`` (Tensor or NumPy array) in page-locked host memory.

    Host-to-GPU copies from page-locked memory run at full PCIe/NVLink speed and
    can overlap with compute. Returns the same kind of object it was given.
    Without a GPU it raises a RuntimeError (there is nothing to pin for).
    """
    from .._tensor import Tensor, _wrap
    cp = _backends.cupy()
    is_t = isinstance(x, Tensor)
    if is_t and x.device.type != "cpu":
        raise ValueError(f"pin_memory: tensor is on {x.device}; only CPU tensors can be pinned")
    a = x._data if is_t else np.asarray(x)
    mem = cp.cuda.alloc_pinned_memory(max(a.nbytes, 1))
    out = np.frombuffer(mem, a.dtype, a.size).reshape(a.shape)
    out[...] = a
    if not is_t:
        return out
    t = _wrap(out, x.device, False, None, 0)
    if x.requires_grad:
        t.requires_grad = True
    return t


def is_pinned(a) -> bool:
    """Whether a NumPy array (or CPU tensor) lives in page-locked memory."""
    cp = _cupy_or_none()
    if cp is None:
        return False
    from .._tensor import Tensor
    arr = a._data if isinstance(a, Tensor) else a
    if not isinstance(arr, np.ndarray) or arr.size == 0:
        return False
    try:
        attrs = cp.cuda.runtime.pointerGetAttributes(arr.ctypes.data)
    except Exception:
        return False
    return int(getattr(attrs, "type", 0)) == cp.cuda.runtime.memoryTypeHost


def _on_cupy_init(cp) -> None:
    _track_peaks(cp)
    from .bindings import install
    install()   # ops registered after ``import tensorlib`` get their kernels too


if _on_cupy_init not in _backends.__dict__.setdefault("_INIT_HOOKS", []):
    _backends._INIT_HOOKS.append(_on_cupy_init)
if _backends._cupy is not None:  # CUDA was used before this module was imported
    _on_cupy_init(_backends._cupy)
