"""Losses: cross-entropy (fused log-softmax + NLL), NLL, MSE, L1, Huber, binary CE.

``cross_entropy`` with class indices and ``nll_loss`` are registry entries (one
kernel each); the others are built from core ops, which is as fast for them.
"""
from __future__ import annotations

import math

import numpy as np

from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import state
from . import elementwise as E
from .nn_act import _log_softmax_fwd, log_softmax, softmax
from .nn_util import (as_float_or_complex_tensor, as_float_tensor, check_reduction, io_cost,
                      same_dtype)
from .registry import OpDef, register
from ._util import elementwise_cost, make_binary_infer, numel, to_tensor


# --- shared pieces of the class-index losses ------------------------------------------
def _class_consts(xp, t, w, ignore_index, C, dtype):
    """valid mask, clamped targets, per-position weight (0 where ignored), class weights."""
    valid = t != ignore_index
    tc = xp.where(valid, t, 0)
    wvec = w if w is not None else xp.ones(C, dtype)
    wt = wvec[tc] * valid.astype(dtype)
    return valid, tc, wt, wvec


def _reduce_arr(xp, loss, wt, reduction):
    if reduction == "none":
        return loss
    s = loss.sum()
    if reduction == "sum":
        return xp.asarray(s, dtype=loss.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.asarray(s / wt.sum(), dtype=loss.dtype)


def _expand_c(a, nd):
    """(N, *d) -> (N, 1, *d) to broadcast against (N, C, *d)."""
    return a.reshape(a.shape[:1] + (1,) + a.shape[1:]) if nd >= 2 else a


def _class_shape(wvec, nd):
    return wvec.reshape((1, -1) + (1,) * (nd - 2))


def _ce_fwd(xp, x, t, *w, ignore_index, reduction, label_smoothing):
    w = w[0] if w else None
    C = x.shape[1]
    with np.errstate(invalid="ignore"):     # (a row of all -inf: NaN, selected away below)
        logp = _log_softmax_fwd(xp, x, 1)
    valid, tc, wt, wvec = _class_consts(xp, t, w, ignore_index, C, x.dtype)
    picked = xp.take_along_axis(logp, _expand_c(tc, x.ndim), axis=1)[:, 0]
    # ignored positions are selected away, not multiplied by 0: a padding row of -inf
    # logits has logp = -inf (or NaN), and 0 * -inf is NaN
    with np.errstate(invalid="ignore"):
        loss = xp.where(valid, -picked * wt, 0)
        smooth = -(logp * _class_shape(wvec, x.ndim)).sum(axis=1) if label_smoothing else 0
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / C) * xp.where(valid, smooth, 0)
    return _reduce_arr(xp, loss.astype(x.dtype, copy=False), wt, reduction)


def _softmax_xent_cpu(x, t, ignore_index):
    """(prob, loss per row, targets) from the one-pass Cython kernel in the common case:
    2-D float32/float64 logits with at least one class, every target a class index and none
    equal to ignore_index. None otherwise (the caller takes the NumPy path)."""
    if x.ndim != 2 or x.shape[1] == 0 or x.dtype not in (np.float32, np.float64):
        return None
    t64 = np.ascontiguousarray(t, dtype=np.int64)
    if t64.size and (int(t64.min()) < 0 or int(t64.max()) >= x.shape[1]
                     or (0 <= ignore_index < x.shape[1] and (t64 == ignore_index).any())):
        return None
    from .. import _ops
    x = np.ascontiguousarray(x)
    prob = np.empty_like(x)
    loss = np.empty(x.shape[0], x.dtype)
    if x.shape[0]:
        _ops.softmax_xent(x, t64, prob, loss)
    return prob, loss, t64


def _ce_cpu(x, t, *w, ignore_index, reduction, label_smoothing):
    """The common case (2-D, no class weights, no ignored targets) in one Cython pass;
    anything else takes the NumPy path."""
    fast = None if w else _softmax_xent_cpu(x, t, ignore_index)
    if fast is None:
        return _ce_fwd(np, x, t, *w, ignore_index=ignore_index, reduction=reduction,
                       label_smoothing=label_smoothing)
    loss = fast[1]
    if label_smoothing:
        # the smoothing term -mean_c log p_c = lse - mean_c x_c, with lse = loss + x_t
        lse = loss.astype(np.float64) + x[np.arange(x.shape[0]), fast[2]]
        smooth = lse - x.mean(axis=1, dtype=np.float64)
        loss = ((1.0 - label_smoothing) * loss + label_smoothing * smooth).astype(x.dtype)
    if reduction == "none":
        return loss
    s = loss.sum(dtype=np.float64)
    if reduction == "mean":
        s = s / x.shape[0] if x.shape[0] else np.nan
    return np.asarray(s, dtype=x.dtype)


def _grad_scale(n, g, wt):
    """The upstream gradient per position, divided by the mean's denominator."""
    if n.attrs["reduction"] == "mean":
        # no valid target: the loss is 0/0 = NaN, the gradient 0 (as PyTorch), so that a
        # batch of padding leaves the weights alone
        from ..creation import ones_like
        total = wt.sum()
        g = g / E.where(total == 0, ones_like(total), total)
    if n.attrs["reduction"] == "none" and n.inputs[0].ndim >= 2:
        g = g.unsqueeze(1)
    return g


def _class_tensors(x, t, w, ignore_index):
    """``_class_consts`` as tensor ops on the target, so the gradient stays a function of the
    target (a captured graph replays it for new targets): valid (float), clamped targets,
    per-position weights, class weights, one-hot of the clamped targets."""
    from ..creation import arange, ones
    from .indexing import take
    C, nd = x.shape[1], x.ndim
    vf = (t != ignore_index).astype(x.dtype)
    tc = t * (t != ignore_index).astype(t.dtype)
    wvec = w if w is not None else ones(C, dtype=x.dtype, device=x.device)
    wt = take(wvec, tc, 0) * vf
    cls = arange(C, device=x.device).reshape((1, -1) + (1,) * (nd - 2)) if nd >= 2 \
        else arange(C, device=x.device)
    onehot = (_expand_c(tc, nd) == cls).astype(x.dtype)
    return vf, wt, wvec, onehot


def _ce_grad_fwd(xp, x, t, g, *, ignore_index, reduction, label_smoothing=0.0):
    """d loss / d x for 2-D x, no class weights: (softmax(x) - (1 - ls) onehot(t) - ls / C)
    on the valid rows, times the upstream gradient (divided by the valid count for
    'mean')."""
    N = x.shape[0]
    m = x.max(axis=1, keepdims=True) if x.size else xp.zeros((N, 1), x.dtype)
    p = xp.exp(x - xp.where(xp.isfinite(m), m, 0))
    p /= p.sum(axis=1, keepdims=True)
    valid = t != ignore_index
    tc = xp.where(valid, t, 0)
    if N and x.shape[1]:
        p[xp.arange(N), tc] -= 1 - label_smoothing
        if label_smoothing:
            p -= x.dtype.type(label_smoothing / x.shape[1])
    vf = valid.astype(x.dtype)
    if reduction == "none":
        scale = (g * vf)[:, None]
    else:
        scale = vf[:, None] * g
        if reduction == "mean":
            scale = scale / xp.maximum(vf.sum(), 1)   # no valid target: 0 (as PyTorch)
    # an ignored row's softmax may be NaN (all -inf): selected away, not multiplied by 0
    return xp.where(valid[:, None], p * scale, 0).astype(x.dtype, copy=False)


def _ce_grad_cpu(x, t, g, *, ignore_index, reduction, label_smoothing=0.0):
    """softmax(x) - onehot(t) from the Cython softmax pass, scaled in place (common case)."""
    fast = _softmax_xent_cpu(x, t, ignore_index)
    if fast is None:
        return _ce_grad_fwd(np, x, t, g, ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=label_smoothing)
    p, _, t64 = fast
    N = p.shape[0]
    if N:
        p[np.arange(N), t64] -= 1 - label_smoothing
        if label_smoothing:
            p -= p.dtype.type(label_smoothing / p.shape[1])
    if reduction == "none":
        p *= np.asarray(g, p.dtype)[:, None]
    else:   # every row is valid here: the mean divides by N
        p *= np.asarray(g / N if reduction == "mean" and N else g, p.dtype)
    return p


# the first-order backward of cross_entropy's common case in one op (W4 calls it 32 times a
# step: the composite below is ~18 small ops); not differentiable, so used only when the
# backward pass is not itself recorded
CROSS_ENTROPY_GRAD = register(OpDef(
    "cross_entropy_grad", _ce_grad_fwd, kernels={"cpu": _ce_grad_cpu}, vjp=None, saves=False,
    infer=lambda x, t, g, **a: x, cost=io_cost(lambda i, o, **a: 6 * numel(i[0][0]))))


def _ce_vjp(n, g):
    x, t = n.inputs[0], n.inputs[1]
    w = n.inputs[2] if len(n.inputs) > 2 else None
    ls, ii = n.attrs["label_smoothing"], n.attrs["ignore_index"]
    if w is None and x.ndim == 2 and not state.grad_enabled and state.fwd_ad is None:
        extra = {"label_smoothing": ls} if ls else {}
        return (apply(CROSS_ENTROPY_GRAD, x.detach(), t, g, ignore_index=ii,
                      reduction=n.attrs["reduction"], **extra), None)
    C, nd = x.shape[1], x.ndim
    vf, wt, wvec, onehot = _class_tensors(x, t, None if w is None else w.detach(), ii)
    a = (1.0 - ls) * wt + (ls / C) * wvec.sum() * vf if ls else wt
    b = (1.0 - ls) * _expand_c(wt, nd) * onehot
    if ls:
        b = b + (ls / C) * _class_shape(wvec, nd) * _expand_c(vf, nd)
    p = softmax(x, axis=1)
    dx = (p * _expand_c(a, nd) - b) * _grad_scale(n, g, wt)
    # selected, not scaled by 0: an ignored row of all -inf has a NaN softmax
    dx = E.where(_expand_c(vf, nd) != 0, dx, 0.0)
    return (dx, None) + ((None,) if w is not None else ())


def _loss_infer(x, t, *w, reduction, **attrs):
    if reduction == "none":
        return tuple(t[0]), x[1]
    return (), x[1]


_ce_cost = io_cost(lambda i, o, **a: 6 * numel(i[0][0]))
CROSS_ENTROPY = register(OpDef("cross_entropy", _ce_fwd, kernels={"cpu": _ce_cpu}, vjp=_ce_vjp,
                               infer=_loss_infer,
                               cost=_ce_cost, saves=True, onnx="SoftmaxCrossEntropyLoss"))


def _nll_fwd(xp, x, t, *w, ignore_index, reduction):
    w = w[0] if w else None
    valid, tc, wt, _ = _class_consts(xp, t, w, ignore_index, x.shape[1], x.dtype)
    picked = xp.take_along_axis(x, _expand_c(tc, x.ndim), axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        loss = xp.where(valid, -picked * wt, 0)     # selected: 0 * -inf would be NaN
    return _reduce_arr(xp, loss.astype(x.dtype, copy=False), wt, reduction)


def _nll_cpu(x, t, *w, ignore_index, reduction):
    """The common case (2-D, no class weights, no target equal to ignore_index) by one
    fancy index: the general form is a dozen small NumPy calls, which dominated small
    batches."""
    if w or x.ndim != 2 or x.size == 0 or (0 <= ignore_index < x.shape[1]) \
            or not 0 <= int(t.min()) <= int(t.max()) < x.shape[1]:
        return _nll_fwd(np, x, t, *w, ignore_index=ignore_index, reduction=reduction)
    N = x.shape[0]
    loss = -x[np.arange(N), t]
    if reduction == "none":
        return loss
    s = loss.sum(dtype=np.float64)
    return np.asarray(s / N if reduction == "mean" else s, dtype=x.dtype)


def _nll_grad_scale(xp, x, t, g, w, ignore_index, reduction):
    """The clamped targets and ``-w[t] g`` per position (0 where ignored; divided by the
    total weight for 'mean', and 0 when there is none, as PyTorch)."""
    _, tc, wt, _ = _class_consts(xp, t, w[0] if w else None, ignore_index, x.shape[1], x.dtype)
    scale = -wt * g
    if reduction == "mean":
        total = wt.sum()
        scale = scale / xp.where(total == 0, xp.ones((), x.dtype), total)
    return tc, scale.astype(x.dtype, copy=False)


def _nll_grad_fwd(xp, x, t, g, *w, ignore_index, reduction):
    """d loss / d x: -w[t] g at the target class of each valid position, 0 elsewhere."""
    nd, C = x.ndim, x.shape[1]
    tc, scale = _nll_grad_scale(xp, x, t, g, w, ignore_index, reduction)
    cls = xp.arange(C).reshape((1, -1) + (1,) * (nd - 2))
    return ((_expand_c(tc, nd) == cls) * _expand_c(scale, nd)).astype(x.dtype, copy=False)


def _nll_grad_cpu(x, t, g, *w, ignore_index, reduction):
    # the same, written in place of a one-hot product
    tc, scale = _nll_grad_scale(np, x, t, g, w, ignore_index, reduction)
    dx = np.zeros(x.shape, x.dtype)
    np.put_along_axis(dx, _expand_c(tc, x.ndim), _expand_c(scale, x.ndim), axis=1)
    return dx


# the first-order backward of nll_loss in one op (the composite is ~20 small ops); not
# differentiable, so used only when the backward pass is not itself recorded
NLL_LOSS_GRAD = register(OpDef(
    "nll_loss_grad", _nll_grad_fwd, kernels={"cpu": _nll_grad_cpu}, vjp=None, saves=False,
    infer=lambda x, t, g, *w, **a: x, cost=io_cost(lambda i, o, **a: numel(i[0][0]))))


def _nll_vjp(n, g):
    x, t = n.inputs[0], n.inputs[1]
    w = n.inputs[2] if len(n.inputs) > 2 else None
    if not state.grad_enabled and state.fwd_ad is None:
        ws = (w.detach(),) if w is not None else ()
        return (apply(NLL_LOSS_GRAD, x.detach(), t, g, *ws, ignore_index=n.attrs["ignore_index"],
                      reduction=n.attrs["reduction"]), None) + ((None,) if w is not None else ())
    _, wt, _, onehot = _class_tensors(x, t, None if w is None else w.detach(),
                                      n.attrs["ignore_index"])
    dx = -(onehot * _expand_c(wt, x.ndim)) * _grad_scale(n, g, wt)
    return (dx, None) + ((None,) if w is not None else ())


NLL_LOSS = register(OpDef("nll_loss", _nll_fwd, kernels={"cpu": _nll_cpu}, vjp=_nll_vjp,
                          infer=_loss_infer, cost=io_cost(), saves=False,
                          onnx="NegativeLogLikelihoodLoss"))


def _class_shape_message(op, x, target, want) -> str:
    xs, ts = tuple(x.shape), tuple(target.shape)
    if x.ndim == 1:
        return (f"{op}: a 1-d input of shape {xs} is one sample's scores over {xs[0]} classes, "
                f"so the target is one class index (a 0-d tensor), got shape {ts}; for a "
                f"batch of {xs[0]} samples the input is (N, C)")
    if ts == xs:
        return (f"{op}: a target of the input's shape {xs} must hold class probabilities "
                f"(floats), got {target.dtype}; for one-hot labels pass target.float(), or "
                f"the class indices target.argmax(1) (shape {want})")
    return (f"{op}: target of shape {ts} does not fit input of shape {xs}: class indices "
            f"need shape {want} (the input without its class dim 1)")


def _check_class_args(op, x, target, weight, ignore_index):
    from ..errors import ShapeError
    if x.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, got a 0-d tensor")
    C = x.shape[1] if x.ndim >= 2 else x.shape[0]
    want = (x.shape[:1] + x.shape[2:]) if x.ndim >= 2 else ()
    if tuple(target.shape) != tuple(want):
        raise ShapeError(_class_shape_message(op, x, target, want))
    if weight is not None:
        same_dtype(op, x, ("weight", weight))
        if tuple(weight.shape) != (C,):
            raise ShapeError(f"{op}: weight must have shape ({C},) (one per class), got "
                             f"{tuple(weight.shape)}")
    if target.device.type != "cpu":
        return   # checked on the device: out-of-range targets give NaN (tensorlib.cuda.bindings)
    td = target._host()
    if td.size and not 0 <= int(td.min()) <= int(td.max()) < C:
        bad = (td != ignore_index) & ((td < 0) | (td >= C))
        if bad.any():
            v = int(td[bad].flat[0])
            raise IndexError(f"{op}: target value {v} is out of range for {C} classes "
                             f"(and is not ignore_index={ignore_index})")


def _class_loss(op, x, target, weight, reduction, **attrs):
    unbatched = x.ndim == 1
    if unbatched:
        x = x.reshape(1, -1)
        target = target.reshape(1)
    ins = (x, target) + ((weight,) if weight is not None else ())
    out = apply(op, *ins, reduction=reduction, **attrs)
    return out.reshape(()) if unbatched and reduction == "none" else out


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: the deprecated ``size_average`` /
    ``reduce`` flags (either given, not None) replace ``reduction``: ``reduce=False`` gives
    'none', else ``size_average=False`` gives 'sum', else 'mean'; with PyTorch's warning."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    from .._warn import warn_user
    warn_user("size_average and reduce args will be deprecated, please use "
              f"reduction='{ret}' instead.")
    return ret


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def cross_entropy(input, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0, *,
                  size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """Softmax cross-entropy over axis 1 of ``input`` (N, C, ...) or (C,).

    ``target`` holds class indices (integer, shape (N, ...)) or class probabilities
    (float, the input's shape). As ``torch.nn.functional.cross_entropy``.
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(cross_entropy, "cross_entropy", input, target, weight, ignore_index,
                             reduction, label_smoothing)
    x = as_float_tensor(input, "cross_entropy")
    target = to_tensor(target)
    check_reduction("cross_entropy", reduction)
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {ls}")
    weight = None if weight is None else as_float_tensor(weight, "cross_entropy", "weight")
    if target._data.dtype.kind == "f":
        if tuple(target.shape) != tuple(x.shape) and \
                tuple(target.shape) == _index_target_shape(x):
            raise TypeError(
                f"cross_entropy: target of shape {tuple(target.shape)} has the shape of class "
                f"indices for input {tuple(x.shape)}, but dtype {target._data.dtype}: class-index "
                "targets must be integers (use target.long()); a float target is read as class "
                "probabilities and must have the input's shape")
        if int(ignore_index) >= 0:
            # PyTorch refuses too: a probability target has no class to ignore, and a port
            # that kept ignore_index=255 would silently train on the "ignored" pixels
            from ..errors import InputError
            raise InputError(
                f"cross_entropy: ignore_index is not supported for floating point target "
                f"(got ignore_index={ignore_index} with a probability target of dtype "
                f"{target._data.dtype}); mask those positions out of the target, or pass "
                "integer class indices")
        return _soft_cross_entropy(x, target, weight, reduction, ls)
    _check_index_target("cross_entropy", target, "or class probabilities (a float tensor) ")
    _check_class_args("cross_entropy", x, target, weight, ignore_index)
    if _no_classes(x):
        return _no_class_loss(x, reduction, ls)
    return _class_loss(CROSS_ENTROPY, x, target, weight, reduction,
                       ignore_index=int(ignore_index), label_smoothing=ls)


def _check_index_target(op: str, target, alt: str = "") -> None:
    """Class indices must be int64 or uint8, as PyTorch's nll_loss kernels (int32, int16,
    int8 and bool targets are refused there too, on CPU and CUDA)."""
    dt = target._data.dtype
    if dt != np.int64 and dt != np.uint8:
        from ..errors import DTypeError
        raise DTypeError(f"{op}: expected target dtype to be int64 or uint8 (PyTorch's Long or "
                         f"Byte) class indices {alt}but got {dt}; use target.long()")


def _no_classes(x) -> bool:
    return x.shape[1 if x.ndim >= 2 else 0] == 0


def _no_class_loss(x, reduction: str, ls: float) -> Tensor:
    """Zero classes (every target ignored, which the range check has ensured), as PyTorch:
    each position's loss is 0 (NaN with label smoothing, its 1/C term), the mean 0/0 = NaN.
    Built from ``x`` so the (empty) gradient flows back to it."""
    loss = x.sum(axis=1 if x.ndim >= 2 else 0) * 0.0
    if ls:
        loss = loss + math.nan
    if reduction == "none":
        return loss
    return loss.sum() + (math.nan if reduction == "mean" else 0.0)


def _index_target_shape(x) -> tuple:
    """The shape of a class-index target for input ``x``: (N, d1, ...) for (N, C, d1, ...),
    () for an unbatched (C,)."""
    shape = tuple(x.shape)
    return shape[:1] + shape[2:] if len(shape) >= 2 else ()


def _soft_cross_entropy(x, target, weight, reduction, ls):
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(f"cross_entropy: probability target of shape {tuple(target.shape)} "
                         f"must match the input's shape {tuple(x.shape)}")
    if target.dtype != x.dtype:     # PyTorch promotes (float32 logits, float64 probabilities)
        dt = np.promote_types(x.dtype, target.dtype)
        x, target = x.astype(dt), target.astype(dt)
    axis = 1 if x.ndim >= 2 else 0
    C = x.shape[axis]
    if ls:
        target = target * (1.0 - ls) + ls / C
    logp = log_softmax(x, axis=axis)
    prod = logp * target
    if weight is not None:
        if tuple(weight.shape) != (C,):
            raise ValueError(f"cross_entropy: weight must have shape ({C},), got "
                             f"{tuple(weight.shape)}")
        prod = prod * weight.reshape((-1,) + (1,) * (x.ndim - 2) if x.ndim >= 2 else (-1,))
    loss = -prod.sum(axis=axis)
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, ignore_index: int = -100,
             reduction: str = "mean", *, size_average: bool | None = None,
             reduce: bool | None = None) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at ``target``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(nll_loss, "nll_loss", input, target, weight, ignore_index, reduction)
    x = as_float_tensor(input, "nll_loss")
    target = to_tensor(target)
    check_reduction("nll_loss", reduction)
    _check_index_target("nll_loss", target)
    weight = None if weight is None else as_float_tensor(weight, "nll_loss", "weight")
    if x.ndim == 1 and tuple(target.shape) == (1,):
        target = target.reshape(())     # PyTorch 2.13 takes a (1,) target for a (C,) input
    _check_class_args("nll_loss", x, target, weight, ignore_index)
    if _no_classes(x):
        return _no_class_loss(x, reduction, 0.0)
    return _class_loss(NLL_LOSS, x, target, weight, reduction, ignore_index=int(ignore_index))


# --- regression and binary losses (composites of core ops) ----------------------------
def _pair(op, input, target, same_shape: bool = False, int_target: bool = False,
          complex_ok: bool = False):
    """(input, target) as float tensors of one dtype (the wider). same_shape: they must
    match exactly (the binary cross entropies, as in PyTorch); else a target that
    broadcasts the loss past the input's shape warns. int_target: an integer or bool
    target takes the input's float dtype (mse_loss and l1_loss, as PyTorch promotes).
    complex_ok: complex tensors are taken too (a real and a complex one promote to the
    complex dtype of the wider precision, as PyTorch's)."""
    as_tensor = as_float_or_complex_tensor if complex_ok else as_float_tensor
    x = as_tensor(input, op)
    if (int_target and isinstance(target, Tensor) and target._data.dtype.kind in "biu"
            and x._data.dtype.kind in "fc"):
        target = target.astype(x._data.dtype)
    y = as_tensor(target, op, "target")
    if x._data.dtype != y._data.dtype:     # float32 logits, float64 labels: as PyTorch, the
        from .shape import category_dtype   # loss is computed in the wider dtype
        dt = category_dtype([x._data.dtype, y._data.dtype])
        x, y = x.astype(dt), y.astype(dt)
    if same_shape and tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"{op}: target of shape {tuple(y.shape)} must have the input's shape "
                         f"{tuple(x.shape)} (reshape one of them, e.g. input.squeeze(-1))")
    if tuple(x.shape) != tuple(y.shape):
        from ._util import broadcast_shapes
        out = broadcast_shapes(op, x.shape, y.shape)
        if out != tuple(x.shape):   # (N, 1) against (N,) gives an (N, N) loss: a common slip
            from .._warn import warn_user
            warn_user(f"{op}: target of shape {tuple(y.shape)} broadcasts against input "
                      f"of shape {tuple(x.shape)} to {out}; the loss then compares every "
                      "pair, which is rarely meant. Reshape one of them to match.")
    return x, y


def _check_loss_weight(op: str, weight, x: Tensor) -> Tensor:
    w = as_float_tensor(weight, op, "weight")
    if tuple(w.shape) != tuple(x.shape):
        raise ValueError(f"{op}: weight of shape {tuple(w.shape)} must have the input's shape "
                         f"{tuple(x.shape)}")
    return w


def mse_loss(input, target, reduction: str = "mean", weight=None, *,
             size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """Mean squared error (broadcasting input against target). ``weight`` (the input's
    shape) scales each squared error; then, as PyTorch 2.13, 'mean' is
    ``sum(w * d**2) / sum(w)``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(mse_loss, "mse_loss", input, target, reduction, weight)
    check_reduction("mse_loss", reduction)
    if any(getattr(getattr(a, "dtype", None), "kind", None) == "c" for a in (input, target)):
        from ..errors import DTypeError
        raise DTypeError("mse_loss: complex tensors are not supported (PyTorch refuses them "
                         "too); for complex errors use ((input - target).abs() ** 2).mean()")
    x, y = _pair("mse_loss", input, target, int_target=True)
    d = x - y
    if weight is not None:
        return _weighted_mean_by_weight(d * d * _check_loss_weight("mse_loss", weight, x),
                                        weight, reduction)
    return _reduce(d * d, reduction)


def _weighted_mean_by_weight(loss: Tensor, weight, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.sum() / to_tensor(weight).sum()
    return _reduce(loss, reduction)


def l1_loss(input, target, reduction: str = "mean", weight=None, *,
            size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """Mean absolute error. ``weight`` (the input's shape) scales each error; then, as
    PyTorch 2.13, 'mean' is ``sum(w * |d|) / sum(w)``. Complex input or target: the
    modulus ``|input - target|``, so the loss is real (as PyTorch's)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(l1_loss, "l1_loss", input, target, reduction, weight)
    check_reduction("l1_loss", reduction)
    x, y = _pair("l1_loss", input, target, int_target=True, complex_ok=True)
    if weight is not None:
        return _weighted_mean_by_weight(
            (x - y).abs() * _check_loss_weight("l1_loss", weight, x), weight, reduction)
    return _reduce((x - y).abs(), reduction)


def _huber_fwd(xp, x, y, *, delta, smooth, reduction="none"):
    # one pass per ufunc on fresh buffers: with m = min(|d|, delta), m (|d| - m / 2) is
    # d^2 / 2 inside and delta (|d| - delta / 2) outside, and NaN stays NaN (as PyTorch's)
    shape = xp.broadcast_shapes(x.shape, y.shape)
    # (at least 1-d: ufuncs return scalars for 0-d operands, which out= cannot take)
    a = xp.subtract(x.reshape(-1) if x.ndim == 0 else x, y.reshape(-1) if y.ndim == 0 else y)
    xp.abs(a, out=a)
    m = xp.minimum(a, delta)
    h = xp.multiply(m, 0.5)
    xp.subtract(a, h, out=a)
    if smooth:      # m / beta is exactly 1 outside, so that branch is |d| - beta / 2 exactly
        xp.divide(m, delta, out=m)
    xp.multiply(a, m, out=a)
    if reduction == "none":
        return a.reshape(shape)
    if reduction == "sum":
        return xp.asarray(a.sum(), a.dtype)
    # the mean of nothing is NaN, as PyTorch's (without NumPy's warning)
    return xp.asarray(a.mean() if a.size else np.nan, a.dtype)


def _huber_cpu(x, y, *, delta, smooth, reduction="none"):
    # one fused pass (the loss and its sum, never the loss array for 'mean'/'sum'); NumPy's
    # composite takes six passes and a full temporary
    flat = E.flat_pair(x, y)
    if flat is None or x.size == 0:
        return _huber_fwd(np, x, y, delta=delta, smooth=smooth, reduction=reduction)
    from .. import _ops
    if reduction == "none":
        out = np.empty(x.shape, x.dtype)
        _ops.huber_into(*flat, out.reshape(-1), delta, smooth)
        return out
    s = _ops.huber_sum(*flat, delta, smooth)
    return np.asarray(s / x.size if reduction == "mean" else s, x.dtype)


def _huber_vjp(n, g):
    from ._util import unbroadcast
    x, y = n.inputs
    a = n.attrs
    # 'mean' divides by the element count when the kernel runs, so a graph captured with a
    # None batch dim is not frozen to the traced size
    attrs = dict(delta=a["delta"], k=1.0 / a["delta"] if a["smooth"] else 1.0,
                 mean=a.get("reduction", "none") == "mean")
    gx = apply(HUBER_GRAD, g, x, y, **attrs) if x._rg else None
    gy = apply(HUBER_GRAD, g, y, x, **attrs) if y._rg else None     # d/dy = -d/dx
    return (unbroadcast(gx, x.shape) if gx is not None else None,
            unbroadcast(gy, y.shape) if gy is not None else None)


def _huber_onnx(ctx, n):
    x, y = ctx.ins(n)
    dt = np.dtype(n.out.dtype)
    delta = ctx.const(np.asarray(n.attrs["delta"], dt))
    a = ctx.op("Abs", [ctx.op("Sub", [x, y])])
    m = ctx.op("Min", [a, delta])
    inner = ctx.op("Sub", [a, ctx.op("Mul", [m, ctx.const(np.asarray(0.5, dt))])])
    if n.attrs["smooth"]:
        m = ctx.op("Div", [m, delta])
    out = ctx.op("Mul", [inner, m])
    red = n.attrs.get("reduction", "none")
    if red == "none":
        return out
    return ctx.op("ReduceMean" if red == "mean" else "ReduceSum", [out], keepdims=0)


def _huber_infer(a, b, *, reduction="none", **attrs):
    shape, dt = make_binary_infer("huber_loss")(a, b)
    return (shape if reduction == "none" else ()), dt


HUBER = register(OpDef(
    "huber_loss", _huber_fwd, kernels={"cpu": _huber_cpu}, vjp=_huber_vjp, saves=True,
    onnx=_huber_onnx, infer=_huber_infer, cost=elementwise_cost,
    doc="Huber loss of x - y (delta > 0), elementwise (reduction 'none') or fused with its "
        "'mean' / 'sum'; smooth=True divides it by delta (smooth_l1_loss, beta = delta)."))


def _huber_grad_fwd(xp, g, x, y, *, delta, k, mean):
    # k g clip(x - y, -delta, delta); NaN passes through the clip, as PyTorch's backward
    d = x - y
    c = xp.where(d < -delta, -delta, xp.where(d > delta, delta, d)).astype(d.dtype)
    k = k / d.size if mean and d.size else k
    return (g * c * d.dtype.type(k)).astype(d.dtype, copy=False)


def _huber_grad_cpu(g, x, y, *, delta, k, mean):
    flat = E.flat_pair(x, y)
    if flat is None or g.dtype != x.dtype or x.size == 0 or not (
            g.size == 1 or g.shape == x.shape):
        return _huber_grad_fwd(np, g, x, y, delta=delta, k=k, mean=mean)
    from .. import _ops
    out = np.empty(x.shape, x.dtype)
    _ops.huber_grad_into(np.ascontiguousarray(g).reshape(-1), *flat, out.reshape(-1), delta,
                         k / x.size if mean else k)
    return out


def _huber_grad_vjp(n, gg):
    # out = k' g c(x - y), k' = k (/ numel for mean), c the clip: linear in g, and c' is the
    # indicator of |x - y| < delta (0 at the kinks, PyTorch's second derivative)
    from ._util import broadcast_shapes, unbroadcast
    from .size_guard import element_count
    g, x, y = n.inputs
    a = n.attrs
    k = a["k"]
    if a["mean"]:
        k = k / element_count(broadcast_shapes("huber_loss_grad", x.shape, y.shape), x)
    d = x - y
    dg = dx = None
    if g._rg:
        dg = unbroadcast(gg * E.clip_interior(d, -a["delta"], a["delta"]) * k, g.shape)
    if x._rg or y._rg:
        inside = E.logical_and(d > -a["delta"], d < a["delta"])
        dx = E.where(inside, gg * g * k, 0.0)
    return (dg, unbroadcast(dx, x.shape) if x._rg else None,
            unbroadcast(-dx, y.shape) if y._rg else None)


def _huber_grad_onnx(ctx, n):
    # k g clip(x - y, -delta, delta), k over the count of x - y for mean=True: read from the
    # run-time shape where a dim is dynamic, as the kernel divides by d.size
    from ..onnx.rules import count_scale
    g, x, y = ctx.ins(n)
    dt = np.dtype(n.out.dtype)
    delta, k = n.attrs["delta"], n.attrs["k"]
    c = ctx.op("Clip", [ctx.op("Sub", [x, y]), ctx.const(np.asarray(-delta, dt)),
                        ctx.const(np.asarray(delta, dt))])
    if n.attrs["mean"]:
        shapes = [tuple(v.shape) for v in n.inputs[1:]]
        shape = ((None,) if any(None in s for s in shapes) else np.broadcast_shapes(*shapes))
        scale = count_scale(ctx, k, c, shape, dt)
    else:
        scale = ctx.const(np.asarray(k, dt))
    return ctx.op("Mul", [ctx.op("Mul", [g, c]), scale])


def _huber_grad_infer(g, x, y, **attrs):
    from ._util import broadcast_shapes
    return broadcast_shapes("huber_loss_grad", g[0], x[0], y[0]), np.dtype(x[1])


HUBER_GRAD = register(OpDef(
    "huber_loss_grad", _huber_grad_fwd, kernels={"cpu": _huber_grad_cpu},
    vjp=_huber_grad_vjp, saves=True, onnx=_huber_grad_onnx, infer=_huber_grad_infer,
    cost=elementwise_cost,
    doc="Huber / smooth L1's backward in one pass: k g clip(x - y, -delta, delta), k over "
        "the element count when mean=True."))


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), with d = input - target
    (``torch.nn.functional.huber_loss``). ``weight`` (the input's shape) scales each term;
    unlike mse_loss/l1_loss, PyTorch 2.13's 'mean' then stays the plain mean of the weighted
    terms. NaN propagates; the second derivative is 1 strictly inside |d| < delta."""
    if state.autocast is not None:
        return autocast_call(huber_loss, "huber_loss", input, target, reduction, delta, weight)
    check_reduction("huber_loss", reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x, y = _pair("huber_loss", input, target)
    if weight is None:
        return _huber(x, y, float(delta), False, reduction)
    loss = apply(HUBER, x, y, delta=float(delta), smooth=False)
    return _reduce(loss * _check_loss_weight("huber_loss", weight, x), reduction)


def _huber(x: Tensor, y: Tensor, delta: float, smooth: bool, reduction: str) -> Tensor:
    # the reduction is fused into the op where x and y have one shape (a broadcast target
    # keeps the elementwise op: its gradient must be summed back to y's shape anyway)
    if reduction != "none" and tuple(x.shape) == tuple(y.shape):
        return apply(HUBER, x, y, delta=delta, smooth=smooth, reduction=reduction)
    return _reduce(apply(HUBER, x, y, delta=delta, smooth=smooth), reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0, *,
                   size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (``huber_loss`` / beta), as
    ``torch.nn.functional.smooth_l1_loss``; beta = 0 is ``l1_loss``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(smooth_l1_loss, "smooth_l1_loss", input, target, reduction, beta)
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    x, y = _pair("smooth_l1_loss", input, target)
    return _huber(x, y, float(beta), True, reduction)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False, *,
           size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """KL divergence with ``input`` as log-probabilities, PyTorch's ``F.kl_div``: pointwise
    ``xlogy(target, target) - target * input`` (``target * (log(target) - input)``, its
    first term 0 where target is 0), so NaN wherever target is NaN or negative, or input is
    NaN or infinite (0 * inf), as PyTorch; ``reduction="batchmean"`` divides the sum by the
    batch size, which is the true KL divergence."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(kl_div, "kl_div", input, target, reduction, log_target)
    if reduction != "batchmean":
        check_reduction("kl_div", reduction)
    x, y = _pair("kl_div", input, target)
    if log_target:
        loss = y.exp() * (y - x)
    else:
        # PyTorch's formula term for term (a where() on y > 0 made a NaN target, or a NaN or
        # -inf input against a 0 target, a silent 0)
        from ..special import xlogy
        with np.errstate(invalid="ignore"):     # 0 * inf is NaN here, as PyTorch's
            loss = xlogy(y, y) - y * x
    if reduction == "batchmean":
        # the sum over the non-batch axes, averaged over the batch: a mean follows a None
        # batch dim under capture (1.0 / x.shape[0] would freeze the traced size silently)
        return loss.sum(axis=tuple(range(1, x.ndim))).mean() if x.ndim else loss.sum()
    return _reduce(loss, reduction)


def _bce_fwd(xp, p, y):
    # the logs clamped at -100 (log(0) would make 0 * -inf); errstate: log(0) is meant
    with np.errstate(divide="ignore"):
        lp = xp.maximum(xp.log(p), -100.0)
        lq = xp.maximum(xp.log1p(-p), -100.0)
    return (-(y * lp + (1.0 - y) * lq)).astype(p.dtype, copy=False)


_BCE_EPS = float(np.float32(1e-12))


def _bce_vjp(n, g):
    p, y = n.inputs
    from ._util import unbroadcast
    # PyTorch's gradient: (p - y) / max(p (1 - p), eps), finite where p is 0 or 1 (the
    # chain rule through the clamped logs gives 0 * inf there); eps is PyTorch's float32
    # constant 1e-12, which is 9.99999996e-13
    gp = g * (p - y) / (p * (1.0 - p)).clip(min=_BCE_EPS) if p._rg else None
    gy = None
    if y._rg:
        # unclamped, as PyTorch's: log(1 - p) - log(p), +-inf at p = 0 or 1
        gy = g * ((-p).log1p() - p.log())
    return (None if gp is None else unbroadcast(gp, p.shape),
            None if gy is None else unbroadcast(gy, y.shape))


BCE = register(OpDef(
    "binary_cross_entropy", _bce_fwd, vjp=_bce_vjp, saves=True,
    infer=make_binary_infer("binary_cross_entropy"), cost=elementwise_cost,
    doc="Elementwise -(y log p + (1 - y) log(1 - p)), the logs clamped at -100."))


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean", *,
                         size_average: bool | None = None,
                         reduce: bool | None = None) -> Tensor:
    """Binary cross-entropy between probabilities ``input`` and ``target`` (``torch.nn.
    functional.binary_cross_entropy``): ``-w (y log p + (1 - y) log(1 - p))``.

    As PyTorch: the logs are clamped at -100 (a finite loss at p = 0 or 1); the gradient
    w.r.t. ``input`` is ``(p - y) / max(p (1 - p), 1e-12)`` (finite at p = 0 or 1); the
    gradient w.r.t. ``target`` is ``log(1 - p) - log(p)``, unclamped (+-inf at p = 0 or
    1). ``input`` and ``target`` must have the same shape and values in [0, 1];
    ``weight`` broadcasts to them; ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``.

    >>> p = tl.tensor([0.9, 0.2]); y = tl.tensor([1.0, 0.0])
    >>> round(F.binary_cross_entropy(p, y).item(), 4)
    0.1643
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(binary_cross_entropy, "binary_cross_entropy", input, target, weight,
                             reduction)
    check_reduction("binary_cross_entropy", reduction)
    p, y = _pair("binary_cross_entropy", input, target, same_shape=True)
    on_cpu = p.device.type == "cpu"
    if on_cpu:
        ph = p._host()
        if ph.size and not ((ph >= 0) & (ph <= 1)).all():
            raise ValueError("binary_cross_entropy: every element of input must be a "
                             "probability in [0, 1]; use binary_cross_entropy_with_logits for "
                             "logits")
        yh = y._host()
        if yh.size and not ((yh >= 0) & (yh <= 1)).all():
            # labels such as {-1, 1} or {0, 1, 2} give a loss without a minimum (PyTorch
            # refuses them too)
            raise ValueError("binary_cross_entropy: every element of target must be in "
                             "[0, 1] (a probability or a 0/1 label); for several classes "
                             "use cross_entropy")
    loss = apply(BCE, p, y)
    if not on_cpu:   # checked on the device (NaN): a copy to the host would synchronise
        loss = E.where(((p < 0.0) | (p > 1.0)).any(), float("nan"), loss)
    if weight is not None:
        loss = loss * as_float_tensor(weight, "binary_cross_entropy", "weight")
    return _reduce(loss, reduction)


def _bcel_parts(rest, weighted: bool, pos: bool):
    return (rest[0] if weighted else None), (rest[-1] if pos else None)


def _bcel_fwd(xp, x, y, *rest, weighted=False, pos=False, reduction="none"):
    # PyTorch's formula: (1 - y) x - lw log_sigmoid(x), lw = 1 + (pw - 1) y, times w
    w, pw = _bcel_parts(rest, weighted, pos)
    ls = xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))
    loss = (1 - y) * x - ((1 + (pw - 1) * y) * ls if pos else ls)
    if weighted:
        loss = loss * w
    loss = loss.astype(x.dtype, copy=False)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.asarray(loss.sum(), x.dtype)
    return xp.asarray(loss.mean() if loss.size else np.nan, x.dtype)


def _bcel_flat(x, y, w, pw):
    """x, y, w, pw flat for _ops.bce_logits with the period P its weights repeat with (0:
    none repeats), or None where the kernel does not apply (the NumPy path then)."""
    if (x.size == 0 or x.shape != y.shape
            or x.dtype != y.dtype or x.dtype not in E.FUSED_FLOATS
            or any(v is not None and v.dtype != x.dtype for v in (w, pw))):
        return None
    # a weight broadcast over leading dims repeats every P elements: one row of P values,
    # at least 64 long so that the kernel's rows stay long
    m = 0
    for v in (w, pw):
        if v is not None and v.shape != x.shape:
            dims = list(v.shape)
            while dims and dims[0] == 1:
                dims.pop(0)
            m = max(m, len(dims))
    while m < x.ndim and math.prod(x.shape[x.ndim - m:]) < 64:
        m += 1
    tail = x.shape[x.ndim - m:] if m else ()
    period = math.prod(tail) if any(v is not None and v.shape != x.shape
                                    for v in (w, pw)) else 0

    def flat(v):
        if v is None:
            return None
        if v.shape != x.shape:
            v = np.broadcast_to(v.reshape(v.shape[max(0, v.ndim - m):]) if v.ndim > m else v,
                                tail)
        return np.ascontiguousarray(v).reshape(-1)
    return (np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1),
            flat(w), flat(pw), period)


def _bcel_cpu(x, y, *rest, weighted=False, pos=False, reduction="none"):
    # one pass (the loss and its sum, never the loss array for 'mean'/'sum'), where the
    # composite takes about eight
    w, pw = _bcel_parts(rest, weighted, pos)
    args = _bcel_flat(x, y, w, pw)
    if args is None:
        with np.errstate(over="ignore", invalid="ignore"):
            return _bcel_fwd(np, x, y, *rest, weighted=weighted, pos=pos, reduction=reduction)
    from .. import _ops
    if reduction == "none":
        out = np.empty(x.shape, x.dtype)
        _ops.bce_logits(*args, out.reshape(-1))
        return out
    s = _ops.bce_logits(*args, None)
    return np.asarray(s / x.size if reduction == "mean" else s, x.dtype)


def _bcel_scale(x: Tensor, mean: bool):
    """1 / numel(x) for a mean (read at run time from None dims of a captured graph), else 1."""
    if not mean:
        return 1.0
    from .size_guard import element_count
    return 1.0 / element_count(x.shape, x)


def _bcel_vjp(n, g):
    from ._util import unbroadcast
    from .nn_act import logsigmoid
    x, y, *rest = n.inputs
    a = n.attrs
    weighted, pos, red = a["weighted"], a["pos"], a.get("reduction", "none")
    w, pw = _bcel_parts(rest, weighted, pos)
    gx = gy = gw = gpw = None
    if x._rg:
        gx = apply(BCEL_GRAD, g, x, y, *rest, weighted=weighted, pos=pos, mean=red == "mean")
    if y._rg or (weighted and w._rg) or (pos and pw._rg):
        gk = g * _bcel_scale(x, red == "mean")
        ls = logsigmoid(x)
        if y._rg:       # d/dy = -x - (pw - 1) log_sigmoid(x)
            gy = gk * (-x - (pw - 1.0) * ls if pos else -x)
            gy = gy * w if weighted else gy
        if weighted and w._rg:
            gw = unbroadcast(gk * apply(BCEL, x, y, *([pw] if pos else []), weighted=False,
                                        pos=pos), w.shape)
        if pos and pw._rg:
            d = -gk * y * ls
            gpw = unbroadcast(d * w if weighted else d, pw.shape)
    return (gx, gy) + ((gw,) if weighted else ()) + ((gpw,) if pos else ())


def _bcel_onnx(ctx, n):
    x, y, *rest = ctx.ins(n)
    a = n.attrs
    w, pw = _bcel_parts(rest, a["weighted"], a["pos"])
    one = ctx.const(np.asarray(1, np.dtype(n.out.dtype)))
    sp = ctx.op("Softplus", [ctx.op("Neg", [x])])       # -log_sigmoid(x)
    if a["pos"]:
        sp = ctx.op("Mul", [ctx.op("Add", [one, ctx.op("Mul", [ctx.op("Sub", [pw, one]), y])]),
                            sp])
    out = ctx.op("Add", [ctx.op("Mul", [ctx.op("Sub", [one, y]), x]), sp])
    if a["weighted"]:
        out = ctx.op("Mul", [out, w])
    red = a.get("reduction", "none")
    if red == "none":
        return out
    return ctx.op("ReduceMean" if red == "mean" else "ReduceSum", [out], keepdims=0)


def _bcel_infer(x, y, *rest, reduction="none", **attrs):
    return (tuple(x[0]) if reduction == "none" else ()), np.dtype(x[1])


BCEL = register(OpDef(
    "binary_cross_entropy_with_logits", _bcel_fwd, kernels={"cpu": _bcel_cpu}, vjp=_bcel_vjp,
    saves=True, onnx=_bcel_onnx, infer=_bcel_infer, cost=elementwise_cost,
    doc="(1 - y) x - lw log_sigmoid(x), lw = 1 + (pw - 1) y, times w (inputs x, y, then w if "
        "weighted, pw if pos; w and pw broadcast to x's shape), elementwise or fused with "
        "its 'mean' / 'sum'."))


def _bcel_grad_fwd(xp, g, x, y, *rest, weighted=False, pos=False, mean=False):
    # PyTorch's backward: g (lw sigmoid(x) - pw y), or g (sigmoid(x) - y); times w, / numel
    w, pw = _bcel_parts(rest, weighted, pos)
    with np.errstate(over="ignore"):
        s = 1 / (1 + xp.exp(-x))
    d = (1 + (pw - 1) * y) * s - pw * y if pos else s - y
    out = g * d
    if weighted:
        out = out * w
    if mean and x.size:
        out = out / x.size
    return out.astype(x.dtype, copy=False)


def _bcel_grad_cpu(g, x, y, *rest, weighted=False, pos=False, mean=False):
    w, pw = _bcel_parts(rest, weighted, pos)
    args = _bcel_flat(x, y, w, pw)
    if args is None or g.dtype != x.dtype or not (g.size == 1 or g.shape == x.shape):
        return _bcel_grad_fwd(np, g, x, y, *rest, weighted=weighted, pos=pos, mean=mean)
    from .. import _ops
    out = np.empty(x.shape, x.dtype)
    xf, yf, wf, pf, period = args
    _ops.bce_logits_grad_into(np.ascontiguousarray(g).reshape(-1), xf, yf, wf, pf, period,
                              out.reshape(-1), 1.0 / x.size if mean else 1.0)
    return out


def _bcel_grad_vjp(n, gg):
    # out = k g w d, d = lw s - pw y (s - y without pw), s = sigmoid(x): linear in g and w;
    # d/dx = lw s (1 - s), d/dy = (pw - 1) s - pw (-1 without pw), d/dpw = y (s - 1)
    from ._util import unbroadcast
    g, x, y, *rest = n.inputs
    a = n.attrs
    weighted, pos = a["weighted"], a["pos"]
    w, pw = _bcel_parts(rest, weighted, pos)
    k = _bcel_scale(x, a["mean"])
    s = E.sigmoid(x)
    lw = 1.0 + (pw - 1.0) * y if pos else None
    d = lw * s - pw * y if pos else s - y
    wk = w * k if weighted else k
    ggk = gg * g * wk
    res = [unbroadcast(gg * d * wk, g.shape) if g._rg else None,
           ggk * lw * s * (1.0 - s) if pos and x._rg else (ggk * s * (1.0 - s) if x._rg
                                                            else None),
           (ggk * ((pw - 1.0) * s - pw) if pos else -ggk) if y._rg else None]
    if weighted:
        res.append(unbroadcast(gg * g * k * d, w.shape) if w._rg else None)
    if pos:
        res.append(unbroadcast(ggk * y * (s - 1.0), pw.shape) if pw._rg else None)
    return tuple(res)


def _bcel_grad_onnx(ctx, n):
    from ..onnx.rules import count_scale
    g, x, y, *rest = ctx.ins(n)
    a = n.attrs
    w, pw = _bcel_parts(rest, a["weighted"], a["pos"])
    dt = np.dtype(n.out.dtype)
    s = ctx.op("Sigmoid", [x])
    if a["pos"]:
        one = ctx.const(np.asarray(1, dt))
        lw = ctx.op("Add", [one, ctx.op("Mul", [ctx.op("Sub", [pw, one]), y])])
        d = ctx.op("Sub", [ctx.op("Mul", [lw, s]), ctx.op("Mul", [pw, y])])
    else:
        d = ctx.op("Sub", [s, y])
    out = ctx.op("Mul", [g, d])
    if a["weighted"]:
        out = ctx.op("Mul", [out, w])
    if not a["mean"]:
        return out
    return ctx.op("Mul", [out, count_scale(ctx, 1.0, d, n.inputs[1].shape, dt)])


BCEL_GRAD = register(OpDef(
    "binary_cross_entropy_with_logits_grad", _bcel_grad_fwd, kernels={"cpu": _bcel_grad_cpu},
    vjp=_bcel_grad_vjp, saves=True, onnx=_bcel_grad_onnx,
    infer=lambda g, x, y, *rest, **attrs: (tuple(x[0]), np.dtype(x[1])),
    cost=elementwise_cost,
    doc="binary_cross_entropy_with_logits' backward in one pass: g w (lw sigmoid(x) - pw y), "
        "over x's element count when mean=True."))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None, *, size_average: bool | None = None,
                                     reduce: bool | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable expression, PyTorch's
    ``(1 - y) x - lw log_sigmoid(x)`` with ``lw = 1 + (pos_weight - 1) y``, times ``weight``
    (both broadcast to the input's shape). With input, target and weights of one float dtype
    it is one fused op (and one fused backward); other mixes promote as elementwise ops."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits",
                             input, target, weight, reduction, pos_weight)
    check_reduction("binary_cross_entropy_with_logits", reduction)
    x, y = _pair("binary_cross_entropy_with_logits", input, target, same_shape=True)
    pw = w = None
    if pos_weight is not None:
        pw = as_float_tensor(pos_weight, "binary_cross_entropy_with_logits", "pos_weight")
    if weight is not None:
        w = as_float_tensor(weight, "binary_cross_entropy_with_logits", "weight")
    if _bcel_fusable(x, y, w, pw):
        rest = [v for v in (w, pw) if v is not None]
        if reduction == "none":
            return apply(BCEL, x, y, *rest, weighted=w is not None, pos=pw is not None)
        return apply(BCEL, x, y, *rest, weighted=w is not None, pos=pw is not None,
                     reduction=reduction)
    sp = E.softplus(-x)                     # -log(sigmoid(x)), stable for large |x|
    if pw is not None:
        loss = (1.0 - y) * x + (1.0 + (pw - 1.0) * y) * sp
    else:
        loss = (1.0 - y) * x + sp
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


def _bcel_fusable(x: Tensor, y: Tensor, w, pw) -> bool:
    # the fused op keeps x's shape and dtype: every operand of that dtype, and the weights
    # broadcasting into x's shape (other mixes promote, as the composite does)
    dt = x._data.dtype
    if dt not in E.FUSED_FLOATS or y._data.dtype != dt or tuple(x.shape) != tuple(y.shape):
        return False
    for v in (w, pw):
        if v is not None and (v._data.dtype != dt or v.ndim > x.ndim or any(
                s not in (1, t) for s, t in zip(reversed(v.shape), reversed(x.shape)))):
            return False
    return True
