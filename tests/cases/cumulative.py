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
