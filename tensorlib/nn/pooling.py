"""Pooling layers over 1, 2 and 3 spatial dims (max, average, adaptive, power-average 3-d),
and max-unpooling; the 3-d functions are in :mod:`.pooling3d`.

>>> import tensorlib as tl, tensorlib.nn as nn
>>> pool, unpool = nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)
>>> y, i = pool(tl.randn(1, 1, 4, 4, 4))
>>> unpool(y, i).shape
(1, 1, 4, 4, 4)
"""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.nn_util import tuple_n
from . import functional as F
from . import pooling3d as P
from .linear import _as_int
from .module import Module


def _plain(v):
    """Integers (NumPy ones too, as PyTorch takes) as plain ints, in a tuple or list too;
    anything else as given, for the functional form to check."""
    if v is None or isinstance(v, (bool, str)):
        return v
    i = _as_int(v)
    if i is not None:
        return i
    if isinstance(v, (tuple, list)):
        return type(v)(_plain(e) for e in v)
    return v


class _MaxPool(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        kernel_size, stride, padding = _plain(kernel_size), _plain(stride), _plain(padding)
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, _plain(dilation)
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x: Tensor):
        return type(self)._pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPool):
    """2-D max pooling over (N, C, H, W) or (C, H, W) input: the maximum of each
    ``kernel_size`` window, moved by ``stride`` (default: ``kernel_size``), with ``padding``
    (-inf), ``dilation``, ``ceil_mode`` and ``return_indices`` as PyTorch's.

    >>> pool = nn.MaxPool2d(2)
    >>> pool(tl.arange(16.0).reshape(1, 1, 4, 4))
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    _pool = staticmethod(F.max_pool2d)


class AvgPool2d(Module):
    """2-D average pooling; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        kernel_size, stride, padding = _plain(kernel_size), _plain(stride), _plain(padding)
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, _plain(
            divisor_override)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = _plain(output_size)

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._pool(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling of (N, C, H, W) or (C, H, W) to a fixed ``output_size`` (H, W)
    whatever the input size (``torch.nn.AdaptiveAvgPool2d``); an int is a square size,
    None in a pair keeps that input dim. Bin ``i`` averages rows ``floor(i H / out)`` to
    ``ceil((i + 1) H / out)``, as PyTorch's. ``(1, 1)`` is global average pooling.

    >>> nn.AdaptiveAvgPool2d((1, 1))(tl.zeros(2, 3, 7, 5)).shape
    (2, 3, 1, 1)
    """
    _pool = staticmethod(F.adaptive_avg_pool2d)


class MaxPool1d(_MaxPool):
    """1-d max pooling over (N, C, L); ``stride`` defaults to ``kernel_size``."""
    _pool = staticmethod(F.max_pool1d)


class AvgPool1d(Module):
    """1-d average pooling over (N, C, L); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        kernel_size, stride, padding = _plain(kernel_size), _plain(stride), _plain(padding)
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, \
            count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling of (N, C, L) to a fixed length whatever the input length."""
    _pool = staticmethod(F.adaptive_avg_pool1d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x: Tensor):
        return type(self)._pool(x, self.output_size, return_indices=self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max pooling to a fixed (H, W) output whatever the input size; ``return_indices``
    also gives the flat (h * W + w) positions of the maxima, as PyTorch's."""
    _pool = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling of (N, C, L) to a fixed length whatever the input length;
    ``return_indices`` also gives the positions of the maxima."""
    _pool = staticmethod(F.adaptive_max_pool1d)


# --- 3-d pooling and unpooling -----------------------------------------------------------
class MaxPool3d(_MaxPool):
    """3-d max pooling over (N, C, D, H, W); ``stride`` defaults to ``kernel_size``;
    ``return_indices`` also gives the flat ``d*H*W + h*W + w`` positions (for MaxUnpool3d)."""
    _pool = staticmethod(P.max_pool3d)


class AvgPool3d(AvgPool2d):
    """3-d average pooling over (N, C, D, H, W); ``stride`` defaults to ``kernel_size``."""

    def forward(self, x: Tensor) -> Tensor:
        return P.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool3d(_AdaptivePool):
    """Average pooling to a fixed (D, H, W) output whatever the input size."""
    _pool = staticmethod(P.adaptive_avg_pool3d)


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """Max pooling to a fixed (D, H, W) output whatever the input size; ``return_indices``
    also gives the flat positions of the maxima."""
    _pool = staticmethod(P.adaptive_max_pool3d)


class _MaxUnpool(Module):
    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name, n = type(self).__name__, self._dims
        self.kernel_size = tuple_n(_plain(kernel_size), n, name, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else tuple_n(_plain(stride), n, name,
                                                                      "stride", 1)
        self.padding = tuple_n(_plain(padding), n, name, "padding", 0)

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return P._max_unpool(self._dims, input, indices, self.kernel_size, self.stride,
                             self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """The partial inverse of MaxPool1d: ``forward(input, indices, output_size=None)``."""
    _dims = 1


class MaxUnpool2d(_MaxUnpool):
    """The partial inverse of MaxPool2d: ``forward(input, indices, output_size=None)``."""
    _dims = 2


class MaxUnpool3d(_MaxUnpool):
    """The partial inverse of MaxPool3d: ``forward(input, indices, output_size=None)``."""
    _dims = 3


class LPPool3d(Module):
    """Power-average pooling over (N, C, D, H, W): ``(sum of x**p over each window) **
    (1/p)`` (PyTorch's ``nn.LPPool3d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, _plain(kernel_size)
        self.stride, self.ceil_mode = _plain(stride), ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return P.lp_pool3d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")
