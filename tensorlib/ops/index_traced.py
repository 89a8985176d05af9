"""``x[idx]`` and ``x[idx] = v`` with index tensors that are traced values of a capture.

The ``getitem``/``setitem`` ops keep their index arrays in the node's attributes (constants
of the graph), so an index computed in a ``tl.function`` or fed as its input would be frozen
at the value seen while tracing. Under capture such an index becomes a tensor *input* of
existing ops instead: the key's basic part (ints, slices, None) is one ``slice`` op; each
0-d index tensor a ``take`` (as an int, it selects first: PyTorch's rule); the index arrays
one ``take`` along their dims merged into one, at the linear index ``sum(wrap(i_k) *
stride_k)``. Capture, symbolic gradients, vmap, the graph file and ONNX export then need
nothing new. The results are eager ``getitem``'s: NumPy's advanced indexing (an index
counting from the end where negative, IndexError where out of range, also when the graph
replays), with ints beside index arrays selecting first.
"""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor

_MASK_HELP = ("a bool mask selects a number of elements that depends on its values, so a "
              "graph cannot give the result a shape. Keep the shape fixed instead: "
              "tl.where(mask, x, 0) or x.masked_fill(~mask, 0) (then reduce), or take "
              "masked_select / nonzero outside the captured function")


def is_traced(t: Tensor) -> bool:
    """Whether reading ``t`` into Python now would freeze a traced value (an input of the
    active capture, or computed from one); False outside capture. A tensor the graph may
    hold as a constant (guarded state, a value made in the function) is not traced, and
    the capture records its guard as for any read."""
    from .._state import state
    tracer = state.tracer
    if tracer is None:
        return False
    from ..graph.tracer import CaptureError
    try:
        tracer.on_read(t, "indexing with a tensor")
    except CaptureError:
        return True
    return False


def refuse_mask(t: Tensor, what: str = "x[mask]") -> None:
    """A bool index tensor that is a traced value: CaptureError, saying what to do."""
    from ..graph.tracer import CaptureError
    raise CaptureError(f"indexing with a tensor: {what} with a traced bool mask of shape "
                       f"{tuple(t.shape)} under capture (tl.function / tl.capture): "
                       f"{_MASK_HELP}.")


def _is_array(k) -> bool:
    return not (k is None or k is Ellipsis or isinstance(k, (int, slice)))


def _expand(index: tuple, shape: tuple) -> list:
    """The key with its Ellipsis spelled out as full slices and full slices for the dims it
    leaves out at the end; each constant bool array becomes its ``nonzero()`` arrays
    (NumPy's meaning of a mask, its dims adjacent), checked against the dims it covers."""
    ndim = len(shape)
    if sum(k is Ellipsis for k in index) > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    width = [0 if k is None or k is Ellipsis else
             (k.ndim if _is_array(k) and k.dtype == np.bool_ else 1) for k in index]
    used = sum(width)
    if used > ndim:
        raise IndexError(f"getitem: too many indices for a tensor of dimension {ndim} "
                         f"({used} were indexed)")
    out, axis = [], 0
    for k, w in zip(index, width):
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
            axis += ndim - used
            continue
        if _is_array(k) and k.dtype == np.bool_:
            if isinstance(k, Tensor):       # _normalize_key refuses a traced mask first
                refuse_mask(k)
            if k.ndim == 0:
                raise IndexError("getitem: a 0-d bool index beside a traced index tensor is "
                                 "not supported under capture; use None (x[None]) instead")
            host = k if isinstance(k, np.ndarray) else k.get()
            for j, n in enumerate(host.shape):
                if n != shape[axis + j]:
                    raise IndexError(f"getitem: boolean index did not match indexed tensor "
                                     f"along axis {axis + j}; size of axis is "
                                     f"{shape[axis + j]} but size of corresponding boolean "
                                     f"axis is {n}")
            out.extend(np.nonzero(host))
        else:
            out.append(k)
        axis += w
    if not any(k is Ellipsis for k in index):
        out.extend([slice(None)] * (ndim - used))
    return out


def _as_index(k, x: Tensor) -> Tensor:
    """An index item as an integer tensor on ``x``'s device (a constant array becomes a
    constant of the graph)."""
    if not isinstance(k, Tensor):
        from ..creation import as_tensor
        k = as_tensor(k, device=x.device)
    if k.dtype.kind not in "iu":
        raise IndexError(f"getitem: tensors used as indices must be integer or bool, got "
                         f"{k.dtype}")
    return k


def _broadcast(shapes: list) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IndexError("getitem: shape mismatch: indexing tensors could not be broadcast "
                         "together with shapes " + " ".join(str(tuple(s)) for s in shapes)
                         ) from None


def _wrapped(idx: Tensor, n: int, device) -> Tensor:
    """``idx`` with negative entries counted from the end; a ``take`` from ``arange(n)``, so
    the kernel refuses an index outside [-n, n) (IndexError) on every run of the graph."""
    from ..creation import arange
    from .indexing import take
    return take(arange(n, device=device), idx, 0)


def getitem_traced(x: Tensor, index: tuple) -> Tensor:
    """``x[index]`` for a normalised ``index`` holding index tensors as ``Tensor`` objects
    (traced values), composed of ``slice``, ``take``, ``transpose``, ``reshape`` and
    integer ``mul``/``add``: eager ``getitem``'s result (see the module docstring).

    >>> @tl.function
    ... def f(q, a):
    ...     return q[tl.arange(8), a]       # a fed per call, not frozen
    """
    from .indexing import SLICE, _drop_empty_ellipsis, take
    from .shape import reshape, transpose
    index = _drop_empty_ellipsis(index, x.ndim)
    items = _expand(index, tuple(x.shape))
    # PyTorch's order (which eager getitem follows): ints and 0-d index tensors select
    # first, the index arrays then index what is left. Where NumPy would do it in one step
    # the results agree: the ints' dims go, and the arrays stay adjacent or apart.
    basic, scalars, arrays, axis = [], [], [], 0
    for k in items:
        if k is None or isinstance(k, slice):
            basic.append(k)
            axis += 1
        elif isinstance(k, int):
            basic.append(k)
        elif k.ndim == 0 and not isinstance(k, Tensor):
            basic.append(int(k))        # a constant 0-d index: an int, as eager's
        else:
            basic.append(slice(None))
            (scalars if k.ndim == 0 else arrays).append((axis, k))
            axis += 1
    y = x
    if any(not (isinstance(k, slice) and k == slice(None)) for k in basic):
        y = apply(SLICE, y, index=tuple(basic))
    for a, k in reversed(scalars):      # the highest axis first: the others keep their place
        y = take(y, _as_index(k, x), a)
        arrays = [(b - (b > a), i) for b, i in arrays]
    if not arrays:
        return y
    pos = [a for a, _ in arrays]
    idx = [_as_index(k, x) for _, k in arrays]
    bshape = _broadcast([tuple(i.shape) for i in idx])
    if len(idx) == 1:                   # take puts the index's dims in place of the axis
        return take(y, idx[0], pos[0])
    ys = tuple(y.shape)
    sizes = [ys[a] for a in pos]
    lin = None
    for k, (i, n) in enumerate(zip(idx, sizes)):
        term = _wrapped(i, n, x.device)
        stride = math.prod(sizes[k + 1:])
        if type(stride) is not int and hasattr(stride, "expr"):
            # a size read from a None dim: as a tensor holding it at run time (a Python
            # number in tensor math would fix the dim to its traced size)
            from ..creation import arange
            term = term * (arange(stride, device=x.device)[-1:] + 1)
        elif stride != 1:
            term = term * stride
        lin = term if lin is None else lin + term
    if tuple(lin.shape) != bshape:
        lin = lin.broadcast_to(bshape)
    merged = math.prod(sizes)
    if pos[-1] - pos[0] == len(pos) - 1:    # adjacent: the result's dims stay in place
        y = reshape(y, ys[:pos[0]] + (merged,) + ys[pos[-1] + 1:])
        return take(y, lin, pos[0])
    rest = [a for a in range(len(ys)) if a not in pos]  # apart: NumPy puts them in front
    y = transpose(y, tuple(pos) + tuple(rest))
    y = reshape(y, (merged,) + tuple(ys[a] for a in rest))
    return take(y, lin, 0)


def _positions(x: Tensor, index: tuple) -> Tensor:
    """The flat (row-major) positions in ``x`` that ``x[index]`` reads, shaped as its
    result (int64), with eager getitem's range checks."""
    from ..creation import arange
    n = math.prod(tuple(x.shape))
    grid = arange(n, device=x.device).reshape(tuple(x.shape))
    return getitem_traced(grid, index)


def _fit(name: str, x: Tensor, v: Tensor, target: tuple) -> Tensor:
    """``v`` in ``x``'s dtype, broadcast to the indexed shape ``target``."""
    try:
        if tuple(np.broadcast_shapes(tuple(v.shape), target)) != target:
            raise ValueError
    except ValueError:
        from ..errors import ShapeError
        raise ShapeError(f"{name}: shape mismatch: value tensor of shape {tuple(v.shape)} "
                         f"could not be broadcast to indexing result of shape {target}"
                         ) from None
    if v.dtype != x.dtype:
        v = v.astype(x.dtype)
    return v if tuple(v.shape) == target else v.broadcast_to(target)


def index_put_traced(x: Tensor, v: Tensor, index: tuple, accumulate: bool) -> Tensor:
    """``index_put`` for an ``index`` holding traced index tensors: ``setitem_traced``, or
    with ``accumulate`` one ``index_add`` at the flat positions (duplicates summed)."""
    if not accumulate:
        return setitem_traced(x, v, index, "index_put")
    from .indexing import index_add
    pos = _positions(x, index)
    target = tuple(pos.shape)
    v = _fit("index_put", x, v, target)
    m, n = math.prod(target), math.prod(tuple(x.shape))
    return index_add(x.reshape((n,)), pos.reshape((m,)), v.reshape((m,)), 0).reshape(
        tuple(x.shape))


def setitem_traced(x: Tensor, v: Tensor, index: tuple, name: str = "setitem") -> Tensor:
    """Out-of-place ``x[index] = v`` for an ``index`` holding traced index tensors: where an
    index repeats a position the last write wins (NumPy's, as eager). Composed of
    ``scatter_reduce`` (amax of the write order per position), ``take`` and ``where``.
    Differentiable in ``x`` and ``v``; ``v``'s gradient goes to the writes that win
    (eager's ``setitem`` gives a repeated position's gradient to every write there)."""
    from ..creation import arange, full
    from .elementwise import where
    from .indexing import take
    from .scatter_reduce import scatter_reduce
    pos = _positions(x, index)
    target = tuple(pos.shape)
    v = _fit(name, x, v, target)
    m = math.prod(target)
    n = math.prod(tuple(x.shape))
    if m == 0 or n == 0:
        return x
    flat = pos.reshape((m,))
    order = arange(m, device=x.device)
    # the last write to each position: the largest write number that lands there
    last = scatter_reduce(full((n,), -1, dtype=np.int64, device=x.device), 0, flat, order,
                          "amax")
    written = last >= 0
    value = take(v.reshape((m,)), where(written, last, 0), 0)
    return where(written, value, x.reshape((n,))).reshape(tuple(x.shape))
