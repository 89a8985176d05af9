"""``cdist``: batched p-norm distances between two sets of row vectors (PyTorch's), from
registry ops: the broadcast difference and ``norm``, or for p = 2 on larger sets the
matrix-product expansion ``|a|^2 + |b|^2 - 2 a.b``."""
from __future__ import annotations

import math

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from . import elementwise as E
from .linalg import matmul
from .reduction import norm
from .reduction import sum as _sum
from ._util import to_float, to_tensor

_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
          "donot_use_mm_for_euclid_dist")


def _euclid_mm(x1: Tensor, x2: Tensor) -> Tensor:
    n1 = _sum(x1 * x1, axis=-1, keepdims=True)                    # (..., P, 1)
    n2 = _sum(x2 * x2, axis=-1, keepdims=True).swapaxes(-1, -2)   # (..., 1, R)
    d2 = (n1 + n2 - 2.0 * matmul(x1, x2.swapaxes(-1, -2))).clip(0.0, None)
    pos = d2 > 0
    # sqrt where the squared distance is positive: distance 0 has gradient 0 (not 0/0)
    return E.where(pos, E.where(pos, d2, 1.0).sqrt(), 0.0)


# from this many distances per matrix on, p = 1 sums over the features one at a time: a
# (P, R) pass per feature stays in cache, where the (P, R, M) difference would not
_L1_LOOP_MIN = 4096


def _l1_by_feature(x1: Tensor, x2: Tensor) -> Tensor:
    """``sum_m |x1[..., :, m, None] - x2[..., None, :, m]|`` (..., P, R)."""
    a = x1.swapaxes(-1, -2).unsqueeze(-1)                              # (..., M, P, 1)
    b = x2.swapaxes(-1, -2).unsqueeze(-2)                              # (..., M, 1, R)
    out = None
    for m in range(x1.shape[-1]):
        d = E.abs(a[..., m, :, :] - b[..., m, :, :])
        out = d if out is None else out + d
    return out


def cdist(x1, x2, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """p-norm distance between each row of ``x1`` (..., P, M) and each row of ``x2``
    (..., R, M), as ``torch.cdist``: the result is (..., P, R), batch dims broadcast.
    ``p`` >= 0 (0 counts differing coordinates, inf is the largest one). For p = 2 and more
    than 25 rows on a side (or ``compute_mode="use_mm_for_euclid_dist"``) the distances
    come from matrix products, as PyTorch's. A zero distance has gradient 0.

    >>> a, b = tl.tensor([[0.0, 0.0], [1.0, 1.0]]), tl.tensor([[3.0, 4.0]])
    >>> tl.cdist(a, b)                                   # [[5.], [3.6056]]
    """
    if state.autocast is not None:
        return autocast_call(cdist, "cdist", x1, x2, p, compute_mode)
    x1, x2 = to_float(to_tensor(x1)), to_float(to_tensor(x2))
    if x1.ndim < 2 or x2.ndim < 2:
        raise ValueError(f"cdist: x1 and x2 must be at least 2-D (..., rows, features), got "
                         f"shapes {x1.shape} and {x2.shape}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: x1 and x2 must have the same number of columns, got "
                         f"{x1.shape[-1]} and {x2.shape[-1]}")
    if x1.dtype != x2.dtype:
        raise TypeError(f"cdist: x1 and x2 must have the same dtype, got {x1.dtype} and "
                        f"{x2.dtype}")
    p = float(p)
    if not p >= 0:
        raise ValueError(f"cdist: p must be >= 0, got {p}")
    if compute_mode not in _MODES:
        raise ValueError(f"cdist: compute_mode must be one of {_MODES}, got {compute_mode!r}")
    P, R = x1.shape[-2], x2.shape[-2]
    if p == 2 and (compute_mode == "use_mm_for_euclid_dist" or (
            compute_mode == _MODES[0] and (P > 25 or R > 25))):
        return _euclid_mm(x1, x2)
    if p == 1 and P * R >= _L1_LOOP_MIN and x1.shape[-1] > 0:
        return _l1_by_feature(x1, x2)
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)                         # (..., P, R, M)
    if p == 0:
        # a count: gradient 0 (kept connected to the inputs, as PyTorch's)
        return _sum(E.where(diff != 0, 1.0, diff * 0.0), axis=-1)
    return norm(diff, ord=math.inf if math.isinf(p) else p, axis=-1)
