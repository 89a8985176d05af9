"""PyTorch's global settings, stored and read back as ``torch``'s: the default device,
deterministic algorithms, float32 matmul precision, anomaly mode, warn-always.

Each docstring says what the setting changes in tensorlib. The default device is
thread-local, as PyTorch's: it sits under any ``with tl.device(...)`` block, which still
wins inside the block.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from .._device import CPU, Device, current_scope

__all__ = [
    "channels_last", "channels_last_3d", "contiguous_format", "memory_format",
    "preserve_format", "are_deterministic_algorithms_enabled", "get_default_device",
    "get_deterministic_debug_mode", "get_float32_matmul_precision",
    "is_anomaly_check_nan_enabled", "is_anomaly_enabled",
    "is_deterministic_algorithms_warn_only_enabled", "is_warn_always_enabled",
    "set_anomaly_enabled", "set_default_device", "set_deterministic_debug_mode",
    "set_float32_matmul_precision", "set_warn_always", "use_deterministic_algorithms",
    "set_default_tensor_type", "set_num_interop_threads", "get_num_interop_threads",
    "set_flush_denormal", "typename",
]


class memory_format:
    """PyTorch's memory formats (``tl.contiguous_format``, ``tl.channels_last``, ...), which
    ``clone``, ``contiguous``, ``to`` and ``Module.to`` accept: tensorlib keeps one layout
    (row-major), so a format changes no value and no result."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"tensorlib.{self.name}"


def check_memory_format(op: str, fmt) -> None:
    """``fmt`` is None or one of the memory formats (``tl.channels_last``...): tensorlib keeps
    one layout, which serves every format, so there is nothing else to check."""
    if fmt is not None and not isinstance(fmt, memory_format):
        raise TypeError(f"{op}: memory_format must be a tl memory format such as "
                        f"tl.channels_last, got {fmt!r}")


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")


class _Settings:
    deterministic = False
    warn_only = False
    matmul_precision = "highest"
    warn_always = False


_settings = _Settings()
_default = threading.local()      # .device: the Device set_default_device put under the stack


def set_default_device(device) -> None:
    """Make ``device`` the device of tensors the creation functions make without a
    ``device=`` (``torch.set_default_device``; None restores the CPU). Thread-local; a
    ``with tl.device(...)`` block still wins inside it.

    >>> tl.set_default_device("cpu:1")
    >>> tl.zeros(2).device
    device('cpu:1')
    >>> tl.set_default_device(None)       # back to the CPU
    """
    from .._device import _scope
    stack = _scope.__dict__.setdefault("stack", [])
    old = getattr(_default, "device", None)
    if old is not None and stack and stack[0] is old:
        stack.pop(0)
    _default.device = None
    if device is None:
        return
    dev = Device(device)
    stack.insert(0, dev)
    _default.device = dev


def get_default_device() -> Device:
    """The device the creation functions use without ``device=``: the innermost ``with
    tl.device(...)`` block's, else :func:`set_default_device`'s, else the CPU
    (``torch.get_default_device``)."""
    return current_scope() or CPU


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record whether only deterministic algorithms may run
    (``torch.use_deterministic_algorithms``). tensorlib changes nothing: its CPU kernels
    give the same result on every run already and no kernel choice reads this setting; on
    a GPU, CuPy's atomic scatter-adds (``index_add``, ``scatter_add`` and their gradients)
    stay order-dependent."""
    _settings.deterministic = bool(mode)
    _settings.warn_only = bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """What :func:`use_deterministic_algorithms` set (False by default)."""
    return _settings.deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """The ``warn_only`` of :func:`use_deterministic_algorithms`."""
    return _settings.warn_only


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode) -> None:
    """``torch.set_deterministic_debug_mode``: 0/"default" (off), 1/"warn" (deterministic,
    warn only), 2/"error" (deterministic); stored as :func:`use_deterministic_algorithms`."""
    mode = _DEBUG_MODES.get(debug_mode, debug_mode) if isinstance(debug_mode, str) \
        else debug_mode
    if mode not in (0, 1, 2):
        raise ValueError(f"set_deterministic_debug_mode: invalid mode {debug_mode!r}; expected "
                         "0, 1, 2, 'default', 'warn' or 'error'")
    use_deterministic_algorithms(mode != 0, warn_only=mode == 1)


def get_deterministic_debug_mode() -> int:
    """0 (off), 1 (warn only) or 2 (deterministic), from the settings above."""
    if not _settings.deterministic:
        return 0
    return 1 if _settings.warn_only else 2


_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """Record the internal precision of float32 matrix products
    (``torch.set_float32_matmul_precision``: "highest", "high" or "medium"). tensorlib
    changes nothing: on the CPU, float32 products are computed in float32 by BLAS whatever
    the setting; on a GPU, CuPy's cuBLAS calls keep their default (TF32 is not enabled)."""
    if precision not in _PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: precision must be one of "
                         f"{', '.join(_PRECISIONS)}, got {precision!r}")
    _settings.matmul_precision = precision


def get_float32_matmul_precision() -> str:
    """What :func:`set_float32_matmul_precision` set ("highest" by default)."""
    return _settings.matmul_precision


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on in this thread (``torch.is_anomaly_enabled``)."""
    from ..autograd.anomaly import is_anomaly_enabled as on
    return on()


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly mode checks gradients for NaN (``torch.is_anomaly_check_nan_enabled``)."""
    from ..autograd.anomaly import is_anomaly_check_nan_enabled as on
    return on()


def set_anomaly_enabled(mode: bool, check_nan: bool = True) -> None:
    """Turn anomaly mode on or off for this thread, as ``detect_anomaly`` does for a block
    (``torch.set_anomaly_enabled``; ``check_nan=False``: tracebacks only)."""
    from ..autograd.anomaly import set_detect_anomaly
    set_detect_anomaly(mode, check_nan=check_nan)


def set_warn_always(b: bool) -> None:
    """Record whether warnings PyTorch issues once should be issued every time
    (``torch.set_warn_always``). tensorlib's own warnings go through Python's ``warnings``
    filters, which decide on repeats; nothing else reads this setting."""
    _settings.warn_always = bool(b)


def is_warn_always_enabled() -> bool:
    """What :func:`set_warn_always` set (False by default)."""
    return _settings.warn_always


def set_default_tensor_type(t) -> None:
    """Deprecated in PyTorch (use ``set_default_dtype``): ``'torch.FloatTensor'``,
    ``'torch.DoubleTensor'`` or ``'torch.HalfTensor'`` (or ``tl.FloatTensor``, ...) set the
    default float dtype. A CUDA type name is refused: use ``set_default_device``."""
    import warnings

    from .. import _dtypes as dtypes
    name = t if isinstance(t, str) else getattr(t, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"set_default_tensor_type: expected a type name such as "
                        f"'torch.FloatTensor', got {t!r}")
    warnings.warn("set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "tl.set_default_dtype() instead", UserWarning, stacklevel=2)
    if ".cuda." in name:
        raise ValueError(f"set_default_tensor_type: {name} would also make CUDA the default "
                         "device; use tl.set_default_dtype and tl.set_default_device")
    floats = {"FloatTensor": dtypes.float32, "DoubleTensor": dtypes.float64,
              "HalfTensor": dtypes.float16}
    short = name.rsplit(".", 1)[-1]
    if short not in floats:
        raise TypeError(f"set_default_tensor_type: only floating-point types are supported "
                        f"as the default type (FloatTensor, DoubleTensor, HalfTensor), got "
                        f"{name!r}")
    from .. import set_default_dtype
    set_default_dtype(floats[short])


_interop_threads: list = []     # the value set, once, as PyTorch allows


def set_num_interop_threads(num: int) -> None:
    """Accepted for ported start-up code (``torch.set_num_interop_threads``): tensorlib runs
    independent ops one after another, so the value is only stored and reported by
    :func:`get_num_interop_threads`. As PyTorch's, it can be set once."""
    if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or num < 1:
        raise ValueError(f"set_num_interop_threads: expected a positive integer, got {num!r}")
    if _interop_threads:
        raise RuntimeError("set_num_interop_threads: the number of interop threads can be set "
                           "only once (as PyTorch's)")
    _interop_threads.append(int(num))


def get_num_interop_threads() -> int:
    """The value given to :func:`set_num_interop_threads`, else the CPU count (PyTorch's
    default)."""
    return _interop_threads[0] if _interop_threads else (os.cpu_count() or 1)


def set_flush_denormal(mode: bool) -> bool:
    """``torch.set_flush_denormal``: tensorlib's NumPy kernels cannot switch the CPU to
    flushing denormals, so it returns False (PyTorch's answer where it is unsupported) and
    changes nothing."""
    return False


def typename(obj) -> str:
    """A type name (``torch.typename``): a tensor's ``x.type()`` (``'torch.FloatTensor'``),
    else the object's (or its class's) module-qualified name."""
    from .._tensor import Tensor
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"
