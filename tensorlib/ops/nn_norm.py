"""Normalisation: layer_norm and batch_norm (fused ops), group_norm and instance_norm.

``layer_norm`` is one registry op, (x, [weight], [bias]) -> (y, mean, rstd), whose backward
is one op (``layer_norm_grad``) when it is not itself recorded and the same formula in
tensorlib ops when it is, so grad of grad works; mean and rstd are outputs (ONNX's
LayerNormalization has the same three). ``batch_norm`` in training is built the same way,
(x, [weight], [bias]) -> (y, mean, var) per channel, with ``batch_norm_grad``, and so is
``group_norm`` ((y, mean, rstd) per sample and group); instance_norm reuses layer_norm's;
batch_norm with running statistics is one op too (``batch_norm_eval``, ONNX's
BatchNormalization). Running statistics are updated in place, outside the tape.
"""
from __future__ import annotations

import math

import numpy as np

from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import no_grad, state
from .nn_util import as_float_tensor, io_cost, same_dtype
from .registry import OpDef, register
from ._util import numel
from .size_guard import SIZE_RULES, plain, size_guard, size_tensor, traced


def _fused_norm(name: str, fwd, cpu, vjp, infer, grad_fwd, grad_cpu, grad_infer,
                flops: int) -> tuple[OpDef, OpDef]:
    """A norm op (x, [weight], [bias]) -> (y, statistics...) and its first-order backward
    op, which its vjp uses only when the backward is not itself recorded."""
    # the vjp reads the statistics, not y: y may be changed in place (out += identity)
    op = register(OpDef(name, fwd, kernels={"cpu": cpu}, vjp=vjp, saves=True,
                        saves_output=(1, 2), infer=infer,
                        cost=io_cost(lambda i, o, **a: flops * numel(i[0][0]))))
    grad = register(OpDef(name + "_grad", grad_fwd, kernels={"cpu": grad_cpu}, vjp=None,
                          saves=False, infer=grad_infer,
                          cost=io_cost(lambda i, o, **a: (flops + 2) * numel(i[0][0]))))
    return op, grad


# --- layer_norm: one op forward, one op backward ---------------------------------------------
def _split_affine(wb, affine: str):
    it = iter(wb)
    return (next(it) if "w" in affine else None), (next(it) if "b" in affine else None)


def _affine_inputs(weight, bias) -> tuple[list, str]:
    """The norm ops' optional weight and bias: (those given, in order; the affine attr that
    names them, "wb", "w", "b" or "")."""
    return ([t for t in (weight, bias) if t is not None],
            ("w" if weight is not None else "") + ("b" if bias is not None else ""))


def _ln_axes(x, ndim: int):
    """(normalised axes, leading axes, 1 / D) for the trailing ``ndim`` dims of ``x``; an
    empty row counts as D = 1, so its mean and variance come out 0."""
    lead = x.ndim - ndim
    return (tuple(range(lead, x.ndim)), tuple(range(lead)),
            1.0 / max(1, math.prod(x.shape[lead:])))


def _ln_stat_shape(shape, ndim: int) -> tuple:
    """The shape of layer_norm's mean and rstd: the leading dims, then a 1 for each
    normalised one (they broadcast against the input)."""
    return tuple(shape[:len(shape) - ndim]) + (1,) * ndim


def _ln_fwd(xp, x, *wb, eps, ndim, affine):
    axes, _, inv_d = _ln_axes(x, ndim)
    mean = x.sum(axis=axes, keepdims=True) * inv_d
    xc = x - mean
    var = (xc * xc).sum(axis=axes, keepdims=True) * inv_d
    rstd = 1.0 / xp.sqrt(var + eps)
    y = xc * rstd
    w, b = _split_affine(wb, affine)
    if w is not None:
        y *= w
    if b is not None:
        y += b
    return y, mean.astype(x.dtype, copy=False), rstd.astype(x.dtype, copy=False)


def _flat_of_one_dtype(*arrays, dtypes=(np.float32,)):
    """C-contiguous views of NumPy arrays of one dtype among ``dtypes`` (float32 alone by
    default), or None when any is something else."""
    out = []
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in dtypes or a.dtype != arrays[0].dtype:
            return None
        out.append(np.ascontiguousarray(a))
    return out


_F32_F64 = (np.float32, np.float64)     # the layer norm kernels' dtypes


def _ln_cpu(x, *wb, eps, ndim, affine):
    """float32 and float64: one Cython pass per row (``_ops.layer_norm_fwd``); else the NumPy
    formula."""
    f = _flat_of_one_dtype(x, *wb, dtypes=_F32_F64)
    if f is None:
        return _ln_fwd(np, x, *wb, eps=eps, ndim=ndim, affine=affine)
    from .. import _ops
    x, *wb = f
    w, b = _split_affine(wb, affine)
    D = math.prod(x.shape[x.ndim - ndim:])
    M = x.size // D if D else math.prod(x.shape[:x.ndim - ndim])
    stat_shape = _ln_stat_shape(x.shape, ndim)
    y = np.empty_like(x)
    mean, rstd = np.empty(M, x.dtype), np.empty(M, x.dtype)
    _ops.layer_norm_fwd(x.reshape(M, D), None if w is None else w.reshape(D),
                        None if b is None else b.reshape(D), y.reshape(M, D), mean, rstd,
                        float(eps))
    return y, mean.reshape(stat_shape), rstd.reshape(stat_shape)


def _ln_grad_cpu(x, mean, rstd, gy, gmean, grstd, *w, ndim):
    f = _flat_of_one_dtype(x, mean, rstd, gy, gmean, grstd, *w, dtypes=_F32_F64)
    if f is None or gy.shape != x.shape or gmean.shape != mean.shape \
            or grstd.shape != mean.shape:
        return _ln_grad_fwd(np, x, mean, rstd, gy, gmean, grstd, *w, ndim=ndim)
    from .. import _ops
    x, mean, rstd, gy, gmean, grstd, *w = f
    ns = x.shape[x.ndim - ndim:]
    D = math.prod(ns)
    M = mean.size
    dx, gyx = np.empty_like(x), np.empty_like(x)
    _ops.layer_norm_bwd(x.reshape(M, D), mean.reshape(M), rstd.reshape(M), gy.reshape(M, D),
                        gmean.reshape(M), grstd.reshape(M), w[0].reshape(D) if w else None,
                        dx.reshape(M, D), gyx.reshape(M, D))
    from .reduction import column_sums
    return (dx, column_sums(gyx.reshape(M, D)).reshape(ns),
            column_sums(np.ascontiguousarray(gy).reshape(M, D)).reshape(ns))


def _ln_grad_fwd(xp, x, mean, rstd, gy, gmean, grstd, *w, ndim):
    """(dx, sum of gy * xhat, sum of gy) over the leading dims: the weight and bias grads."""
    axes, lead, inv_d = _ln_axes(x, ndim)
    xhat = (x - mean) * rstd
    gx = gy * w[0] if w else gy
    dx = gx - gx.sum(axis=axes, keepdims=True) * inv_d
    dx -= xhat * ((gx * xhat).sum(axis=axes, keepdims=True) * inv_d)
    dx *= rstd
    # the statistics are outputs too: d mean/dx = 1/D, d rstd/dx = -rstd^2 xhat / D
    dx += (gmean - grstd * rstd * rstd * xhat) * inv_d
    return (dx.astype(x.dtype, copy=False), (gy * xhat).sum(axis=lead),
            gy.sum(axis=lead))


def _first_order(grad_op, n, gy, gstats, w, **attrs) -> tuple:
    """A norm's backward as its one first-order op (x, the two statistics' values and
    gradients, the weight): (dx, dw, db); used when the backward is not itself recorded."""
    return apply(grad_op, n.inputs[0], n.output(1).detach(), n.output(2).detach(), gy, *gstats,
                 *([w] if w is not None else []), **attrs)


def _per_input(dx, dw, db, w, b) -> tuple:
    """One gradient per input of a norm op: x, then the weight and bias it was given."""
    return (dx,) + ((dw,) if w is not None else ()) + ((db,) if b is not None else ())


def _norm_dx(gx, xhat, rstd, axes, inv_n):
    """d loss / d x of xhat = (x - mean) * rstd over ``axes`` (1 / inv_n values), from the
    gradient gx at xhat: the recorded backward of both norm ops (so grad of grad works)."""
    return (gx - gx.sum(axis=axes, keepdims=True) * inv_n
            - xhat * ((gx * xhat).sum(axis=axes, keepdims=True) * inv_n)) * rstd


def _stats_of_x(b) -> bool:
    """Whether a recorded norm backward reads its statistics recomputed from x rather than
    the op's outputs: those outputs hang on the op's node, whose inputs include the bias, so
    a gradient of that backward (the gradient penalty's ``grad(gp, params)``) would reach
    the bias, as zeros, where the bias has no influence (PyTorch: None). Only with a bias
    that needs a gradient; the first-order backward never records, and pays nothing."""
    return b is not None and b._rg


def _ln_vjp(n, gy, gmean, grstd):
    x, (w, b) = n.inputs[0], _split_affine(n.inputs[1:], n.attrs["affine"])
    mean, rstd = n.output(1), n.output(2)
    k = n.attrs["ndim"]
    if not state.grad_enabled and state.fwd_ad is None:
        dx, dw, db = _first_order(LAYER_NORM_GRAD, n, gy, (gmean, grstd), w, ndim=k)
    else:
        axes, lead, inv_d = _ln_axes(x, k)
        if _stats_of_x(b):
            mean = x.sum(axis=axes, keepdims=True) * inv_d
            xc = x - mean
            rstd = ((xc * xc).sum(axis=axes, keepdims=True) * inv_d + n.attrs["eps"]).rsqrt()
        xhat = (x - mean) * rstd
        dx = _norm_dx(gy * w if w is not None else gy, xhat, rstd, axes, inv_d)
        dx = dx + (gmean - grstd * rstd * rstd * xhat) * inv_d
        dw = (gy * xhat).sum(axis=lead) if w is not None else None
        db = gy.sum(axis=lead) if b is not None else None
    return _per_input(dx, dw, db, w, b)


def _ln_infer(x, *wb, eps, ndim, affine):
    shape, dt = x
    stat = (_ln_stat_shape(shape, ndim), dt)
    return (x, stat, stat)


LAYER_NORM, LAYER_NORM_GRAD = _fused_norm(
    "layer_norm", _ln_fwd, _ln_cpu, _ln_vjp, _ln_infer, _ln_grad_fwd, _ln_grad_cpu,
    lambda x, m, r, gy, gm, gr, *w, ndim: (
        x, (tuple(x[0][len(x[0]) - ndim:]), x[1]), (tuple(x[0][len(x[0]) - ndim:]), x[1])),
    flops=8)


# --- batch_norm in training: one op forward, one op backward ----------------------------------
def _bn_axes(x):
    """(reduced axes, the (1, C, 1, ...) shape the per-channel statistics broadcast as,
    1 / count) for (N, C, ...) input."""
    C = x.shape[1]
    return ((0,) + tuple(range(2, x.ndim)), (1, C) + (1,) * (x.ndim - 2),
            1.0 / max(1, x.size // max(C, 1)))


def _bn_fwd(xp, x, *wb, eps, affine):
    axes, shape, _ = _bn_axes(x)
    # float16 accumulates in float32, as the reductions do
    acc = xp.float32 if x.dtype == xp.float16 else x.dtype
    mean = x.mean(axis=axes, dtype=acc)
    xc = x - mean.reshape(shape)
    var = (xc * xc).mean(axis=axes, dtype=acc)
    y = xc * (1.0 / xp.sqrt(var + eps)).astype(x.dtype).reshape(shape)
    w, b = _split_affine(wb, affine)
    if w is not None:
        y *= w.reshape(shape)
    if b is not None:
        y += b.reshape(shape)
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def _nc_s(x):
    """x as a C-contiguous (N, C, S) float32 array for the Cython kernels, or None: other
    dtypes, and (N, C) input, whose per-channel loops would stride by C (NumPy's column
    reductions do that layout better)."""
    if type(x) is not np.ndarray or x.dtype != np.float32 or x.ndim < 3 or x.size == 0:
        return None
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def _bn_cpu(x, *wb, eps, affine):
    x3 = _nc_s(x)
    f = None if x3 is None else _flat_of_one_dtype(*wb)
    if f is None:
        return _bn_fwd(np, x, *wb, eps=eps, affine=affine)
    from .. import _ops
    w, b = _split_affine(f, affine)
    C = x3.shape[1]
    y = np.empty_like(x3)
    mean, var = np.empty(C, np.float32), np.empty(C, np.float32)
    _ops.batch_norm_fwd(x3, w, b, y, mean, var, float(eps))
    return y.reshape(x.shape), mean, var


def _bn_grad_fwd(xp, x, mean, var, gy, gmean, gvar, *w, eps):
    """(dx, sum of gy * xhat, sum of gy) per channel: the weight and bias grads."""
    axes, shape, inv_n = _bn_axes(x)
    rstd = (1.0 / xp.sqrt(var + eps)).reshape(shape)
    xc = x - mean.reshape(shape)
    sg = gy.sum(axis=axes)
    sgx = (gy * xc).sum(axis=axes).reshape(shape) * rstd
    wr = rstd * w[0].reshape(shape) if w else rstd
    # d/dx of y, and of the statistics themselves: d mean/dx = 1/n, d var/dx = 2 xc / n
    dx = wr * (gy - sg.reshape(shape) * inv_n - xc * (rstd * sgx * inv_n))
    dx += (gmean.reshape(shape) + 2.0 * gvar.reshape(shape) * xc) * inv_n
    return dx.astype(x.dtype, copy=False), sgx.reshape(-1), sg


def _bn_grad_cpu(x, mean, var, gy, gmean, gvar, *w, eps):
    x3, g3 = _nc_s(x), _nc_s(gy)
    f = _flat_of_one_dtype(mean, var, gmean, gvar, *w)
    if x3 is None or g3 is None or f is None or gy.shape != x.shape:
        return _bn_grad_fwd(np, x, mean, var, gy, gmean, gvar, *w, eps=eps)
    from .. import _ops
    mean, var, gmean, gvar, *w = f
    C = x3.shape[1]
    dx, dw, db = np.empty_like(x3), np.empty(C, np.float32), np.empty(C, np.float32)
    _ops.batch_norm_bwd(x3, mean, var, g3, gmean, gvar, w[0] if w else None, float(eps),
                        dx, dw, db)
    return dx.reshape(x.shape), dw, db


def _bn_vjp(n, gy, gmean, gvar):
    x, (w, b) = n.inputs[0], _split_affine(n.inputs[1:], n.attrs["affine"])
    mean, var = n.output(1), n.output(2)
    eps = n.attrs["eps"]
    if not state.grad_enabled and state.fwd_ad is None:
        dx, dw, db = _first_order(BATCH_NORM_GRAD, n, gy, (gmean, gvar), w, eps=eps)
    else:
        axes, shape, inv_n = _bn_axes(x)
        if _stats_of_x(b):
            mean = x.sum(axis=axes) * inv_n
            xc = x - mean.reshape(shape)
            var = (xc * xc).sum(axis=axes) * inv_n
        rstd = (var + eps).rsqrt().reshape(shape)
        xc = x - mean.reshape(shape)
        xhat = xc * rstd
        dx = _norm_dx(gy * w.reshape(shape) if w is not None else gy, xhat, rstd, axes, inv_n)
        dx = dx + (gmean.reshape(shape) + 2.0 * gvar.reshape(shape) * xc) * inv_n
        dw = (gy * xhat).sum(axis=axes) if w is not None else None
        db = gy.sum(axis=axes) if b is not None else None
    return _per_input(dx, dw, db, w, b)


def _bn_infer(x, *wb, eps, affine):
    shape, dt = x
    return (x, ((shape[1],), dt), ((shape[1],), dt))


BATCH_NORM, BATCH_NORM_GRAD = _fused_norm(
    "batch_norm", _bn_fwd, _bn_cpu, _bn_vjp, _bn_infer, _bn_grad_fwd, _bn_grad_cpu,
    lambda x, m, v, gy, gm, gv, *w, eps: (x, m, m), flops=7)


# --- group_norm: one op forward (y, mean, rstd per sample and group), one op backward ---------
def _gn_view(x, groups: int):
    """(x as (N, G, D), the (1, C, 1, ...) shape per-channel values broadcast as, 1 / D)."""
    N, C = x.shape[0], x.shape[1]
    D = (C // groups) * math.prod(x.shape[2:])
    return x.reshape(N, groups, D), (1, C) + (1,) * (x.ndim - 2), 1.0 / max(1, D)


def _gn_fwd(xp, x, *wb, groups, eps, affine):
    xg, shape, inv_d = _gn_view(x, groups)
    acc = xp.float32 if x.dtype == xp.float16 else x.dtype
    mean = xg.sum(axis=2, keepdims=True, dtype=xp.float64 if acc == xp.float32 else acc) \
        * inv_d
    low = mean.astype(x.dtype)
    xc = xg - low
    var = (xc * xc).sum(axis=2, keepdims=True, dtype=acc) * inv_d
    rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
    # what the low-precision mean lost, given back per group: a group of tiny spread around
    # a large mean keeps its digits (as the Cython kernel does)
    y = (xc * rstd - ((mean - low) * rstd).astype(x.dtype)).reshape(x.shape)
    w, b = _split_affine(wb, affine)
    if w is not None:
        y *= w.reshape(shape)
    if b is not None:
        y += b.reshape(shape)
    return y, mean[..., 0].astype(x.dtype), rstd[..., 0]


def _gn_cpu(x, *wb, groups, eps, affine):
    x3 = _nc_s(x)
    f = None if x3 is None else _flat_of_one_dtype(*wb)
    if f is None:
        return _gn_fwd(np, x, *wb, groups=groups, eps=eps, affine=affine)
    from .. import _ops
    w, b = _split_affine(f, affine)
    y = np.empty_like(x3)
    mean, rstd = (np.empty((x3.shape[0], groups), np.float32) for _ in range(2))
    _ops.group_norm_fwd(x3, w, b, y, mean, rstd, float(eps))
    return y.reshape(x.shape), mean, rstd


def _gn_grad_fwd(xp, x, mean, rstd, gy, gmean, grstd, *w, groups):
    """(dx, sum of gy * xhat, sum of gy) per channel: the weight and bias grads."""
    xg, shape, inv_d = _gn_view(x, groups)
    axes = (0,) + tuple(range(2, x.ndim))
    r = rstd[..., None]
    xhat = (xg - mean[..., None]) * r
    gx = (gy * w[0].reshape(shape) if w else gy).reshape(xg.shape)
    dx = r * (gx - gx.sum(axis=2, keepdims=True) * inv_d
              - xhat * ((gx * xhat).sum(axis=2, keepdims=True) * inv_d))
    dx += (gmean[..., None] - grstd[..., None] * r * r * xhat) * inv_d
    return (dx.reshape(x.shape).astype(x.dtype, copy=False),
            (gy * xhat.reshape(x.shape)).sum(axis=axes), gy.sum(axis=axes))


def _gn_grad_cpu(x, mean, rstd, gy, gmean, grstd, *w, groups):
    x3, g3 = _nc_s(x), _nc_s(gy)
    f = _flat_of_one_dtype(mean, rstd, gmean, grstd, *w)
    if x3 is None or g3 is None or f is None or gy.shape != x.shape \
            or gmean.shape != mean.shape or grstd.shape != mean.shape:
        return _gn_grad_fwd(np, x, mean, rstd, gy, gmean, grstd, *w, groups=groups)
    from .. import _ops
    mean, rstd, gmean, grstd, *w = f
    dx = np.empty_like(x3)
    sg, sgx = (np.empty(x3.shape[:2], np.float32) for _ in range(2))
    _ops.group_norm_bwd(x3, mean, rstd, g3, gmean, grstd, w[0] if w else None, dx, sg, sgx)
    return dx.reshape(x.shape), sgx.sum(axis=0), sg.sum(axis=0)


def _gn_vjp(n, gy, gmean, grstd):
    x, (w, b) = n.inputs[0], _split_affine(n.inputs[1:], n.attrs["affine"])
    mean, rstd = n.output(1), n.output(2)
    groups = n.attrs["groups"]
    if not state.grad_enabled and state.fwd_ad is None:
        dx, dw, db = _first_order(GROUP_NORM_GRAD, n, gy, (gmean, grstd), w, groups=groups)
    else:
        xg, shape, inv_d = _gn_view(x, groups)
        axes = (0,) + tuple(range(2, x.ndim))
        if _stats_of_x(b):
            mean = xg.sum(axis=2) * inv_d
            xc = xg - mean.reshape(*mean.shape, 1)
            rstd = ((xc * xc).sum(axis=2) * inv_d + n.attrs["eps"]).rsqrt()
        r = rstd.reshape(*rstd.shape, 1)
        xhat = (xg - mean.reshape(*mean.shape, 1)) * r
        gx = (gy * w.reshape(shape) if w is not None else gy).reshape(xg.shape)
        dx = _norm_dx(gx, xhat, r, (2,), inv_d)
        dx = (dx + (gmean.reshape(*mean.shape, 1) - grstd.reshape(*mean.shape, 1) * r * r
                    * xhat) * inv_d).reshape(x.shape)
        dw = (gy * xhat.reshape(x.shape)).sum(axis=axes) if w is not None else None
        db = gy.sum(axis=axes) if b is not None else None
    return _per_input(dx, dw, db, w, b)


def _gn_infer(x, *wb, groups, eps, affine):
    shape, dt = x
    stat = ((shape[0], groups), dt)
    return (x, stat, stat)


GROUP_NORM, GROUP_NORM_GRAD = _fused_norm(
    "group_norm", _gn_fwd, _gn_cpu, _gn_vjp, _gn_infer, _gn_grad_fwd, _gn_grad_cpu,
    lambda x, m, r, gy, gm, gr, *w, groups: (x, ((x[0][1],), x[1]), ((x[0][1],), x[1])),
    flops=7)


# --- batch_norm with fixed statistics (inference): one op, ONNX's BatchNormalization -----------
def _bn_eval_scale(xp, var, w, eps):
    scale = 1.0 / xp.sqrt(var + eps)
    return scale if w is None else scale * w


def _bn_eval_fwd(xp, x, mean, var, *wb, eps, affine):
    _, shape, _ = _bn_axes(x)
    w, b = _split_affine(wb, affine)
    y = (x - mean.reshape(shape)) * _bn_eval_scale(xp, var, w, eps).reshape(shape)
    if b is not None:
        y += b.reshape(shape)
    return y


def _bn_eval_cpu(x, mean, var, *wb, eps, affine):
    x3 = _nc_s(x)
    f = None if x3 is None else _flat_of_one_dtype(mean, var, *wb)
    if f is None:
        return _bn_eval_fwd(np, x, mean, var, *wb, eps=eps, affine=affine)
    from .. import _ops
    mean, var, *wb = f
    w, b = _split_affine(wb, affine)
    scale = _bn_eval_scale(np, var, w, eps).astype(np.float32)
    y = np.empty_like(x3)
    _ops.batch_norm_apply(x3, mean, scale, b if b is not None else np.zeros_like(mean), y)
    return y.reshape(x.shape)


def _bn_eval_vjp(n, g):
    x, mean, var, *wb = n.inputs
    w, b = _split_affine(wb, n.attrs["affine"])
    axes, shape, _ = _bn_axes(x)
    rstd = (var + n.attrs["eps"]).rsqrt()
    scale = rstd * w if w is not None else rstd
    gs = g.sum(axis=axes) if mean._rg or (b is not None and b._rg) else None
    gxc = (g * (x - mean.reshape(shape))).sum(axis=axes) \
        if var._rg or (w is not None and w._rg) else None
    grads = [g * scale.reshape(shape),
             -gs * scale if mean._rg else None,
             -0.5 * gxc * scale * rstd * rstd if var._rg else None]
    if w is not None:
        grads.append(gxc * rstd if w._rg else None)
    if b is not None:
        grads.append(gs if b._rg else None)
    return tuple(grads)


BATCH_NORM_EVAL = register(OpDef(
    "batch_norm_eval", _bn_eval_fwd, kernels={"cpu": _bn_eval_cpu}, vjp=_bn_eval_vjp,
    saves=True, infer=lambda x, m, v, *wb, eps, affine: x,
    cost=io_cost(lambda i, o, **a: 2 * numel(i[0][0]))))


def _affine(y: Tensor, weight, bias, shape) -> Tensor:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _per_channel_args(op: str, x: Tensor, min_ndim: int, what: str, tensors) -> int:
    """Check (N, C, ...) input and the (C,)-shaped running statistics, weight and bias."""
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: input must be {what}, got shape {tuple(x.shape)}")
    C = x.shape[1]
    for name, t in tensors:
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"{op}: the input has {C} channels (dim 1 of shape "
                             f"{tuple(x.shape)}) but {name} has {t.shape[0] if t.ndim else 1} "
                             f"(shape {tuple(t.shape)}): it was made for that many "
                             "(num_features)")
    return C


def _update_running(running_mean, running_var, mean_c: Tensor, unbiased_c: Tensor,
                    momentum: float) -> None:
    """``running = (1 - momentum) * running + momentum * new``, in place, untracked;
    ``momentum`` a number or a 0-d tensor (BatchNorm's cumulative average)."""
    with no_grad():
        m = momentum if isinstance(momentum, Tensor) else float(momentum)
        for run, new in ((running_mean, mean_c), (running_var, unbiased_c)):
            if run is not None:
                run.mul_(1.0 - m).add_(new.astype(run.dtype) * m)


def _fixed_stats(op: str, when: str, x: Tensor, running_mean, running_var, weight, bias,
                 eps: float) -> Tensor:
    """Normalisation with the running statistics (batch_norm_eval)."""
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: {when} needs running_mean and running_var")
    wb, affine = _affine_inputs(weight, bias)
    return apply(BATCH_NORM_EVAL, x, running_mean.astype(x.dtype), running_var.astype(x.dtype),
                 *wb, eps=float(eps), affine=affine)


def _unbias(count, like: Tensor):
    """Bessel's factor ``count / (count - 1)`` for the running variance: a Python float, or
    where ``count`` was read from None dims under capture, a 0-d tensor of ``like``'s dtype
    computed when the graph runs (so one graph serves every batch size). Both round the
    float64 quotient to ``like``'s dtype, so the two give the same bits."""
    if not traced(count):
        return count / (count - 1)
    c = size_tensor(count, like).astype(np.float64)
    return (c / (c - 1.0)).astype(like.dtype)


def _rule_bn_training(shape, traced_empty: bool | None) -> None:
    """Eager's check of training-mode batch norm; ``traced_empty``: None in eager, else
    whether the captured graph holds the empty-batch branch (an empty result, the running
    statistics untouched) or the batch-statistics one, which then serves only its own kind."""
    count = shape[0] * math.prod(shape[2:])
    if count == 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel in training, "
                         f"got input of shape {tuple(shape)}")
    if traced_empty is not None and traced_empty != (count == 0):
        raise ValueError(f"batch_norm: this captured graph was traced with "
                         f"{'an empty' if traced_empty else 'a non-empty'} batch and cannot run "
                         f"training-mode batch norm on input of shape {tuple(shape)}; skip "
                         f"empty batches, or run the model eagerly")


def _rule_instance_norm(shape) -> None:
    if math.prod(shape[2:]) <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per "
                         f"channel, got input of shape {tuple(shape)}")


SIZE_RULES["batch_norm_training"] = _rule_bn_training
SIZE_RULES["instance_norm"] = _rule_instance_norm


def batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float | Tensor = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) per channel C with batch statistics (training) or the running
    ones (inference). In training, running_mean/var (when given) are updated in place
    with ``momentum`` (running_var gets the unbiased batch variance, as PyTorch)."""
    x = as_float_tensor(input, "batch_norm")
    C = _per_channel_args("batch_norm", x, 2, "(N, C, ...)",
                          (("running_mean", running_mean), ("running_var", running_var),
                           ("weight", weight), ("bias", bias)))
    same_dtype("batch_norm", x, ("weight", weight), ("bias", bias))
    if not eps > 0:
        raise ValueError(f"batch_norm: eps must be positive, got {eps}")
    if training:
        count = x.shape[0] * math.prod(x.shape[2:])
        if traced(count):
            # a graph captured with None dims serves every size: its replays check what
            # eager checks here, and that the batch is as empty as the traced one was
            x = size_guard(x, "batch_norm_training", plain(count) == 0)
        else:
            _rule_bn_training(x.shape, None)
        if plain(count) == 0 or C == 0:
            # PyTorch: an empty result, running statistics untouched, zero weight/bias grads
            per_c = (C,) + (1,) * (x.ndim - 2)
            y = x * (1.0 if weight is None else weight.reshape(per_c))
            return y if bias is None else y + bias.reshape(per_c)
        wb, affine = _affine_inputs(weight, bias)
        y, mean, var = apply(BATCH_NORM, x, *wb, eps=float(eps), affine=affine)
        if running_mean is not None or running_var is not None:
            if x._device.type == "vmap":
                from ..vmap.batched import check_batch_norm_stats
                check_batch_norm_stats(x, (running_mean, running_var))
            # no tape for the statistics' update
            _update_running(running_mean, running_var, mean.detach(),
                            var.detach() * _unbias(count, var), momentum)
        return y
    return _fixed_stats("batch_norm", "inference (training=False)", x, running_mean,
                        running_var, weight, bias, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions."""
    if state.autocast is not None:
        return autocast_call(layer_norm, "layer_norm", input, normalized_shape, weight, bias, eps)
    x = as_float_tensor(input, "layer_norm")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    ns = tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or tuple(x.shape[x.ndim - k:]) != ns or x.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input's shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise ValueError(f"layer_norm: {name} must have shape {ns}, got {tuple(t.shape)}")
    same_dtype("layer_norm", x, ("weight", weight), ("bias", bias))
    if not eps > 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps}")
    wb, affine = _affine_inputs(weight, bias)
    return apply(LAYER_NORM, x, *wb, eps=float(eps), ndim=k, affine=affine)[0]


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) over groups of C // num_groups channels (and all positions)."""
    if state.autocast is not None:
        return autocast_call(group_norm, "group_norm", input, num_groups, weight, bias, eps)
    x = as_float_tensor(input, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    N, C = x.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or C % num_groups:
        raise ValueError(f"group_norm: num_groups={num_groups!r} must be a positive divisor of "
                         f"the {C} channels")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"group_norm: {name} must have shape ({C},), got {tuple(t.shape)}")
    same_dtype("group_norm", x, ("weight", weight), ("bias", bias))
    if not eps > 0:
        raise ValueError(f"group_norm: eps must be positive, got {eps}")
    wb, affine = _affine_inputs(weight, bias)
    return apply(GROUP_NORM, x, *wb, groups=num_groups, eps=float(eps), affine=affine)[0]


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims, as
    PyTorch's: ``x / sqrt(mean(x ** 2) + eps) * weight``; ``eps=None`` is the machine epsilon
    of the dtype it computes in. Composed of registry ops, so it differentiates, captures
    and exports to ONNX."""
    x = as_float_tensor(input, "rms_norm")
    ns = ((int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer))
          else tuple(int(s) for s in normalized_shape))
    k = len(ns)
    if not 0 < k <= x.ndim or tuple(x.shape[x.ndim - k:]) != ns:
        raise ValueError(f"rms_norm: normalized_shape {ns} must be the trailing dims of the "
                         f"input, of shape {tuple(x.shape)}")
    if weight is not None and tuple(weight.shape) != ns:
        raise ValueError(f"rms_norm: weight of shape {tuple(weight.shape)} must have "
                         f"normalized_shape {ns}")
    same_dtype("rms_norm", x, ("weight", weight))
    e = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    y = x * ((x * x).mean(axis=tuple(range(-k, 0)), keepdims=True) + e).rsqrt()
    return y if weight is None else y * weight


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *spatial) per sample and channel over the spatial positions. With
    ``use_input_stats`` and running statistics given, these are updated in place with the
    instances' mean (and unbiased variance) averaged over the batch, as PyTorch; without
    ``use_input_stats`` the running statistics normalise instead."""
    x = as_float_tensor(input, "instance_norm")
    C = _per_channel_args("instance_norm", x, 3, "(N, C, *spatial)",
                          (("running_mean", running_mean), ("running_var", running_var),
                           ("weight", weight), ("bias", bias)))
    same_dtype("instance_norm", x, ("weight", weight), ("bias", bias))
    if not eps > 0:
        raise ValueError(f"instance_norm: eps must be positive, got {eps}")
    shape = (1, C) + (1,) * (x.ndim - 2)
    if use_input_stats:
        # checked again each time a graph captured with None spatial dims runs
        x = size_guard(x, "instance_norm")
        # each (sample, channel) is a row over the spatial dims: layer_norm's fused op, with
        # no reshape that would fix the batch size in a captured graph
        y, mean, rstd = apply(LAYER_NORM, x, eps=float(eps), ndim=x.ndim - 2, affine="")
        if running_mean is not None or running_var is not None:
            with no_grad():
                m_ = mean.detach().reshape(-1, C)
                v_ = (rstd.detach() ** -2 - eps).clip(min=0.0).reshape(-1, C)
                v_ = v_ * _unbias(math.prod(x.shape[2:]), v_)
            _update_running(running_mean, running_var, m_.mean(axis=0), v_.mean(axis=0),
                            momentum)
        return _affine(y, weight, bias, shape)
    return _fixed_stats("instance_norm", "use_input_stats=False", x, running_mean, running_var,
                        weight, bias, eps)
