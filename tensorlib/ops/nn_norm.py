"""Normalisation: layer_norm (one fused op), batch_norm and group_norm (composites).

``layer_norm`` is one registry op, (x, [weight], [bias]) -> (y, mean, rstd), whose backward
is one op (``layer_norm_grad``) when it is not itself recorded and the same formula in
tensorlib ops when it is, so grad of grad works; mean and rstd are outputs (ONNX's
LayerNormalization has the same three). batch_norm and group_norm are built from
mean/var/rsqrt, so their backward comes from the core ops' rules. Running statistics are
updated in place, outside the tape.
"""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import no_grad, state
from .nn_util import as_float_tensor, io_cost, same_dtype
from .registry import OpDef, register
from ._util import numel


# --- layer_norm: one op forward, one op backward ---------------------------------------------
def _split_affine(wb, affine: str):
    it = iter(wb)
    return (next(it) if "w" in affine else None), (next(it) if "b" in affine else None)


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


def _f32_flat(*arrays):
    """C-contiguous float32 views of NumPy arrays, or None when any is something else."""
    out = []
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != np.float32:
            return None
        out.append(np.ascontiguousarray(a))
    return out


def _ln_cpu(x, *wb, eps, ndim, affine):
    """float32: one Cython pass per row (``_ops.layer_norm_fwd``); else the NumPy formula."""
    f = _f32_flat(x, *wb)
    if f is None:
        return _ln_fwd(np, x, *wb, eps=eps, ndim=ndim, affine=affine)
    from .. import _ops
    x, *wb = f
    w, b = _split_affine(wb, affine)
    D = math.prod(x.shape[x.ndim - ndim:])
    M = x.size // D if D else math.prod(x.shape[:x.ndim - ndim])
    stat_shape = _ln_stat_shape(x.shape, ndim)
    y = np.empty_like(x)
    mean, rstd = np.empty(M, np.float32), np.empty(M, np.float32)
    _ops.layer_norm_fwd(x.reshape(M, D), None if w is None else w.reshape(D),
                        None if b is None else b.reshape(D), y.reshape(M, D), mean, rstd,
                        float(eps))
    return y, mean.reshape(stat_shape), rstd.reshape(stat_shape)


def _ln_grad_cpu(x, mean, rstd, gy, gmean, grstd, *w, ndim):
    f = _f32_flat(x, mean, rstd, gy, gmean, grstd, *w)
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
    return (dx, gyx.reshape(M, D).sum(axis=0).reshape(ns),
            gy.reshape(M, D).sum(axis=0).reshape(ns))


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


def _ln_vjp(n, gy, gmean, grstd):
    x, (w, b) = n.inputs[0], _split_affine(n.inputs[1:], n.attrs["affine"])
    mean, rstd = n.output(1), n.output(2)
    k = n.attrs["ndim"]
    if not state.grad_enabled:
        dx, dw, db = apply(LAYER_NORM_GRAD, x, mean.detach(), rstd.detach(), gy, gmean, grstd,
                           *([w] if w is not None else []), ndim=k)
    else:
        axes, lead, inv_d = _ln_axes(x, k)
        xhat = (x - mean) * rstd
        gx = gy * w if w is not None else gy
        dx = (gx - gx.sum(axis=axes, keepdims=True) * inv_d
              - xhat * ((gx * xhat).sum(axis=axes, keepdims=True) * inv_d)) * rstd
        dx = dx + (gmean - grstd * rstd * rstd * xhat) * inv_d
        dw = (gy * xhat).sum(axis=lead) if w is not None else None
        db = gy.sum(axis=lead) if b is not None else None
    return (dx,) + ((dw,) if w is not None else ()) + ((db,) if b is not None else ())


def _ln_infer(x, *wb, eps, ndim, affine):
    shape, dt = x
    stat = (_ln_stat_shape(shape, ndim), dt)
    return (x, stat, stat)


LAYER_NORM = register(OpDef(
    "layer_norm", _ln_fwd, kernels={"cpu": _ln_cpu}, vjp=_ln_vjp, saves=True,
    saves_output=True, infer=_ln_infer,
    cost=io_cost(lambda i, o, **a: 8 * numel(i[0][0]))))
# the first-order backward, used only when the backward is not recorded
LAYER_NORM_GRAD = register(OpDef(
    "layer_norm_grad", _ln_grad_fwd, kernels={"cpu": _ln_grad_cpu}, vjp=None, saves=False,
    infer=lambda x, m, r, gy, gm, gr, *w, ndim: (
        x, (tuple(x[0][len(x[0]) - ndim:]), x[1]), (tuple(x[0][len(x[0]) - ndim:]), x[1])),
    cost=io_cost(lambda i, o, **a: 10 * numel(i[0][0]))))


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
            raise ValueError(f"{op}: {name} must have shape ({C},), got {tuple(t.shape)}")
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


def _running(op: str, when: str, running_mean, running_var, x: Tensor, shape):
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: {when} needs running_mean and running_var")
    return (running_mean.astype(x.dtype).reshape(shape),
            running_var.astype(x.dtype).reshape(shape))


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
    if eps <= 0:
        raise ValueError(f"batch_norm: eps must be positive, got {eps}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, C) + (1,) * (x.ndim - 2)
    if training:
        count = x.size // max(C, 1)
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel in training, "
                             f"got input of shape {tuple(x.shape)}")
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, correction=0, keepdims=True)
        if running_mean is not None or running_var is not None:
            m_, v_ = mean.detach(), var.detach()     # no tape for the statistics' update
            _update_running(running_mean, running_var, m_.reshape(C),
                            v_.reshape(C) * (count / (count - 1)), momentum)
    else:
        mean, var = _running("batch_norm", "inference (training=False)", running_mean,
                             running_var, x, shape)
        # fixed statistics: fold everything into one scale and shift per channel, so the
        # full-size work is one multiply and one add (it was four passes and temporaries)
        scale = (var + eps).rsqrt()
        if weight is not None:
            scale = scale * weight.reshape(shape)
        shift = -mean * scale
        if bias is not None:
            shift = shift + bias.reshape(shape)
        return x * scale + shift
    y = (x - mean) * (var + eps).rsqrt()
    return _affine(y, weight, bias, shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions."""
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
    wb = [t for t in (weight, bias) if t is not None]
    affine = ("w" if weight is not None else "") + ("b" if bias is not None else "")
    return apply(LAYER_NORM, x, *wb, eps=float(eps), ndim=k, affine=affine)[0]


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) over groups of C // num_groups channels (and all positions)."""
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
    xg = x.reshape(N, num_groups, -1)
    # each group is a row that layer_norm normalises (its fused kernels, forward and
    # backward), then the per-channel affine
    y = layer_norm(xg, (xg.shape[-1],), eps=eps).reshape(x.shape)
    return _affine(y, weight, bias, (1, C) + (1,) * (x.ndim - 2))


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
    axes = tuple(range(2, x.ndim))
    shape = (1, C) + (1,) * (x.ndim - 2)
    if use_input_stats:
        count = int(np.prod(x.shape[2:]))
        if count <= 1:
            raise ValueError(f"instance_norm: expected more than 1 spatial element per "
                             f"channel, got input of shape {tuple(x.shape)}")
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, correction=0, keepdims=True)
        if running_mean is not None or running_var is not None:
            m_, v_ = mean.detach(), var.detach()
            _update_running(running_mean, running_var, m_.mean(axis=0).reshape(C),
                            (v_ * (count / (count - 1))).mean(axis=0).reshape(C), momentum)
    else:
        mean, var = _running("instance_norm", "use_input_stats=False", running_mean,
                             running_var, x, shape)
    y = (x - mean) * (var + eps).rsqrt()
    return _affine(y, weight, bias, shape)
