"""PyTorch's NaN-skipping reductions and paired moments: ``nansum``, ``nanmean``,
``var_mean``, ``std_mean`` (``dim=``/``keepdim=``) and ``count_nonzero``. ``nansum`` and
``nanmean`` are registry ops (one Cython pass on the CPU); the rest are composed of them."""
from __future__ import annotations


import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from .._apply import apply
from . import _scan_cpu
from . import elementwise as E
from . import reduction as R
from .reduction import _expand, _reduce_cost, _reduce_infer
from .registry import OpDef, register
from ._util import norm_axes, to_float, to_tensor


def _axes(dim, ndim: int, op: str):
    """torch's ``dim``: None or an empty list reduce every dim."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return None
    return norm_axes(dim, ndim, op)


def _cast(x: Tensor, dtype) -> Tensor:
    return x if dtype is None else x.astype(_dtypes.as_dtype(dtype))


def _nan_fwd(xp, x, axis, keepdims, mean=False):
    dt = np.float32 if x.dtype == np.float16 else None      # float16 sums in float32
    nan = xp.isnan(x)
    s = xp.sum(xp.where(nan, 0, x), axis=axis, keepdims=keepdims, dtype=dt)
    if mean:
        with np.errstate(invalid="ignore", divide="ignore"):  # all NaN: NaN, silently
            s = s / xp.sum(~nan, axis=axis, keepdims=keepdims)
    return s.astype(x.dtype, copy=False)


def _nan_cpu(x, *, axis, keepdims, mean=False):
    r = _scan_cpu.nan_reduce(x, axis, keepdims, mean)
    return _nan_fwd(np, x, axis, keepdims, mean) if r is None else r


def _nansum_vjp(n, g):
    x = n.inputs[0]
    return (E.where(E.isnan(x), 0.0, _expand(g, n)),)


def _nanmean_vjp(n, g):
    x = n.inputs[0]
    nan = E.isnan(x)
    axes = n.attrs["axis"]
    keep = E.logical_not(nan).astype(x.dtype)
    count = R.sum(keep, axis=axes, keepdims=True)
    # PyTorch's nansum(x) / count: (g / count) * keep, so 0 at the NaNs of a slice that has
    # numbers and NaN over an all-NaN slice (g / 0 * 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (_expand(g, n) / count * keep,)


def _nan_onnx(mean: bool):
    def rule(ctx, n):
        x = ctx.name(n.inputs[0])
        dt = np.dtype(n.inputs[0].dtype)
        nan = ctx.op("IsNaN", [x])
        axes, keep = n.attrs["axis"], n.attrs["keepdims"]
        s = ctx.reduce("Sum", ctx.op("Where", [nan, ctx.const(np.zeros((), dt)), x]), axes,
                       keep)
        if not mean:
            return s
        cnt = ctx.reduce("Sum", ctx.cast(ctx.op("Not", [nan]), np.bool_, dt), axes, keep)
        return ctx.op("Div", [s, cnt])
    return rule


NANSUM = register(OpDef("nansum", _nan_fwd, kernels={"cpu": _nan_cpu}, vjp=_nansum_vjp,
                        infer=_reduce_infer, cost=_reduce_cost, onnx=_nan_onnx(False),
                        doc="sum over axis (tuple or None) with NaN counted as 0"))
NANMEAN = register(OpDef(
    "nanmean", lambda xp, x, axis, keepdims: _nan_fwd(xp, x, axis, keepdims, True),
    kernels={"cpu": lambda x, *, axis, keepdims: _nan_cpu(x, axis=axis, keepdims=keepdims,
                                                          mean=True)},
    vjp=_nanmean_vjp, infer=_reduce_infer, cost=_reduce_cost, onnx=_nan_onnx(True),
    doc="mean over axis (tuple or None) of the non-NaN values (NaN where there are none)"))


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (int, tuple or None for all) treating NaN as zero, as
    ``torch.nansum``; the gradient is 0 at the NaNs.

    >>> tl.nansum(tl.tensor([1.0, float("nan"), 2.0]))          # 3.
    """
    x = _cast(to_tensor(input), dtype)
    axes = _axes(dim, x.ndim, "nansum")
    if x.dtype.kind != "f":         # nothing to skip: a plain sum (ints to int64)
        return R.sum(x, axis=axes, keepdims=keepdim)
    return apply(NANSUM, x, axis=axes, keepdims=bool(keepdim))


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN values over ``dim``, as ``torch.nanmean`` (NaN where all are
    NaN, and so is the gradient of such a slice; 0 at the NaNs of the others); floating
    input only.

    >>> tl.nanmean(tl.tensor([1.0, float("nan"), 2.0]))         # 1.5
    """
    x = _cast(to_tensor(input), dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"nanmean: expects a floating point input, got {x.dtype}; pass "
                        "dtype=tl.float32 or cast it")
    axes = _axes(dim, x.ndim, "nanmean")
    return apply(NANMEAN, x, axis=axes, keepdims=bool(keepdim))


def _correction(op: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give either unbiased or correction, not both")
    if correction is None:
        return 1 if unbiased is None or unbiased else 0
    if isinstance(correction, bool) or not isinstance(correction, (int, float, np.number)):
        raise TypeError(f"{op}: correction must be a number, got {correction!r}")
    return correction


def _moment(op: str, fn, input, dim, unbiased, keepdim, correction):
    R.floating_only(op, input, f"cast it first, e.g. tl.{op}(x.float())")
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
