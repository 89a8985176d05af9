"""Margin, ranking and embedding losses (PyTorch's definitions), composed of core ops.

Targets in {1, -1} say whether a pair should be similar/ranked first (1) or not (-1).
"""
from __future__ import annotations

from .._tensor import Tensor
from . import elementwise as E
from .nn_distance import pairwise_distance
from .nn_loss import _reduce
from ._util import to_tensor
from .nn_util import as_float_tensor, check_reduction


def _signs(op: str, target, like: Tensor) -> Tensor:
    """The targets (1 or -1, integer or float) in ``like``'s dtype."""
    y = to_tensor(target)
    if y.dtype.kind not in "iuf":
        raise TypeError(f"{op}: target must hold 1 and -1 as numbers, got {y.dtype}")
    return y.astype(like.dtype) if y.dtype != like.dtype else y


def margin_ranking_loss(input1, input2, target, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -y * (x1 - x2) + margin)``: x1 should rank above x2 where y = 1."""
    check_reduction("margin_ranking_loss", reduction)
    a = as_float_tensor(input1, "margin_ranking_loss", "input1")
    b = as_float_tensor(input2, "margin_ranking_loss", "input2")
    y = _signs("margin_ranking_loss", target, a)
    return _reduce((-y * (a - b) + margin).clip(0.0, None), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """``x`` where y = 1, ``max(0, margin - x)`` where y = -1 (x is usually a distance)."""
    check_reduction("hinge_embedding_loss", reduction)
    x = as_float_tensor(input, "hinge_embedding_loss")
    y = _signs("hinge_embedding_loss", target, x)
    loss = E.where(y != 1, (margin - x).clip(0.0, None), 0.0) + E.where(y != -1, x, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-y x))``: a logistic loss for targets in {1, -1}."""
    check_reduction("soft_margin_loss", reduction)
    x = as_float_tensor(input, "soft_margin_loss")
    y = _signs("soft_margin_loss", target, x)
    return _reduce(E.softplus(-y * x), reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1; the
    cosine is taken along the last dim."""
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
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d`` the p-norm distance; ``swap`` uses
    ``min(d(a, n), d(p, n))`` as the negative distance (Balntas et al., 2016)."""
    check_reduction("triplet_margin_loss", reduction)
    a = as_float_tensor(anchor, "triplet_margin_loss", "anchor")
    pos = as_float_tensor(positive, "triplet_margin_loss", "positive")
    neg = as_float_tensor(negative, "triplet_margin_loss", "negative")
    d_ap = pairwise_distance(a, pos, p, eps)
    d_an = pairwise_distance(a, neg, p, eps)
    if swap:
        d_an = E.minimum(d_an, pairwise_distance(pos, neg, p, eps))
    return _reduce((d_ap - d_an + margin).clip(0.0, None), reduction)
