"""Rearranging elements: ``moveaxis`` (``movedim``), ``repeat_interleave`` and ``meshgrid``.

Composites of ``transpose``, ``take``, ``reshape`` and ``broadcast_to``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ._util import check_alloc, host_values, norm_axis, one_of, to_tensor


def _axes(a, ndim: int, op: str) -> list[int]:
    a = [a] if isinstance(a, (int, np.integer)) else list(a)
    out = [norm_axis(int(v), ndim, op) for v in a]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {a}")
    return out


def moveaxis(x, source, destination) -> Tensor:
    """Move axes ``source`` to positions ``destination`` (NumPy's ``moveaxis``; PyTorch's
    ``movedim``), keeping the order of the others.

    >>> tl.moveaxis(tl.zeros(2, 3, 4), 0, -1).shape
    (3, 4, 2)
    """
    x = to_tensor(x)
    src = _axes(source, x.ndim, "moveaxis")
    dst = _axes(destination, x.ndim, "moveaxis")
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: {len(src)} source axes but {len(dst)} destinations")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return x.transpose(tuple(order))


movedim = moveaxis


def _check_output_size(output_size, total: int) -> None:
    if output_size is not None and int(output_size) != total:
        raise ValueError(f"repeat_interleave: output_size={output_size} but the repeats add up "
                         f"to {total}; pass their sum or leave output_size out")


def _counts(repeats) -> Tensor:
    """``repeat_interleave(repeats)``: 0, 1, ... each repeated its count (``torch``'s
    one-argument form), in ``repeats``' integer dtype."""
    r = to_tensor(repeats)
    if r.ndim != 1:
        raise ValueError(f"repeat_interleave: a single argument is the 1-d tensor of counts, "
                         f"got shape {tuple(r.shape)}")
    if r.dtype.kind not in "iu":
        raise TypeError(f"repeat_interleave: the counts must be an integer tensor, got "
                        f"{r.dtype}")
    c = host_values(r)
    if (c < 0).any():
        raise ValueError("repeat_interleave: repeats must not be negative")
    # the index buffer is int64 and the result in the counts' dtype: the larger counts
    check_alloc("repeat_interleave", (int(c.sum(dtype=object)),), 8)
    from ..creation import tensor
    return tensor(np.repeat(np.arange(c.shape[0], dtype=c.dtype), c), device=r.device)


def _interleave_traced(x: Tensor, ax: int, n, k) -> Tensor:
    """``repeat_interleave`` by one count ``k`` along ``ax`` (of size ``n``) where ``n`` or
    ``k`` follows a None dim under capture: a broadcast over a new axis and a reshape, whose
    sizes the graph computes per run (a take's index would fix them)."""
    shp = x.shape
    y = x.unsqueeze(ax + 1).expand(*shp[:ax + 1], k, *shp[ax + 1:])
    rest = shp[:ax] + shp[ax + 1:]
    # -1 where the other dims are fixed and non-zero: the graph then needs no size node
    # (and before opset 14 ONNX's Reshape read a computed 0 as "copy the input's dim")
    merged = -1 if all(type(d) is int and d > 0 for d in rest) else n * k
    return y.reshape(*shp[:ax], merged, *shp[ax + 1:])


def repeat_interleave(x, repeats=None, axis: int | None = None, *, dim: int | None = None,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (the flattened tensor when None):
    ``repeats`` is an int or one count per element (PyTorch's ``repeat_interleave``, NumPy's
    ``repeat``). With one argument, ``x`` is the 1-d tensor of counts and the result is each
    index repeated its count (``repeat_interleave(sizes)`` gives the graph id of every node
    of a batch). The counts are read on the host, so they cannot be a captured tensor; an
    int count read from a None dim under capture (``x.shape[0]``) is followed per run.
    PyTorch's ``dim=`` is ``axis``; ``output_size=``, when given, must be the result's length.

    >>> tl.repeat_interleave(tl.tensor([1, 2]), 2)
    tensor([1, 1, 2, 2])
    >>> tl.repeat_interleave(tl.tensor([2, 0, 3]))
    tensor([0, 0, 2, 2, 2])
    """
    if repeats is None:
        if axis is not None or dim is not None:
            raise TypeError("repeat_interleave: with a single argument (the counts) there is "
                            "no axis; pass repeat_interleave(x, repeats, dim) to repeat x")
        out = _counts(x)
        _check_output_size(output_size, out.shape[0])
        return out
    x = to_tensor(x)
    axis = one_of("repeat_interleave", "axis", axis, "dim", dim)
    if axis is None:
        x, axis = x.reshape(-1), 0
    ax = norm_axis(axis, x.ndim, "repeat_interleave")
    n = x.shape[ax]
    from .size_guard import plain, traced
    if traced(repeats):
        # a count read from a None dim under capture (repeat_interleave(x.shape[0])): the
        # broadcast-and-reshape below follows it per run, as a take's fixed index would not
        if plain(repeats) < 0:
            raise ValueError("repeat_interleave: repeats must not be negative")
        if output_size is not None:
            _check_output_size(output_size, plain(n) * plain(repeats))
        return _interleave_traced(x, ax, n, repeats)
    r = host_values(repeats)
    if r.dtype.kind not in "iu" and not (r.dtype.kind == "f" and np.all(r == np.round(r))):
        raise TypeError(f"repeat_interleave: repeats must be integers, got {r.dtype}")
    r = r.astype(np.int64)
    from ..graph.tracer import TracedSize
    if isinstance(n, TracedSize) and r.size == 1 and r.ndim <= 1 and r.reshape(-1)[0] >= 0:
        # a dynamic dim under capture: one count for every element is a broadcast and a
        # reshape, whose sizes the graph computes per run (a take's index would fix n)
        k = int(r.reshape(-1)[0])
        if output_size is not None:
            _check_output_size(output_size, int.__int__(n) * k)
        return _interleave_traced(x, ax, n, k)
    if r.ndim > 1 or (r.ndim == 1 and r.size not in (1, n)):
        raise ValueError(f"repeat_interleave: repeats of shape {r.shape} for an axis of size "
                         f"{n} (give an int or {n} counts)")
    if (r < 0).any():
        raise ValueError("repeat_interleave: repeats must not be negative")
    total = int(r.sum(dtype=object)) if r.ndim else int(r) * n
    rest = math.prod(x.shape[:ax] + x.shape[ax + 1:])
    check_alloc("repeat_interleave", (total,), 8, "index")      # int64 positions
    check_alloc("repeat_interleave", (rest * total,), x.dtype.itemsize)
    from ..creation import tensor
    idx = np.repeat(np.arange(n), r.reshape(-1) if r.ndim else int(r))
    _check_output_size(output_size, idx.shape[0])
    return x.take(tensor(idx, device=x.device), axis=ax)


def meshgrid(*xs, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-d tensors: ``indexing='ij'`` (the default, PyTorch's) gives
    grids of shape (len(x0), len(x1), ...); ``'xy'`` (NumPy's default) swaps the first two.

    >>> X, Y = tl.meshgrid(tl.arange(3), tl.arange(2))
    >>> X.shape
    (3, 2)
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    if len(xs) == 1 and isinstance(xs[0], Sequence) and not isinstance(xs[0], Tensor):
        xs = tuple(xs[0])
    ts = [to_tensor(x).reshape(-1) for x in xs]
    sizes = [t.shape[0] for t in ts]
    pos = list(range(len(ts)))
    if indexing == "xy" and len(ts) > 1:
        pos[0], pos[1] = 1, 0
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for t, p in zip(ts, pos):
        shape = [1] * len(ts)
        shape[p] = t.shape[0]
        out.append(t.reshape(tuple(shape)).broadcast_to(tuple(sizes)))
    return tuple(out)
