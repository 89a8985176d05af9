"""``TensorShape`` and static shape inference for op results (``Tensor.get_shape()``)."""
from __future__ import annotations

import warnings
import weakref

import numpy as np

import tensorlib as _tl

from .tensor import Tensor, _Placeholder, _walk


class TensorShape:
    """TF1's static shape: a tuple of dims (None: unknown size), or an unknown rank."""

    def __init__(self, dims):
        self.dims = None if dims is None else tuple(None if d is None else int(d) for d in dims)

    @property
    def ndims(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    rank = ndims

    def as_list(self) -> list:
        if self.dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self.dims)

    def is_fully_defined(self) -> bool:
        return self.dims is not None and None not in self.dims

    def num_elements(self) -> int | None:
        return int(np.prod(self.dims)) if self.is_fully_defined() else None

    def __len__(self) -> int:
        if self.dims is None:
            raise ValueError("Cannot take the length of a shape with unknown rank.")
        return len(self.dims)

    def __iter__(self):
        return iter(self.as_list())

    def __getitem__(self, k):
        # TF2's convention: an int or None (TF1 gave Dimension objects with ``.value``)
        return self.as_list()[k]

    def __eq__(self, other) -> bool:
        if isinstance(other, TensorShape):
            return self.dims == other.dims
        if isinstance(other, (list, tuple)):
            return self.dims is not None and list(self.dims) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.dims)

    def __repr__(self) -> str:
        return "TensorShape(None)" if self.dims is None else f"TensorShape({list(self.dims)})"


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SIZES = (2, 3)       # two stand-ins for every None dim: the output dims that move are None


def static_shape(t: Tensor) -> TensorShape:
    """The declared shape, else one inferred by running the expression twice on stand-in
    values (placeholders' None dims set to 2, then 3; variables at zeros) outside any
    Session: a dim that differs between the runs is None."""
    if t.shape is not None:
        return TensorShape(t.shape)
    hit = _cache.get(t)
    if hit is None:
        hit = _cache[t] = _infer(t)
    return hit


def _infer(t: Tensor) -> TensorShape:
    from .variables import _Env
    holders = [p for p in _walk([t]) if isinstance(p, _Placeholder)]
    if any(p.shape is None for p in holders):
        return TensorShape(None)
    shapes = []
    for n in _SIZES:
        feeds = {}
        for p in holders:
            s = tuple(n if d is None else d for d in p.shape)
            feeds[id(p)] = (_tl.ones if p.dtype is not None and p.dtype.kind == "f"
                            else _tl.zeros)(s, dtype=p.dtype)
        try:
            with _tl.no_grad(), warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                v = _Env(feeds=feeds)(t)
        except Exception:     # an op that rejects the stand-ins: the shape stays unknown
            return TensorShape(None)
        if not isinstance(v, _tl.Tensor):
            return TensorShape(None)
        shapes.append(tuple(v.shape))
    a, b = shapes
    if len(a) != len(b):
        return TensorShape(None)
    return TensorShape([x if x == y else None for x, y in zip(a, b)])
