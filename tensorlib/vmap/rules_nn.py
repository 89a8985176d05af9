"""Batching rules of the neural-network ops: convolutions, pools, embedding, losses, norms.

Two moves do most of the work: folding the vmap batch into the op's own batch dim N (the
weights the same for every example), and, for per-example weights (model ensembles,
per-sample weight gradients), folding it into the channels as groups, as PyTorch's vmap
does for conv.
"""
from __future__ import annotations

import numpy as np

from . import phys as P
from ._common import aligned, any_batched, batch_size, batched, simple, wrap


def _fold(p, B: int):
    """(B, N, ...) -> (B * N, ...)."""
    return P.reshape(p, (B * p.shape[1],) + tuple(p.shape[2:]))


def _unfold(p, B: int):
    """(B * N, ...) -> (B, N, ...)."""
    return P.reshape(p, (B, p.shape[0] // B if B else 0) + tuple(p.shape[1:]))


def _folded(op, arrays, extra, attrs, dev):
    """The op on inputs ``arrays`` of layout (N, ...) with the batch folded into N, the
    ``extra`` inputs (unbatched) as they are; every output (N, ...) unfolded."""
    B = batch_size(arrays)
    out = P.call(op, *[_fold(batched(a, B), B) for a in arrays], *[e.phys for e in extra],
                 **attrs)
    if type(out) is tuple:
        return tuple(wrap(_unfold(o, B), dev) for o in out)
    return wrap(_unfold(out, B), dev)


def _fold_rule(n_folded: int):
    """The first ``n_folded`` inputs are (N, ...); the rest must be unbatched (else the
    per-example fallback runs)."""
    def fn(op, *arrays, **attrs):
        head, rest = arrays[:n_folded], arrays[n_folded:]
        if any_batched(rest):
            from .rules import fallback
            return fallback(op)(*arrays, **attrs)
        return _folded(op, head, rest, attrs, arrays[0].dev)
    return fn


simple("max_pool2d", "avg_pool2d", "avg_pool2d_grad", "group_norm")(_fold_rule(1))
simple("max_pool2d_grad")(_fold_rule(2))


@simple("lstm_cell")
def _lstm_cell_rule(op, *arrays, **attrs):
    """gates, c and the (N, 4H) addends folded; the (4H,) addends (biases) must come after
    them (F.lstm_cell's order) and be unbatched, else the per-example fallback runs."""
    n2 = 0
    while n2 < len(arrays) and arrays[n2].ndim == 2:
        n2 += 1
    if any(a.ndim == 2 for a in arrays[n2:]):
        from .rules import fallback
        return fallback(op)(*arrays, **attrs)
    return _fold_rule(n2)(op, *arrays, **attrs)


@simple("lstm_cell_grad")
def _lstm_cell_grad_rule(op, *arrays, **attrs):
    """acts, c, c', gh, gc and (when acts_grad) the activations' gradient folded."""
    return _fold_rule(6 if attrs.get("acts_grad", True) else 5)(op, *arrays, **attrs)


# gi, gh, h (and the backward's acts, gh, h, gy, gacts) are all (N, ...): the batch folds into N
simple("gru_cell")(_fold_rule(3))
simple("gru_cell_grad")(_fold_rule(5))
simple("batch_norm_eval")(_fold_rule(1))


# --- conv2d -------------------------------------------------------------------------------
def _as_groups(p, B: int):
    """(B, N, C, H, W) -> (N, B * C, H, W): each example's channels a group of its own."""
    p = P.moveaxis(p, 0, 1)
    return P.reshape(p, (p.shape[0], B * p.shape[2]) + tuple(p.shape[3:]))


def _from_groups(p, B: int):
    """(N, B * C, H, W) -> (B, N, C, H, W)."""
    N, BC = p.shape[0], p.shape[1]
    p = P.reshape(p, (N, B, BC // B) + tuple(p.shape[2:]))
    return P.moveaxis(p, 1, 0)


def _stack_weights(p, B: int):
    """(B, O, ...) -> (B * O, ...)."""
    return P.reshape(p, (B * p.shape[1],) + tuple(p.shape[2:]))


@simple("conv2d")
def _conv2d(op, x, w, *b, groups, **geo):
    B = batch_size((x, w) + b)
    if w.bdim is None and (not b or b[0].bdim is None):
        if x.bdim is None:
            return wrap(P.call(op, x.phys, w.phys, *[t.phys for t in b], groups=groups, **geo),
                        x.dev, None)
        return _folded(op, (x,), (w,) + b, dict(groups=groups, **geo), x.dev)
    ins = [_as_groups(batched(x, B), B), _stack_weights(batched(w, B), B)]
    if b:
        ins.append(P.reshape(batched(b[0], B), (-1,)))
    out = P.call(op, *ins, groups=groups * B, **geo)
    return wrap(_from_groups(out, B), x.dev)


@simple("conv2d_input_grad")
def _conv2d_input_grad(op, g, w, *, groups, **geo):
    B = batch_size((g, w))
    if w.bdim is None:
        return _folded(op, (g,), (w,), dict(groups=groups, **geo), g.dev)
    out = P.call(op, _as_groups(batched(g, B), B), _stack_weights(w.phys, B),
                 groups=groups * B, **geo)
    return wrap(_from_groups(out, B), g.dev)


@simple("conv2d_weight_grad")
def _conv2d_weight_grad(op, x, g, *, groups, **geo):
    B = batch_size((x, g))
    out = P.call(op, _as_groups(batched(x, B), B), _as_groups(batched(g, B), B),
                 groups=groups * B, **geo)
    return wrap(P.reshape(out, (B, out.shape[0] // B) + tuple(out.shape[1:])), x.dev)


# --- embedding ------------------------------------------------------------------------------
def _offsets(idx_p, B: int, V: int):
    """Each example's indices shifted into its own block of V rows."""
    off = np.arange(B, dtype=np.int64).reshape((B,) + (1,) * (idx_p.ndim - 1)) * V
    return P.binary("add", idx_p, P.const(off, idx_p, dtype=idx_p.dtype))


@simple("embedding")
def _embedding(op, w, idx, *, padding_idx):
    P.check_indices(idx.phys, w.shape[0], "embedding")
    if w.bdim is None:
        return wrap(P.call(op, w.phys, idx.phys, padding_idx=padding_idx), w.dev)
    B = batch_size((w, idx))
    V, D = w.shape
    rows = P.reshape(w.phys, (B * V, D))
    return wrap(P.call(op, rows, _offsets(batched(idx, B), B, V), padding_idx=None), w.dev)


@simple("embedding_grad")
def _embedding_grad(op, g, idx, *, num_weights, padding_idx):
    B = batch_size((g, idx))
    V = num_weights
    P.check_indices(idx.phys, V, "embedding")
    out = P.call(op, batched(g, B), _offsets(batched(idx, B), B, V), num_weights=B * V,
                 padding_idx=None)
    out = P.reshape(out, (B, V, out.shape[-1]))
    if padding_idx is not None:
        keep = np.ones((V, 1), dtype=out.dtype)
        keep[padding_idx] = 0
        out = P.binary("mul", out, P.const(keep, out))
    return wrap(out, g.dev)


# --- class-index losses ------------------------------------------------------------------------
def _valid_weights(pt, like, C, w, ignore_index):
    """The weight of each folded position (0 where ignored): nll_loss of logits -1."""
    ones = P.const(np.full((pt.shape[0], C) + tuple(pt.shape[1:]), -1.0, like.dtype), like)
    return P.call(P.op("nll_loss"), ones, pt, *w, ignore_index=ignore_index,
                  reduction="none")


def _check_targets(name: str, t, C: int, ignore_index: int) -> None:
    """The public function's target check (it is skipped inside vmap): class indices in
    [0, C) or ignore_index; NumPy would wrap a negative one silently."""
    v = P.host_values(t.phys)
    if v is None or v.size == 0:
        return
    bad = (v != ignore_index) & ((v < 0) | (v >= C))
    if bad.any():
        raise IndexError(f"{name}: target value {int(v[bad].flat[0])} is out of range for {C} "
                         f"classes (and is not ignore_index={ignore_index})")


def _class_loss(op, x, t, *w, reduction, ignore_index, **rest):
    if w and w[0].bdim is not None:
        from .rules import fallback
        return fallback(op)(x, t, *w, reduction=reduction, ignore_index=ignore_index, **rest)
    B = batch_size((x, t))
    _check_targets(op.name, t, x.shape[1], ignore_index)
    px, pt = _fold(batched(x, B), B), _fold(batched(t, B), B)
    wp = [a.phys for a in w]
    loss = P.call(op, px, pt, *wp, ignore_index=ignore_index, reduction="none", **rest)
    if reduction == "none":
        return wrap(_unfold(loss, B), x.dev)
    axes = tuple(range(1, loss.ndim + 1))
    total = P.sum_axes(_unfold(loss, B), axes)
    if reduction == "sum":
        return wrap(total, x.dev)
    wt = _unfold(_valid_weights(pt, px, px.shape[1], wp, ignore_index), B)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = P.binary("div", total, P.sum_axes(wt, axes))
    return wrap(P.call(P.op("cast"), mean, dtype=px.dtype), x.dev)


simple("cross_entropy", "nll_loss")(_class_loss)


@simple("cross_entropy_grad")
def _cross_entropy_grad(op, x, t, g, *, ignore_index, reduction):
    B = batch_size((x, t, g))
    px, pt = _fold(batched(x, B), B), _fold(batched(t, B), B)
    N = px.shape[0] // B if B else 0
    gp = batched(g, B)                                  # (B, N) or (B,)
    if reduction != "none":
        if reduction == "mean":     # each example's mean: its own count of valid targets
            valid = P.reshape(_valid_weights(pt, px, px.shape[1], [], ignore_index), (B, N))
            count = P.binary("maximum", P.sum_axes(valid, (1,)), P.const(1.0, valid))
            gp = P.binary("div", gp, P.call(P.op("cast"), count, dtype=gp.dtype))
        gp = P.broadcast_to(P.reshape(gp, (B, 1)), (B, N))
    gp = P.reshape(gp, (B * N,))
    out = P.call(op, px, pt, gp, ignore_index=ignore_index, reduction="none")
    return wrap(_unfold(out, B), x.dev)


@simple("nll_loss_grad")
def _nll_loss_grad(op, x, t, g, *w, ignore_index, reduction):
    """The examples folded into N, each example's reduction applied to its g first: the
    kernel with reduction "none" is linear in g (dx = -w[t] g at the targets)."""
    if w and w[0].bdim is not None:
        from .rules import fallback
        return fallback(op)(x, t, g, *w, ignore_index=ignore_index, reduction=reduction)
    B = batch_size((x, t, g))
    px, pt = _fold(batched(x, B), B), _fold(batched(t, B), B)
    wp = [a.phys for a in w]
    per = tuple(pt.shape[1:])                       # a position's spatial dims
    N = px.shape[0] // B if B else 0
    gp = batched(g, B)
    if reduction != "none":
        if reduction == "mean":     # each example's own total weight of valid targets
            valid = P.reshape(_valid_weights(pt, px, px.shape[1], wp, ignore_index),
                              (B, -1))
            total = P.sum_axes(valid, (1,))
            zero = P.binary("eq", total, P.const(0.0, total))
            total = P.call(P.op("where"), zero, P.const(1.0, total), total)
            gp = P.binary("div", gp, P.call(P.op("cast"), total, dtype=gp.dtype))
        gp = P.broadcast_to(P.reshape(gp, (B,) + (1,) * (1 + len(per))), (B, N) + per)
    gp = P.reshape(gp, (B * N,) + per)
    out = P.call(op, px, pt, gp, *wp, ignore_index=ignore_index, reduction="none")
    return wrap(_unfold(out, B), x.dev)


# --- layer_norm -------------------------------------------------------------------------------
@simple("layer_norm")
def _layer_norm(op, x, *wb, eps, ndim, affine):
    if not any_batched(wb):
        return wrap(P.call(op, x.phys, *[a.phys for a in wb], eps=eps, ndim=ndim,
                           affine=affine), x.dev)
    B = batch_size((x,) + wb)
    y, mean, rstd = P.call(op, batched(x, B), eps=eps, ndim=ndim, affine="")
    it = iter(wb)
    if "w" in affine:
        y = P.binary("mul", y, aligned(next(it), x.ndim))
    if "b" in affine:
        y = P.binary("add", y, aligned(next(it), x.ndim))
    return wrap(y, x.dev), wrap(mean, x.dev), wrap(rstd, x.dev)


@simple("layer_norm_grad")
def _layer_norm_grad(op, x, mean, rstd, gy, gmean, grstd, *w, ndim):
    """dx from the fused kernel (its rows are the examples' rows); the weight and bias
    gradients summed per example, not over the whole batch as the kernel would."""
    arrays = (x, mean, rstd, gy, gmean, grstd)
    B = batch_size(arrays + w)
    xp_, mp, rp, gp, gmp, grp = [batched(a, B) for a in arrays]
    gx = gp if not w else P.binary("mul", gp, aligned(w[0], x.ndim) if w[0].bdim is not None
                                   else w[0].phys)
    dx = P.call(op, xp_, mp, rp, gx, gmp, grp, ndim=ndim)[0]
    lead = tuple(range(1, 1 + x.ndim - ndim))
    xhat = P.binary("mul", P.binary("sub", xp_, mp), rp)
    dw = P.sum_axes(P.binary("mul", gp, xhat), lead)
    db = P.sum_axes(gp, lead)
    return wrap(dx, x.dev), wrap(dw, x.dev), wrap(db, x.dev)


# --- batch_norm in training: per-example statistics, the batch folded into the channels -------
def _channels_in(p, B: int):
    """(B, N, C, ...) -> (N, B * C, ...)."""
    return _as_groups(p, B)


def _per_channel_in(a, B: int):
    """A per-channel (C,) value as (B * C,)."""
    return P.reshape(batched(a, B), (-1,))


@simple("batch_norm")
def _batch_norm(op, x, *wb, eps, affine):
    B = batch_size((x,) + wb)
    y, mean, var = P.call(op, _channels_in(batched(x, B), B),
                          *[_per_channel_in(a, B) for a in wb], eps=eps, affine=affine)
    C = x.shape[1]
    return (wrap(_from_groups(y, B), x.dev), wrap(P.reshape(mean, (B, C)), x.dev),
            wrap(P.reshape(var, (B, C)), x.dev))


@simple("batch_norm_grad")
def _batch_norm_grad(op, x, mean, var, gy, gmean, gvar, *w, eps):
    B = batch_size((x, mean, var, gy, gmean, gvar) + w)
    C = x.shape[1]
    dx, dw, db = P.call(op, _channels_in(batched(x, B), B), _per_channel_in(mean, B),
                        _per_channel_in(var, B), _channels_in(batched(gy, B), B),
                        _per_channel_in(gmean, B), _per_channel_in(gvar, B),
                        *[_per_channel_in(a, B) for a in w], eps=eps)
    return (wrap(_from_groups(dx, B), x.dev), wrap(P.reshape(dw, (B, C)), x.dev),
            wrap(P.reshape(db, (B, C)), x.dev))
