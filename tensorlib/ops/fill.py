"""``fill``: a tensor of one value whose shape takes some of its sizes from another tensor's
shape at run time.

The creation functions (``tl.zeros``...) make constants: in a captured graph they keep the
size they were traced with. An RNN's zero initial state, a mask or an accumulator built
for "this batch" should follow the batch instead, in the graph, in its saved file and in
ONNX (Shape, Gather, Concat, ConstantOfShape) when the batch is a ``None`` dim.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from .. import _dtypes
from ..graph.sizes import apply_sizes
from .registry import OpDef, register
from ._util import numel, to_tensor


def _sizes(shape, dims, src) -> tuple:
    out = list(shape)
    for pos, axis in dims:
        out[pos] = src[axis]
    return tuple(out)


def _target(shape, dims, sizes, shapes) -> tuple:
    return apply_sizes(_sizes(shape, dims, shapes[0]), sizes, shapes)


def _fill_fwd(xp, *xs, shape, dims, value, dtype, sizes=()):
    tgt = _target(shape, dims, sizes, [x.shape for x in xs])
    if any(d < 0 for d in tgt):
        raise ValueError(f"fill: negative size in {tgt}")
    return xp.full(tgt, value, dtype=dtype)


def _fill_infer(*xs, shape, dims, value, dtype, sizes=()):
    tgt = _target(shape, dims, sizes, [tuple(x[0]) for x in xs])
    if any(d is not None and d < 0 for d in tgt):
        raise ValueError(f"fill: negative size in {tgt}")
    return tgt, np.dtype(dtype)


def _fill_cost(in_specs, out_specs, **attrs):
    shape, dt = out_specs
    return 0, numel(shape) * np.dtype(dt).itemsize


FILL = register(OpDef("fill", _fill_fwd, infer=_fill_infer, cost=_fill_cost, saves=False,
                      complex="forward",    # reads only sizes: any dtype's
                      doc="A tensor of ``value`` whose sizes at some positions are another "
                          "tensor's sizes (no gradient)."))


def fill(like: Tensor, shape: Sequence[int], value: float = 0.0,
         dims: Sequence[tuple[int, int]] = (), dtype=None) -> Tensor:
    """A tensor of ``value`` and ``shape`` on ``like``'s device, with ``dtype`` (``like``'s
    by default); for each ``(pos, axis)`` in ``dims`` the size at ``pos`` is ``like``'s size
    along ``axis`` when the op runs.

    >>> x = tl.ones(5, 3)
    >>> tensorlib.ops.fill.fill(x, (2, 5, 8), dims=[(1, 0)]).shape   # follows x's batch
    (2, 5, 8)
    """
    like = to_tensor(like)
    dt = np.dtype(_dtypes.as_dtype(dtype)) if dtype is not None else like._data.dtype
    dims = tuple((int(p), int(a)) for p, a in dims)
    from ..autograd.mode import state
    sizes, srcs = (), []
    if state.tracer is not None:    # other traced sizes (x.shape[0] * 2): run-time too
        from ..graph.sizes import lower
        at = {p for p, _ in dims}
        plain, sizes, srcs = lower([0 if i in at else s for i, s in enumerate(shape)],
                                   [like], 1)
        shape = tuple(0 if i in at else d for i, d in enumerate(plain))
    shape = _sizes(tuple(int(s) for s in shape), dims, like._data.shape)
    extra = {"sizes": sizes} if sizes else {}
    return apply(FILL, like, *srcs, shape=shape, dims=dims, value=float(value),
                 dtype=dt.name, **extra)


def fill_traced(kind: str, size, value, dtype) -> Tensor:
    """Under capture with None dims: a tensor of ``value`` whose sizes read from None dims
    (TracedSize, ``x.shape[0] * 2`` included) follow them at run time, on the device of the
    tensor they were read from (``tl.zeros(x.shape[0], 4)``, ``x.new_zeros(...)``)."""
    from ..graph.sizes import lower
    from ..graph.tracer import TracedSize
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{kind}: sizes must be integers, got {s!r}")
    plain, sizes, srcs = lower(size)
    if any(d < 0 for d in plain):
        raise ValueError(f"{kind}: negative dimension in size {plain}")
    dt = np.dtype(_dtypes.as_dtype(dtype))
    leaves = [(p, e[2]) for p, e in sizes if e[0] == "dim" and e[1] == 0]
    if len(srcs) == 1 and len(leaves) == len(sizes):      # sizes of one tensor: ``dims``
        return apply(FILL, srcs[0], shape=plain, dims=tuple(leaves), value=float(value),
                     dtype=dt.name)
    assert any(isinstance(s, TracedSize) for s in size)
    return apply(FILL, *srcs, shape=plain, dims=(), value=float(value), dtype=dt.name,
                 sizes=sizes)
