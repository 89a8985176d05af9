"""Cases for dim_size: a size expression over its inputs' dims as a 0-d int64 tensor."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops.size_guard import DIM_SIZE, dim_size

from . import add, arr, shapes


def _one(draw):
    shape = draw(shapes(1, 3, 0, 4))
    return [arr(draw, shape)], {"dim": draw(st.integers(-len(shape), len(shape) - 1))}


def _two(draw):
    return [arr(draw, draw(shapes(2, 2, 1, 4))), arr(draw, draw(shapes(1, 3, 1, 4)))]


# x.shape[0] * y.shape[-1] - 1 (the expression form capture and the ONNX importer emit)
_EXPR = ("sub", ("mul", ("dim", 0, 0), ("dim", 1, 0)), 1)

add("dim_size", lambda x, dim: dim_size(x, dim), _one,
    lambda x, dim: np.asarray(x.shape[dim], np.int64), grad=False)
add("dim_size", lambda x, y: tl.apply(DIM_SIZE, x, y, expr=_EXPR), _two,
    lambda x, y: np.asarray(x.shape[0] * y.shape[0] - 1, np.int64), grad=False, name="expr")
