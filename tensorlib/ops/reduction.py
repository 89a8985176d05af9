"""Reductions over ``axis`` (int, tuple or None) with ``keepdims``; scans."""
from __future__ import annotations

import builtins
import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register
from ._util import norm_axes, norm_axis, numel, to_float, to_tensor


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
    axes = norm_axes(axis, x._data.ndim, op.name)
    return apply(op, x, axis=None if axis is None else axes, keepdims=bool(keepdims), **attrs)


SUM = _define("sum", lambda xp, x, axis, keepdims: _narrow(
    xp.sum(x, axis=axis, keepdims=keepdims, dtype=_acc(x.dtype)), x.dtype),
              vjp=lambda n, g: (_expand(g, n),), infer=_sum_infer, saves=False)
MEAN = _define("mean", lambda xp, x, axis, keepdims: xp.mean(x, axis=axis, keepdims=keepdims),
               vjp=lambda n, g: (_expand(g, n) * (1.0 / builtins.max(_axes_count(n), 1)),),
               saves=False)


def _extreme_vjp(n, g):
    from . import elementwise as E
    x = n.inputs[0]
    m = _kept(n.out, n)
    # a NaN is the max (NumPy propagates it): its gradient goes there, as PyTorch's
    mask = ((x == m) | (E.isnan(x) & E.isnan(m))).astype(g.dtype)
    count = mask.sum(axis=n.attrs["axis"], keepdims=True)
    return (_expand(g, n) * mask / count,)


def _checked_extreme(fn_name):
    def fwd(xp, x, axis, keepdims):
        if x.size == 0 and (axis is None or builtins.any(x.shape[a] == 0 for a in axis)):
            raise ValueError(f"{fn_name}: cannot reduce a zero-size tensor of shape {x.shape} "
                             "(no identity)")
        return getattr(xp, fn_name)(x, axis=axis, keepdims=keepdims)
    return fwd


MAX = _define("max", _checked_extreme("max"), vjp=_extreme_vjp, saves_output=True)
MIN = _define("min", _checked_extreme("min"), vjp=_extreme_vjp, saves_output=True)
ALL = _define("all", lambda xp, x, axis, keepdims: xp.all(x, axis=axis, keepdims=keepdims),
              infer=_bool_reduce_infer)
ANY = _define("any", lambda xp, x, axis, keepdims: xp.any(x, axis=axis, keepdims=keepdims),
              infer=_bool_reduce_infer)


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


VAR = _define("var", _var_fwd, vjp=_var_vjp)
STD = _define("std", lambda xp, x, axis, keepdims, correction: _narrow(xp.std(
    x, axis=axis, keepdims=keepdims, ddof=correction, dtype=_acc(x.dtype)), x.dtype),
    vjp=_std_vjp, saves_output=True)


def _lse_fwd(xp, x, axis, keepdims):
    if x.size == 0:
        return xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=keepdims))
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.squeeze(axis=axis) if axis is not None else out.reshape(())
    return out.astype(x.dtype, copy=False)


LOGSUMEXP = _define("logsumexp", _lse_fwd, saves_output=True,
                    vjp=lambda n, g: (_expand(g, n) * (n.inputs[0] - _kept(n.out, n)).exp(),))


def _norm_fwd(xp, x, axis, keepdims, ord):
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
    return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))


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
        return (ge * x.sign(),)
    if p in (math.inf, -math.inf):
        a = x.abs()
        mask = (a == out).astype(g.dtype)
        return (ge * x.sign() * mask / mask.sum(axis=n.attrs["axis"], keepdims=True),)
    from .elementwise import where
    safe = where(out == 0, 1.0, out)
    return (where(out == 0, 0.0, ge * x.sign() * x.abs() ** (p - 1) / safe ** (p - 1)),)


NORM = _define("norm", _norm_fwd, vjp=_norm_vjp, saves_output=True)


def _index_fwd(fn):
    def fwd(xp, x, axis, keepdims):
        if x.size == 0:
            raise ValueError(f"{fn}: cannot take {fn} of a zero-size tensor")
        return getattr(xp, fn)(x, axis=axis, keepdims=keepdims)
    return fwd


ARGMAX = _define("argmax", _index_fwd("argmax"), infer=_index_infer)
ARGMIN = _define("argmin", _index_fwd("argmin"), infer=_index_infer)


# --- scans --------------------------------------------------------------------
def _scan_infer(x, *, axis):
    shape, dt = x
    return shape, np.dtype(_sum_dtype(np.dtype(dt)))


def _cumsum_vjp(n, g):
    a = n.attrs["axis"]
    return (g.flip(a).cumsum(a).flip(a),)


def _cumprod_vjp(n, g):
    # exact also where inputs are zero: grad_i = sum_{j>=i} g_j prod_{k<=j, k!=i} x_k
    from .elementwise import where
    from ..creation import eye, ones
    x = n.inputs[0]
    a = n.attrs["axis"]
    nd = x.ndim
    xl = x.swapaxes(a, -1)                       # (..., n)
    gl = g.swapaxes(a, -1)
    m = xl.shape[-1]
    ident = eye(m, dtype=np.bool_, device=x.device)
    rep = where(ident, 1.0, xl.unsqueeze(-2)).astype(x.dtype)   # (..., i, k)
    cp = rep.cumprod(-1)                                        # (..., i, j)
    upper = ones((m, m), dtype=np.bool_, device=x.device).triu()   # j >= i
    contrib = where(upper, cp * gl.unsqueeze(-2), 0.0)
    gi = contrib.sum(axis=-1)
    return (gi.swapaxes(a, -1) if nd else gi,)


def _scan(name):
    def fwd(xp, x, axis):
        if x.ndim == 0:     # a 0-d tensor scans to itself (NumPy would give shape (1,))
            return x.astype(_sum_dtype(x.dtype))
        return _narrow(getattr(xp, name)(x, axis=axis, dtype=_acc(x.dtype)), x.dtype)
    return fwd


CUMSUM = register(OpDef("cumsum", _scan("cumsum"),
                        infer=_scan_infer, cost=_reduce_cost, saves=False, vjp=_cumsum_vjp))
CUMPROD = register(OpDef("cumprod", _scan("cumprod"),
                         infer=_scan_infer, cost=_reduce_cost, vjp=_cumprod_vjp))


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


# --- public functions -----------------------------------------------------------
def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (int, tuple or None for all); ints and bools sum to int64."""
    return _call(SUM, x, axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; integer and bool inputs give the default float dtype."""
    return _call(MEAN, x, axis, keepdims, floating=True)


def prod(x, axis=None, keepdims: bool = False) -> Tensor:
    """Product over ``axis``; signed ints and bools give int64. The gradient is exact where
    inputs are zero."""
    return _call(PROD, x, axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    """Largest value over ``axis``; ties share the gradient equally."""
    return _call(MAX, x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Tensor:
    """Smallest value over ``axis`` (values only, as NumPy; ``argmin`` gives the indices);
    ties share the gradient equally. ``amin`` is the same function."""
    return _call(MIN, x, axis, keepdims)


amax, amin = max, min


def all(x, axis=None, keepdims: bool = False) -> Tensor:
    """Whether every element over ``axis`` is nonzero, as a bool tensor."""
    return _call(ALL, x, axis, keepdims)


def any(x, axis=None, keepdims: bool = False) -> Tensor:
    """Whether some element over ``axis`` is nonzero, as a bool tensor."""
    return _call(ANY, x, axis, keepdims)


def var(x, axis=None, correction: int = 1, keepdims: bool = False) -> Tensor:
    """Variance with ``correction`` (1: unbiased, as PyTorch; 0: as NumPy's default)."""
    return _call(VAR, x, axis, keepdims, floating=True, correction=int(correction))


def std(x, axis=None, correction: int = 1, keepdims: bool = False) -> Tensor:
    """Standard deviation with ``correction`` (1: unbiased, as PyTorch; 0: as NumPy's
    default)."""
    return _call(STD, x, axis, keepdims, floating=True, correction=int(correction))


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) computed without overflow."""
    return _call(LOGSUMEXP, x, axis, keepdims, floating=True)


def norm(x, ord: float = 2, axis=None, keepdims: bool = False) -> Tensor:
    """Vector p-norm over ``axis`` (all elements for None): ord in {1, 2, inf, -inf, p>0}."""
    if ord in ("fro", None):
        ord = 2
    if not isinstance(ord, (int, float)) or (ord <= 0 and ord != -math.inf):
        raise ValueError(f"norm: ord must be a positive number or +-inf, got {ord!r}")
    ord = ord if ord in (1, 2) else float(ord)
    return _call(NORM, x, axis, keepdims, floating=True, ord=ord)


def argmax(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the largest value along ``axis`` (into the flattened tensor when None), as
    int64; the first one on ties. Not differentiable."""
    return _arg(ARGMAX, x, axis, keepdims)


def argmin(x, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest value along ``axis`` (into the flattened tensor when None), as
    int64; the first one on ties. Not differentiable."""
    return _arg(ARGMIN, x, axis, keepdims)


def _arg(op, x, axis, keepdims):
    x = to_tensor(x)
    if axis is not None:
        axis = norm_axis(axis, x.ndim, op.name)
    return apply(op, x, axis=axis, keepdims=bool(keepdims))


def cumsum(x, axis: int = 0) -> Tensor:
    """Running sum along ``axis``, an int (default 0; NumPy's None, which flattens, is not
    accepted); signed ints and bools give int64."""
    x = to_tensor(x)
    return apply(CUMSUM, x, axis=norm_axis(axis, x.ndim, "cumsum"))


def cumprod(x, axis: int = 0) -> Tensor:
    """Running product along ``axis``, an int (default 0); signed ints and bools give int64.
    The gradient is exact where inputs are zero."""
    x = to_tensor(x)
    return apply(CUMPROD, x, axis=norm_axis(axis, x.ndim, "cumprod"))

