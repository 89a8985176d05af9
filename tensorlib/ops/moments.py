"""PyTorch's NaN-skipping reductions and paired moments: ``nansum``, ``nanmean``,
``var_mean``, ``std_mean`` (``dim=``/``keepdim=``) and ``count_nonzero``, composed of
registry ops."""
from __future__ import annotations


import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from . import elementwise as E
from . import reduction as R
from ._util import norm_axes, to_float, to_tensor


def _axes(dim, ndim: int, op: str):
    """torch's ``dim``: None or an empty list reduce every dim."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return None
    return norm_axes(dim, ndim, op)


def _cast(x: Tensor, dtype) -> Tensor:
    return x if dtype is None else x.astype(_dtypes.as_dtype(dtype))


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (int, tuple or None for all) treating NaN as zero, as
    ``torch.nansum``; the gradient is 0 at the NaNs.

    >>> tl.nansum(tl.tensor([1.0, float("nan"), 2.0]))          # 3.
    """
    x = _cast(to_tensor(input), dtype)
    axes = _axes(dim, x.ndim, "nansum")
    if x.dtype.kind == "f":
        x = E.where(E.isnan(x), 0.0, x)
    return R.sum(x, axis=axes, keepdims=keepdim)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN values over ``dim``, as ``torch.nanmean`` (NaN where all are
    NaN; the gradient there is 0, PyTorch's NaN); floating input only.

    >>> tl.nanmean(tl.tensor([1.0, float("nan"), 2.0]))         # 1.5
    """
    x = _cast(to_tensor(input), dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"nanmean: expects a floating point input, got {x.dtype}; pass "
                        "dtype=tl.float32 or cast it")
    axes = _axes(dim, x.ndim, "nanmean")
    keep = E.logical_not(E.isnan(x))
    count = R.sum(keep, axis=axes, keepdims=keepdim).astype(x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):     # all NaN: NaN, silently
        return nansum(x, axes, keepdim) / count


def _correction(op: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give either unbiased or correction, not both")
    if correction is None:
        return 1 if unbiased is None or unbiased else 0
    if isinstance(correction, bool) or not isinstance(correction, (int, float, np.number)):
        raise TypeError(f"{op}: correction must be a number, got {correction!r}")
    return correction


def _moment(op: str, fn, input, dim, unbiased, keepdim, correction):
    x = to_float(to_tensor(input))
    if isinstance(dim, bool):        # torch's overload var_mean(input, unbiased)
        dim, unbiased = None, dim
    c = _correction(op, unbiased, correction)
    axes = _axes(dim, x.ndim, op)
    mean = R.mean(x, axis=axes, keepdims=keepdim)
    return fn(x, axis=axes, correction=c, keepdims=keepdim), mean


def var_mean(input, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction: float | None = None) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` over ``dim`` as ``torch.var_mean``: ``correction`` (default 1, Bessel's)
    is subtracted from the count; the older ``unbiased=False`` means ``correction=0``.

    >>> v, m = tl.var_mean(tl.tensor([[1.0, 2.0], [3.0, 5.0]]), dim=1)   # [0.5, 2.], [1.5, 4.]
    """
    return _moment("var_mean", R.var, input, dim, unbiased, keepdim, correction)


def std_mean(input, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction: float | None = None) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` over ``dim`` as ``torch.std_mean`` (see :func:`var_mean`).

    >>> s, m = tl.std_mean(tl.tensor([1.0, 3.0]), correction=0)    # 1., 2.
    """
    return _moment("std_mean", R.std, input, dim, unbiased, keepdim, correction)


def count_nonzero(input, dim=None) -> Tensor:
    """The number of non-zero elements over ``dim`` (int, tuple, or every element for None),
    as int64 (``torch.count_nonzero``)."""
    x = to_tensor(input)
    axes = _axes(dim, x.ndim, "count_nonzero")
    return R.sum((x != 0).astype(_dtypes.int64), axis=axes)
