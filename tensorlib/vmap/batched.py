"""``BatchedArray``: what a tensor inside ``tl.vmap`` holds as its ``_data``.

It wraps a physical array (NumPy, CuPy, or the ``BatchedArray`` of an older vmap level)
whose dim 0 is the batch dim of one vmap level (``bdim == 0``), or that is the same for
every example of the level (``bdim is None``: an unbatched value lifted into it). It
reports the *logical* shape, the per-example one, so ``Tensor.shape``, ``ndim``, ``size``
and ``dtype`` work unchanged inside the vmapped function.

Levels are unique per ``tl.vmap`` call and increase, and a ``BatchedArray`` only ever
wraps arrays of older levels: the newest level is the outermost wrapper, whatever order
the calls nest in (a backward pass run later, under another vmap, goes through the ops of
a finished one).
"""
from __future__ import annotations

import math

import numpy as np

from .._device import CPU, Device


def data_error(what: str = "reading a tensor's values into Python") -> RuntimeError:
    return RuntimeError(
        f"vmap: {what} (.item(), .numpy(), .tolist(), bool(), float(), int(), printing, "
        "indexing with it, or Python control flow on it) is data-dependent and is not "
        "supported inside vmap: each example has its own value. Rewrite it with tensor ops "
        "(e.g. tl.where(cond, a, b) instead of `if`), or move it out of the vmapped function.")


class _Flags:
    __slots__ = ("writeable", "c_contiguous")

    def __init__(self, writeable: bool, c_contiguous: bool = True):
        self.writeable = writeable
        self.c_contiguous = c_contiguous


def _c_order(shape, strides, itemsize: int) -> bool:
    step = itemsize
    for d, s in zip(reversed(shape), reversed(strides)):
        if d != 1 and s != step:
            return False
        step *= d
    return True


class BatchedArray:
    """One vmap level's view of ``phys`` (see the module docstring)."""

    __slots__ = ("phys", "bdim", "dev")

    def __init__(self, phys, bdim: int | None, dev: Device):
        self.phys = phys
        self.bdim = bdim
        self.dev = dev

    # --- the logical array's metadata ----------------------------------------------
    @property
    def level(self) -> int:
        return self.dev.index

    @property
    def shape(self) -> tuple:
        s = self.phys.shape
        return s[1:] if self.bdim is not None else s

    @property
    def ndim(self) -> int:
        return self.phys.ndim - (self.bdim is not None)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self):
        return self.phys.dtype

    @property
    def itemsize(self) -> int:
        return self.phys.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def batch_size(self) -> int | None:
        return self.phys.shape[0] if self.bdim is not None else None

    @property
    def flags(self) -> _Flags:
        # an expanded batch (stride 0 over several examples) would take one write per
        # example into the same memory: not writable, as an expand() view is not
        f = getattr(self.phys, "flags", None)
        ok = getattr(f, "writeable", True)
        if ok and self.bdim is not None and self.phys.shape[0] > 1:
            st = getattr(self.phys, "strides", None)
            ok = st is None or st[0] != 0
        # each example's layout (.contiguous(), view_as_complex's stride check read it)
        try:
            c = _c_order(self.shape, self.strides, np.dtype(self.dtype).itemsize)
        except AttributeError:      # (a physical array without strides)
            c = True
        return _Flags(ok, c)

    @property
    def strides(self) -> tuple:
        st = self.phys.strides
        return st[1:] if self.bdim is not None else st

    def __repr__(self) -> str:
        b = f"batch {self.phys.shape[0]}" if self.bdim is not None else "unbatched"
        return f"BatchedArray(level {self.level}, {b}, shape {self.shape}, {self.dtype})"

    # --- values: only where every example has the same one ------------------------------
    def get(self):
        """The host value (``Tensor._host``): defined only for an unbatched value."""
        if self.bdim is not None:
            raise data_error()
        from .phys import real
        p = real(self.phys)
        return p if isinstance(p, np.ndarray) else p.get()

    def __array__(self, dtype=None, copy=None):
        if self.bdim is not None:   # NumPy met it: most often a write into an unbatched array
            raise RuntimeError(
                "vmap: a batched tensor was used as a NumPy array: an in-place write of a "
                "batched value into a tensor that is the same for every example (made "
                "outside vmap or by tl.zeros(...) inside, e.g. tl.zeros(3).add_(x)) is not "
                "supported (write into a batched tensor, or use out-of-place ops), and "
                "reading its values is data-dependent and not supported inside vmap")
        a = self.get()
        return a if dtype is None else a.astype(dtype)

    def __bool__(self) -> bool:
        if self.bdim is not None:
            raise data_error("using a batched tensor in Python control flow")
        return bool(self.phys)

    def __float__(self) -> float:
        return float(self.get())

    def __int__(self) -> int:
        return int(self.get())

    # (ops' argument checks compare arrays, e.g. // by an integer zero: over all examples)
    def __eq__(self, other):
        return _compare("eq", self, other)

    def __ne__(self, other):
        return _compare("ne", self, other)

    __hash__ = object.__hash__

    def any(self) -> bool:
        return bool(self.phys.any())

    def all(self) -> bool:
        return bool(self.phys.all())

    # --- in place (``Tensor`` in-place ops write into ``_data``) --------------------------
    def __setitem__(self, key, value) -> None:
        from .inplace import set_items
        set_items(self, key, value)

    def __getitem__(self, key):
        from .inplace import view_items
        return view_items(self, key)

    def __iadd__(self, other):
        from .inplace import add_into
        add_into(self, other)
        return self


def _compare(name: str, a: BatchedArray, other):
    from ..ops.registry import REGISTRY
    from .phys import call
    if not hasattr(other, "dtype"):
        other = np.asarray(other, dtype=a.dtype if isinstance(other, (int, float)) else None)
    return call(REGISTRY[name], a, other)


# --- devices and moving arrays into a level ----------------------------------------------
def batched_levels(a) -> set[int]:
    """The vmap levels at which array ``a`` differs per example."""
    out = set()
    while type(a) is BatchedArray:
        if a.bdim is not None:
            out.add(a.dev.index)
        a = a.phys
    return out


def check_batch_norm_stats(x, stats) -> None:
    """Batch norm in training under vmap: the running statistics, updated in place, must be
    batched wherever the input is (PyTorch's check and remedy)."""
    if type(x._data) is not BatchedArray:
        return
    need = batched_levels(x._data)
    for s in stats:
        if s is not None and not need <= batched_levels(s._data):
            raise RuntimeError(
                "batch_norm: Batch norm got a batched tensor as input while the running_mean "
                "or running_var, which will be updated in place, were not batched. If you are "
                "using a module and do not need eval mode, please set `track_running_stats` "
                "to be False (or call tl.func.replace_all_batch_norm_modules_(model) before "
                "vmap); otherwise pass the running statistics batched (e.g. the buffers of "
                "tl.func.stack_module_state), or run the module in eval mode.")


def device_of(a) -> Device:
    """The device a tensor holding array ``a`` is on."""
    if type(a) is BatchedArray:
        return a.dev
    if isinstance(a, np.ndarray):
        return CPU
    from ..backends import device_of_array
    return device_of_array(a)


def base_array(a, base: Device):
    """``a`` (an ndarray or a CuPy array) on the ``base`` device of a level."""
    from ..backends import to_device
    return to_device(a, base)


def to_level(array, dev: Device) -> BatchedArray:
    """``array`` as an unbatched value of level ``dev``: a constant, the same for every
    example (``backends.to_device`` for vmap devices: ``x * 2.0``, ``tl.zeros(3,
    device=x.device)``)."""
    if type(array) is BatchedArray:
        if array.dev is dev:
            return array
        if array.level > dev.index:
            raise RuntimeError(f"vmap: a value of vmap level {array.level} cannot become one "
                               f"of the older level {dev.index}")
        return BatchedArray(array, None, dev)
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    return BatchedArray(base_array(array, dev.base), None, dev)


class _LevelArrays:
    """The array module of a vmap device (``backends.xp_for``): creation functions give
    unbatched values of the level, made on its base device."""

    __slots__ = ("dev",)

    def __init__(self, dev: Device):
        self.dev = dev

    def _xp(self):
        from ..backends import xp_for
        return xp_for(self.dev.base)

    def _lift(self, a) -> BatchedArray:
        return BatchedArray(a, None, self.dev)

    def base_module(self):
        """The base device's array module, for values computed there and then lifted."""
        return self._xp()

    def lift(self, a) -> BatchedArray:
        """An array of the base device as an unbatched value of the level."""
        return self._lift(a)

    def full(self, shape, fill_value, dtype=None):
        return self._lift(self._xp().full(shape, fill_value, dtype))

    def empty(self, shape, dtype=None):
        return self._lift(self._xp().empty(shape, dtype))

    def zeros(self, shape, dtype=None):
        return self._lift(self._xp().zeros(shape, dtype))

    def ones(self, shape, dtype=None):
        return self._lift(self._xp().ones(shape, dtype))

    def arange(self, *args, **kwargs):
        return self._lift(self._xp().arange(*args, **kwargs))

    def linspace(self, *args, **kwargs):
        return self._lift(self._xp().linspace(*args, **kwargs))

    def eye(self, *args, **kwargs):
        return self._lift(self._xp().eye(*args, **kwargs))

    def asarray(self, a, dtype=None):
        # index arrays (indexing._on) stay host arrays: BatchedArray.__setitem__ moves them
        return a if dtype is None else np.asarray(a, dtype)

    def __getattr__(self, name):
        raise AttributeError(f"vmap: the array function {name!r} is not available on the "
                             "values inside vmap (a data-dependent or host-side operation)")


def array_module(dev: Device) -> _LevelArrays:
    return _LevelArrays(dev)
