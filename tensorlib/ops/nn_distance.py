"""Similarities and normalisation along an axis: normalize, cosine_similarity,
pairwise_distance. Composites of registry ops (their gradients come from those ops)."""
from __future__ import annotations

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from . import elementwise as E
from . import reduction as R
from ._util import broadcast_shapes, norm_axis
from .shape import broadcast_to
from .nn_util import as_float_or_complex_tensor, as_float_tensor


def normalize(input, p: float = 2.0, axis: int = 1, eps: float = 1e-12, *,
              dim: int | None = None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``axis`` (PyTorch's ``F.normalize``; ``dim`` is
    accepted as its name for the axis). A complex ``x`` is divided by the real norm of its
    moduli and stays complex, as PyTorch's.

    >>> F.normalize(tl.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    if state.autocast is not None:
        return autocast_call(normalize, "normalize", input, p, axis, eps, dim=dim)
    x = as_float_or_complex_tensor(input, "normalize")
    ax = norm_axis(axis if dim is None else dim, x.ndim, "normalize")
    n = R.norm(x, ord=p, axis=ax, keepdims=True)
    return x / E.maximum(n, eps)


def cosine_similarity(x1, x2, axis: int = 1, eps: float = 1e-8, *,
                      dim: int | None = None) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``axis`` (the rest broadcasts):
    the dot product of the two, each divided by ``max(||x||, eps)`` (as PyTorch 2 does)."""
    if state.autocast is not None:
        return autocast_call(cosine_similarity, "cosine_similarity", x1, x2, axis, eps, dim=dim)
    a = as_float_tensor(x1, "cosine_similarity", "x1")
    b = as_float_tensor(x2, "cosine_similarity", "x2")
    # broadcast first, as PyTorch does: a row repeated along the axis has a larger norm
    shape = broadcast_shapes("cosine_similarity", a.shape, b.shape)
    a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    ax = norm_axis(axis if dim is None else dim, len(shape), "cosine_similarity")
    return R.sum(normalize(a, 2.0, ax, eps) * normalize(b, 2.0, ax, eps), axis=ax)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last axis; complex inputs give the real norm of the
    moduli (eps added to the real part), as PyTorch's."""
    a = as_float_or_complex_tensor(x1, "pairwise_distance", "x1")
    b = as_float_or_complex_tensor(x2, "pairwise_distance", "x2")
    return R.norm(a - b + eps, ord=p, axis=-1, keepdims=keepdim)
