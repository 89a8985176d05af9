"""``histogram`` and ``histogramdd`` with PyTorch's signatures: counts (or summed weights, or
a density) over bins given by a count and a range, or by explicit edges.

Bin ``i`` holds ``edges[i] <= x < edges[i + 1]``; the last bin also holds its right edge;
values outside the edges (and NaN) are left out. Eager and not differentiable, as PyTorch's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .._tensor import Tensor
from ..errors import DTypeError, InputError, ShapeError
from ._util import to_tensor


class histogram_result(NamedTuple):
    """``(hist, bin_edges)`` of :func:`histogram` (``torch.return_types.histogram``)."""
    hist: Tensor
    bin_edges: Tensor


class histogramdd_result(NamedTuple):
    """``(hist, bin_edges)`` of :func:`histogramdd`; ``bin_edges`` a tuple, one per dim."""
    hist: Tensor
    bin_edges: tuple


def _host(t: Tensor, op: str) -> np.ndarray:
    t._read(f"tl.{op} (an eager op, not recorded in graphs)")
    return t.detach().numpy()


def _linear_edges(col: np.ndarray, n: int, rng, dt, op: str, dim: int) -> np.ndarray:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{op}: bins must be a positive int or a 1-d tensor of edges, got "
                         f"{n!r}")
    if rng is not None:
        lo, hi = float(dt.type(rng[0])), float(dt.type(rng[1]))
    elif col.size:
        lo, hi = float(col.min()), float(col.max())     # NaN or inf: refused below
    else:
        lo, hi = 0.0, 1.0               # no data: PyTorch's [0, 1]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{op}: range [{lo}, {hi}] of dim {dim} is not finite")
    if lo > hi:
        raise InputError(f"{op}: range of dim {dim} must have min <= max, got [{lo}, {hi}]")
    if lo == hi:                      # an empty range widened, as NumPy and PyTorch
        lo, hi = lo - 0.5, hi + 0.5
    # the edges in the input's dtype as PyTorch's linspace makes them, so a value on an edge
    # lands in the same bin: from the start for the first half, from the end for the rest,
    # each a fused multiply-add (one rounding; a wider type stands in for the fma)
    lo_t, hi_t = dt.type(lo), dt.type(hi)
    step = (hi_t - lo_t) / dt.type(n)
    wide = np.float64 if dt.itemsize < 8 else np.longdouble
    i = np.arange(n + 1).astype(wide)
    s = wide(step)
    e = np.where(i < (n + 1) // 2, wide(lo_t) + s * i, wide(hi_t) - s * (n - i))
    return e.astype(dt)


def _explicit_edges(b, dt, op: str, dim: int) -> np.ndarray:
    e = _host(to_tensor(b), op)
    if e.ndim != 1 or e.size < 1:
        raise ShapeError(f"{op}: bin edges of dim {dim} must be a non-empty 1-d tensor, got "
                         f"shape {e.shape}")
    if e.dtype != dt:
        raise DTypeError(f"{op}: bin edges of dtype {e.dtype} must match the input's {dt}")
    if np.any(np.diff(e) < 0):
        raise InputError(f"{op}: bin edges of dim {dim} must be non-decreasing")
    return e


def _bin_index(col: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bin of each value, whether it falls inside the edges)."""
    nb = edges.size - 1
    with np.errstate(invalid="ignore"):
        inside = (col >= edges[0]) & (col <= edges[-1])
    pos = np.searchsorted(edges, col, side="right") - 1
    pos = np.clip(pos, 0, max(nb - 1, 0))   # the right edge itself: the last bin
    return pos, inside


def _linear_bin_index(col: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_bin_index` for equal-width ``edges``: the bin from one multiply (O(1) per
    value, where the binary search costs log(bins) branchy passes), then moved by one where
    the value is on the other side of its bin's actual edge, as PyTorch's linear
    interpolation with local search, so values on an edge land where the edges say."""
    nb = edges.size - 1
    lo, hi = edges[0], edges[-1]
    with np.errstate(invalid="ignore"):
        inside = (col >= lo) & (col <= hi)
        posf = (col - lo) * (nb / (float(hi) - float(lo)))
    np.copyto(posf, 0, where=~inside)             # NaN and outside values: any valid bin
    pos = posf.astype(np.int64)
    np.clip(pos, 0, nb - 1, out=pos)
    pos -= col < edges[pos]
    pos += (col >= edges[pos + 1]) & (pos < nb - 1)
    return pos, inside


def _histdd(data: np.ndarray, edges: list[np.ndarray], w, density: bool, dt,
            linear: list[bool] | None = None) -> np.ndarray:
    shape = tuple(max(e.size - 1, 0) for e in edges)
    size = int(np.prod(shape))
    if size == 0:
        return np.zeros(shape, dt)
    keep = None
    flat = None
    for d, e in enumerate(edges):
        col = data[:, d]
        if linear is not None and linear[d] and e.size > 1 and e[-1] > e[0]:
            pos, inside = _linear_bin_index(col, e)
        else:
            pos, inside = _bin_index(col, e)
        keep = inside if keep is None else keep & inside
        flat = pos if flat is None else flat * shape[d] + pos
    # values outside go to one extra bin, dropped after the count (no filtered copies)
    np.copyto(flat, size, where=~keep)
    ww = None if w is None else w.astype(np.float64, copy=False)
    hist = np.bincount(flat, weights=ww, minlength=size + 1)[:size].astype(np.float64)
    hist = hist.reshape(shape)
    if density:
        total = hist.sum()
        widths = np.ones(shape)
        for d, e in enumerate(edges):
            sh = [1] * len(edges)
            sh[d] = shape[d]
            widths = widths * np.diff(e.astype(np.float64)).reshape(sh)
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = hist / (total * widths)
    return hist.astype(dt)


def _weights(weight, n_rows: int, lead: tuple, dt, op: str):
    if weight is None:
        return None
    w = to_tensor(weight)
    if tuple(w.shape) != lead:
        raise ShapeError(f"{op}: weight of shape {tuple(w.shape)} must have the shape "
                         f"{lead} of the input's samples")
    if w.dtype != dt:
        raise DTypeError(f"{op}: weight of dtype {w.dtype} must match the input's {dt}")
    return _host(w, op).reshape(n_rows)


def _out(a: np.ndarray, like: Tensor) -> Tensor:
    from ..creation import tensor
    return tensor(a, device=like.device)


def histogram(input, bins: int | Tensor = 100, *, range: Sequence[float] | None = None,  # noqa: A002
              weight=None, density: bool = False) -> histogram_result:
    """A histogram of the values of ``input`` (flattened), as ``torch.histogram``: ``bins``
    equal-width bins over ``range`` (the data's min and max when None), or ``bins`` a 1-d
    tensor of non-decreasing edges. ``weight`` (input's shape) sums weights instead of
    counting; ``density`` divides by the total and the bin widths. Returns
    ``(hist, bin_edges)`` in the input's floating dtype.

    >>> tl.ops.histogram.histogram(tl.tensor([1.0, 2.0, 1.0]), bins=4, range=(0.0, 3.0))
    histogram_result(hist=tensor([0., 2., 1., 0.]),
                     bin_edges=tensor([0.0000, 0.7500, 1.5000, 2.2500, 3.0000]))
    """
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise DTypeError(f"histogram: input must be floating point, got {x.dtype}")
    data = _host(x, "histogram").reshape(-1)
    dt = x.dtype
    if isinstance(bins, (Tensor, np.ndarray, list, tuple)):
        if range is not None:
            raise DTypeError("histogram: range= goes with an int bins, not with explicit edges")
        edges = _explicit_edges(bins, dt, "histogram", 0)
    else:
        if range is not None and len(range) != 2:
            raise InputError(f"histogram: range must be (min, max), got {range!r}")
        edges = _linear_edges(data, bins, range, dt, "histogram", 0)
    w = _weights(weight, data.size, tuple(x.shape), dt, "histogram")
    hist = _histdd(data.reshape(-1, 1), [edges], w, density, dt,
                   linear=[not isinstance(bins, (Tensor, np.ndarray, list, tuple))])
    return histogram_result(_out(hist, x), _out(edges, x))


def histogramdd(input, bins: int | Sequence = 10, *, range: Sequence[float] | None = None,  # noqa: A002
                weight=None, density: bool = False) -> histogramdd_result:
    """A D-dimensional histogram of the points in the last dim of ``input`` (``(..., D)``),
    as ``torch.histogramdd``: ``bins`` an int (every dim), D ints, or D 1-d tensors of edges;
    ``range`` a flat ``[min_0, max_0, min_1, max_1, ...]`` for int bins; ``weight`` of the
    input's leading shape; ``density`` normalises by the total and the bin volumes. Returns
    ``(hist, bin_edges)`` with ``hist`` of shape ``(bins_0, ..., bins_{D-1})``.

    >>> h, edges = tl.ops.histogram.histogramdd(tl.rand(100, 2), bins=[3, 4])
    >>> h.shape, len(edges)
    ((3, 4), 2)
    """
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise DTypeError(f"histogramdd: input must be floating point, got {x.dtype}")
    if x.ndim < 1:
        raise ShapeError("histogramdd: input must have a last dim of coordinates, got a 0-d "
                         "tensor")
    dims = x.shape[-1]
    data = _host(x, "histogramdd").reshape(-1, dims)
    dt = x.dtype
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        bins = [int(bins)] * dims
    if isinstance(bins, Tensor) or len(bins) != dims:
        raise ShapeError(f"histogramdd: bins must be an int or one entry per dim ({dims}), "
                         f"got {bins!r}")
    explicit = [isinstance(b, (Tensor, np.ndarray, list, tuple)) for b in bins]
    if range is not None:
        if any(explicit):
            raise DTypeError("histogramdd: range= goes with int bins, not with explicit edges")
        if len(range) != 2 * dims:
            raise InputError(f"histogramdd: range must hold 2 numbers per dim ({2 * dims}), "
                             f"got {len(range)}")
    edges = []
    for d, b in enumerate(bins):
        if explicit[d]:
            edges.append(_explicit_edges(b, dt, "histogramdd", d))
        else:
            rng = None if range is None else (range[2 * d], range[2 * d + 1])
            edges.append(_linear_edges(data[:, d], b, rng, dt, "histogramdd", d))
    w = _weights(weight, data.shape[0], tuple(x.shape[:-1]), dt, "histogramdd")
    hist = _histdd(data, edges, w, density, dt, linear=[not e for e in explicit])
    return histogramdd_result(_out(hist, x), tuple(_out(e, x) for e in edges))
