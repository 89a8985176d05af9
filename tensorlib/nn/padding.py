"""The padding layers, as PyTorch's: constant (and zero), reflection, replication and
circular padding of the last 1, 2 or 3 dims, each a thin shell over ``F.pad``.

>>> import tensorlib as tl, tensorlib.nn as nn
>>> nn.ReflectionPad1d(2)(tl.arange(4.0).reshape(1, 1, 4)).tolist()
[[[2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]]]
"""
from __future__ import annotations

from .._tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
           "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
           "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
           "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]

_SIDES = ("left, right", ", top, bottom", ", front, back")


class _PadNd(Module):
    """Pads the last ``_dims`` dims in ``mode``; the input is (C, ...) or (N, C, ...)."""
    mode, _dims = "reflect", 1

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        n = 2 * self._dims
        from .linear import _as_int
        one = _as_int(padding)
        pads = (one,) * n if one is not None else tuple(
            _as_int(p) for p in padding) if hasattr(padding, "__iter__") else ()
        self.padding = pads
        if len(self.padding) != n or any(p is None for p in self.padding):
            raise ValueError(f"{type(self).__name__}: padding must be an int or {n} ints "
                             f"({''.join(_SIDES[:self._dims])}), got {padding!r}")
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expects a {self._dims + 1}-d or "
                             f"{self._dims + 2}-d input, got shape {tuple(x.shape)}")
        return F.pad(x, self.padding, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    """Constant padding takes any number of leading dims (none too), as PyTorch's."""

    def __init__(self, padding, value: float):
        super().__init__(padding, value)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < self._dims:
            raise ValueError(f"{type(self).__name__}: expects at least {self._dims}-D "
                             f"input, got shape {tuple(x.shape)}")
        return F.pad(x, self.padding, mode="constant", value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: ``padding`` is an int or (left, right)."""
    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with ``value``: ``padding`` an int or (left, right, top, bottom)."""
    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with ``value``: an int or (left, right, top, bottom, front, back)."""
    _dims = 3


class _ZeroPadNd(_ConstantPadNd):
    """Zero padding: constant padding with 0 (PyTorch's ZeroPad*d subclass ConstantPad*d)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last dim with zeros: ``padding`` is an int or (left, right)."""
    _dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last two dims with zeros: ``padding`` is an int or (left, right, top, bottom)."""
    _dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last three dims with zeros."""
    _dims = 3


class ReflectionPad1d(_PadNd):
    """Pad the last dim by reflection (the edge is not repeated)."""
    mode, _dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Pad the last two dims by reflection (the edge is not repeated)."""
    mode, _dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Pad the last three dims by reflection."""
    mode, _dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating the edge."""
    mode, _dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Pad the last two dims by repeating the edge."""
    mode, _dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Pad the last three dims by repeating the edge."""
    mode, _dims = "replicate", 3


class CircularPad1d(_PadNd):
    """Pad the last dim by wrapping around."""
    mode, _dims = "circular", 1


class CircularPad2d(_PadNd):
    """Pad the last two dims by wrapping around."""
    mode, _dims = "circular", 2


class CircularPad3d(_PadNd):
    """Pad the last three dims by wrapping around."""
    mode, _dims = "circular", 3
