"""The Python boundary of ``tensorlib/_scan_kernels.pyx``: CPU kernels for ``cummax``/
``cummin``, ``cumsum``/``cumprod``/``logcumsumexp``, ``nansum``/``nanmean``, ``mode``,
``cdist`` with p = 1 and ``pdist`` with p = 2.

Each wrapper takes NumPy arrays, checks what the unchecked Cython kernel relies on (dtype,
C contiguity, shapes), views the array as ``(outer, n, inner)`` around the dim it works
along, allocates the outputs and calls the kernel. Dtypes a kernel lacks (float16, complex)
return None, and the caller takes its NumPy path.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _scan_kernels as K
from ._util import around_axis

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# the dtypes of the fused ``scalar`` type (bool travels as uint8)
_SCALARS = {np.dtype(t) for t in (np.float32, np.float64, np.int64, np.int32, np.int16,
                                  np.int8, np.uint8)}


def _c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _as_kernel_dtype(x: np.ndarray):
    """``x`` as a dtype of the fused ``scalar`` kernels (bool as uint8), or None."""
    if x.dtype == np.bool_:
        return x.view(np.uint8)
    return x if x.dtype in _SCALARS else None


def cum_extreme(x: np.ndarray, axis: int, mode: str):
    """``(values, indices)`` of the running max (``mode="max"``) or min along ``axis``, or
    None for a dtype the kernel lacks."""
    if mode not in ("max", "min"):
        raise ValueError(f"cum_extreme: mode must be 'max' or 'min', got {mode!r}")
    k = _as_kernel_dtype(x)
    if k is None or x.ndim == 0:
        return None
    k = _c(k)
    vals = np.empty(k.shape, k.dtype)
    idx = np.empty(k.shape, np.int64)
    if k.size:
        K.cum_extreme(*(around_axis(a, axis) for a in (k, vals, idx)), mode == "max")
    return (vals.view(np.bool_) if x.dtype == np.bool_ else vals), idx


_SCAN_OPS = {"cumsum": 0, "cumprod": 1, "logcumsumexp": 2}


def cum_float(x: np.ndarray, axis: int, name: str) -> np.ndarray | None:
    """``cumsum``, ``cumprod`` or ``logcumsumexp`` (``name``) of a float32/float64 array
    along ``axis``, sequential in double (PyTorch's CPU order: a float64 result is bit for
    bit a running loop's), or None for another dtype or a 0-d array."""
    if name not in _SCAN_OPS:
        raise ValueError(f"cum_float: name must be one of {sorted(_SCAN_OPS)}, got {name!r}")
    if x.dtype not in _FLOATS or x.ndim == 0:
        return None
    x = _c(x)
    out = np.empty(x.shape, x.dtype)
    if x.size:
        K.cum_scan(around_axis(x, axis), around_axis(out, axis), _SCAN_OPS[name])
    return out


def scatter_add_into(out: np.ndarray, idx: np.ndarray, src: np.ndarray, axis: int) -> bool:
    """``out[..., idx[..., i, ...], ...] += src[..., i, ...]`` along ``axis`` in place, when
    ``idx`` and ``src`` have ``out``'s shape outside ``axis`` (the gradient of a gather or
    cummax): False, doing nothing, for another shape or a dtype the kernel lacks. ``out`` is
    C-contiguous, ``idx`` already in [0, n); ``src`` may be strided (a broadcast gradient is
    read in place)."""
    if (out.dtype not in _FLOATS or src.dtype != out.dtype or idx.shape != src.shape
            or out.ndim == 0 or not out.flags.c_contiguous
            or any(k != m for d, (k, m) in enumerate(zip(idx.shape, out.shape)) if d != axis)):
        return False
    if idx.size:
        i3 = around_axis(idx.astype(np.int64, copy=False), axis)
        if K.scatter_along(src.reshape(i3.shape), i3, around_axis(out, axis)):
            raise IndexError(f"scatter_add: an index is out of range for a dim of size "
                             f"{out.shape[axis]}")
    return True


def _reduced_view(x: np.ndarray, axes) -> np.ndarray:
    """``x`` as (outer, n, inner) with the reduced ``axes`` (sorted, or None for all) as n:
    consecutive axes merge in place; others are moved last (a copy)."""
    nd = x.ndim
    axes = tuple(range(nd)) if axes is None else tuple(axes)
    if not axes:
        return _c(x).reshape(x.size, 1, 1)
    if axes == tuple(range(axes[0], axes[-1] + 1)):
        s = x.shape
        return _c(x).reshape(math.prod(s[:axes[0]]), math.prod(s[a] for a in axes),
                             math.prod(s[axes[-1] + 1:]))
    kept = [a for a in range(nd) if a not in axes]
    moved = np.ascontiguousarray(np.transpose(x, kept + list(axes)))
    # (the reduced size given, not -1: a size-0 array cannot infer it)
    return moved.reshape(math.prod(x.shape[a] for a in kept), math.prod(x.shape[a] for a in axes),
                         1)


def _reduced_shape(shape, axes, keepdims: bool) -> tuple:
    axes = range(len(shape)) if axes is None else axes
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def nan_reduce(x: np.ndarray, axes, keepdims: bool, mean: bool) -> np.ndarray | None:
    """Sum (or mean, ``mean``) of the non-NaN values of ``x`` over ``axes`` (sorted positive
    axes, or None for all), or None for a dtype the kernel lacks. A mean over no value is
    NaN."""
    if x.dtype not in _FLOATS:
        return None
    v = _reduced_view(x, axes)
    s = np.empty((v.shape[0], v.shape[2]), np.float64)
    cnt = np.empty(s.shape, np.int64) if mean else None
    K.nan_sum(v, s, cnt)
    if mean:
        with np.errstate(invalid="ignore", divide="ignore"):
            s /= cnt
    return s.astype(x.dtype, copy=False).reshape(_reduced_shape(x.shape, axes, keepdims))


def mode_indices(x: np.ndarray, axis: int) -> np.ndarray | None:
    """The index along ``axis`` (kept as size 1) of each slice's mode (the smallest of the
    most frequent values; NaN never equals NaN) at its last occurrence, or None for a dtype
    the kernel lacks. The dim must not be empty."""
    k = _as_kernel_dtype(x)
    if k is None or x.ndim == 0:
        return None
    if x.shape[axis] == 0:
        from .reduction import empty_reduction
        raise empty_reduction("mode", x.shape, axis)
    rows = np.ascontiguousarray(np.moveaxis(k, axis, -1))
    srt = np.sort(rows, axis=-1)
    flat = rows.reshape(-1, rows.shape[-1])
    val = np.empty(flat.shape[0], k.dtype)
    idx = np.empty(flat.shape[0], np.int64)
    K.mode_rows(srt.reshape(flat.shape), flat, val, idx)
    return np.expand_dims(idx.reshape(rows.shape[:-1]), axis)


def _batch3(a: np.ndarray) -> np.ndarray:
    return _c(a).reshape(math.prod(a.shape[:-2]), a.shape[-2], a.shape[-1])


def cdist_l1(x1: np.ndarray, x2: np.ndarray) -> np.ndarray | None:
    """``sum_m |x1[..., i, m] - x2[..., j, m]|`` for x1 (..., P, M), x2 (..., R, M) of one
    float dtype and the same batch shape, or None otherwise."""
    if x1.dtype not in _FLOATS or x2.dtype != x1.dtype or x1.ndim < 2 or \
            x1.shape[:-2] != x2.shape[:-2] or x1.shape[-1] != x2.shape[-1]:
        return None
    a, bt = _batch3(x1), _batch3(np.swapaxes(x2, -1, -2))
    out = np.empty((a.shape[0], a.shape[1], bt.shape[2]), x1.dtype)
    K.cdist_l1(a, bt, out)
    return out.reshape(x1.shape[:-1] + (x2.shape[-2],))


def cdist_l1_grad(g: np.ndarray, x1: np.ndarray, x2: np.ndarray):
    """``(grad x1, grad x2)`` of :func:`cdist_l1` for the upstream ``g`` (..., P, R), or None
    for inputs it does not take."""
    if x1.dtype not in _FLOATS or x2.dtype != x1.dtype or g.dtype != x1.dtype or \
            x1.shape[:-2] != x2.shape[:-2] or g.shape != x1.shape[:-1] + (x2.shape[-2],):
        return None
    a, bt = _batch3(x1), _batch3(np.swapaxes(x2, -1, -2))
    ga = np.empty(a.shape, a.dtype)
    gbt = np.empty(bt.shape, a.dtype)
    K.cdist_l1_grad(_batch3(g), a, bt, ga, gbt)
    return ga.reshape(x1.shape), np.swapaxes(gbt, -1, -2).reshape(x2.shape)


def pdist_l2(x: np.ndarray) -> np.ndarray | None:
    """``torch.pdist(x)`` (p = 2) of a float32/float64 (N, M) array from the pairs'
    differences (``_scan_kernels.pdist_l2``), or None for another input (float16)."""
    if x.dtype not in _FLOATS or x.ndim != 2:
        return None
    n, m = x.shape
    out = np.zeros(n * (n - 1) // 2, x.dtype)
    if out.size and m:
        x = _c(x)
        K.pdist_l2(x, np.ascontiguousarray(x.T), out)
    return out


def pdist_l2_grad(g: np.ndarray, x: np.ndarray, d: np.ndarray) -> np.ndarray | None:
    """The gradient of :func:`pdist_l2` for the upstream ``g`` (d's shape; 0 where d is not
    > 0), or None for inputs it does not take."""
    if (x.dtype not in _FLOATS or x.ndim != 2 or g.dtype != x.dtype or d.dtype != x.dtype
            or d.shape != (x.shape[0] * (x.shape[0] - 1) // 2,) or g.shape != d.shape):
        return None
    gx = np.zeros(x.shape, x.dtype)
    if d.size and x.shape[1]:
        x = _c(x)
        K.pdist_l2_grad(_c(g), _c(d), x, np.ascontiguousarray(x.T), gx)
    return gx
