"""Margin, ranking and embedding losses (PyTorch's definitions), composed of core ops.

Targets in {1, -1} say whether a pair should be similar/ranked first (1) or not (-1).
"""
from __future__ import annotations

import numpy as np

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from . import elementwise as E
from .nn_act import logsigmoid
from .nn_distance import pairwise_distance
from .nn_loss import _reduce, legacy_reduction
from ._util import promote_types, to_tensor
from .nn_util import as_float_tensor, check_reduction


def _signs(op: str, target, like: Tensor, promote: bool = False) -> Tensor:
    """The targets (1 or -1, integer or float) in ``like``'s dtype; with ``promote`` a float
    target keeps its dtype, so a wider one widens the loss (PyTorch's type promotion, which
    margin_ranking_loss follows but the hinge/soft-margin/cosine losses do not)."""
    y = to_tensor(target)
    if y.dtype.kind not in "iuf":
        raise TypeError(f"{op}: target must hold 1 and -1 as numbers, got {y.dtype}")
    if promote and y.dtype.kind == "f":
        return y
    return y.astype(like.dtype) if y.dtype != like.dtype else y


def margin_ranking_loss(input1, input2, target, margin: float = 0.0,
                        reduction: str = "mean", *, size_average: bool | None = None,
                        reduce: bool | None = None) -> Tensor:
    """``max(0, -y * (x1 - x2) + margin)``: x1 should rank above x2 where y = 1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(margin_ranking_loss, "margin_ranking_loss", input1, input2, target,
                             margin, reduction)
    check_reduction("margin_ranking_loss", reduction)
    a = as_float_tensor(input1, "margin_ranking_loss", "input1")
    b = as_float_tensor(input2, "margin_ranking_loss", "input2")
    y = _signs("margin_ranking_loss", target, a, promote=True)
    return _reduce((-y * (a - b) + margin).clip(0.0, None), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction: str = "mean", *,
                         size_average: bool | None = None,
                         reduce: bool | None = None) -> Tensor:
    """``x`` where y = 1, ``max(0, margin - x)`` where y = -1 (x is usually a distance)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(hinge_embedding_loss, "hinge_embedding_loss", input, target, margin,
                             reduction)
    check_reduction("hinge_embedding_loss", reduction)
    x = as_float_tensor(input, "hinge_embedding_loss")
    y = _signs("hinge_embedding_loss", target, x)
    loss = E.where(y != 1, (margin - x).clip(0.0, None), 0.0) + E.where(y != -1, x, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, reduction: str = "mean", *,
                     size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """``log(1 + exp(-y x))``: a logistic loss for targets in {1, -1}."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(soft_margin_loss, "soft_margin_loss", input, target, reduction)
    check_reduction("soft_margin_loss", reduction)
    x = as_float_tensor(input, "soft_margin_loss")
    y = _signs("soft_margin_loss", target, x)
    return _reduce(E.softplus(-y * x), reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0,
                          reduction: str = "mean", *, size_average: bool | None = None,
                          reduce: bool | None = None) -> Tensor:
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1; the
    cosine is taken along the last dim."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(cosine_embedding_loss, "cosine_embedding_loss", input1, input2, target,
                             margin, reduction)
    check_reduction("cosine_embedding_loss", reduction)
    a = as_float_tensor(input1, "cosine_embedding_loss", "input1")
    b = as_float_tensor(input2, "cosine_embedding_loss", "input2")
    y = _signs("cosine_embedding_loss", target, a)
    eps = 1e-12          # PyTorch's: added to each squared norm
    cos = (a * b).sum(axis=-1) / ((a * a).sum(axis=-1) + eps).sqrt() / \
        ((b * b).sum(axis=-1) + eps).sqrt()
    loss = E.where(y == 1, 1.0 - cos, 0.0) + E.where(y == -1, (cos - margin).clip(0.0, None),
                                                     0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean", *,
                        size_average: bool | None = None,
                        reduce: bool | None = None) -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d`` the p-norm distance; ``swap`` uses
    ``min(d(a, n), d(p, n))`` as the negative distance (Balntas et al., 2016)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(triplet_margin_loss, "triplet_margin_loss", anchor, positive, negative,
                             margin, p, eps, swap, reduction)
    check_reduction("triplet_margin_loss", reduction)
    a = as_float_tensor(anchor, "triplet_margin_loss", "anchor")
    pos = as_float_tensor(positive, "triplet_margin_loss", "positive")
    neg = as_float_tensor(negative, "triplet_margin_loss", "negative")
    d_ap = pairwise_distance(a, pos, p, eps)
    d_an = pairwise_distance(a, neg, p, eps)
    if swap:
        d_an = E.minimum(d_an, pairwise_distance(pos, neg, p, eps))
    return _reduce((d_ap - d_an + margin).clip(0.0, None), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, reduction: str = "mean", *,
                                size_average: bool | None = None,
                                reduce: bool | None = None) -> Tensor:
    """One-vs-all logistic loss of ``input`` (N, C) or (C,) against 0/1 ``target`` of the same
    shape, averaged over the C classes, as ``torch.nn.functional.multilabel_soft_margin_loss``:
    ``-mean_c(w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)))``; ``reduction``
    applies over the N samples.

    >>> x = tl.tensor([[0.3, -1.2, 2.0]])
    >>> F.multilabel_soft_margin_loss(x, tl.tensor([[1.0, 0.0, 1.0]]))
    """
    op = "multilabel_soft_margin_loss"
    check_reduction(op, reduction)
    x = as_float_tensor(input, op)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    y = to_tensor(target)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"{op}: target of shape {tuple(y.shape)} must have input's shape "
                         f"{tuple(x.shape)}")
    if y.dtype.kind == "f" and y.dtype != x.dtype:    # PyTorch promotes to the wider float
        x = x.astype(promote_types(x.dtype, y.dtype))
    y = y.astype(x.dtype) if y.dtype != x.dtype else y
    loss = -(y * logsigmoid(x) + (1.0 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * as_float_tensor(weight, op, "weight")
    loss = loss.mean(axis=-1)
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      reduction: str = "mean", *, size_average: bool | None = None,
                      reduce: bool | None = None) -> Tensor:
    """Multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``: for input (N, C)
    (or (C,)) and class indices ``target`` (N,) (or 0-d),
    ``sum_{i != y} w_y max(0, margin - x[y] + x[i])**p / C`` per sample (p is 1 or 2);
    ``reduction`` applies over the samples.

    >>> F.multi_margin_loss(tl.tensor([[0.1, 0.2, 0.4, 0.8]]), tl.tensor([3]))   # 0.325
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(multi_margin_loss, "multi_margin_loss", input, target, p, margin,
                             weight, reduction)
    op = "multi_margin_loss"
    check_reduction(op, reduction)
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got p={p!r}")
    x = as_float_tensor(input, op)
    t = to_tensor(target)
    if x.ndim not in (1, 2):
        raise ValueError(f"{op}: input must be (N, C) or (C,), got shape {tuple(x.shape)}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {t.dtype}")
    want = x.shape[:1] if x.ndim == 2 else ()
    if tuple(t.shape) != tuple(want) and not (x.ndim == 1 and tuple(t.shape) == (1,)):
        raise ValueError(f"{op}: target of shape {tuple(t.shape)} does not match input of "
                         f"shape {tuple(x.shape)} (expected {want})")
    C = x.shape[-1]
    if t.device.type == "cpu" and t.size:
        td = t._host()
        if ((td < 0) | (td >= C)).any():
            raise IndexError(f"{op}: target value {int(td[(td < 0) | (td >= C)].flat[0])} is "
                             f"out of range for {C} classes")
    x2 = x.reshape(1, C) if x.ndim == 1 else x
    t2 = t.reshape(-1, 1).astype(np.int64)
    from ..creation import arange
    from .indexing import take_along_axis
    xy = take_along_axis(x2, t2, 1)                                   # (N, 1)
    # relu, not clip: at the hinge (term exactly 0) the gradient is 0, as PyTorch's kernel
    z = E.relu(float(margin) - xy + x2)       # PyTorch's order of rounding
    if p == 2:
        z = z * z
    if weight is not None:
        w = as_float_tensor(weight, op, "weight")
        if tuple(w.shape) != (C,):
            raise ValueError(f"{op}: weight must have shape ({C},), got {tuple(w.shape)}")
        z = z * w.take(t2.reshape(-1)).reshape(-1, 1)
    is_target = t2 == arange(C, device=x.device).reshape(1, C)
    loss = E.where(is_target, 0.0, z).mean(axis=1)
    if x.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_margin_loss(input, target, reduction: str = "mean", *,
                           size_average: bool | None = None,
                           reduce: bool | None = None) -> Tensor:
    """Multi-class multi-label hinge loss, as ``torch.nn.functional.multilabel_margin_loss``:
    for input (N, C) or (C,) and integer ``target`` of the same shape listing each sample's
    classes up to its first -1 (the rest is ignored),
    ``sum_{j in targets} sum_{i not in targets} max(0, 1 - (x[j] - x[i])) / C`` per sample
    (a class listed twice counts twice); ``reduction`` applies over the samples.

    >>> F.multilabel_margin_loss(tl.tensor([[0.1, 0.2, 0.4, 0.8]]), tl.tensor([[3, 0, -1, 1]]))
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(multilabel_margin_loss, "multilabel_margin_loss", input, target,
                             reduction)
    op = "multilabel_margin_loss"
    check_reduction(op, reduction)
    x = as_float_tensor(input, op)
    t = to_tensor(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices (padded with -1), got "
                        f"{t.dtype}")
    if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] == 0):
        raise ValueError(f"{op}: input must be a non-empty (C,) or (N, C) tensor (N may be 0), "
                         f"got shape {tuple(x.shape)}")
    if tuple(t.shape) != tuple(x.shape):
        raise ValueError(f"{op}: target of shape {tuple(t.shape)} must have input's shape "
                         f"{tuple(x.shape)}")
    C = x.shape[-1] if x.ndim else 1
    x2 = x.reshape(-1, C)
    t2 = t.reshape(-1, C).astype(np.int64)
    N = x2.shape[0]
    if N and bool(((t2 < -1) | (t2 >= C)).any()):
        raise IndexError(f"{op}: target values must lie in [-1, {C}) for {C} classes")
    # a sample's targets are the entries before its first -1
    valid = (t2 == -1).astype(np.int64).cumsum(axis=1) == 0
    K = int(valid.astype(np.int64).sum(axis=1).max()) if N else 0
    if K == 0:
        loss = x2.sum(axis=1) * 0.0
    else:
        from ..creation import arange
        from .indexing import take_along_axis
        vk = valid[:, :K]
        idx = E.where(vk, t2[:, :K], 0)
        is_target = ((idx.reshape(N, K, 1) == arange(C, device=x.device).reshape(1, 1, C))
                     & vk.reshape(N, K, 1)).any(axis=1)                       # (N, C)
        xt = take_along_axis(x2, idx, 1)                                        # (N, K)
        # relu: no gradient at the hinge itself (a zero term), as PyTorch
        z = E.relu(1.0 - xt.reshape(N, K, 1) + x2.reshape(N, 1, C))            # (N, K, C)
        pair = vk.reshape(N, K, 1) & ~is_target.reshape(N, 1, C)
        loss = E.where(pair, z, 0.0).sum(axis=(1, 2)) / float(C)
    if x.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with a user ``distance_function(x1, x2)``
    (default ``pairwise_distance``), as ``torch.nn.functional.
    triplet_margin_with_distance_loss``; ``swap`` uses ``min(d(a, n), d(p, n))`` as the
    negative distance. ``margin`` must be positive.

    >>> l1 = lambda u, v: (u - v).abs().sum(-1)
    >>> F.triplet_margin_with_distance_loss(a, p, n, distance_function=l1)
    """
    op = "triplet_margin_with_distance_loss"
    check_reduction(op, reduction)
    if not margin > 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    a, pos, neg = to_tensor(anchor), to_tensor(positive), to_tensor(negative)
    if not a.ndim == pos.ndim == neg.ndim:
        raise ValueError(f"{op}: anchor, positive and negative must have the same number of "
                         f"dims, got anchor {a.ndim}-d, positive {pos.ndim}-d and negative "
                         f"{neg.ndim}-d")
    dist = pairwise_distance if distance_function is None else distance_function
    d_ap = to_tensor(dist(a, pos))
    d_an = to_tensor(dist(a, neg))
    if swap:
        d_an = E.minimum(d_an, to_tensor(dist(pos, neg)))
    return _reduce((d_ap - d_an + margin).clip(0.0, None), reduction)
