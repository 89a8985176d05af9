"""Reductions over ``axis`` (int, tuple or None) with ``keepdims``; scans."""
from __future__ import annotations

import builtins
import math
import warnings
from typing import NamedTuple

import numpy as np

from ..errors import DTypeError, EmptyReductionError
from .. import _dtypes
from .._state import state
from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register
from ._util import around_axis, norm_axes, norm_axis, numel, to_float, to_tensor


def _reduce_infer_factory(dtype_rule):
    def infer(x, *, axis, keepdims, **attrs):
        shape, dt = x
        axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
        if keepdims:
            out = tuple(1 if i in axes else d for i, d in enumerate(shape))
        else:
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return out, np.dtype(dtype_rule(np.dtype(dt)))
    return infer


def _sum_dtype(dt):
    return np.int64 if dt.kind in "biu" else dt


def _acc(dt):
    """The accumulator of a sum-like reduction, as PyTorch: int64 for every integer and bool
    (NumPy gives uint8 a uint64, a dtype tensorlib lacks), float32 for float16 (whose sums
    overflow at 65504), else the input's."""
    return np.int64 if dt.kind in "biu" else (np.float32 if dt == np.float16 else None)


def _narrow(out, dt):
    """A float16 reduction computed in float32, back to float16 (inf past its range, as
    PyTorch, without NumPy's cast warning)."""
    if dt != np.float16:
        return out
    with np.errstate(over="ignore"):
        return out.astype(np.float16)


_reduce_infer = _reduce_infer_factory(lambda d: d)
# var, std and norm of a complex tensor are real, as PyTorch's
_real_reduce_infer = _reduce_infer_factory(_dtypes.real_of)
_sum_infer = _reduce_infer_factory(_sum_dtype)
_bool_reduce_infer = _reduce_infer_factory(lambda d: np.bool_)
_index_infer = _reduce_infer_factory(lambda d: np.int64)


def _reduce_cost(in_specs, out_specs, **attrs):
    n = numel(in_specs[0][0])
    return n, n * np.dtype(in_specs[0][1]).itemsize


def _expand(g: Tensor, n, axis_key="axis") -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes of input 0."""
    shape = n.inputs[0]._data.shape
    axis = n.attrs[axis_key]
    if axis is None:  # a full reduction: the 0-d (or all-ones) gradient broadcasts as is
        return g.broadcast_to(shape)
    if not n.attrs.get("keepdims", False):
        axes = range(len(shape)) if axis is None else axis
        g = g.reshape(tuple(1 if i in axes else d for i, d in enumerate(shape)))
    return g.broadcast_to(shape)


def _kept(out: Tensor, n) -> Tensor:
    """Output with reduced axes kept as size 1, for broadcasting against the input."""
    shape = n.inputs[0]._data.shape
    axis = n.attrs["axis"]
    if n.attrs.get("keepdims", False):
        return out
    axes = range(len(shape)) if axis is None else axis
    return out.reshape(tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _axes_count(n) -> int:
    shape = n.inputs[0]._data.shape
    axis = n.attrs["axis"]
    axes = range(len(shape)) if axis is None else axis
    return math.prod(shape[i] for i in axes)


def _define(name, fwd, vjp=None, infer=_reduce_infer, saves=True, saves_output=False):
    return register(OpDef(name, fwd, vjp=vjp, infer=infer, cost=_reduce_cost, saves=saves,
                          saves_output=saves_output))


def _call(op, x, axis, keepdims, floating=False, **attrs):
    x = to_tensor(x)
    if floating:
        x = to_float(x)
    if axis.__class__ is list and not axis and op is not ALL and op is not ANY:
        axis = None     # x.sum([]): PyTorch's every dim (NumPy refuses a list axis)
    axes = norm_axes(axis, x._data.ndim, op.name)
    return apply(op, x, axis=None if axis is None else axes, keepdims=bool(keepdims), **attrs)


SUM = _define("sum", lambda xp, x, axis, keepdims: _narrow(
    xp.sum(x, axis=axis, keepdims=keepdims, dtype=_acc(x.dtype)), x.dtype),
              vjp=lambda n, g: (_expand(g, n),), infer=_sum_infer, saves=False)
# the ufunc's reduce itself: np.sum's Python wrapper is most of a small sum's cost

# float32 and float64 sums, means and variances (float32 extremes) over a run of adjacent
# axes of a contiguous array go to _ops' kernels (_reduce.h): NumPy's were 2.5-6x slower
# than PyTorch's along a short last axis (a ufunc inner loop a row) and along any other axis
# added row by row (1e-2 relative error over 1e6 float32 rows, where PyTorch's cascade
# keeps 1e-7), slowly for narrow rows
_KERNEL_MIN = 2048      # below it NumPy's call costs less than the checks and reshapes
_F64_SHORT_ROW = 32     # float64 rows shorter than this go to sum_rows_f64 (TL_ROW_LANES * 2)


def _blocks3(x, axis, f64=True):
    """``x`` as (outer, reduced, inner) when ``axis`` is a run of adjacent axes (or None)
    and the float32 kernels (``f64``: or the float64 ones) apply, else None."""
    if (x.size < _KERNEL_MIN or not x.flags.c_contiguous
            or not (x.dtype == np.float32
                    or (f64 and x.dtype == np.float64))):
        return None
    nd = x.ndim
    if axis is None or len(axis) == nd:
        return x.reshape(1, -1, 1)
    axes = sorted(a % nd for a in axis)
    lo, hi = axes[0], axes[-1] + 1
    if axes != list(range(lo, hi)):
        return None
    b = x.reshape(math.prod(x.shape[:lo]), math.prod(x.shape[lo:hi]), -1)
    return b if b.shape[1] else None


def _block_result(out, x, axis, keepdims):
    """An (outer, inner) kernel result in the reduction's output shape."""
    if axis is None or len(axis) == x.ndim:
        return out.reshape((1,) * x.ndim if keepdims else ())
    axes = {a % x.ndim for a in axis}
    return out.reshape(tuple(1 if i in axes else d for i, d in enumerate(x.shape)
                             if keepdims or i not in axes))


def _sum_blocks(b, scale):
    """(outer, inner) sums over axis 1 of the float32 or float64 (outer, reduced, inner)
    block ``b``, in its dtype."""
    from .. import _ops
    O, R, I = b.shape
    f32 = b.dtype == np.float32
    if not f32 and I == 1 and R >= _F64_SHORT_ROW:
        # NumPy's pairwise float64 sum of long contiguous runs is as fast as the kernel's
        out = np.add.reduce(b.reshape(O, R), axis=1)
        return (out if scale == 1.0 else out * scale).reshape(O, 1)
    if O == 1 and I == 1 and f32:
        return np.array([[_ops.sum_all_f32(b.reshape(-1)) * scale]], np.float32)
    out = np.empty((O, I), b.dtype)
    if I == 1:
        (_ops.sum_rows_f32 if f32 else _ops.sum_rows_f64)(b.reshape(O, R), out.reshape(-1),
                                                          scale)
    else:
        _ops.sum_mid(b, out, scale)
    return out


def column_sums(a):
    """Sums over axis 0 of a contiguous 2-D float32 array, by the cascade kernel (accurate
    for any row count; NumPy's axis-0 sum adds row by row, and is slow for narrow rows)."""
    return _sum_blocks(a.reshape(1, *a.shape), 1.0).reshape(a.shape[1])


def _fast_sum(x, axis, keepdims, scale):
    b = _blocks3(x, axis)
    return None if b is None else _block_result(_sum_blocks(b, scale), x, axis, keepdims)


# Other float reductions over a run of adjacent axes with a trailing inner part (axis 0 of a
# tall, narrow matrix): NumPy's reduce loops over the short inner rows (40-80x slower than
# PyTorch at (20000, 4)) and adds row after row. Folding _FOLD row blocks at a time gives
# long contiguous inner loops and a tree of depth log_16(rows): NumPy's pairwise sum also
# adds runs of 16 (8 accumulators over 128), so the accuracy is of its pairwise kind.
_FOLD = 16
_FOLD_MIN = 256


def _fold_blocks(x, axis):
    """``x`` as (outer, reduced, inner) for :func:`_fold`, or None where NumPy's own
    reduce is as good (a reduced part that is short or last, small or odd inputs)."""
    if (x.dtype.kind != "f" or x.dtype.itemsize < 4 or x.size < _FOLD_MIN or axis is None
            or not x.flags.c_contiguous):
        return None
    nd = x.ndim
    axes = sorted(a % nd for a in axis)
    lo, hi = axes[0], axes[-1] + 1
    if axes != list(range(lo, hi)) or hi == nd:
        return None
    b = x.reshape(math.prod(x.shape[:lo]), math.prod(x.shape[lo:hi]), -1)
    return b if b.shape[1] > _FOLD else None


def _fold(b, ufunc):
    """``ufunc.reduce`` over axis 1 of the (outer, reduced, inner) block ``b``, as (outer,
    inner): _FOLD row blocks combined at a time, rows past a multiple of _FOLD at the end."""
    O, R, inner = b.shape
    tails = []
    while R > _FOLD:
        q = R // _FOLD
        if q * _FOLD < R:
            tails.append(b[:, q * _FOLD:])
        b = ufunc.reduce(b[:, :q * _FOLD].reshape(O, _FOLD, q * inner), axis=1)
        b = b.reshape(O, q, inner)
        R = q
    out = ufunc.reduce(b, axis=1)
    for t in tails:
        ufunc(out, ufunc.reduce(t, axis=1), out=out)
    return out


def _fold_sum(x, axis, keepdims, mean=False):
    b = _fold_blocks(x, axis) if x.dtype == np.float64 else None
    if b is None:
        return None
    out = _fold(b, np.add)
    if mean:
        np.true_divide(out, b.shape[1], out=out)
    return _block_result(out, x, axis, keepdims)


def _sum_cpu(x, axis, keepdims):
    out = _fast_sum(x, axis, keepdims, 1.0)
    if out is None:
        out = _fold_sum(x, axis, keepdims)
    if out is not None:
        return out
    return _narrow(np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=_acc(x.dtype)),
                   x.dtype)


SUM.set_kernel("cpu", _sum_cpu)
SUM.complex = "holomorphic"

# a full sum of squares (norm()) of a large contiguous float array as row dot products
# over rows of this many elements, then NumPy's pairwise sum of the row results: ~6x
# faster than x * x and a sum, and as accurate. (For a plain sum the same trick through a
# ones vector was 1.3x faster and 7x less accurate: not used.)
_ROW = 4096
_FULL_MIN = 1 << 16


def _rows(x):
    """``x`` flattened into (rows, _ROW) and the tail, when the BLAS path applies."""
    if (x.size < _FULL_MIN or x.dtype.kind != "f" or x.dtype.itemsize < 4
            or not x.flags.c_contiguous):
        return None
    r = x.reshape(-1)
    k = r.size // _ROW * _ROW
    return r[:k].reshape(-1, _ROW), r[k:]


def _full_sumsq(x):
    parts = _rows(x)
    if parts is None:
        return None
    body, tail = parts
    return np.add.reduce(np.vecdot(body, body)) + np.dot(tail, tail)


def _mean_fwd(xp, x, axis, keepdims):
    if x.size:
        return xp.mean(x, axis=axis, keepdims=keepdims)
    # NaN over an empty axis, as PyTorch, without NumPy's "Mean of empty slice" warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return xp.mean(x, axis=axis, keepdims=keepdims)


MEAN = _define("mean", _mean_fwd,
               vjp=lambda n, g: (_expand(g, n) * (1.0 / builtins.max(_axes_count(n), 1)),),
               saves=False)


def _mean_cpu(x, axis, keepdims):
    b = _blocks3(x, axis) if x.size else None
    if b is not None:
        return _block_result(_sum_blocks(b, 1.0 / b.shape[1]), x, axis, keepdims)
    out = _fold_sum(x, axis, keepdims, mean=True)
    return _mean_fwd(np, x, axis, keepdims) if out is None else out


MEAN.set_kernel("cpu", _mean_cpu)
MEAN.complex = "holomorphic"


def _extreme_vjp(n, g):
    from . import elementwise as E
    x = n.inputs[0]
    m = _kept(n.out, n)
    # a NaN is the max (NumPy propagates it): its gradient goes there, as PyTorch's
    mask = ((x == m) | (E.isnan(x) & E.isnan(m))).astype(g.dtype)
    count = mask.sum(axis=n.attrs["axis"], keepdims=True)
    return (_expand(g, n) * mask / count,)


def empty_reduction(fn: str, shape, axis):
    """The EmptyReductionError (a ShapeError and an IndexError, as PyTorch's) of reduction
    ``fn`` over an empty dim ``axis`` (None: all) of a tensor of ``shape``."""
    return EmptyReductionError(_empty_message(fn, shape, axis))


def _empty_message(fn: str, shape, axis) -> str:
    """The text of a max/min/argmax with nothing to choose from; it ends with PyTorch's."""
    shape = tuple(shape)
    axes = [] if axis is None else [int(a) for a in np.atleast_1d(axis)]
    empty = [a % len(shape) for a in axes if shape[a] == 0]
    if empty:
        return (f"{fn}: cannot reduce dim {empty[0]} of size 0 (tensor of shape {shape}). "
                f"Expected reduction dim {empty[0]} to have non-zero size.")
    return (f"{fn}: cannot reduce a zero-size tensor of shape {shape} (no identity). Expected "
            "reduction dim to be specified for input.numel() == 0: pass dim= over a "
            "non-empty dim.")


def _checked_extreme(fn_name):
    def fwd(xp, x, axis, keepdims):
        if x.size == 0 and (axis is None or builtins.any(x.shape[a] == 0 for a in axis)):
            raise empty_reduction(fn_name, x.shape, axis)
        return getattr(xp, fn_name)(x, axis=axis, keepdims=keepdims)
    return fwd


MAX = _define("max", _checked_extreme("max"), vjp=_extreme_vjp, saves_output=True)
MIN = _define("min", _checked_extreme("min"), vjp=_extreme_vjp, saves_output=True)


def _extreme_cpu(fn_name):
    checked = _checked_extreme(fn_name)
    arg = getattr(np, "arg" + fn_name)
    ufunc = np.maximum if fn_name == "max" else np.minimum

    def kernel(x, axis, keepdims):
        b = _blocks3(x, axis, f64=False)
        if b is not None and b.shape[2] == 1:
            from .. import _ops
            out = np.empty(b.shape[0], np.float32)
            _ops.extreme_rows_f32(b.reshape(b.shape[:2]), out, fn_name == "min")
            return _block_result(out, x, axis, keepdims)
        b = _fold_blocks(x, axis)
        if b is not None:     # (exact in any order; NaN propagates as in np.max)
            return _block_result(_fold(b, ufunc), x, axis, keepdims)
        # along the contiguous last axis NumPy's argmax is ~1.5-5x faster than its max:
        # the value at that index is the same (the first NaN, if any, as max gives NaN)
        if (axis is not None and len(axis) == 1 and x.ndim > 1 and x.size
                and axis[0] % x.ndim == x.ndim - 1 and x.dtype.kind == "f"
                and x.strides[-1] == x.itemsize and x.shape[-1] >= 16):
            out = np.take_along_axis(x, arg(x, axis=-1, keepdims=True), -1)
            return out if keepdims else out[..., 0]
        return checked(np, x, axis, keepdims)
    return kernel


MAX.set_kernel("cpu", _extreme_cpu("max"))
MIN.set_kernel("cpu", _extreme_cpu("min"))
ALL = _define("all", lambda xp, x, axis, keepdims: xp.all(x, axis=axis, keepdims=keepdims),
              infer=_bool_reduce_infer)
ANY = _define("any", lambda xp, x, axis, keepdims: xp.any(x, axis=axis, keepdims=keepdims),
              infer=_bool_reduce_infer)
# a nonzero test (either part), as NumPy's and PyTorch's; no gradient
ALL.complex = ANY.complex = "forward"


def _var_fwd(xp, x, axis, keepdims, correction):
    return _narrow(xp.var(x, axis=axis, keepdims=keepdims, ddof=correction,
                          dtype=_acc(x.dtype)), x.dtype)


def _var_vjp(n, g):
    x = n.inputs[0]
    dof = builtins.max(_axes_count(n) - n.attrs["correction"], 0)
    centered = x - x.mean(axis=n.attrs["axis"], keepdims=True)
    return (_expand(g, n) * centered * (2.0 / dof if dof else math.inf),)


def _std_vjp(n, g):
    x = n.inputs[0]
    dof = builtins.max(_axes_count(n) - n.attrs["correction"], 0)
    centered = x - x.mean(axis=n.attrs["axis"], keepdims=True)
    from . import elementwise as E
    s = _kept(n.out, n)
    # a constant input (std 0) has centered values 0 too: gradient 0, not 0/0 (as PyTorch)
    s = E.where(s == 0, math.inf, s)
    return (_expand(g, n) * centered / (s * (dof if dof else math.nan)),)


VAR = _define("var", _var_fwd, vjp=_var_vjp, infer=_real_reduce_infer)
STD = _define("std", lambda xp, x, axis, keepdims, correction: _narrow(xp.std(
    x, axis=axis, keepdims=keepdims, ddof=correction, dtype=_acc(x.dtype)), x.dtype),
    vjp=_std_vjp, saves_output=True, infer=_real_reduce_infer)
# the rules hold for complex x as written: the real output's gradient g times the complex
# deviation x - mean is PyTorch's (d|x - m|^2 = 2 (x - m) in its convention)
VAR.complex = STD.complex = "rule"


def _fast_var(x, axis, keepdims, correction):
    """float32 (and float64) variance by the corrected two-pass formula on the cascade sums:
    the float32 mean's rounding (1e4 * 6e-8 for data offset by 1e4) is taken back out by the
    sum of the deviations, which NumPy's var does not do (0.3% off for a spread of 0.01)."""
    b = _blocks3(x, axis) if x.size else None
    if b is None or b.shape[1] <= correction:    # (no degrees of freedom: NumPy's inf/nan)
        return None
    n = b.shape[1]
    # (inf/NaN data gives NaN, as NumPy's and PyTorch's var, without NumPy's warnings)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = _sum_blocks(b, 1.0 / n)
        c = b - mean[:, None, :]
        s1 = _sum_blocks(c, 1.0).astype(np.float64)
        np.multiply(c, c, out=c)
        s2 = _sum_blocks(c, 1.0).astype(np.float64)
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - correction)
        if not np.isfinite(var).all():
            # squares of deviations past float32's range (data spread near 1e19 and
            # beyond): NumPy's float64 variance, which stays finite where PyTorch's does
            var = np.var(b, axis=1, ddof=correction, dtype=np.float64)
    return _block_result(var.astype(x.dtype), x, axis, keepdims)


def _var_small(fn, x, axis, keepdims, correction):
    """NumPy's var/std; float32 in float64 (its float32 squares overflow from ~1e19, where
    PyTorch's stay finite), float16 in float32."""
    acc = np.float64 if x.dtype == np.float32 else _acc(x.dtype)
    out = fn(x, axis=axis, keepdims=keepdims, ddof=correction, dtype=acc)
    return _narrow(out, x.dtype) if x.dtype != np.float32 else out.astype(np.float32)


def _fold_var(x, axis, keepdims, correction):
    """float64 variance as NumPy's var (mean, squared deviations, their sum over the
    degrees of freedom) with the sums by :func:`_fold`."""
    b = _fold_blocks(x, axis) if x.dtype == np.float64 else None
    if b is None or b.shape[1] <= correction:
        return None
    n = b.shape[1]
    with np.errstate(invalid="ignore", over="ignore"):    # inf data: NaN, as NumPy's
        c = b - (_fold(b, np.add) / n)[:, None, :]
        np.multiply(c, c, out=c)
        var = _fold(c, np.add) / (n - correction)
    return _block_result(var, x, axis, keepdims)


def _var_cpu(x, axis, keepdims, correction):
    out = _fast_var(x, axis, keepdims, correction)
    if out is None:
        out = _fold_var(x, axis, keepdims, correction)
    return _var_small(np.var, x, axis, keepdims, correction) if out is None else out


def _std_cpu(x, axis, keepdims, correction):
    out = _fast_var(x, axis, keepdims, correction)
    if out is None:
        out = _fold_var(x, axis, keepdims, correction)
    return _var_small(np.std, x, axis, keepdims, correction) if out is None else np.sqrt(out)


VAR.set_kernel("cpu", _var_cpu)
STD.set_kernel("cpu", _std_cpu)


# logsumexp over a last axis this short takes its max column by column: NumPy's max
# reduction over short rows pays its inner loop per row (1e5 rows of 10: 8 ms, here 1.4 ms)
_LSE_SHORT = 32


def _lse_max(xp, x, axis):
    k = x.shape[-1] if x.ndim else 0
    if (xp is np and 1 < k <= _LSE_SHORT and x.size >= 64 * k and axis is not None
            and len(axis) == 1 and axis[0] % x.ndim == x.ndim - 1):
        m = x[..., 0].copy()
        for j in range(1, k):
            np.maximum(m, x[..., j], out=m)
        return m[..., None]
    return xp.max(x, axis=axis, keepdims=True)


def _lse_fwd(xp, x, axis, keepdims):
    if x.size == 0:
        return xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=keepdims))
    if x.dtype.kind == "c":
        # shifted by the largest real part only: a real shift keeps log's principal branch
        m = xp.max(x.real, axis=axis, keepdims=True)
    else:
        m = _lse_max(xp, x, axis)
    m = xp.where(xp.isfinite(m), m, 0)
    e = x - m
    if xp is np and isinstance(e, np.ndarray) and e.ndim:
        # in place on exp's CPU kernel: float64 takes the vector lanes where NumPy's exp is a
        # libm call per element (no AVX-512; logsumexp was 4.8x PyTorch's time)
        from .elementwise import EXP
        from .registry import cpu_map
        e = cpu_map(EXP)(e, out=e)
    else:
        e = xp.exp(e)
    with np.errstate(divide="ignore"):      # (a row of -inf: log(0) = -inf, quietly)
        out = xp.log(xp.sum(e, axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.squeeze(axis=axis) if axis is not None else out.reshape(())
    return out.astype(x.dtype, copy=False)


LOGSUMEXP = _define("logsumexp", _lse_fwd, saves_output=True,
                    vjp=lambda n, g: (_expand(g, n) * (n.inputs[0] - _kept(n.out, n)).exp(),))
LOGSUMEXP.complex = "holomorphic"


def _norm_fwd(xp, x, axis, keepdims, ord):
    if x.dtype.kind == "c":     # the norm of the magnitudes, real (as PyTorch's)
        x = xp.abs(x)
    dt = x.dtype
    if dt == np.float16:      # squares of float16 overflow at 256: work in float32
        x = x.astype(np.float32)
    if ord == 2:
        return _norm2(xp, x, axis, keepdims).astype(dt, copy=False)
    a = xp.abs(x)
    if ord == 1:
        out = xp.sum(a, axis=axis, keepdims=keepdims)
    elif ord == math.inf:
        out = xp.max(a, axis=axis, keepdims=keepdims)
    elif ord == -math.inf:
        out = xp.min(a, axis=axis, keepdims=keepdims)
    else:
        out = xp.sum(a ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
    return out.astype(dt, copy=False)


def _norm2(xp, x, axis, keepdims):
    # along the contiguous last axis a dot product of x with itself makes no x * x
    # temporary (4096 x 1024 by rows: 1.15 -> 0.3 ms); elsewhere (NumPy's vecdot is slow
    # across rows) and over the whole array (where the pairwise sum is the more accurate)
    # the sum of squares
    if (xp is np and axis is not None and len(axis) == 1 and x.ndim
            and axis[0] % x.ndim == x.ndim - 1 and x.strides[-1] == x.itemsize
            and x.dtype.kind == "f" and x.size):
        out = np.sqrt(np.vecdot(x, x, axis=-1))
        return out[..., None] if keepdims else out
    if xp is np and axis is None and not keepdims:
        sq = _full_sumsq(x)
        if sq is not None:
            return np.sqrt(sq)
    return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))


def _sign_of(x: Tensor) -> Tensor:
    """sign(x), or z / |z| (sgn) for complex x: d|z| = sgn(z) in PyTorch's convention."""
    if x._data.dtype.kind == "c":
        from .complex import sgn
        return sgn(x)
    return x.sign()


def _norm_vjp(n, g):
    x = n.inputs[0]
    p = n.attrs["ord"]
    out = _kept(n.out, n)
    ge = _expand(g, n)
    if p == 2:
        from .elementwise import where
        safe = where(out == 0, 1.0, out)
        return (where(out == 0, 0.0, ge * x / safe),)
    if p == 1:
        return (ge * _sign_of(x),)
    if p in (math.inf, -math.inf):
        a = x.abs()
        mask = (a == out).astype(g.dtype)
        return (ge * _sign_of(x) * mask / mask.sum(axis=n.attrs["axis"], keepdims=True),)
    from .elementwise import where
    safe = where(out == 0, 1.0, out)
    # a zero coordinate gets 0 (PyTorch's): |0| ** (p - 1) is inf for p < 1, sign(0) * inf NaN
    mag = where(x == 0, 1.0, x.abs())
    return (where(out == 0, 0.0, ge * _sign_of(x) * mag ** (p - 1) / safe ** (p - 1)),)


NORM = _define("norm", _norm_fwd, vjp=_norm_vjp, saves_output=True, infer=_real_reduce_infer)
NORM.complex = "rule"


def _index_fwd(fn):
    def fwd(xp, x, axis, keepdims):
        # only an empty reduced dim has no answer: (4, 0, 3) over axis 0 gives (0, 3)
        if x.size == 0 and (axis is None or x.ndim == 0 or
                            0 in [x.shape[a] for a in np.atleast_1d(axis)]):
            raise empty_reduction(fn, x.shape, axis)
        return getattr(xp, fn)(x, axis=axis, keepdims=keepdims)
    return fwd


ARGMAX = _define("argmax", _index_fwd("argmax"), infer=_index_infer)
ARGMIN = _define("argmin", _index_fwd("argmin"), infer=_index_infer)


def _index_cpu(fn: str):
    """NumPy's argmax/argmin pay ~3 ns an element on short rows (8-64 along the last axis)
    and copy the array to move any other axis last: ``max(dim=)`` on (8, 64, 512, 16) was
    1.5-1.8x PyTorch while ``amax`` beat it. Both fast cases find the extreme values first
    (amax's kernels) and then the first index holding them; a NaN extreme, where
    ``==`` fails, and every other shape stay with NumPy."""
    checked = _index_fwd(fn)
    extreme = np.max if fn == "argmax" else np.min

    def kernel(x, axis, keepdims):
        if (axis is None or x.ndim == 0 or x.size < _KERNEL_MIN or x.dtype.kind not in "fiu"
                or np.ndim(axis) != 0):
            return checked(np, x, axis, keepdims)
        ax = int(axis) % x.ndim
        n = x.shape[ax]
        inner = math.prod(x.shape[ax + 1:])
        if ax == x.ndim - 1 and x.dtype == np.float32 and 8 <= n < 64:
            from .. import _ops
            rows = np.ascontiguousarray(x).reshape(-1, n)
            v = np.empty(rows.shape[0], np.float32)
            _ops.extreme_rows_f32(rows, v, fn == "argmin")
            if np.isnan(v).any():
                return checked(np, x, axis, keepdims)
            # NumPy's argmax over bool rows is a byte search, ~8x its float one
            idx = np.argmax(rows == v[:, None], axis=1)
        elif n <= 64 and inner >= 16 and x.size // n >= 4096:
            # one pass over each slice along the axis, contiguous inner rows, last j wins
            # backwards so the first index holding the extreme is kept (NumPy's and
            # PyTorch's tie rule)
            x3 = np.ascontiguousarray(x).reshape(-1, n, inner)
            v = extreme(x3, axis=1)
            if x.dtype.kind == "f" and np.isnan(v).any():
                return checked(np, x, axis, keepdims)
            idx = np.zeros(v.shape, np.int64)
            eq = np.empty(v.shape, bool)
            for j in range(n - 1, -1, -1):
                np.equal(x3[:, j], v, out=eq)
                np.copyto(idx, j, where=eq)
        else:
            return checked(np, x, axis, keepdims)
        shape = list(x.shape)
        if keepdims:
            shape[ax] = 1
        else:
            del shape[ax]
        return idx.astype(np.int64, copy=False).reshape(shape)
    return kernel


ARGMAX.set_kernel("cpu", _index_cpu("argmax"))
ARGMIN.set_kernel("cpu", _index_cpu("argmin"))


# --- scans --------------------------------------------------------------------
def _scan_infer(x, *, axis):
    shape, dt = x
    return shape, np.dtype(_sum_dtype(np.dtype(dt)))


def _cumsum_vjp(n, g):
    a = n.attrs["axis"]
    if g.ndim == 0:                              # a 0-d tensor scans to itself
        return (g,)
    return (g.flip(a).cumsum(a).flip(a),)


def _cumprod_vjp(n, g):
    # grad_i = sum_{j>=i} g_j prod_{k<=j, k!=i} x_k = (prod_{k<i} x_k) S_i, where
    # S_i = g_i + x_{i+1} S_{i+1}: a reverse linear recurrence (log2(n) steps of tensorlib
    # ops, so grad of grad works), exact where inputs are zero (no division), O(n log n)
    # work where an (n, n) matrix of partial products needed O(n^2) time and memory
    from .cumulative import _along, _reverse_linear_scan
    from .shape import concatenate
    x = n.inputs[0]
    a = n.attrs["axis"]
    if x.ndim == 0 or x.shape[a] < 2:            # a 0-d tensor scans to itself
        return (g,)
    if state.tracer is None and not (state.grad_enabled
                                     and (g.requires_grad or x.requires_grad)):
        # no graph wanted (a plain backward, no capture): the same recurrence in one op,
        # two passes a row in Cython on the CPU (the scan below was 3-4x PyTorch)
        from .cumulative import cumprod_grad
        return (cumprod_grad(g, x.detach(), a),)
    m = x.shape[a]
    s = _reverse_linear_scan(g, _along(x, a, slice(1, None)), a)
    head = _along(x, a, slice(0, 1))
    before = concatenate([head * 0.0 + 1.0, _along(x.cumprod(a), a, slice(0, m - 1))], axis=a)
    return (before * s,)


def _scan(name):
    def fwd(xp, x, axis):
        if x.ndim == 0:     # a 0-d tensor scans to itself (NumPy would give shape (1,))
            return x.astype(_sum_dtype(x.dtype))
        if xp is np and x.dtype in (np.float32, np.float64):
            # a double accumulator, as PyTorch's CPU scans (a float32 running sum of 10^5
            # terms drifts by 1e-4 relative: no pairwise summation is possible in a scan),
            # several rows interleaved so the sequential adds overlap
            from . import _scan_cpu
            r = _scan_cpu.cum_float(x, axis, name)
            if r is not None:
                return r
        if (xp is np and name == "cumsum" and x.dtype in _CUMSUM_KERNEL
                and x.size >= _KERNEL_MIN and x.flags.c_contiguous
                and axis % x.ndim < x.ndim - 1):
            # (NumPy's int64 running sum along the last axis is the faster one)
            from .. import _ops
            # NumPy's int64 cumsum was 1.3-4x PyTorch's (3.5x along axis 0)
            out = np.empty(x.shape, x.dtype)
            _ops.cumsum_mid(around_axis(x, axis), around_axis(out, axis))
            return out
        return _narrow(getattr(xp, name)(x, axis=axis, dtype=_acc(x.dtype)), x.dtype)
    return fwd


_CUMSUM_KERNEL = (np.dtype(np.int64),)
CUMSUM = register(OpDef("cumsum", _scan("cumsum"),
                        infer=_scan_infer, cost=_reduce_cost, saves=False, vjp=_cumsum_vjp,
                        complex="holomorphic"))
CUMPROD = register(OpDef("cumprod", _scan("cumprod"),
                         infer=_scan_infer, cost=_reduce_cost, vjp=_cumprod_vjp,
                         complex="holomorphic"))


def _prod_fwd(xp, x, axis, keepdims):
    return _narrow(xp.prod(x, axis=axis, keepdims=keepdims, dtype=_acc(x.dtype)), x.dtype)


def _prod_vjp(n, g):
    # product of all the other elements, exact where inputs are zero
    x = n.inputs[0]
    axis = n.attrs["axis"]
    shape = x.shape
    axes = tuple(range(len(shape))) if axis is None else axis
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = rest + list(axes)
    xt = x.transpose(perm) if perm != list(range(len(shape))) else x
    k = math.prod(shape[i] for i in axes)
    flat = xt.reshape(tuple(shape[i] for i in rest) + (k,))
    from ..creation import ones
    from .shape import concatenate
    one = ones(tuple(shape[i] for i in rest) + (1,), dtype=x.dtype, device=x.device)
    left = concatenate([one, flat[..., :-1]], axis=-1).cumprod(-1) if k else flat
    right = concatenate([one, flat.flip(-1)[..., :-1]], axis=-1).cumprod(-1).flip(-1) if k else flat
    others = (left * right).reshape(xt.shape)
    inv = np.argsort(perm).tolist()
    others = others.transpose(inv) if perm != list(range(len(shape))) else others
    return (_expand(g, n) * others,)


PROD = _define("prod", _prod_fwd, vjp=_prod_vjp, infer=_sum_infer)
PROD.complex = "holomorphic"


def _prod_cpu(x, axis, keepdims):
    b = _fold_blocks(x, axis)
    if b is None:
        return _prod_fwd(np, x, axis, keepdims)
    return _block_result(_fold(b, np.multiply), x, axis, keepdims)


PROD.set_kernel("cpu", _prod_cpu)


def _no_complex(name: str, hint: str):
    def check(x, **attrs):
        if x.dtype.kind == "c":
            raise DTypeError(f"{name}: {hint}")
    return check


# complex numbers have no order: refused with PyTorch's reason, not the gate's generic one
for _op in (MAX, MIN, ARGMAX, ARGMIN):
    _op.complex = "forward"
    _op.check = _no_complex(_op.name, "does not support complex input (complex numbers have "
                                      "no order, as in PyTorch); reduce z.real or z.abs()")


# --- public functions -----------------------------------------------------------
# Every reduction takes NumPy's ``axis=``/``keepdims=`` and, as aliases, PyTorch's
# ``dim=``/``keepdim=`` (passing both spellings of one argument is a TypeError).

class max_result(NamedTuple):
    """``(values, indices)`` of ``max(x, dim=d)`` (``torch.return_types.max``)."""
    values: Tensor
    indices: Tensor


class min_result(NamedTuple):
    """``(values, indices)`` of ``min(x, dim=d)`` (``torch.return_types.min``)."""
    values: Tensor
    indices: Tensor


def _axis_args(name: str, axis, keepdims, dim, keepdim, empty_dim_is_all: bool = True):
    """``(axis, keepdims)`` from NumPy's and PyTorch's spellings of the same arguments.

    An empty ``dim=`` (``()`` or ``[]``) is every dim, as PyTorch's reductions (NumPy's
    ``axis=()`` reduces none); ``all``/``any`` keep PyTorch's own exception (none)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{name}: got both axis= and dim= (NumPy's and PyTorch's names "
                            "for the same argument); pass one")
        axis = dim
        if empty_dim_is_all and isinstance(dim, (tuple, list)) and not dim:
            axis = None
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{name}: got both keepdims= and keepdim= (NumPy's and PyTorch's "
                            "names for the same argument); pass one")
        keepdims = keepdim
    return axis, bool(keepdims)


def _positional_dim(name: str, dim_, keepdim_, axis, keepdims, dim, keepdim):
    """``(dim, keepdim)`` with the positional ones folded in: a positional dim is PyTorch's
    (``x.sum(())`` reduces every dim, as ``dim=()``; only ``axis=()`` is NumPy's none)."""
    if dim_ is not None:
        if dim is not None or axis is not None:
            raise TypeError(f"{name}: got a positional dim and dim=/axis=; pass one")
        dim = dim_
    if keepdim_ is not None:
        if keepdim is not None or keepdims:
            raise TypeError(f"{name}: got a positional keepdim and keepdim=/keepdims=; pass "
                            "one")
        keepdim = keepdim_
    return dim, keepdim


def _cast_in(name: str, x, dtype, floating: bool = False) -> Tensor:
    """``x`` cast to ``dtype`` before a reduction (PyTorch's and NumPy's ``dtype=``)."""
    x = to_tensor(x)
    if dtype is None:
        return x
    from .. import _dtypes
    dt = np.dtype(_dtypes.as_dtype(dtype))
    if floating and dt.kind != "f":
        raise TypeError(f"{name}: dtype must be a floating dtype, got {dt}")
    return x if x.dtype == dt else x.astype(dt)


def _cast_out(out: Tensor, dtype) -> Tensor:
    if dtype is None:
        return out
    from .. import _dtypes
    dt = np.dtype(_dtypes.as_dtype(dtype))
    return out if out.dtype == dt else out.astype(dt)


def sum(x, dim_=None, keepdim_: bool | None = None, /, *, axis=None, keepdims: bool = False,
        dim=None, keepdim: bool | None = None, dtype=None) -> Tensor:
    """Sum of ``x``'s elements over ``dim`` (``torch.sum``).

    Args:
        dim: an int, a tuple of ints, or None for every dim (``axis=`` is NumPy's name). An
            empty ``dim`` (``x.sum(())``) is every dim, as PyTorch; only ``axis=()`` is
            NumPy's "no dim".
        keepdim: keep the summed dims with size 1 (``keepdims=`` is NumPy's name).
        dtype: cast the input to this dtype first; without it ints and bools sum to int64,
            as PyTorch.

    >>> x = tl.tensor([[1., 2.], [3., 4.]])
    >>> x.sum()
    tensor(10.)
    >>> x.sum(dim=0), x.sum(1, keepdim=True).shape
    (tensor([4., 6.]), (2, 1))
    """
    if dim_ is not None or keepdim_ is not None:
        dim, keepdim = _positional_dim("sum", dim_, keepdim_, axis, keepdims, dim, keepdim)
    if state.autocast is not None:
        return autocast_call(sum, "sum", x, axis=axis, keepdims=keepdims, dim=dim,
                             keepdim=keepdim, dtype=dtype)
    if dim is not None or keepdim is not None:
        axis, keepdims = _axis_args("sum", axis, keepdims, dim, keepdim)
    if dtype is None:       # the common call: no extra Python frames (W1b's per-op cost)
        return _call(SUM, x, axis, keepdims)
    return _cast_out(_call(SUM, _cast_in("sum", x, dtype), axis, keepdims), dtype)


def mean(x, dim_=None, keepdim_: bool | None = None, /, *, axis=None, keepdims: bool = False,
         dim=None, keepdim: bool | None = None, dtype=None) -> Tensor:
    """Mean of ``x``'s elements over ``dim`` (``torch.mean``).

    ``dim`` is an int, a tuple or None for every dim (``axis=`` is NumPy's name);
    ``keepdim`` keeps the reduced dims with size 1. ``dtype`` (a float dtype) casts the
    input first. Integer and bool inputs are refused without ``dtype=``, as PyTorch's
    (cast them: ``x.float().mean()``). The mean of no elements is NaN.

    >>> x = tl.tensor([[1., 2.], [3., 4.]])
    >>> x.mean(), x.mean(dim=1)
    (tensor(2.5000), tensor([1.5000, 3.5000]))
    """
    if dim_ is not None or keepdim_ is not None:
        dim, keepdim = _positional_dim("mean", dim_, keepdim_, axis, keepdims, dim, keepdim)
    if dim is not None or keepdim is not None:
        axis, keepdims = _axis_args("mean", axis, keepdims, dim, keepdim)
    if dtype is not None:
        x = _cast_in("mean", x, dtype, floating=True)
    else:
        floating_only("mean", x, "pass dtype=tl.float32 or cast it, e.g. x.float().mean()")
    return _call(MEAN, x, axis, keepdims, floating=True)


def floating_only(name: str, x, fix: str) -> None:
    """Refuse an integer or bool tensor where PyTorch's ``name`` (mean, var, std and their
    ``*_mean`` forms) only takes floating point or complex ones; ``fix`` says what to do."""
    if isinstance(x, Tensor) and x._data.dtype.kind in "biu":
        raise DTypeError(f"{name}: the input must be a floating point or complex tensor, got "
                         f"{x.dtype} (as PyTorch's); {fix}")


def prod(x, axis=None, keepdims: bool = False, *, dim=None, keepdim: bool | None = None,
         dtype=None) -> Tensor:
    """Product over ``axis`` (``dim=``); signed ints and bools give int64 unless ``dtype`` is
    given. The gradient is exact where inputs are zero."""
    if state.autocast is not None:
        return autocast_call(prod, "prod", x, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)
    if isinstance(dim, (tuple, list)) and not dim:
        raise TypeError("prod: dim= must be an int (or a tuple of them), got an empty "
                        f"{type(dim).__name__}; leave it out to multiply every element")
    axis, keepdims = _axis_args("prod", axis, keepdims, dim, keepdim)
    return _cast_out(_call(PROD, _cast_in("prod", x, dtype), axis, keepdims), dtype)


def _extreme(name, op, arg_op, pairwise, result, x, axis, keepdims, dim, keepdim, other):
    if other is not None or isinstance(axis, Tensor):
        # torch.max(a, b): the elementwise maximum
        if other is not None and axis is not None:
            raise TypeError(f"{name}: got both a second tensor and an axis")
        if dim is not None or keepdim is not None or keepdims:
            raise TypeError(f"{name}: a second tensor takes no dim/keepdim (elementwise "
                            f"{'maximum' if name == 'max' else 'minimum'})")
        return pairwise(x, axis if other is None else other)
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{name}: got both axis= and dim= (NumPy's and PyTorch's names "
                            "for the same argument); pass one")
        _, keepdims = _axis_args(name, None, keepdims, None, keepdim)
        return _extreme_dim(name, arg_op, result, x, dim, keepdims)
    axis, keepdims = _axis_args(name, axis, keepdims, dim, keepdim)
    return _call(op, x, axis, keepdims)


def _extreme_dim(name, arg_op, result, x, dim, keepdims):
    """PyTorch's ``max(x, dim=d)``: values and the index of each (the first on ties); the
    gradient goes to that one index per reduced row."""
    from .indexing import take_along_axis
    x = to_tensor(x)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim= must be an int (PyTorch's {name}(dim=) gives values and "
                        f"indices along one dim), got {dim!r}; for several axes use axis= or "
                        f"a{name}")
    scalar = x.ndim == 0
    src = x.reshape((1,)) if scalar else x
    d = norm_axis(dim, src.ndim, name)
    if src.shape[d] == 0:
        raise empty_reduction(name, tuple(x.shape), d)
    idx = apply(arg_op, src, axis=d, keepdims=True)
    values = take_along_axis(src, idx, d)
    if scalar:
        return result(values.reshape(()), idx.reshape(()))
    if not keepdims:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return result(values, idx)


def _positional(name: str, args: tuple, axis, keepdims, dim, keepdim, other):
    """Sort ``max``/``min``'s positional arguments after x: an int is PyTorch's ``dim``
    (``x.max(1)``, ``x.max(1, True)``: values and indices), a tensor PyTorch's second operand,
    a tuple NumPy's ``axis`` (then ``keepdims``)."""
    if len(args) > 2:
        raise TypeError(f"{name}: takes at most 2 positional arguments after the tensor, got "
                        f"{len(args)}")
    if not args:
        return axis, keepdims, dim, keepdim, other
    first, rest = args[0], args[1:]
    if isinstance(first, Tensor):
        if other is not None:
            raise TypeError(f"{name}: got two second tensors")
        other = first
    elif isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        if dim is not None or axis is not None:
            raise TypeError(f"{name}: got a positional dim and dim=/axis=")
        dim = first
    else:
        if axis is not None:
            raise TypeError(f"{name}: got a positional axis and axis=")
        axis = first
    if rest:
        if dim is not None:
            keepdim = bool(rest[0])
        else:
            keepdims = bool(rest[0])
    return axis, keepdims, dim, keepdim, other


def max(x, *args, axis=None, keepdims: bool = False, dim=None, keepdim: bool | None = None,
        other=None):
    """Largest value. NumPy's spelling gives values only: ``max(x)``, ``max(x, axis=1)``
    (int, tuple or None), ties sharing the gradient equally. PyTorch's spellings give
    PyTorch's results:

    - ``x.max(1)``, ``x.max(1, True)``, ``max(x, dim=1, keepdim=True)``: a
      ``(values, indices)`` named tuple (the first index on ties), the gradient to that
      index only, so ``_, pred = out.max(1)`` works;
    - ``max(a, b)`` with a second tensor: the elementwise ``maximum``.

    >>> tl.tensor([[1.0, 5.0], [7.0, 2.0]]).max(1).indices
    tensor([1, 0])
    """
    from .elementwise import maximum
    axis, keepdims, dim, keepdim, other = _positional("max", args, axis, keepdims, dim,
                                                      keepdim, other)
    return _extreme("max", MAX, ARGMAX, maximum, max_result, x, axis, keepdims, dim, keepdim,
                    other)


def min(x, *args, axis=None, keepdims: bool = False, dim=None, keepdim: bool | None = None,
        other=None):
    """Smallest value (``torch.min``); the mirror of :func:`max`.

    - ``min(x)``: the smallest element (0-d); NumPy's ``min(x, axis=...)`` gives values
      only, ties sharing the gradient equally;
    - ``x.min(1)``, ``x.min(1, True)``, ``min(x, dim=1, keepdim=True)``: PyTorch's
      ``(values, indices)`` named tuple (the first index on ties), the gradient to that
      index only;
    - ``min(a, b)`` with a second tensor: the elementwise ``minimum``.

    >>> x = tl.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> x.min()
    tensor(1.)
    >>> values, indices = x.min(dim=1)
    >>> values, indices
    (tensor([1., 2.]), tensor([0, 1]))
    """
    from .elementwise import minimum
    axis, keepdims, dim, keepdim, other = _positional("min", args, axis, keepdims, dim,
                                                      keepdim, other)
    return _extreme("min", MIN, ARGMIN, minimum, min_result, x, axis, keepdims, dim, keepdim,
                    other)


def amax(x, dim_=None, keepdim_: bool | None = None, /, *, axis=None,
         keepdims: bool = False, dim=None, keepdim: bool | None = None) -> Tensor:
    """Largest value over ``axis`` (``dim=``), values only (also with ``dim=``, as
    ``torch.amax``); ties share the gradient equally."""
    dim, keepdim = _positional_dim("amax", dim_, keepdim_, axis, keepdims, dim, keepdim)
    axis, keepdims = _axis_args("amax", axis, keepdims, dim, keepdim)
    return _call(MAX, x, axis, keepdims)


def amin(x, dim_=None, keepdim_: bool | None = None, /, *, axis=None,
         keepdims: bool = False, dim=None, keepdim: bool | None = None) -> Tensor:
    """Smallest value over ``axis`` (``dim=``), values only (as ``torch.amin``)."""
    dim, keepdim = _positional_dim("amin", dim_, keepdim_, axis, keepdims, dim, keepdim)
    axis, keepdims = _axis_args("amin", axis, keepdims, dim, keepdim)
    return _call(MIN, x, axis, keepdims)


def all(x, axis=None, keepdims: bool = False, *, dim=None,
        keepdim: bool | None = None) -> Tensor:
    """Whether every element over ``axis`` (``dim=``) is nonzero, as a bool tensor (uint8
    for a uint8 input, as PyTorch's)."""
    # PyTorch's all(dim=()) reduces nothing, unlike its other reductions
    axis, keepdims = _axis_args("all", axis, keepdims, dim, keepdim, empty_dim_is_all=False)
    return _uint8_kept(x, _call(ALL, x, axis, keepdims))


def _uint8_kept(x, out: Tensor) -> Tensor:
    # PyTorch's any/all of uint8 are uint8 (0/1), kept for backward compatibility
    return out.astype(np.uint8) if isinstance(x, Tensor) and x._data.dtype == np.uint8 else out


def any(x, axis=None, keepdims: bool = False, *, dim=None,
        keepdim: bool | None = None) -> Tensor:
    """Whether some element over ``axis`` (``dim=``) is nonzero, as a bool tensor (uint8
    for a uint8 input, as PyTorch's)."""
    # PyTorch's any(dim=()) reduces nothing, unlike its other reductions
    axis, keepdims = _axis_args("any", axis, keepdims, dim, keepdim, empty_dim_is_all=False)
    return _uint8_kept(x, _call(ANY, x, axis, keepdims))


def _correction(name: str, correction, unbiased) -> int | float:
    if unbiased is not None:
        if correction is not None:
            raise TypeError(f"{name}: got both correction= and unbiased=; pass one")
        return 1 if unbiased else 0
    if correction is None:
        return 1
    if isinstance(correction, bool):        # x.var(True): PyTorch's positional unbiased
        return int(correction)
    if not isinstance(correction, (int, float, np.number)):
        raise TypeError(f"{name}: correction must be a number, got {correction!r}")
    # a fractional correction is PyTorch's too (it was truncated to an int here)
    return int(correction) if float(correction).is_integer() else float(correction)


def _one_of(name: str, what: str, positional, keyword):
    if positional is not None and keyword is not None:
        raise TypeError(f"{name}: got {what} both positionally and as {what}=; pass one")
    return keyword if positional is None else positional


def _unbiased_first(name: str, dim, correction_, correction, unbiased):
    """PyTorch's ``var(x, unbiased)`` overload: a bool where the dim goes is ``unbiased``
    (over every element), never dim 0/1."""
    if isinstance(dim, (bool, np.bool_)):
        if correction_ is not None or correction is not None or unbiased is not None:
            raise TypeError(f"{name}: a bool in the dim slot is PyTorch's unbiased "
                            f"({name}(x, unbiased)); it takes no correction/unbiased too")
        return None, bool(dim)
    return dim, unbiased


def var(x, dim_=None, correction_: int | None = None, keepdim_: bool | None = None, /, *,
        axis=None, keepdims: bool = False, dim=None, keepdim: bool | None = None,
        correction: int | None = None, unbiased: bool | None = None) -> Tensor:
    """Variance over ``dim`` (``axis=``) with ``correction`` (1, the default: unbiased, as
    PyTorch; 0: as NumPy's default). PyTorch's ``unbiased=True/False`` is
    ``correction=1/0``, also positionally: ``x.var(False)`` is the biased variance of every
    element, ``x.var(1, False)`` along dim 1."""
    floating_only("var", x, "cast it first, e.g. x.float().var()")
    dim_, unbiased = _unbiased_first("var", dim_, correction_, correction, unbiased)
    correction = _one_of("var", "correction", correction_, correction)
    dim, keepdim = _positional_dim("var", dim_, keepdim_, axis, keepdims, dim, keepdim)
    axis, keepdims = _axis_args("var", axis, keepdims, dim, keepdim)
    return _call(VAR, x, axis, keepdims, floating=True,
                 correction=_correction("var", correction, unbiased))


def std(x, dim_=None, correction_: int | None = None, keepdim_: bool | None = None, /, *,
        axis=None, keepdims: bool = False, dim=None, keepdim: bool | None = None,
        correction: int | None = None, unbiased: bool | None = None) -> Tensor:
    """Standard deviation over ``dim`` (``axis=``) with ``correction`` (1, the default:
    unbiased, as PyTorch; 0: as NumPy's default). PyTorch's ``unbiased=True/False`` is
    ``correction=1/0``, also positionally (``x.std(False)``: every element, biased)."""
    floating_only("std", x, "cast it first, e.g. x.float().std()")
    dim_, unbiased = _unbiased_first("std", dim_, correction_, correction, unbiased)
    correction = _one_of("std", "correction", correction_, correction)
    dim, keepdim = _positional_dim("std", dim_, keepdim_, axis, keepdims, dim, keepdim)
    axis, keepdims = _axis_args("std", axis, keepdims, dim, keepdim)
    return _call(STD, x, axis, keepdims, floating=True,
                 correction=_correction("std", correction, unbiased))


def logsumexp(x, dim_=None, keepdim_: bool | None = None, /, *, axis=None,
              keepdims: bool = False, dim=None, keepdim: bool | None = None) -> Tensor:
    """log(sum(exp(x))) over ``dim`` (``axis=``), computed without overflow."""
    dim, keepdim = _positional_dim("logsumexp", dim_, keepdim_, axis, keepdims, dim, keepdim)
    if state.autocast is not None:
        return autocast_call(logsumexp, "logsumexp", x, axis=axis, keepdims=keepdims, dim=dim,
                             keepdim=keepdim)
    axis, keepdims = _axis_args("logsumexp", axis, keepdims, dim, keepdim)
    return _call(LOGSUMEXP, x, axis, keepdims, floating=True)


def norm(x, ord: float | str | None = None, axis=None, keepdims: bool = False, *,
         p: float | str | None = None, dim=None, keepdim: bool | None = None,
         dtype=None) -> Tensor:
    """Vector p-norm over ``axis`` (all elements for None): ord (PyTorch's ``p=``) in
    {1, 2 (the default, also 'fro'), inf, -inf, p>0}."""
    if state.autocast is not None:
        return autocast_call(norm, "norm", x, ord, axis, keepdims, p=p, dim=dim, keepdim=keepdim,
                             dtype=dtype)
    if p is not None:
        if ord is not None:
            raise TypeError("norm: got both ord= and p= (NumPy's and PyTorch's names for the "
                            "same argument); pass one")
        ord = p
    axis, keepdims = _axis_args("norm", axis, keepdims, dim, keepdim)
    if ord == "nuc":
        return _nuclear_norm(x, axis, keepdims, dtype)
    if ord in ("fro", None):
        ord = 2
    if isinstance(ord, bool) or not isinstance(ord, (int, float)) or \
            (ord < 0 and ord != -math.inf):
        raise ValueError(f"norm: ord must be 0, a positive number, +-inf or 'nuc', got "
                         f"{ord!r}")
    if ord == 0:
        x = _cast_in("norm", x, dtype, floating=True)
        x = to_float(x)
        real = _dtypes.real_of(x.dtype)
        count = (x != 0).astype(real).sum(axis=axis, keepdims=keepdims)
        return count + zero_grad_link(x if x.dtype.kind != "c" else x.abs())
    ord = ord if ord in (1, 2) else float(ord)
    x = _cast_in("norm", x, dtype, floating=True)
    return _call(NORM, x, axis, keepdims, floating=True, ord=ord)


def zero_grad_link(x: Tensor) -> Tensor:
    """A 0-d zero of ``x``'s dtype that depends on ``x`` with a zero gradient: added to a
    piecewise-constant result (a count of nonzeros), it keeps PyTorch's "requires grad,
    gradient 0" without touching the values (a sum over no elements is exactly 0, even where
    ``x`` holds inf or NaN)."""
    return x.reshape(-1)[:0].sum()


def ties_share_grad(x: Tensor, v: Tensor) -> Tensor:
    """``v`` (a 0-d value picked from ``x`` by an order statistic) with its gradient split
    evenly among the elements of ``x`` equal to it: PyTorch's backward of a whole-tensor
    ``median()`` / ``nanmedian()`` (for x = [2, 1, 2, 0, 2]: [1/3, 0, 1/3, 0, 1/3]).

    The value stays ``v`` bit for bit (``x - x.detach()`` is exactly 0 where it is kept); a
    non-finite ``v`` keeps the plain pick's gradient (``inf - inf`` would be NaN).

    >>> x = tl.tensor([2.0, 1.0, 2.0], requires_grad=True)
    >>> ties_share_grad(x, x.max()).backward(); x.grad
    tensor([0.5000, 0.0000, 0.5000])
    """
    from .elementwise import where
    if not x.requires_grad or x.dtype.kind != "f":
        return v
    vd = v.detach()
    tied = x == vd
    count = tied.astype(np.int64).sum().clip(1, None)
    share = vd + where(tied, x - x.detach(), 0.0).sum() / count
    return where(vd.isfinite(), share.astype(v.dtype), v)


def _nuclear_norm(x, axis, keepdims: bool, dtype) -> Tensor:
    """``norm(x, p='nuc')``: the sum of singular values over two dims (PyTorch's: the input
    must be 2-d when no dims are given)."""
    from .decompositions import matrix_norm
    x = to_tensor(x)
    if axis is None:
        if x.ndim != 2:
            raise ValueError(f"norm: p='nuc' needs a 2-d input or dim= with two dims, got "
                             f"shape {tuple(x.shape)}")
        axis = (0, 1)
    if isinstance(axis, (int, np.integer)) or len(axis) != 2:
        raise ValueError(f"norm: p='nuc' needs two dims, got dim={axis!r}")
    return matrix_norm(x, "nuc", dim=tuple(axis), keepdim=keepdims, dtype=dtype)


def argmax(x, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the largest value along ``dim`` (``torch.argmax``), as int64.

    With ``dim=None`` the index is into the flattened tensor; ``keepdim`` keeps the
    reduced dim with size 1 (``axis``/``keepdims`` are NumPy's names). The first index on
    ties, and NaN counts as the largest, as PyTorch. Not differentiable.

    >>> logits = tl.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 3.0]])
    >>> logits.argmax(dim=1)
    tensor([1, 0])
    >>> logits.argmax()
    tensor(3)
    """
    axis, keepdims = _axis_args("argmax", axis, keepdims, dim, keepdim, empty_dim_is_all=False)
    return _arg(ARGMAX, x, axis, keepdims)


def argmin(x, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the smallest value along ``axis`` (``dim=``; into the flattened tensor when
    None), as int64; the first one on ties. Not differentiable."""
    axis, keepdims = _axis_args("argmin", axis, keepdims, dim, keepdim, empty_dim_is_all=False)
    return _arg(ARGMIN, x, axis, keepdims)


def _arg(op, x, axis, keepdims):
    x = to_tensor(x)
    if axis is not None:
        axis = norm_axis(axis, x.ndim, op.name)
    return apply(op, x, axis=axis, keepdims=bool(keepdims))


def cumsum(x, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """Running sum along ``axis`` (``dim=``), an int (default 0; NumPy's None, which
    flattens, is not accepted); signed ints and bools give int64 unless ``dtype`` is given
    (the input is cast to it first)."""
    if state.autocast is not None:
        return autocast_call(cumsum, "cumsum", x, axis, dim=dim, dtype=dtype)
    axis, _ = _axis_args("cumsum", axis, False, dim, None)
    axis = 0 if axis is None else axis
    x = _cast_in("cumsum", x, dtype)
    return _cast_out(apply(CUMSUM, x, axis=norm_axis(axis, x.ndim, "cumsum")), dtype)


def cumprod(x, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """Running product along ``axis`` (``dim=``), an int (default 0); signed ints and bools
    give int64 unless ``dtype`` is given. The gradient is exact where inputs are zero."""
    if state.autocast is not None:
        return autocast_call(cumprod, "cumprod", x, axis, dim=dim, dtype=dtype)
    axis, _ = _axis_args("cumprod", axis, False, dim, None)
    axis = 0 if axis is None else axis
    x = _cast_in("cumprod", x, dtype)
    return _cast_out(apply(CUMPROD, x, axis=norm_axis(axis, x.ndim, "cumprod")), dtype)

