"""Order statistics: ``median`` and ``quantile`` with NumPy's definitions, built on ``sort``
(so they are differentiable in the selected values)."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ._util import host_values, norm_axis, to_tensor

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(x, q, axis: int | None = None, keepdims: bool = False,
             method: str = "linear") -> Tensor:
    """The ``q``-th quantiles (``q`` in [0, 1], a number or a 1-d sequence) along ``axis`` (of
    the flattened tensor when None), as NumPy's ``quantile``: the dims of ``q`` come first. A
    NaN along the axis gives NaN.

    >>> tl.quantile(tl.tensor([1.0, 2.0, 3.0, 4.0]), 0.5)
    tensor(2.5)
    """
    from .elementwise import where
    from .sorting import sort
    x = to_tensor(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {_METHODS}, got {method!r}")
    qs = host_values(q, np.float64)
    if qs.ndim > 1:
        raise ValueError(f"quantile: q must be a number or 1-d, got shape {qs.shape}")
    if np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise ValueError(f"quantile: q must lie in [0, 1], got {qs.tolist()}")
    if axis is None:
        src, ax = x.reshape(-1), 0
    else:
        src, ax = x, norm_axis(axis, x.ndim, "quantile")
    n = src.shape[ax]
    if n == 0:
        raise ValueError("quantile: the axis is empty")
    s, _ = sort(src, axis=ax)
    outs = []
    for qv in qs.reshape(-1):
        pos = qv * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        frac = pos - lo
        if method == "lower" or (method == "nearest" and _round_half_even(pos) == lo):
            v = _at(s, ax, lo)
        elif method in ("higher", "nearest"):
            v = _at(s, ax, hi)
        elif method == "midpoint":
            v = (_at(s, ax, lo) + _at(s, ax, hi)) * 0.5
        else:
            a = _at(s, ax, lo)
            v = a + (_at(s, ax, hi) - a) * frac if hi != lo else a
        outs.append(v)
    from .shape import stack
    out = stack(outs, axis=0) if qs.ndim else outs[0]
    # NumPy: NaN anywhere along the axis makes the quantile NaN
    has_nan = src.isnan().any(axis=ax)
    out = where(has_nan, np.nan, out)
    if keepdims:
        kshape = (1,) * x.ndim if axis is None else \
            tuple(1 if i == ax else d for i, d in enumerate(x.shape))
        out = out.reshape(tuple(qs.shape) + kshape)
    return out


def median(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """NumPy's ``median``: the mean of the two middle values for an even count (PyTorch's
    ``median`` returns the lower one; use ``quantile(x, 0.5, method='lower')`` for that)."""
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


def _at(s: Tensor, ax: int, i: int) -> Tensor:
    return s[(slice(None),) * ax + (i,)]


def _round_half_even(v: float) -> int:
    return int(np.round(v))
