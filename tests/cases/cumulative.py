"""Cases for the scans of tensorlib/ops/cumulative.py: logcumsumexp and the running
arg-max/arg-min behind cummax/cummin."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add, arr, shapes


def _axis(draw, nd):
    return draw(st.integers(-max(nd, 1), max(nd, 1) - 1))


def _lcse_inputs(draw, spread=2.0):
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=5))
    return [arr(draw, shape, -spread, spread)], {"dim": _axis(draw, len(shape))}


def _lcse_ref(x, dim):
    """An independent reference: for each prefix, shift by that prefix's own maximum."""
    if x.ndim == 0:
        return x.copy()
    xl = np.moveaxis(x, dim, -1)
    n = xl.shape[-1]
    out = np.empty_like(xl)
    for i in range(n):
        pre = xl[..., :i + 1]
        m = pre.max(axis=-1, keepdims=True)
        out[..., i] = (np.log(np.exp(pre - m).sum(axis=-1, keepdims=True)) + m)[..., 0]
    return np.moveaxis(out, -1, dim)


add("logcumsumexp", lambda x, dim: tl.logcumsumexp(x, dim), _lcse_inputs, _lcse_ref)
# far-apart values: log(cumsum(exp(x - max))) would underflow to -inf on early prefixes
add("logcumsumexp", lambda x, dim: tl.logcumsumexp(x, dim),
    lambda draw: _lcse_inputs(draw, spread=800.0), _lcse_ref, grad=False, name="wide")


def _cum_idx_ref(x, dim, mode):
    if x.ndim == 0:
        return np.zeros((), np.int64)
    xl = np.moveaxis(x, dim, -1)
    out = np.zeros(xl.shape, np.int64)
    for idx in np.ndindex(xl.shape[:-1]):
        best, bi = None, 0
        for j, v in enumerate(xl[idx]):
            if best is None or np.isnan(v) or (not np.isnan(best) and (
                    v >= best if mode == "max" else v <= best)):
                best, bi = v, j
            out[idx + (j,)] = bi
    return np.moveaxis(out, -1, dim)


def _ties(draw):
    """Small integers (many ties: PyTorch's index is the last of equals), some NaN."""
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.integers(0, 3, shape).astype(np.float64)
    if draw(st.booleans()) and x.size:
        x[rng.random(shape) < 0.2] = np.nan
    return [x], {"dim": _axis(draw, len(shape)), "mode": draw(st.sampled_from(["max", "min"]))}


def _distinct(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n = int(np.prod(shape))
    x = (rng.permutation(n) * 0.5 + rng.uniform(-0.1, 0.1, n)).reshape(shape)
    return [x], {"dim": _axis(draw, len(shape)), "mode": draw(st.sampled_from(["max", "min"]))}


def _cum(x, dim, mode):
    return (tl.cummax if mode == "max" else tl.cummin)(x, dim)


add("cum_extreme_indices", lambda x, dim, mode: _cum(x, dim, mode).indices, _ties,
    _cum_idx_ref, grad=False, name="indices")
add("cum_extreme_indices", lambda x, dim, mode: _cum(x, dim, mode).values, _distinct,
    lambda x, dim, mode: (np.maximum if mode == "max" else np.minimum).accumulate(x, axis=dim),
    name="values")
