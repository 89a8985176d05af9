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
from .registry import OpDef, register
from ._util import numel, to_tensor


def _sizes(shape, dims, src) -> tuple:
    out = list(shape)
    for pos, axis in dims:
        out[pos] = src[axis]
    return tuple(out)


def _fill_fwd(xp, x, *, shape, dims, value, dtype):
    return xp.full(_sizes(shape, dims, x.shape), value, dtype=dtype)


def _fill_infer(x, *, shape, dims, value, dtype):
    return _sizes(shape, dims, x[0]), np.dtype(dtype)


def _fill_cost(in_specs, out_specs, **attrs):
    shape, dt = out_specs
    return 0, numel(shape) * np.dtype(dt).itemsize


FILL = register(OpDef("fill", _fill_fwd, infer=_fill_infer, cost=_fill_cost, saves=False,
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
    shape = _sizes(tuple(int(s) for s in shape), dims, like._data.shape)
    return apply(FILL, like, shape=shape, dims=dims, value=float(value), dtype=dt.name)
