"""3-d pooling, max-unpooling and power-average pooling as composites of the 2-d pool ops.

Max and average pooling over a box are separable: pool (H, W) with the 2-d op on
(N, C*D, H, W), then pool D with a (kd, 1) window on (N, C, D, Ho*Wo). The per-axis window
counts of average pooling multiply (with or without the padding), and the first maximum in
(d, h, w) order is the first maximum in d of the first maxima in (h, w): so values, indices
and gradients match PyTorch's 3-d kernels, and gradients (of any order), graph capture and
ONNX export (two MaxPool/AveragePool nodes) come from the 2-d registry ops.

>>> import tensorlib as tl, tensorlib.nn.functional as F
>>> F.max_pool3d(tl.randn(1, 2, 4, 4, 4), 2).shape
(1, 2, 2, 2, 2)
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import no_grad
from ..ops import elementwise as E
from ..ops.indexing import take_along_axis
from ..ops.nn_pool import (_pool_out, adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool1d,
                           avg_pool2d, max_pool1d, max_pool2d)
from ..ops.nn_util import as_float_tensor, tuple_n

__all__ = ["adaptive_avg_pool3d", "adaptive_max_pool3d", "avg_pool3d", "lp_pool1d", "lp_pool2d",
           "lp_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d",
           "max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d"]


def _batched5(x: Tensor, name: str):
    if x.ndim not in (4, 5):
        raise ValueError(f"{name}: input must be (N, C, D, H, W) or (C, D, H, W), got shape "
                         f"{tuple(x.shape)}")
    return (x.unsqueeze(0), True) if x.ndim == 4 else (x, False)


def _args3d(name: str, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode):
    k = tuple_n(kernel_size, 3, name, "kernel_size", 1)
    s = k if stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0) \
        else tuple_n(stride, 3, name, "stride", 1)
    p = tuple_n(padding, 3, name, "padding", 0)
    d = tuple_n(dilation, 3, name, "dilation", 1)
    for pi, ki, di in zip(p, k, d):
        if pi > (di * (ki - 1) + 1) // 2:
            raise ValueError(f"{name}: padding {p} must be at most half of the effective kernel "
                             f"size {tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))}")
    dhw = tuple(x.shape[-3:])
    out = tuple(_pool_out(n, *a, bool(ceil_mode)) for n, *a in zip(dhw, k, s, p, d))
    if min(out) < 1:
        raise ValueError(f"{name}: output size {out} is too small: kernel {k} (dilation {d}) "
                         f"does not fit the input {dhw} with padding {p}")
    return k, s, p, d


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """3-d max pooling over (N, C, D, H, W) or (C, D, H, W), as ``torch.nn.functional.
    max_pool3d``; ``return_indices`` also gives the flat ``d*H*W + h*W + w`` position of each
    maximum (the first, on ties), as PyTorch's. Integer input is pooled as it is (no
    gradient), as PyTorch's.

    >>> F.max_pool3d(tl.randn(2, 1, 5, 5, 5), 3, stride=2, padding=1).shape
    (2, 1, 3, 3, 3)
    """
    from ..ops.nn_pool import _float_or_int
    x = _float_or_int(input, "max_pool3d")
    x, unb = _batched5(x, "max_pool3d")
    k, s, p, d = _args3d("max_pool3d", x, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, D, H, W = x.shape
    r = max_pool2d(x.reshape((N, C * D, H, W)), k[1:], s[1:], p[1:], d[1:], ceil_mode,
                   return_indices=bool(return_indices))
    y1, i1 = r if return_indices else (r, None)
    Ho, Wo = y1.shape[-2:]
    r = max_pool2d(y1.reshape((N, C, D, Ho * Wo)), (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1),
                   ceil_mode, return_indices=bool(return_indices))
    y, i2 = r if return_indices else (r, None)
    Do = y.shape[2]
    out = y.reshape((N, C, Do, Ho, Wo))
    if return_indices:
        depth = i2 // (Ho * Wo)                     # the input depth of each maximum
        hw = take_along_axis(i1.reshape((N, C, D, Ho * Wo)), depth, axis=2)
        idx = (depth * (H * W) + hw).reshape((N, C, Do, Ho, Wo))
        return (out.squeeze(0), idx.squeeze(0)) if unb else (out, idx)
    return out.squeeze(0) if unb else out


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-d average pooling over (N, C, D, H, W) or (C, D, H, W), as ``torch.nn.functional.
    avg_pool3d`` (``count_include_pad``, ``ceil_mode`` and ``divisor_override`` too).

    >>> F.avg_pool3d(tl.ones(1, 1, 4, 4, 4), 2).shape
    (1, 1, 2, 2, 2)
    """
    from ..ops.nn_pool import _float_or_int64
    x = _float_or_int64(input, "avg_pool3d")
    x, unb = _batched5(x, "avg_pool3d")
    k, s, p, _ = _args3d("avg_pool3d", x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(
            divisor_override, (int, np.integer)) or divisor_override <= 0):
        raise ValueError(f"avg_pool3d: divisor_override must be a positive int, got "
                         f"{divisor_override!r}")
    if x.dtype == np.int64:
        out = _avg_pool3d_int(x, k, s, p, ceil_mode, count_include_pad, divisor_override)
        return out.squeeze(0) if unb else out
    # with a divisor, each stage sums (divisor 1) and the total is divided once
    div = 1 if divisor_override is not None else None
    N, C, D, H, W = x.shape
    y1 = avg_pool2d(x.reshape((N, C * D, H, W)), k[1:], s[1:], p[1:], ceil_mode,
                    count_include_pad, div)
    Ho, Wo = y1.shape[-2:]
    y = avg_pool2d(y1.reshape((N, C, D, Ho * Wo)), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                   count_include_pad, div)
    out = y.reshape((N, C, y.shape[2], Ho, Wo))
    if divisor_override is not None:
        out = out / float(divisor_override)
    return out.squeeze(0) if unb else out


def _sum_pool3d(x: Tensor, k, s, p, ceil_mode, count_include_pad) -> Tensor:
    """The window sums of avg_pool3d: both separable stages with divisor 1."""
    N, C, D, H, W = x.shape
    y1 = avg_pool2d(x.reshape((N, C * D, H, W)), k[1:], s[1:], p[1:], ceil_mode,
                    count_include_pad, 1)
    Ho, Wo = y1.shape[-2:]
    y = avg_pool2d(y1.reshape((N, C, D, Ho * Wo)), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                   count_include_pad, 1)
    return y.reshape((N, C, y.shape[2], Ho, Wo))


def _avg_pool3d_int(x: Tensor, k, s, p, ceil_mode, count_include_pad, divisor) -> Tensor:
    """avg_pool3d of int64 ``x`` as PyTorch: the exact window sum divided by the window's
    count, truncated toward zero (two truncating stages would round twice)."""
    total = _sum_pool3d(x, k, s, p, ceil_mode, count_include_pad)
    if divisor is None:
        # the count of each window: its in-bounds elements over their float average
        from .. import creation
        ones = creation.ones(tuple(x.shape[1:]), dtype=np.float64, device=x.device)[None]
        inside = _sum_pool3d(ones, k, s, p, ceil_mode, count_include_pad)
        mean = avg_pool3d(ones, k, s, p, ceil_mode, count_include_pad)
        divisor = (inside / mean).round().astype(np.int64)
    q = total.abs() // divisor
    return E.where(total < 0, -q, q)


def _adaptive3(name: str, x: Tensor, output_size) -> tuple[int, int, int]:
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * 3
    if len(output_size) != 3:
        raise ValueError(f"{name}: output_size must be an int or 3 ints (None keeps a side), "
                         f"got {output_size!r}")
    dhw = tuple(x.shape[-3:])
    out = tuple(n if o is None else int(o) for n, o in zip(dhw, output_size))
    if min(out) < 0:
        raise ValueError(f"{name}: output_size must be non-negative, got {out}")
    if min(dhw) == 0:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} has an empty spatial dim")
    return out


def _empty3(x: Tensor, out_dhw: tuple) -> Tensor:
    """The empty result of an adaptive 3-d pool with a zero output size, as PyTorch's (the
    gradient is zero; PyTorch's backward raises)."""
    return x[..., :0, :0, :0].reshape(tuple(x.shape[:2]) + tuple(out_dhw))


def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average pooling of (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (an int or
    (D', H', W'); None keeps that side; a 0 gives an empty result), PyTorch's windows.

    >>> F.adaptive_avg_pool3d(tl.randn(1, 2, 5, 6, 7), (2, 3, None)).shape
    (1, 2, 2, 3, 7)
    """
    x = as_float_tensor(input, "adaptive_avg_pool3d")
    x, unb = _batched5(x, "adaptive_avg_pool3d")
    Do, Ho, Wo = _adaptive3("adaptive_avg_pool3d", x, output_size)
    if 0 in (Do, Ho, Wo):
        out = _empty3(x, (Do, Ho, Wo))
        return out.squeeze(0) if unb else out
    N, C, D, H, W = x.shape
    y = adaptive_avg_pool2d(x.reshape((N, C * D, H, W)), (Ho, Wo))
    y = adaptive_avg_pool2d(y.reshape((N, C, D, Ho * Wo)), (Do, None))
    out = y.reshape((N, C, Do, Ho, Wo))
    return out.squeeze(0) if unb else out


def adaptive_max_pool3d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (an int or
    (D', H', W'); None keeps that side; a 0 gives an empty result); ``return_indices`` also
    gives the flat ``d*H*W + h*W + w`` positions of the maxima, as PyTorch's (the first
    maximum in (d, h, w) order, or a window's last NaN). The gradient goes to those positions
    only (ties included), as PyTorch's: the two 2-d stages each route theirs to their indices.

    >>> F.adaptive_max_pool3d(tl.randn(1, 2, 5, 6, 7), 2).shape
    (1, 2, 2, 2, 2)
    """
    x = as_float_tensor(input, "adaptive_max_pool3d")
    x, unb = _batched5(x, "adaptive_max_pool3d")
    Do, Ho, Wo = _adaptive3("adaptive_max_pool3d", x, output_size)
    if 0 in (Do, Ho, Wo):
        out = _empty3(x, (Do, Ho, Wo))
        if return_indices:
            from ..creation import zeros
            idx = zeros(tuple(out.shape), dtype=np.int64, device=x.device)
            return (out.squeeze(0), idx.squeeze(0)) if unb else (out, idx)
        return out.squeeze(0) if unb else out
    N, C, D, H, W = x.shape
    r = adaptive_max_pool2d(x.reshape((N, C * D, H, W)), (Ho, Wo), bool(return_indices))
    y1, i1 = r if return_indices else (r, None)
    r = adaptive_max_pool2d(y1.reshape((N, C, D, Ho * Wo)), (Do, None), bool(return_indices))
    y, i2 = r if return_indices else (r, None)
    out = y.reshape((N, C, Do, Ho, Wo))
    if not return_indices:
        return out.squeeze(0) if unb else out
    depth = i2 // (Ho * Wo)
    hw = take_along_axis(i1.reshape((N, C, D, Ho * Wo)), depth, axis=2)
    idx = (depth * (H * W) + hw).reshape((N, C, Do, Ho, Wo))
    return (out.squeeze(0), idx.squeeze(0)) if unb else (out, idx)


# --- PyTorch's *_with_indices names: always (values, indices) -------------------------------
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """``F.max_pool1d(..., return_indices=True)``: ``(values, indices)`` whatever
    ``return_indices`` says (as PyTorch's)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """``F.max_pool2d(..., return_indices=True)``: ``(values, indices)``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """``F.max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# --- max unpooling: values scattered back to their indices ----------------------------------
def _unpool_size(name: str, in_sizes, k, s, p, output_size) -> tuple[int, ...]:
    nd = len(k)
    default = tuple((n - 1) * si + ki - 2 * pi for n, ki, si, pi in zip(in_sizes, k, s, p))
    if output_size is None:
        out = default
    else:
        out = tuple(int(o) for o in output_size)
        if len(out) == nd + 2:
            out = out[2:]
        if len(out) != nd:
            raise ValueError(f"{name}: output_size should be a sequence of {nd} or {nd + 2} "
                             f"ints, got {output_size!r}")
        for i, (o, dft, si) in enumerate(zip(out, default, s)):
            if not dft - si < o < dft + si:
                raise ValueError(f"{name}: invalid output_size {out} (dim {i} must be between "
                                 f"{dft - si} and {dft + si}, exclusive)")
    if min(out) < 0:
        raise ValueError(f"{name}: output size {out} must be non-negative")
    return out


def _max_unpool(nd: int, input, indices, kernel_size, stride, padding, output_size) -> Tensor:
    from ..ops._util import to_tensor
    name = f"max_unpool{nd}d"
    x = as_float_tensor(input, name)
    idx = to_tensor(indices)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: input must be {nd + 2}-d (N, C, ...) or {nd + 1}-d (C, ...), "
                         f"got shape {tuple(x.shape)}")
    if tuple(idx.shape) != tuple(x.shape) or idx.dtype.kind not in "iu":
        raise ValueError(f"{name}: indices must be integers of the input's shape "
                         f"{tuple(x.shape)}, got {idx.dtype} {tuple(idx.shape)}")
    k = tuple_n(kernel_size, nd, name, "kernel_size", 1)
    s = k if stride is None else tuple_n(stride, nd, name, "stride", 1)
    p = tuple_n(padding, nd, name, "padding", 0)
    out = _unpool_size(name, tuple(x.shape[-nd:]), k, s, p, output_size)
    unb = x.ndim == nd + 1
    if unb:
        x, idx = x.unsqueeze(0), idx.unsqueeze(0)
    _check_indices(name, idx, out)
    y = _scatter_values(x, idx, tuple(x.shape[:2]), out).reshape(tuple(x.shape[:2]) + out)
    return y.squeeze(0) if unb else y


def _check_indices(name: str, idx: Tensor, out) -> None:
    """Eager check that every index lies in the output plane (PyTorch: "Found an invalid max
    index"); under capture the kernel's own check applies."""
    from ..autograd.mode import state
    if state.tracer is not None or not isinstance(idx._data, np.ndarray) or not idx.size:
        return
    n = math.prod(out)
    lo, hi = int(idx._data.min()), int(idx._data.max())
    if lo < 0 or hi >= n:
        raise IndexError(f"{name}: found an invalid max index {hi if hi >= n else lo} (the "
                         f"output of spatial size {tuple(out)} holds {n} positions)")


def _scatter_values(x: Tensor, idx: Tensor, lead, out) -> Tensor:
    """Each value written at its flat index, zeros elsewhere: the max-pool gradient op
    (a scatter-add whose vjp is a gather, so capture and grad of grad follow) on
    (N, C, 1, L) planes. Overlapping pool windows repeat an index with the same value, which
    PyTorch writes once: the sums are divided by the counts, while the gradient stays
    PyTorch's gather (each input gets the output gradient at its index)."""
    from ..creation import ones_like
    from ..ops.elementwise import maximum
    from ..ops.nn_pool import MAX_POOL2D_GRAD
    from .._apply import apply
    n, c = lead
    plane = (n, c, 1, -1)
    i = idx.astype(np.int64).reshape(plane)
    hw = (1, math.prod(out))
    sums = apply(MAX_POOL2D_GRAD, x.reshape(plane), i, input_hw=hw)
    with no_grad():
        cnt = apply(MAX_POOL2D_GRAD, ones_like(x).reshape(plane), i, input_hw=hw)
        excess = sums.detach() - sums.detach() / maximum(cnt, 1.0)
    return sums - excess


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The partial inverse of ``max_pool1d``: each value put back at its index along L,
    zeros elsewhere (``torch.nn.functional.max_unpool1d``).

    >>> y, i = F.max_pool1d(tl.randn(1, 1, 6), 2, return_indices=True)
    >>> F.max_unpool1d(y, i, 2).shape
    (1, 1, 6)
    """
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The partial inverse of ``max_pool2d`` (indices ``h*W + w``), zeros elsewhere."""
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The partial inverse of ``max_pool3d`` (indices ``d*H*W + h*W + w``), zeros
    elsewhere."""
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


# --- power-average pooling: PyTorch's formula -----------------------------------------------
def _lp_pool(name: str, dims: int, pool, input, norm_type, kernel_size, stride,
             ceil_mode) -> Tensor:
    """An average pool of ``x**p`` times the window size, to the power ``1/p``."""
    k = tuple_n(kernel_size, dims, name, "kernel_size", 1)
    x = as_float_tensor(input, name)
    out = pool(x ** norm_type, k[0] if dims == 1 else k, stride, 0, ceil_mode)
    return (E.sign(out) * E.relu(E.abs(out)) * math.prod(k)) ** (1.0 / float(norm_type))


def lp_pool1d(input, norm_type: float, kernel_size: int, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """``(sum of x**p over each window) ** (1/p)`` over (N, C, L) or (C, L)
    (``torch.nn.functional.lp_pool1d``: an average pool of ``x**p`` times the window size).
    """
    return _lp_pool("lp_pool1d", 1, avg_pool1d, input, norm_type, kernel_size, stride,
                    ceil_mode)


def lp_pool2d(input, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """``(sum of x**p over each window) ** (1/p)`` over (N, C, H, W) or (C, H, W)."""
    return _lp_pool("lp_pool2d", 2, avg_pool2d, input, norm_type, kernel_size, stride,
                    ceil_mode)


def lp_pool3d(input, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """``(sum of x**p over each window) ** (1/p)`` over (N, C, D, H, W) or (C, D, H, W)."""
    return _lp_pool("lp_pool3d", 3, avg_pool3d, input, norm_type, kernel_size, stride,
                    ceil_mode)
