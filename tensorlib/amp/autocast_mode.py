"""``autocast``: the context manager and decorator that turns mixed precision on.

The settings live in the thread-local ``tensorlib._state.state.autocast`` (None while no
block is enabled, so an op's check costs one attribute read); the ops read them through
:func:`tensorlib.amp.cast.autocast_call`.
"""
from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._state import state

DEVICE_TYPES = ("cpu", "cuda")
_F16 = np.dtype(np.float16)

_CPU_DEFAULT = ("autocast: device_type='cpu' defaults to bfloat16 in PyTorch, which tensorlib "
                "(NumPy) does not have; pass dtype=tl.float16 (float16 overflows above 65504: "
                "scale the loss with tl.amp.GradScaler('cpu') when training)")


class _Settings:
    """What an enabled block set: ``dtypes`` maps each enabled device type to its dtype."""

    __slots__ = ("dtypes",)

    def __init__(self, dtypes: dict[str, np.dtype]):
        self.dtypes = dtypes


class _Local(threading.local):
    def __init__(self):
        self.stack: list = []              # per entered block: what __exit__ restores
        self.cache: dict = {}              # casts of parameters, kept until the outermost exit
        self.cache_enabled = True
        self.dtypes: dict[str, np.dtype | None] = {"cuda": _F16, "cpu": None}  # configured


_tls = _Local()


def _check_device_type(device_type, where: str) -> str:
    if device_type not in DEVICE_TYPES:
        hint = ""
        if isinstance(device_type, str) and device_type.split(":")[0] in DEVICE_TYPES:
            hint = f" (a device type, without an index: {device_type.split(':')[0]!r})"
        raise ValueError(f"{where}: device_type must be 'cpu' or 'cuda', got "
                         f"{device_type!r}{hint}")
    return device_type


def _check_dtype(dtype) -> np.dtype:
    name = getattr(dtype, "name", None) or str(dtype)
    if name.rsplit(".", 1)[-1] == "bfloat16":
        raise TypeError("autocast: dtype bfloat16 is not supported: NumPy and CuPy (tensorlib's "
                        "array libraries) have no bfloat16; use dtype=tl.float16")
    from .._dtypes import as_dtype
    dt = as_dtype(dtype)
    if dt != _F16:
        raise TypeError(f"autocast: dtype must be float16 (tl.float16), got {dt}")
    return _F16


class autocast:
    """Run the ops of a block (or of a decorated function) in mixed precision, as
    ``torch.autocast``: on tensors of ``device_type``, matrix products and convolutions
    (``matmul``, ``linear``, ``conv2d``, ``scaled_dot_product_attention``...) run in
    ``dtype`` (float16), and ops that need the range of float32 (the losses; on CUDA also
    ``softmax``, ``layer_norm``, ``exp``, ``sum``...) run in float32; see
    ``tensorlib.amp.policy`` for the lists. Results keep the dtype their op ran in; the
    casts are recorded ops, so gradients reach each tensor in its own dtype (float32
    parameters get float32 gradients) and graph capture records them.

    ``device_type`` is ``"cuda"`` (dtype float16 by default) or ``"cpu"``, whose PyTorch
    default, bfloat16, NumPy lacks: on the CPU pass ``dtype=tl.float16`` (a ValueError
    says so otherwise). ``enabled=False`` turns autocast off for the block (inside an
    enabled one, too); blocks nest, and the state is per thread. ``cache_enabled`` (default:
    the enclosing block's, True at first) keeps the float16 copy of each parameter for the
    rest of the outermost block (the parameter's version is checked, and no copy is kept
    under graph capture).

    Wrap the forward pass and the loss, not ``backward()`` or the optimizer step, as PyTorch
    recommends.

    >>> with tl.autocast("cpu", dtype=tl.float16):
    ...     y = model(x)                          # linear/conv outputs are float16
    ...     loss = F.cross_entropy(y, target)     # float32
    >>> @tl.autocast("cpu", dtype=tl.float16)
    ... def forward(x): ...
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        self.device = _check_device_type(device_type, "autocast")
        self._enabled = bool(enabled)
        self._cache_enabled = cache_enabled
        if dtype is not None:
            self.fast_dtype: np.dtype | None = _check_dtype(dtype)
        elif self.device == "cuda":
            self.fast_dtype = _F16
        elif self._enabled:
            raise ValueError(_CPU_DEFAULT)
        else:
            self.fast_dtype = None
        if self.device == "cuda" and self._enabled:
            from ..cuda import is_available
            if not is_available():   # as PyTorch: a warning, and the block runs as written
                warnings.warn("autocast: device_type 'cuda' was given but CUDA is not "
                              "available; autocast is disabled for this block", stacklevel=2)
                self._enabled = False

    def __enter__(self) -> autocast:
        prev = state.autocast
        tls = _tls
        tls.stack.append((prev, tls.cache_enabled, tls.dtypes.get(self.device)))
        if self.fast_dtype is not None:
            tls.dtypes[self.device] = self.fast_dtype
        if self._cache_enabled is not None:
            tls.cache_enabled = bool(self._cache_enabled)
        dtypes = dict(prev.dtypes) if prev is not None else {}
        if self._enabled:
            dtypes[self.device] = self.fast_dtype
        else:
            dtypes.pop(self.device, None)
        state.autocast = _Settings(dtypes) if dtypes else None
        return self

    def __exit__(self, *exc) -> None:
        tls = _tls
        prev, tls.cache_enabled, tls.dtypes[self.device] = tls.stack.pop()
        state.autocast = prev
        if not tls.stack:       # the outermost block: its parameters' casts go
            tls.cache.clear()

    def __call__(self, fn: Callable) -> Callable:
        """Decorator form: each call of ``fn`` runs in a block of these settings."""
        args = (self.device, self.fast_dtype, self._enabled, self._cache_enabled)

        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any):
            with _reentered(*args):
                return fn(*a, **k)
        return wrapper


def _reentered(device, dtype, enabled, cache_enabled) -> autocast:
    """A fresh block with settings already checked (each decorated call gets its own, so
    recursion and threads do not share one)."""
    ctx = autocast.__new__(autocast)
    ctx.device, ctx.fast_dtype, ctx._enabled, ctx._cache_enabled = (device, dtype, enabled,
                                                                     cache_enabled)
    return ctx


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on in this thread for ``device_type`` (``"cuda"`` when not given,
    as PyTorch's).

    >>> with tl.autocast("cpu", dtype=tl.float16):
    ...     tl.is_autocast_enabled("cpu")
    True
    """
    dev = "cuda" if device_type is None else _check_device_type(device_type,
                                                                 "is_autocast_enabled")
    s = state.autocast
    return s is not None and dev in s.dtypes


def get_autocast_dtype(device_type: str) -> np.dtype:
    """The dtype autocast uses for ``device_type`` in this thread: the innermost block's,
    else the default (float16 for ``"cuda"``). The CPU's default is PyTorch's bfloat16,
    which tensorlib lacks: outside a block that set one, ``"cpu"`` raises a ValueError."""
    dev = _check_device_type(device_type, "get_autocast_dtype")
    dt = _tls.dtypes.get(dev)
    if dt is None:
        raise ValueError(_CPU_DEFAULT.replace("autocast:", "get_autocast_dtype:", 1))
    return dt


def cache() -> tuple[dict, bool]:
    """This thread's cast cache and whether it is on (for :mod:`tensorlib.amp.cast`)."""
    return _tls.cache, _tls.cache_enabled
