"""Array and elementwise ops of TF1 built on tensorlib's: concat/stack/split/tile, gather,
one_hot, shape, expand_dims/squeeze, where, comparisons and logic, maximum/minimum,
clip_by_value/clip_by_global_norm, add_n, abs/pow, zeros_like/ones_like, range/fill,
identity, casts, no_op/group."""
from __future__ import annotations

import builtins

import numpy as np

import tensorlib as _tl

from . import graph
from .dtypes import float32, int32
from .tensor import Operation, Tensor, _as_dtype, _binary, _op, _t


def _seq(values, what: str) -> list:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{what}: values must be a non-empty list of tensors")
    return list(values)


def concat(values, axis: int, name=None) -> Tensor:
    """Join ``values`` along an existing ``axis``."""
    vs = _seq(values, "concat")
    return _op(lambda *a: _tl.concatenate([_t(x) for x in a], axis=axis), vs, name or "concat")


def stack(values, axis: int = 0, name=None) -> Tensor:
    """Join ``values`` along a new ``axis``."""
    vs = _seq(values, "stack")
    return _op(lambda *a: _tl.stack([_t(x) for x in a], axis=axis), vs, name or "stack")


def split(value, num_or_size_splits, axis: int = 0, num=None, name=None) -> list:
    """A list of pieces: ``num_or_size_splits`` equal parts (an int) or these sizes."""
    if isinstance(num_or_size_splits, int):
        n, sizes = num_or_size_splits, None
    else:
        sizes = [int(s) for s in num_or_size_splits]
        n = len(sizes)
        offsets = np.cumsum([0, *sizes[:-1]]).tolist()

    def piece(k):
        def fn(v):
            if sizes is None:
                if v.shape[axis] % n:
                    raise ValueError(f"split: dimension {axis} of size {v.shape[axis]} is not "
                                     f"divisible by {n}")
                m = v.shape[axis] // n
                start, stop = k * m, (k + 1) * m
            else:
                start, stop = offsets[k], offsets[k] + sizes[k]
            idx = [slice(None)] * v.ndim
            idx[axis] = slice(start, stop)
            return v[tuple(idx)]
        return fn
    return [_op(piece(k), [value], name or "split") for k in builtins.range(n)]


def tile(input, multiples, name=None) -> Tensor:
    m = tuple(int(x) for x in multiples)
    return _op(lambda v: _tl.tile(v, m), [input], name or "Tile")


def gather(params, indices, axis: int = 0, name=None) -> Tensor:
    """``params`` indexed by ``indices`` along ``axis`` (result: params.shape[:axis] +
    indices.shape + params.shape[axis+1:])."""
    return _op(lambda p, i: _tl.take(_t(p), _t(i), axis=axis), [params, indices],
               name or "GatherV2")


def one_hot(indices, depth: int, on_value=None, off_value=None, axis: int = -1,
            dtype=None, name=None) -> Tensor:
    """A new last (``axis``) dim of size ``depth``: ``on_value`` (1) at the index,
    ``off_value`` (0) elsewhere; an index outside [0, depth) gives an all-off row."""
    dt = _as_dtype(dtype) or float32
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value

    def fn(i):
        i = _t(i)
        hit = i[..., None] == _tl.arange(depth, dtype=i.dtype)
        y = _tl.where(hit, _tl.tensor(np.asarray(on, dt)), _tl.tensor(np.asarray(off, dt)))
        return y if axis == -1 else _tl.moveaxis(y, -1, axis)
    return _op(fn, [indices], name or "one_hot")


def shape(input, name=None, out_type=int32) -> Tensor:
    """The runtime shape as a 1-d int32 tensor."""
    dt = _as_dtype(out_type)
    return _op(lambda v: _tl.tensor(np.asarray(_t(v).shape, dt)), [input], name or "Shape",
               None, dt)


def expand_dims(input, axis: int, name=None) -> Tensor:
    return _op(lambda v: _tl.expand_dims(_t(v), axis), [input], name or "ExpandDims")


def squeeze(input, axis=None, name=None, squeeze_dims=None) -> Tensor:
    """Drop size-1 dims (all, or those of ``axis``)."""
    ax = axis if axis is not None else squeeze_dims
    ax = tuple(ax) if isinstance(ax, list) else ax
    return _op(lambda v: _tl.squeeze(_t(v), axis=ax), [input], name or "Squeeze")


def where(condition, x=None, y=None, name=None) -> Tensor:
    """Elementwise ``x if condition else y`` (x and y required here: the one-argument
    form, coordinates of true elements, is not supported)."""
    if x is None or y is None:
        raise NotImplementedError("where(condition) without x and y is not supported")
    return _op(lambda c, a, b: _tl.where(_t(c), *_pairwise(a, b)), [condition, x, y],
               name or "Select")


def _pairwise(a, b):
    from .tensor import _pair
    return _pair(a, b)


def _cmp(f, op_name: str):
    def op(x, y, name=None) -> Tensor:
        return _binary(f, x, y, name or op_name)
    op.__name__ = op_name
    return op


less = _cmp(lambda a, b: a < b, "Less")
less_equal = _cmp(lambda a, b: a <= b, "LessEqual")
greater = _cmp(lambda a, b: a > b, "Greater")
greater_equal = _cmp(lambda a, b: a >= b, "GreaterEqual")
not_equal = _cmp(lambda a, b: a != b, "NotEqual")
maximum = _cmp(_tl.maximum, "Maximum")
minimum = _cmp(_tl.minimum, "Minimum")
logical_and = _cmp(_tl.logical_and, "LogicalAnd")
logical_or = _cmp(_tl.logical_or, "LogicalOr")
pow = _cmp(lambda a, b: a ** b, "Pow")
divide = _cmp(lambda a, b: a / b, "truediv")


def logical_not(x, name=None) -> Tensor:
    return _op(lambda v: _tl.logical_not(_t(v)), [x], name or "LogicalNot")


def abs(x, name=None) -> Tensor:
    return _op(lambda v: _t(v).abs(), [x], name or "Abs")


def clip_by_value(t, clip_value_min, clip_value_max, name=None) -> Tensor:
    """``min(max(t, lo), hi)`` (gradient 1 inside the range, 0 outside, as TF1)."""
    return _op(lambda v, lo, hi: _tl.minimum(_tl.maximum(_t(v), lo), hi),
               [t, clip_value_min, clip_value_max], name or "clip_by_value")


def global_norm(t_list, name=None) -> Tensor:
    ts = [t for t in t_list if t is not None]
    return _op(lambda *a: sum((v * v).sum() for v in a).sqrt(), ts, name or "global_norm")


def clip_by_global_norm(t_list, clip_norm, use_norm=None, name=None) -> tuple:
    """``(clipped list, global norm)``: each t scaled by ``clip_norm / max(norm,
    clip_norm)`` (None entries stay None), the gradient-clipping idiom."""
    norm = use_norm if use_norm is not None else global_norm(t_list)
    scale = _op(lambda n, c: c / _tl.maximum(n, _tl.tensor(np.asarray(c, n.dtype))),
                [norm, clip_norm], "clip_by_global_norm/scale")
    out = [None if t is None else _op(lambda v, s: v * s.astype(v.dtype), [t, scale],
                                      name or "clip_by_global_norm") for t in t_list]
    return out, norm


def add_n(inputs, name=None) -> Tensor:
    """The elementwise sum of a list of same-shape tensors."""
    vs = _seq(inputs, "add_n")

    def fn(*a):
        shapes = {tuple(_t(v).shape) for v in a}
        if len(shapes) > 1:
            raise ValueError(f"add_n: all inputs must have the same shape, got {shapes}")
        out = _t(a[0])
        for v in a[1:]:
            out = out + _t(v)
        return out
    return _op(fn, vs, name or "AddN")


def zeros_like(tensor, dtype=None, name=None) -> Tensor:
    dt = _as_dtype(dtype)
    return _op(lambda v: _tl.zeros_like(_t(v)) if dt is None else
               _tl.zeros(tuple(v.shape), dtype=dt), [tensor], name or "zeros_like")


def ones_like(tensor, dtype=None, name=None) -> Tensor:
    dt = _as_dtype(dtype)
    return _op(lambda v: _tl.ones_like(_t(v)) if dt is None else
               _tl.ones(tuple(v.shape), dtype=dt), [tensor], name or "ones_like")


def range(start, limit=None, delta=1, dtype=None, name=None) -> Tensor:
    """``[start, limit)`` in steps of ``delta`` (int32 for int arguments, as TF1)."""
    if limit is None:
        start, limit = 0, start
    dt = _as_dtype(dtype) or (np.dtype(np.int32) if all(
        isinstance(a, (int, np.integer)) for a in (start, limit, delta)) else float32)
    a = np.arange(start, limit, delta, dtype=dt)
    return _op(lambda: _tl.tensor(a), [], name or "range", a.shape, dt)


def fill(dims, value, name=None) -> Tensor:
    from .tensor import _python_array
    v = _python_array(value)
    s = tuple(int(d) for d in dims)
    return _op(lambda: _tl.full(s, v[()], dtype=v.dtype), [], name or "Fill", s, v.dtype)


def identity(input, name=None) -> Tensor:
    """The same value (a new name; with control dependencies, a way to run ops)."""
    return _op(lambda v: _t(v) * 1 if isinstance(_t(v), _tl.Tensor) and
               _t(v).dtype.kind != "b" else _t(v), [input], name or "Identity",
               getattr(input, "shape", None), getattr(input, "dtype", None))


def to_float(x, name=None) -> Tensor:
    return _op(lambda v: _t(v).astype(float32), [x], name or "ToFloat", None, float32)


def to_int32(x, name=None) -> Tensor:
    return _op(lambda v: _t(v).astype(int32), [x], name or "ToInt32", None, int32)


def no_op(name=None) -> Operation:
    """An op that does nothing (with control dependencies: runs them)."""
    return Operation(lambda env: None, [], graph._graph.unique(name or "NoOp"))


def group(*inputs, name=None) -> Operation:
    """An op that runs all ``inputs`` (ops or tensors, nested lists too) in one run."""
    from .session import _Group
    members: list = []

    def add(x):
        if isinstance(x, (list, tuple)):
            for y in x:
                add(y)
        elif x is not None:
            members.append(x)
    add(inputs)
    return _Group(members, graph._graph.unique(name or "group_deps"))
