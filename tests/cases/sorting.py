"""Cases for argsort and the ops built on it (sort, topk)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add, shapes


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**31 - 1)))


def _ties(draw):
    """Small integers as floats (many ties: the order among equals is checked), any axis."""
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    x = _rng(draw).integers(0, 3, shape).astype(np.float64)
    return [x], {"axis": draw(st.integers(-len(shape), len(shape) - 1))}


def _distinct(draw):
    """Values at least 0.3 apart, so finite differences never reorder them."""
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    rng = _rng(draw)
    n = int(np.prod(shape))
    x = rng.permutation(n) * 0.5 + rng.uniform(-0.1, 0.1, n) - n / 4
    return [x.reshape(shape)], {"axis": draw(st.integers(-len(shape), len(shape) - 1)),
                                "descending": draw(st.booleans())}


def _topk_inputs(draw):
    (x,), kw = _distinct(draw)
    kw["k"] = draw(st.integers(0, x.shape[kw["axis"]]))
    return [x], kw


def _stable_desc(x, axis):
    # an independent reference: negation keeps ties as ties, and NumPy's stable sort keeps
    # their input order
    return np.argsort(-x, axis=axis, kind="stable")


def _first_k(a, k, axis):
    return np.take(a, np.arange(k), axis=axis)


add("argsort", lambda x, axis: tl.argsort(x, axis=axis), _ties,
    lambda x, axis: np.argsort(x, axis=axis, kind="stable"), grad=False, name="stable")
add("argsort", lambda x, axis: tl.argsort(x, axis=axis, descending=True), _ties,
    _stable_desc, grad=False, name="stable_descending")
add("argsort", lambda x, axis, descending: tl.sort(x, axis=axis, descending=descending)[0],
    _distinct, lambda x, axis, descending: np.flip(np.sort(x, axis=axis), axis)
    if descending else np.sort(x, axis=axis), name="sort_values")
add("argsort", lambda x, axis: tl.sort(x, axis)[1], _ties,
    lambda x, axis: np.argsort(x, axis=axis, kind="stable"), grad=False, name="sort_indices")
add("topk_indices", lambda x, axis, descending, k: tl.topk(x, k, axis=axis, largest=descending)[0],
    _topk_inputs, lambda x, axis, descending, k: np.take_along_axis(x, _first_k(
        _stable_desc(x, axis) if descending else np.argsort(x, axis=axis, kind="stable"),
        k, axis), axis), name="topk_values")
add("topk_indices", lambda x, axis, descending, k: tl.topk(x, k, axis=axis, largest=descending)[1],
    _topk_inputs, lambda x, axis, descending, k: _first_k(
        _stable_desc(x, axis) if descending else np.argsort(x, axis=axis, kind="stable"),
        k, axis), grad=False, name="topk_indices")


def _wide_topk_inputs(draw):
    """Longer rows (the row scan, along either axis), with ties drawn from a few values or
    none."""
    rng = _rng(draw)
    shape = (draw(st.integers(1, 3)), draw(st.integers(8, 40)))
    x = (rng.integers(0, 5, shape) * 1.0 if draw(st.booleans())
         else rng.permutation(shape[0] * shape[1]).reshape(shape) * 0.5)
    axis = draw(st.sampled_from([-1, 0] if shape[0] >= 4 else [-1]))
    return [x], {"axis": axis, "descending": draw(st.booleans()),
                 "k": draw(st.integers(1, max(1, x.shape[axis] // 4)))}


add("topk_indices", lambda x, axis, descending, k: tl.topk(x, k, axis=axis, largest=descending)[1],
    _wide_topk_inputs, lambda x, axis, descending, k: _first_k(
        _stable_desc(x, axis) if descending else np.argsort(x, axis=axis, kind="stable"),
        k, axis), grad=False, name="wide")


def _nan_topk_inputs(draw):
    """The row scan's order: NaN counts as the largest value, ties (NaN among them) keep
    their input order."""
    rng = _rng(draw)
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 30)))
    x = rng.integers(0, 4, shape) * 1.0
    x[rng.random(shape) < 0.2] = np.nan
    return [x], {"axis": -1, "descending": draw(st.booleans()),
                 "k": draw(st.integers(1, shape[1]))}


def _nan_last_order(x, descending):
    key = np.where(np.isnan(x), -np.inf, -x) if descending else x   # NumPy sorts NaN last
    return np.argsort(key, axis=-1, kind="stable")


add("topk_indices", lambda x, axis, descending, k: tl.topk(x, k, axis=axis, largest=descending)[1],
    _nan_topk_inputs, lambda x, axis, descending, k: _nan_last_order(x, descending)[..., :k],
    grad=False, name="nan")


def _long_topk_inputs(draw):
    """k past the row scan's limit (128): the partition path."""
    rng = _rng(draw)
    x = rng.integers(0, 50, (2, 700)) * 1.0 if draw(st.booleans()) else \
        rng.permutation(1400).reshape(2, 700) * 0.5
    return [x], {"axis": -1, "descending": draw(st.booleans()), "k": draw(st.integers(129, 175))}


add("topk_indices", lambda x, axis, descending, k: tl.topk(x, k, axis=axis, largest=descending)[1],
    _long_topk_inputs, lambda x, axis, descending, k: _first_k(
        _stable_desc(x, axis) if descending else np.argsort(x, axis=axis, kind="stable"),
        k, axis), grad=False, name="long_k")
