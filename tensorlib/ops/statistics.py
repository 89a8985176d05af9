"""Order statistics: ``median`` and ``quantile`` with NumPy's definitions, built on ``sort``
(so they are differentiable in the selected values)."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._tensor import Tensor
from ._util import host_values, norm_axis, to_tensor

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(x, q, axis: int | None = None, keepdims: bool = False,
             method: str = "linear", *, dim: int | None = None, keepdim: bool | None = None,
             interpolation: str | None = None) -> Tensor:
    """The ``q``-th quantiles (``q`` in [0, 1], a number or a 1-d sequence) along ``axis`` (of
    the flattened tensor when None), as NumPy's ``quantile``: the dims of ``q`` come first. A
    NaN along the axis gives NaN. PyTorch's ``dim=``, ``keepdim=`` and ``interpolation=``
    are accepted for ``axis``, ``keepdims`` and ``method``.

    >>> tl.quantile(tl.tensor([1.0, 2.0, 3.0, 4.0]), 0.5)
    tensor(2.5)
    """
    from .elementwise import where
    from .reduction import _axis_args
    from .sorting import sort
    axis, keepdims = _axis_args("quantile", axis, keepdims, dim, keepdim)
    if interpolation is not None:
        if method != "linear":
            raise TypeError("quantile: got both method= and interpolation= (NumPy's and "
                            "PyTorch's names for the same argument); pass one")
        method = interpolation
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


class median_result(NamedTuple):
    """``(values, indices)`` of ``median(x, dim=d)`` (``torch.return_types.median``)."""
    values: Tensor
    indices: Tensor


def median(x, *args, axis: int | None = None, keepdims: bool = False, dim: int | None = None,
           keepdim: bool | None = None):
    """NumPy's ``median`` with ``axis=``: the mean of the two middle values for an even count
    (PyTorch's ``median`` returns the lower one; ``quantile(x, 0.5, method='lower')``).

    PyTorch's spellings ``median(x, d)``, ``x.median(1)`` (a positional dim, as
    ``x.max(1)``) and ``median(x, dim=d)`` / ``x.median(dim=d, keepdim=...)`` have PyTorch's
    meaning: the lower median along ``d`` and its index, as a ``(values, indices)`` named
    tuple (a NaN in the row gives NaN); the gradient goes to that index. ``x.median()``
    with no dim is NumPy's average of the middle two.
    """
    if args:
        if len(args) > 2 or dim is not None or axis is not None:
            raise TypeError("median: takes a dim and keepdim positionally (PyTorch's), or "
                            "axis=/dim= as keywords, not both")
        dim = args[0]
        if len(args) == 2:
            if keepdim is not None:
                raise TypeError("median: got keepdim both positionally and as a keyword")
            keepdim = args[1]
    if dim is None:
        from .reduction import _axis_args
        axis, keepdims = _axis_args("median", axis, keepdims, None, keepdim)
        return quantile(x, 0.5, axis=axis, keepdims=keepdims)
    if axis is not None:
        raise TypeError("median: got both axis= and dim= (NumPy's and PyTorch's names for the "
                        "same argument, with NumPy's and PyTorch's results); pass one")
    if keepdims:
        raise TypeError("median: dim= (PyTorch's) takes keepdim=, not keepdims=")
    return _median_dim(to_tensor(x), dim, bool(keepdim))


def _median_dim(x: Tensor, dim, keepdim: bool) -> median_result:
    from .elementwise import where
    from .indexing import take_along_axis
    from .sorting import argsort
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"median: dim= must be an int, got {dim!r}")
    scalar = x.ndim == 0
    src = x.reshape((1,)) if scalar else x
    d = norm_axis(dim, src.ndim, "median")
    n = src.shape[d]
    if n == 0:
        raise ValueError(f"median: cannot reduce dim {d} of size 0 (tensor of shape "
                         f"{tuple(x.shape)})")
    order = argsort(src, axis=d)                  # stable, NaN last
    pick = _at(order, d, (n - 1) // 2).unsqueeze(d)
    if src.dtype.kind == "f":                     # a NaN in the row is its median
        nans = src.isnan()
        k = nans.sum(axis=d, keepdims=True)
        first_nan = take_along_axis(order, (n - k).clip(0, n - 1), d)
        pick = where(k > 0, first_nan, pick)
    values = take_along_axis(src, pick, d)
    if scalar:
        return median_result(values.reshape(()), pick.reshape(()))
    if not keepdim:
        values, pick = values.squeeze(d), pick.squeeze(d)
    return median_result(values, pick)


def _at(s: Tensor, ax: int, i: int) -> Tensor:
    return s[(slice(None),) * ax + (i,)]


def _round_half_even(v: float) -> int:
    return int(np.round(v))
