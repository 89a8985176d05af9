"""More of PyTorch's layers: Threshold, Softmin, Softmax2d, LocalResponseNorm, CrossMapLRN2d,
ChannelShuffle, RReLU and the power-average pools, each a thin composite of tensorlib ops (so
autograd and graph capture follow)."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops import elementwise as E
from . import functional as F
from .linear import _as_int
from .module import Module
from .pooling import _plain

__all__ = ["ChannelShuffle", "CrossMapLRN2d", "LPPool1d",
           "LPPool2d", "LocalResponseNorm", "RReLU", "Softmax2d", "Softmin", "Threshold"]


# --- activations ------------------------------------------------------------------------------
class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value`` (PyTorch's ``nn.Threshold``)."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def _fn(self, x: Tensor) -> Tensor:
        return E.where(x > self.threshold, x, self.value)

    def forward(self, x: Tensor) -> Tensor:
        return F._act(self._fn, "threshold", x, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + \
            (", inplace=True" if self.inplace else "")


def _legacy_softmax_dim(ndim: int) -> int:
    """PyTorch's dim for a softmax layer built without one (0 for 0-, 1- and 3-d input)."""
    return 0 if ndim in (0, 1, 3) else 1


class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (PyTorch's ``nn.Softmin``)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(x.ndim)
        return F.softmax(-x, dim=dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels at each location of (N, C, H, W) or (C, H, W) input."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expects 3-D or 4-D input, got shape {tuple(x.shape)}")
        return F.softmax(x, dim=-3)


class RReLU(Module):
    """Randomized leaky ReLU (PyTorch's ``nn.RReLU``): in training each negative element is
    scaled by its own slope drawn from U[lower, upper] (tensorlib's global generator); in
    eval by the mean slope (lower + upper) / 2."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        if not lower <= upper:
            raise ValueError(f"RReLU: lower ({lower}) must not exceed upper ({upper})")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def _fn(self, x: Tensor) -> Tensor:
        if not self.training:
            return E.where(x > 0, x, x * ((self.lower + self.upper) / 2))
        from ..creation import uniform
        if x.dtype.kind != "f":
            raise TypeError(f"RReLU: input must be floating point, got {x.dtype}")
        a = uniform(self.lower, self.upper, tuple(x.shape), dtype=x.dtype, device=x.device)
        return E.where(x > 0, x, x * a)

    def forward(self, x: Tensor) -> Tensor:
        return F._act(self._fn, "rrelu", x, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + \
            (", inplace=True" if self.inplace else "")


# --- normalization and shuffling --------------------------------------------------------------
class LocalResponseNorm(Module):
    """``x / (k + alpha / size * sum of x**2 over `size` neighbouring channels) ** beta``
    over (N, C, ...) input (PyTorch's ``nn.LocalResponseNorm``; AlexNet's)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        if _as_int(size) is None or _as_int(size) < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        size = _as_int(size)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        from ..ops.shape import pad
        if x.ndim < 3:
            raise ValueError(f"LocalResponseNorm: expects 3-D or higher input (N, C, ...), got "
                             f"shape {tuple(x.shape)}")
        c = x.shape[1]
        widths = [(0, 0)] * x.ndim
        widths[1] = (self.size // 2, (self.size - 1) // 2)
        sq = pad(x * x, widths)
        win = sq[:, 0:c]
        for i in range(1, self.size):
            win = win + sq[:, i:i + c]
        div = (win * (self.alpha / self.size) + self.k) ** self.beta
        return x / div

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(Module):
    """PyTorch's legacy (Lua Torch) cross-channel LRN over (N, C, H, W) input:
    ``x * (k + alpha / size * s) ** -beta``, where for channel c, ``s`` sums ``x**2`` over
    channels ``max(0, c - p + 1) .. min(C - 1, c + p - 1)`` with ``p = int((size - 1) / 2 + 1)``
    (a window of ``2p - 1`` channels: 3 for size 4), plus channel 0 once ``c >= p``: PyTorch's
    running-sum kernel never subtracts channel 0. Unlike LocalResponseNorm's (left-padded,
    ``size`` wide). The gradient is this formula's true one; PyTorch's hand-written backward
    differs from it when C > 1 (its window is shifted, and size=1 fails)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__()
        if _as_int(size) is None or _as_int(size) < 1:
            raise ValueError(f"CrossMapLRN2d: size must be a positive int, got {size!r}")
        size = _as_int(size)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        from ..ops.shape import pad
        if not isinstance(x, Tensor) or x.ndim != 4:
            got = x.ndim if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {got}D instead.")
        c = x.shape[1]
        p = int((self.size - 1) / 2 + 1)
        sq = x * x
        padded = pad(sq, [(0, 0), (p - 1, p - 1), (0, 0), (0, 0)])
        win = padded[:, 0:c]
        for i in range(1, 2 * p - 1):
            win = win + padded[:, i:i + c]
        if c > p:
            from ..creation import from_numpy
            mask = np.zeros((1, c, 1, 1), dtype=x.dtype)
            mask[:, p:] = 1
            win = win + sq[:, 0:1] * from_numpy(mask).to(x.device)
        return x * (win * (self.alpha / self.size) + self.k) ** -self.beta

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ChannelShuffle(Module):
    """Interleave the channels of (N, C, ...) input across ``groups`` (ShuffleNet's):
    (N, g, C/g, ...) transposed to (N, C/g, g, ...)."""

    def __init__(self, groups: int):
        super().__init__()
        if _as_int(groups) is None or _as_int(groups) < 1:
            raise ValueError(f"ChannelShuffle: groups must be a positive int, got {groups!r}")
        groups = _as_int(groups)
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3:
            raise ValueError(f"ChannelShuffle: expects input of at least 3 dims (N, C, ...), "
                             f"got shape {tuple(x.shape)}")
        n, c, *rest = x.shape
        g = self.groups
        if c % g:
            raise ValueError(f"ChannelShuffle: the number of channels ({c}) must be divisible "
                             f"by groups ({g})")
        y = x.reshape((n, g, c // g, *rest)).swapaxes(1, 2)
        return y.reshape((n, c, *rest))

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


# --- power-average pooling ------------------------------------------------------------------
def _lp(out: Tensor, norm_type: float, count: int) -> Tensor:
    # PyTorch's: (sign(out) * relu(|out|) * kernel size) ** (1 / p)
    return (E.sign(out) * E.relu(E.abs(out)) * count) ** (1.0 / norm_type)


class LPPool1d(Module):
    """Power-average pooling over (N, C, L): ``(sum of x**p over each window) ** (1/p)``
    (PyTorch's ``nn.LPPool1d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, norm_type: float, kernel_size: int, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, _plain(kernel_size)
        self.stride, self.ceil_mode = _plain(stride), ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size if isinstance(self.kernel_size, int) else self.kernel_size[0]
        stride = self.stride if self.stride is not None else k
        if math.isinf(self.norm_type):      # the limit: the window's largest |x|, as PyTorch
            return F.max_pool1d(E.abs(x), k, stride, 0, ceil_mode=self.ceil_mode)
        out = F.avg_pool1d(x ** self.norm_type, k, stride, 0, self.ceil_mode)
        return _lp(out, float(self.norm_type), k)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool2d(Module):
    """Power-average pooling over (N, C, H, W): ``(sum of x**p over each window) ** (1/p)``
    (PyTorch's ``nn.LPPool2d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, _plain(kernel_size)
        self.stride, self.ceil_mode = _plain(stride), ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        ks = self.kernel_size
        kh, kw = (ks, ks) if isinstance(ks, int) else tuple(ks)
        stride = self.stride if self.stride is not None else (kh, kw)
        if math.isinf(self.norm_type):      # the limit: the window's largest |x|, as PyTorch
            return F.max_pool2d(E.abs(x), (kh, kw), stride, 0, ceil_mode=self.ceil_mode)
        out = F.avg_pool2d(x ** self.norm_type, (kh, kw), stride, 0, self.ceil_mode)
        return _lp(out, float(self.norm_type), kh * kw)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")
