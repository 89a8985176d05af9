"""PyTorch's ``segment_reduce``: reduce consecutive runs (segments) of a tensor along an
axis, the pooling step of graph neural networks over a batch of graphs stored end to end.

A composite of ``scatter_reduce`` (``tensorlib/ops/scatter_reduce.py``): every element gets
the id of its segment and is scattered into it, so autograd, grad of grad and graph capture
follow, and the gradients are PyTorch's (max/min share it evenly among tied elements; prod
gives the product of the others, also where some are 0). The segment bounds are read on the
host (to check them and to build the ids), so ``lengths``/``offsets`` cannot be a tensor
computed inside a captured graph; constant ones are fine.
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ._util import host_values, norm_axis, to_tensor

__all__ = ["segment_reduce"]

# PyTorch's names (it takes both spellings of max and min) -> scatter_reduce's
_REDUCES = {"sum": "sum", "mean": "mean", "prod": "prod", "max": "amax", "amax": "amax",
            "min": "amin", "amin": "amin"}
# the value of an empty segment without ``initial``, as PyTorch's
_EMPTY = {"sum": 0.0, "mean": math.nan, "prod": 1.0, "amax": -math.inf, "amin": math.inf}


def _bounds(name: str, t: Tensor, lead: tuple, n: int, unsafe: bool) -> np.ndarray:
    """The segments' offsets on the host, (rows, S + 1) int64, from ``lengths`` or
    ``offsets`` (``name``), checked against ``lead`` (the data's dims before the axis) and
    ``n`` (the axis's length)."""
    if tuple(t.shape[:-1]) != lead:
        raise ValueError(f"segment_reduce: {name} of shape {tuple(t.shape)} must have the "
                         f"data's dims before the axis, {lead}, then one entry per segment")
    v = host_values(t).astype(np.int64).reshape(-1, t.shape[-1])
    if name == "lengths":
        if (v < 0).any():
            raise ValueError("segment_reduce: lengths must not be negative")
        total = v.sum(axis=1)
        if (total > n).any() or (not unsafe and (total != n).any()):
            raise ValueError(f"segment_reduce: lengths add up to {sorted(set(total.tolist()))} "
                             f"but the axis has {n} elements; every row of lengths must add "
                             f"up to {n} (no more than {n} with unsafe=True)")
        return np.concatenate([np.zeros((v.shape[0], 1), np.int64), v.cumsum(axis=1)], 1)
    if v.shape[1] == 0:
        raise ValueError("segment_reduce: offsets needs at least one entry (S + 1 of them for "
                         "S segments)")
    if (v < 0).any() or (v > n).any() or (np.diff(v, axis=1) < 0).any():
        raise ValueError(f"segment_reduce: offsets must be non-decreasing and within [0, {n}]"
                         f" (the axis's length), got {t.tolist()}")
    return v


def _segment_ids(off: np.ndarray, n: int) -> np.ndarray:
    """For each row and each of the ``n`` positions, the segment it falls in, or S (a spare
    segment, dropped afterwards) outside ``off[:, 0] .. off[:, S]``: (rows, n) int64."""
    rows, s1 = off.shape
    # count of segment ends at or before each position: bincount of the ends, then cumsum
    ends = (off[:, 1:] + (n + 1) * np.arange(rows)[:, None]).reshape(-1)
    marks = np.bincount(ends, minlength=rows * (n + 1)).reshape(rows, n + 1)
    ids = marks.cumsum(axis=1)[:, :n]
    ids[np.arange(n)[None, :] < off[:, :1]] = s1 - 1
    return ids


def segment_reduce(data, reduce: str, *, lengths=None, offsets=None, axis: int = 0,
                   unsafe: bool = False, initial: float | None = None) -> Tensor:
    """Reduce each segment of ``data`` along ``axis`` (``torch.segment_reduce``).

    ``reduce`` is ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"prod"`` (``"amax"``,
    ``"amin"`` too). The segments are given by ``lengths`` (their sizes, adding up to the
    axis's length unless ``unsafe``) or ``offsets`` (S + 1 non-decreasing bounds; elements
    outside them take no part). ``axis`` must be the last dim of ``lengths``/``offsets``,
    whose leading dims are the data's before ``axis`` (one set of segments per row). The
    result has S entries along ``axis``. ``initial`` joins every reduction (mean: added to
    the sum, not counted); an empty segment is ``initial``, or without it 0 (sum), NaN
    (mean), -inf (max), inf (min), 1 (prod). Floating-point data only; differentiable.

    >>> x = tl.tensor([1., 2., 3., 4., 5.])
    >>> tl.segment_reduce(x, "sum", lengths=tl.tensor([2, 0, 3]))
    tensor([ 3.,  0., 12.])
    >>> tl.segment_reduce(x, "max", offsets=tl.tensor([0, 2, 5]))
    tensor([2., 5.])
    """
    from . import elementwise as E
    from .scatter_reduce import scatter_reduce
    x = to_tensor(data)
    if not isinstance(reduce, str) or reduce not in _REDUCES:
        raise ValueError(f"segment_reduce: reduce must be one of sum, mean, max, min, prod "
                         f"(or amax, amin), got {reduce!r}")
    red = _REDUCES[reduce]
    if x.dtype.kind != "f":
        raise TypeError(f"segment_reduce: data must be floating point, got {x.dtype} "
                        f"(convert it with .float())")
    if x.ndim == 0:
        raise ValueError("segment_reduce: data must have at least 1 dim, got a 0-d tensor")
    if (lengths is None) == (offsets is None):
        raise TypeError("segment_reduce: pass exactly one of lengths= or offsets=")
    name, t = ("lengths", lengths) if offsets is None else ("offsets", offsets)
    t = to_tensor(t)
    if t.ndim == 0 or t.dtype.kind not in "iu":
        raise TypeError(f"segment_reduce: {name} must be an integer tensor with at least 1 "
                        f"dim, got {t.dtype} of shape {tuple(t.shape)}")
    d = norm_axis(axis, x.ndim, "segment_reduce")
    if d != t.ndim - 1:
        raise ValueError(f"segment_reduce: axis={axis} must be the last dim of {name} "
                         f"(shape {tuple(t.shape)}), so {t.ndim - 1}")
    shape = tuple(x.shape)
    lead, n, trail = shape[:d], shape[d], shape[d + 1:]
    off = _bounds(name, t, lead, n, bool(unsafe))
    s = off.shape[1] - 1
    if initial is not None:
        initial = float(initial)

    from ..creation import full, tensor
    ids = _segment_ids(off, n).reshape(lead + (n,) + (1,) * len(trail))
    idx = tensor(ids, device=x.device).broadcast_to(shape)
    base_shape = lead + (s + 1,) + trail

    def scatter(op: str, fill: float, include_self: bool) -> Tensor:
        base = full(base_shape, fill, dtype=x.dtype, device=x.device)
        out = scatter_reduce(base, d, idx, x, op, include_self=include_self)
        return out[(slice(None),) * d + (slice(0, s),)]     # drop the spare segment

    lens = np.diff(off, axis=1).reshape(lead + (s,) + (1,) * len(trail))
    empty = lens == 0

    def fill_empty(out: Tensor, value: float) -> Tensor:
        # empty segments get their value here rather than from scatter_reduce's base, which
        # stays finite (an infinite base turns into inf - inf inside its amax/amin gradient)
        if not empty.any():
            return out
        return E.where(tensor(empty, device=x.device), value, out)

    if initial is None:
        return fill_empty(scatter(red, 0.0, False), _EMPTY[red])
    if red in ("sum", "prod"):
        return scatter(red, initial, True)
    if red == "mean":
        count = np.maximum(lens, 1).astype(x.dtype)
        return scatter("sum", initial, True) / tensor(count, device=x.device)
    # max/min: the data's extreme, then ``initial`` where it wins; a tie goes to the data, so
    # the gradient is the data's alone (PyTorch's: ``initial`` is no tied element)
    m = fill_empty(scatter(red, 0.0, False), _EMPTY[red])
    keep = (m >= initial) if red == "amax" else (m <= initial)
    return E.where(keep | E.isnan(m), m, initial)
