"""Fractional max pooling (Graham, https://arxiv.org/abs/1412.6071), PyTorch's
``F.fractional_max_pool2d/3d`` and ``nn.FractionalMaxPool2d/3d``.

The pseudo-random window starts come from one sample ``u`` in [0, 1) per (batch, channel,
spatial axis), with PyTorch's formula (computed in the input's dtype, as its kernel does):
``start[i] = int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (in - k) / (out - 1)``,
and the last window flush with the end. The starts are tensor ops on the samples (a
captured graph reads them when it runs); the pooling is
``take_along_axis`` over those window positions then ``argmax``: so the values, indices and
gradients (routed to the argmax, of any order) match PyTorch's, and graph capture works when
``_random_samples`` is fixed.

>>> import tensorlib as tl, tensorlib.nn.functional as F
>>> F.fractional_max_pool2d(tl.randn(1, 2, 9, 9), 2, output_size=4).shape
(1, 2, 4, 4)
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import state
from ..errors import DTypeError, ShapeError
from ..ops import elementwise as E
from ..ops._util import to_tensor
from ..ops.indexing import take_along_axis
from ..ops.shape import concatenate
from ..ops.nn_util import tuple_n
from .module import Module

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d", "fractional_max_pool2d",
           "fractional_max_pool2d_with_indices", "fractional_max_pool3d",
           "fractional_max_pool3d_with_indices"]

# which sample of a plane's (2 or 3) drives each spatial axis (PyTorch's kernels: 2-d takes
# u[0] for W and u[1] for H; 3-d takes u[0], u[1], u[2] for T, H, W)
_SAMPLE_OF_AXIS = {2: (1, 0), 3: (0, 1, 2)}
_AXIS_WORDS = {2: ("height", "width"), 3: ("time", "height", "width")}


def _intervals(u: Tensor, size: int, out: int, k: int) -> Tensor:
    """Window starts (..., out), int64, for samples ``u`` (...,), computed in ``u``'s float
    dtype as PyTorch's ``generate_intervals`` (its float32 rounding decides where the int()
    lands). Tensor ops, so a captured graph reads the samples when it runs."""
    from ..creation import arange, full
    last = full(tuple(u.shape) + (1,), size - k, dtype=np.int64, device=u.device)
    if out <= 1:
        return last[..., :out]
    dt = np.dtype(u.dtype).type
    alpha = float(dt(size - k) / dt(out - 1))       # exact in u's dtype
    i = arange(out - 1, dtype=u.dtype, device=u.device)
    uu = u.unsqueeze(-1)
    # the products are >= 0, so the int64 cast truncates as PyTorch's int() does
    seq = ((i + uu) * alpha).astype(np.int64) - (uu * alpha).astype(np.int64)
    return concatenate([seq, last], axis=-1)


def _ratio(r, nd: int, name: str) -> tuple[float, ...]:
    if isinstance(r, (int, float, np.integer, np.floating)) and not isinstance(r, bool):
        return (float(r),) * nd
    try:
        out = tuple(float(v) for v in r)
    except TypeError:
        raise TypeError(f"{name}: output_ratio must be a float or a tuple of {nd} floats, "
                        f"got {r!r}") from None
    if len(out) != nd:
        raise ValueError(f"{name} requires output_ratio to either be a single number or a "
                         f"tuple of {nd}, got {r!r}")
    return out


def _samples(samples, x: Tensor, nd: int, name: str) -> Tensor:
    n, c = x.shape[0], x.shape[1]
    if samples is None:
        if state.tracer is not None:
            raise RuntimeError(f"{name}: the pooling regions are drawn at random, which a "
                               "captured graph (tl.function / tl.capture) would freeze; pass "
                               "fixed _random_samples of shape (N, C, "
                               f"{nd}) to capture it")
        from ..creation import rand
        samples = rand(n, c, nd, dtype=x.dtype)
    s = to_tensor(samples)
    if s.ndim != 3:
        raise ShapeError(f"{name}: expect _random_samples to have 3 dimensions, got {s.ndim}")
    if s.shape[2] != nd:
        raise ShapeError(f"{name}: expect _random_samples.size(2) equals to {nd}; got "
                         f"{s.shape[2]}")
    if s.shape[1] != c:
        raise ShapeError(f"{name}: expect _random_samples.size(1) equals to input channel "
                         f"size ({c}); got {s.shape[1]}")
    if s.shape[0] < n:
        raise ShapeError(f"{name}: expect _random_samples.size(0) ({s.shape[0]}) no less "
                         f"than the input batch size ({n})")
    if s.dtype != x.dtype:
        raise DTypeError(f"{name}: expect _random_samples to have the same dtype as input "
                         f"({x.dtype}), got {s.dtype}")
    return s.detach()[:n]


def _window_index(u: Tensor, spatial, out, k, nd: int) -> Tensor:
    """(N, C, K, L) flat plane positions: [n, c, j, l] is the j-th element (row-major (d, h, w)
    order within the window, PyTorch's scan order) of output l's window."""
    from ..creation import arange
    n, c = u.shape[:2]
    idx = None
    for a in range(nd):
        stride = int(np.prod(spatial[a + 1:], dtype=np.int64))
        starts = _intervals(u[:, :, _SAMPLE_OF_AXIS[nd][a]], spatial[a], out[a], k[a])
        offs = arange(k[a], dtype=np.int64, device=u.device).unsqueeze(-1)
        pos = (offs + starts.unsqueeze(-2)) * stride            # (N, C, k_a, out_a)
        shape = [n, c] + [1] * (2 * nd)
        shape[2 + a], shape[2 + nd + a] = k[a], out[a]
        pos = pos.reshape(tuple(shape))
        idx = pos if idx is None else idx + pos
    return idx.reshape((n, c, int(np.prod(k)), int(np.prod(out))))


def _fractional(name: str, nd: int, input, kernel_size, output_size, output_ratio,
                samples) -> tuple[Tensor, Tensor]:
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: input must be floating point, got {x.dtype}")
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{name}(): expected {nd + 1}D or {nd + 2}D input, but got shape "
                         f"{tuple(x.shape)}")
    unbatched = x.ndim == nd + 1
    for d in range(x.ndim - nd - 1, x.ndim):
        if x.shape[d] == 0:
            raise ShapeError(f"{name}(): expected input to have non-zero size for non-batch "
                             f"dimensions, but got {tuple(x.shape)} with dimension {d} empty")
    k = tuple_n(kernel_size, nd, name, "kernel_size", 1)
    spatial = tuple(x.shape[-nd:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output_size or an "
                             "output_ratio")
        out = tuple(int(s * r) for s, r in zip(spatial, _ratio(output_ratio, nd, name)))
    else:
        out = tuple_n(output_size, nd, name, "output_size", 0)
    for word, o, kk, s in zip(_AXIS_WORDS[nd], out, k, spatial):
        # PyTorch's 3-d check is strict (a window may not end on the last element)
        if o + kk - 1 > s or nd == 3 and o + kk - 1 == s:
            raise ShapeError(f"{name}(): pool {word} {kk} too large relative to input {word} "
                             f"{s} (output {word} {o})")
    xb = x.unsqueeze(0) if unbatched else x
    n, c = xb.shape[:2]
    u = _samples(samples, xb, nd, name)
    kk = int(np.prod(k))
    win = _window_index(u.to(x.device), spatial, out, k, nd)
    flat = xb.reshape((n, c, -1))
    vals = take_along_axis(flat.detach(), win.reshape((n, c, -1)), axis=2)
    vals = vals.reshape(tuple(win.shape))
    # a running argmax over the window's elements, with PyTorch's test `v > max || isnan(v)`
    # (so ties keep the first, NaN the last); K elementwise steps over (N, C, L) beat one
    # argmax over a short last axis
    best, idx = vals[:, :, 0], win[:, :, 0]
    for j in range(1, kk):
        v = vals[:, :, j]
        take = (v > best) | E.isnan(v)
        best, idx = E.maximum(best, v), E.where(take, win[:, :, j], idx)   # NaN stays
    y = take_along_axis(flat, idx, axis=2).reshape((n, c) + out)
    idx = idx.reshape((n, c) + out)
    return (y.squeeze(0), idx.squeeze(0)) if unbatched else (y, idx)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False,
                                       _random_samples=None) -> tuple[Tensor, Tensor]:
    """:func:`fractional_max_pool2d`'s ``(values, indices)``, whatever ``return_indices``."""
    return _fractional("fractional_max_pool2d", 2, input, kernel_size, output_size,
                       output_ratio, _random_samples)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, H, W) or (C, H, W) input to ``output_size`` (or
    ``int(size * output_ratio)``), as ``torch.nn.functional.fractional_max_pool2d``: each
    ``kernel_size`` window starts at a pseudo-random place driven by ``_random_samples``
    ((N, C, 2) in [0, 1), the input's dtype; drawn from tensorlib's generator when None). With
    the same samples, values and indices (flat ``h * W + w``) equal PyTorch's; the gradient
    goes to each window's maximum (the first, on ties)."""
    y, i = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio,
                                              True, _random_samples)
    return (y, i) if return_indices else y


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False,
                                       _random_samples=None) -> tuple[Tensor, Tensor]:
    """:func:`fractional_max_pool3d`'s ``(values, indices)``, whatever ``return_indices``."""
    return _fractional("fractional_max_pool3d", 3, input, kernel_size, output_size,
                       output_ratio, _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W) input, as
    ``torch.nn.functional.fractional_max_pool3d`` (samples (N, C, 3); indices flat
    ``t * H * W + h * W + w``); otherwise as :func:`fractional_max_pool2d`."""
    y, i = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio,
                                              True, _random_samples)
    return (y, i) if return_indices else y


class _FractionalMaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None) -> None:
        super().__init__()
        nd, cls = self._nd, type(self).__name__
        if isinstance(kernel_size, (int, np.integer)) and kernel_size <= 0 or \
                isinstance(kernel_size, (tuple, list)) and not all(k > 0 for k in kernel_size):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = tuple_n(kernel_size, nd, cls, "kernel_size", 1)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = None if output_size is None else \
            tuple_n(output_size, nd, cls, "output_size", 0)
        self.output_ratio = None if output_ratio is None else _ratio(output_ratio, nd, cls)
        if output_size is None and output_ratio is None:
            raise ValueError(f"{cls} requires specifying either an output size, or a pooling "
                             "ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: Tensor):
        fn = fractional_max_pool2d if self._nd == 2 else fractional_max_pool3d
        return fn(input, self.kernel_size, self.output_size, self.output_ratio,
                  self.return_indices, _random_samples=self._random_samples)

    def extra_repr(self) -> str:
        size = f"output_size={self.output_size}" if self.output_size is not None else \
            f"output_ratio={self.output_ratio}"
        return f"kernel_size={self.kernel_size}, {size}"


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Module form of :func:`fractional_max_pool2d` (PyTorch's ``nn.FractionalMaxPool2d``):
    exactly one of ``output_size`` and ``output_ratio`` (each in (0, 1)); a given
    ``_random_samples`` is a buffer and fixes the regions."""
    _nd = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Module form of :func:`fractional_max_pool3d` (PyTorch's ``nn.FractionalMaxPool3d``)."""
    _nd = 3
