"""Scans and differences along one dim, with PyTorch's names and semantics: ``logcumsumexp``,
``cummax``/``cummin`` (values and indices), ``diff``.

Two registry ops: ``logcumsumexp`` (a stable running log-sum-exp; the composite
``log(cumsum(exp(x - max)))`` underflows to -inf wherever a prefix is far below the
row's maximum) and ``cum_extreme`` (the running max/min and its index, one Cython scan on
the CPU). The gradient of a cummax/cummin value goes to the index it came from (a
``scatter_add``, take_along_axis's gradient), as PyTorch's.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DTypeError
from .._apply import apply
from .._tensor import Tensor
from . import _scan_cpu, _scan_onnx
from . import elementwise as E
from .registry import OpDef, register
from ._util import elementwise_cost, float_infer, norm_axis, to_float, to_tensor


def _inclusive_scan(xp, ufunc, x, axis: int):
    """Running ``ufunc`` (an associative binary ufunc's name, or a function ``f(xp, a, b)``)
    along ``axis``: NumPy's accumulate on the CPU, log2(n) doubling steps (Hillis-Steele)
    elsewhere and for functions."""
    if callable(ufunc):
        fn = ufunc

        def f(a, b):
            return fn(xp, a, b)
    elif xp is np:
        return getattr(np, ufunc).accumulate(x, axis=axis)
    else:
        f = getattr(xp, ufunc)
    n = x.shape[axis]
    y = x.copy()
    k = 1
    while k < n:
        hi = [slice(None)] * x.ndim
        lo = [slice(None)] * x.ndim
        hi[axis], lo[axis] = slice(k, None), slice(0, n - k)
        nxt = y.copy()
        nxt[tuple(hi)] = f(y[tuple(hi)], y[tuple(lo)])
        y = nxt
        k *= 2
    return y


# --- logcumsumexp ----------------------------------------------------------------------------
def _lcse_fwd(xp, x, axis):
    if x.ndim == 0 or x.size == 0:
        return x.copy()
    # float32 runs in float64 on the CPU (as PyTorch's kernel): a running log-sum-exp of 10^5
    # float32 terms drifts by 4e-5 relative
    if x.dtype.kind == "c":     # NumPy's logaddexp is real-only
        w = x.astype(np.complex128) if xp is np and x.dtype == np.complex64 else x
        return _inclusive_scan(xp, _logaddexp_complex, w, axis).astype(x.dtype, copy=False)
    if xp is np:
        # rows side by side in one sequential pass (NumPy's accumulate runs one chain of
        # exp/log1p at a time)
        r = _scan_cpu.cum_float(x, axis, "logcumsumexp")
        if r is not None:
            return r
    w = x.astype(np.float64) if xp is np and x.dtype == np.float32 else x
    return _inclusive_scan(xp, "logaddexp", w, axis).astype(x.dtype, copy=False)


def _logaddexp_complex(xp, a, b):
    """``log(exp(a) + exp(b))`` as PyTorch's complex logcumsumexp computes it: ``hi +
    log1p(exp(lo - hi))`` with ``hi`` the operand of the larger real part, so its imaginary
    part is kept as it is (not reduced to (-pi, pi]) and no exp overflows; two equal
    infinite real parts give ``hi``."""
    first = a.real >= b.real
    hi, lo = xp.where(first, a, b), xp.where(first, b, a)
    with np.errstate(all="ignore"):
        r = hi + xp.log1p(xp.exp(lo - hi))
    return xp.where(~xp.isfinite(hi.real) & (lo.real == hi.real), hi, r)


def _lcse_vjp(n, g):
    # grad_j = sum_{i >= j} g_i exp(x_j - out_i) = exp(x_j - out_j) t_j, where
    # t_j = g_j + exp(out_j - out_{j+1}) t_{j+1}: a reverse linear recurrence whose factors lie
    # in [0, 1] (out is non-decreasing), so nothing overflows whatever the spread of x, and the
    # result is linear in g, as the grad of this grad (jvp by double vjp, Hessians) needs
    x, out, a = n.inputs[0], n.out, n.attrs["axis"]
    if x.ndim == 0:
        return (g,)
    lo, hi = _along(out, a, slice(None, -1)), _along(out, a, slice(1, None))
    # equal infinite neighbours (a -inf prefix, or after a +inf) would give exp(nan): 1
    step = lo - hi
    step = E.exp(E.where((lo == hi) & E.isinf(lo), 0.0, step))
    return (E.exp(x - out) * _reverse_linear_scan(g, step, a),)


def _reverse_linear_scan(g: Tensor, f: Tensor, axis: int) -> Tensor:
    """``t`` with ``t_j = g_j + f_j t_{j+1}`` along ``axis`` (``f`` one shorter than ``g``),
    in log2(n) doubling steps of tensorlib ops (so it is differentiable again): after the
    step of stride k, ``t_j`` sums g over j..j+2k-1 and ``f_j`` is the product of the factors
    over j..j+2k-1."""
    from .shape import concatenate
    size = g.shape[axis]
    k = 1
    while k < size:
        head = _along(g, axis, slice(None, size - k))
        g = concatenate([head + f * _along(g, axis, slice(k, None)),
                         _along(g, axis, slice(size - k, None))], axis=axis)
        if 2 * k < size:
            f = _along(f, axis, slice(None, size - 2 * k)) * _along(f, axis, slice(k, size - k))
        k *= 2
    return g


def _scan_cost(in_specs, out_specs, **attrs):
    return elementwise_cost(in_specs, out_specs)


LOGCUMSUMEXP = register(OpDef("logcumsumexp", _lcse_fwd, vjp=_lcse_vjp, infer=float_infer,
                              cost=_scan_cost, saves=True, saves_output=True,
                              doc="log(cumsum(exp(x))) along an axis, computed stably"))
# log(cumsum(exp(x))) is holomorphic and so is the rule's expression (the where guards only
# +-inf neighbours); complex inputs scan with a shifted complex logaddexp
LOGCUMSUMEXP.complex = "holomorphic"


def logcumsumexp(input, dim: int) -> Tensor:
    """``log(cumsum(exp(input), dim))`` without overflow or underflow, as
    ``torch.logcumsumexp``; integer inputs compute in the default float dtype.

    >>> tl.logcumsumexp(tl.tensor([-1000.0, 0.0]), dim=0)      # [-1000., 0.]
    """
    x = to_float(to_tensor(input))
    return apply(LOGCUMSUMEXP, x, axis=norm_axis(dim, x.ndim, "logcumsumexp"))


# --- cummax / cummin ---------------------------------------------------------------------------
def _cum_idx_fwd(xp, x, axis, mode):
    if x.ndim == 0 or x.size == 0:
        return xp.zeros(x.shape, np.int64)
    m = _inclusive_scan(xp, "maximum" if mode == "max" else "minimum", x, axis)
    # position i takes the last j <= i that reached the running extreme; once a NaN is seen
    # the running value is NaN and the index is the last NaN's (as PyTorch)
    flag = x == m
    if x.dtype.kind == "f":
        flag |= xp.isnan(x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    pos = xp.arange(x.shape[axis], dtype=np.int64).reshape(shape)
    return _inclusive_scan(xp, "maximum", xp.where(flag, pos, -1), axis)


def _cum_fwd(xp, x, axis, mode):
    idx = _cum_idx_fwd(xp, x, axis, mode)
    vals = x.copy() if x.ndim == 0 else xp.take_along_axis(x, idx, axis=axis)
    return vals, idx


def _cum_cpu(x, *, axis, mode):
    r = _scan_cpu.cum_extreme(x, axis, mode)
    return _cum_fwd(np, x, axis, mode) if r is None else r


def _cum_vjp(n, g, _gi):
    # each value came from the input at its index: the gradient goes back there (summed),
    # take_along_axis's gradient
    from ..creation import zeros_like
    from .indexing import scatter_add
    x, idx = n.inputs[0], n.output(1)
    if x.ndim == 0:
        return (g,)
    return (scatter_add(zeros_like(x), idx, g, n.attrs["axis"]),)


def _cum_infer(x, *, axis, mode):
    return (tuple(x[0]), x[1]), (tuple(x[0]), np.dtype(np.int64))


CUM_EXTREME = register(OpDef(
    "cum_extreme", _cum_fwd, kernels={"cpu": _cum_cpu}, vjp=_cum_vjp, infer=_cum_infer,
    cost=_scan_cost, saves=False, saves_output=(1,), onnx=_scan_onnx.cum_extreme,
    doc="running max (mode='max') or min along an axis and its index (last on ties)"))


class cummax_result(NamedTuple):
    """``(values, indices)`` of :func:`cummax` (``torch.return_types.cummax``)."""
    values: Tensor
    indices: Tensor


class cummin_result(NamedTuple):
    """``(values, indices)`` of :func:`cummin` (``torch.return_types.cummin``)."""
    values: Tensor
    indices: Tensor


def _cum_extreme(x, dim, mode):
    x = to_tensor(x)
    name = "cum" + mode
    if x.dtype.kind == "c":
        raise DTypeError(f"{name}: complex input is not supported")
    axis = norm_axis(dim, x.ndim, name)
    return apply(CUM_EXTREME, x, axis=axis, mode=mode)


def cummax(input, dim: int) -> cummax_result:
    """Running maximum along ``dim`` and the index of each value (the last one on ties; a
    NaN propagates, indexed by the last NaN so far), as ``torch.cummax``. The gradient goes
    to the element each value came from.

    >>> v, i = tl.cummax(tl.tensor([1.0, 3.0, 2.0, 3.0]), dim=0)   # [1,3,3,3], [0,1,1,3]
    """
    return cummax_result(*_cum_extreme(input, dim, "max"))


def cummin(input, dim: int) -> cummin_result:
    """Running minimum along ``dim`` and the index of each value (last one on ties), as
    ``torch.cummin``.

    >>> v, i = tl.cummin(tl.tensor([2.0, 1.0, 3.0, 1.0]), dim=0)   # [2,1,1,1], [0,1,1,3]
    """
    return cummin_result(*_cum_extreme(input, dim, "min"))


# --- diff ------------------------------------------------------------------------------------
def _along(x: Tensor, axis: int, sl: slice) -> Tensor:
    key = (slice(None),) * axis + (sl,)
    return x[key]


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """``n``-th forward difference along ``dim``, after concatenating ``prepend`` and
    ``append`` along it, as ``torch.diff``: ``out[i] = x[i + 1] - x[i]``; bool input gives
    ``x[i + 1] != x[i]``. A dim shorter than ``n`` gives an empty result.

    >>> tl.diff(tl.tensor([1.0, 4.0, 9.0, 16.0]))            # [3., 5., 7.]
    >>> tl.diff(tl.tensor([1.0, 4.0, 9.0]), n=2)             # [2.]
    """
    x = to_tensor(input)
    if x.ndim == 0:
        raise ValueError("diff: expects input to be at least one-dimensional")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"diff: order n must be a non-negative integer, got {n!r}")
    axis = norm_axis(dim, x.ndim, "diff")
    if n == 0:          # as PyTorch: the input itself, prepend and append unused
        return x
    parts = []
    from .shape import broadcast_to, concatenate
    for what, t in (("prepend", prepend), ("append", append)):
        if t is None:
            continue
        t = to_tensor(t)
        if t.ndim == 0:     # a scalar is broadcast to size 1 along dim, as PyTorch
            shape = list(x.shape)
            shape[axis] = 1
            t = broadcast_to(t.astype(x.dtype), tuple(shape))
        elif t.ndim != x.ndim:
            raise ValueError(f"diff: {what} must have the same number of dimensions as input "
                             f"({x.ndim}), got shape {t.shape}")
        parts.append((what, t))
    pre = [t for w, t in parts if w == "prepend"]
    post = [t for w, t in parts if w == "append"]
    if pre or post:
        x = concatenate(pre + [x] + post, axis=axis)
    for _ in range(int(n)):
        if x.shape[axis] == 0:
            break
        hi, lo = _along(x, axis, slice(1, None)), _along(x, axis, slice(None, -1))
        x = E.not_equal(hi, lo) if x.dtype == np.bool_ else hi - lo
    return x


# --- cumprod's backward in one op ---------------------------------------------------------
def _cumprod_grad_fwd(xp, g, x, axis):
    """grad_i = (prod_{k<i} x_k) S_i, S_i = g_i + x_{i+1} S_{i+1}: PyTorch's zero-safe
    cumprod gradient without division (a loop over the axis: the generic form)."""
    g = xp.moveaxis(xp.broadcast_to(g, x.shape), axis, -1)
    xm = xp.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    wide = np.complex128 if x.dtype.kind == "c" or g.dtype.kind == "c" else np.float64
    out = xp.empty(xm.shape, wide)
    s = xp.zeros(xm.shape[:-1], wide)
    for i in range(n - 1, -1, -1):
        s = g[..., i] + (xm[..., i + 1] * s if i + 1 < n else 0.0)
        out[..., i] = s
    before = xp.cumprod(xp.concatenate([xp.ones(xm.shape[:-1] + (1,), wide),
                                        xm[..., :-1].astype(wide)], axis=-1), axis=-1)
    return xp.moveaxis((before * out).astype(x.dtype, copy=False), -1, axis)


def _cumprod_grad_cpu(g, x, axis):
    from .. import _ops
    from ._util import around_axis
    if x.dtype not in (np.float32, np.float64) or g.dtype != x.dtype or x.ndim == 0:
        return _cumprod_grad_fwd(np, g, x, axis)
    g = np.ascontiguousarray(np.broadcast_to(g, x.shape))
    x = np.ascontiguousarray(x)
    x3, g3 = around_axis(x, axis), around_axis(g, axis)
    o, n, inner = x3.shape
    if inner == 1:
        out = np.empty(x.shape, x.dtype)
        _ops.cumprod_grad_rows(g3.reshape(o, n), x3.reshape(o, n), out.reshape(o, n))
        return out
    # another axis: rows along it first (two transposing copies beat the scan's log2(n) passes)
    xt = np.ascontiguousarray(x3.transpose(0, 2, 1)).reshape(-1, n)
    gt = np.ascontiguousarray(g3.transpose(0, 2, 1)).reshape(-1, n)
    out = np.empty(xt.shape, x.dtype)
    _ops.cumprod_grad_rows(gt, xt, out)
    return np.ascontiguousarray(out.reshape(o, inner, n).transpose(0, 2, 1)).reshape(x.shape)


def _cumprod_grad_infer(g, x, *, axis):
    return x


# Not differentiable: cumprod's vjp uses it only where no graph is being recorded (a plain
# backward); a backward that builds a graph takes the composite of tensorlib ops.
CUMPROD_GRAD = register(OpDef("cumprod_grad", _cumprod_grad_fwd,
                              kernels={"cpu": _cumprod_grad_cpu}, infer=_cumprod_grad_infer,
                              cost=elementwise_cost, complex="forward"))


def cumprod_grad(g: Tensor, x: Tensor, axis: int) -> Tensor:
    """The gradient of ``cumprod(x, axis)`` applied to ``g`` (``g``'s shape broadcasts to
    ``x``'s), zero-safe as PyTorch's; not differentiable itself."""
    return apply(CUMPROD_GRAD, g, x, axis=norm_axis(axis, x.ndim, "cumprod_grad"))
