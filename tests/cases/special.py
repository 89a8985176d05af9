"""Cases for the special-function ops of tensorlib/ops/special_fns.py (tl.special). The
references are Python's libm bindings (math) and NumPy; where only SciPy has one, the
forward check runs when SciPy is installed."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add, arr, shapes

try:
    import scipy.special as sc
except ImportError:     # pragma: no cover
    sc = None


def _vec(f):
    return lambda x: np.vectorize(f, otypes=[np.float64])(x).astype(x.dtype)


def _inputs(low, high):
    def inputs(draw):
        return [arr(draw, draw(shapes(max_dims=3, max_side=4)), low, high)]
    return inputs


add("erfc", tl.erfc, _inputs(-3.0, 3.0), _vec(math.erfc))
add("erfinv", tl.erfinv, _inputs(-0.9, 0.9),
    None if sc is None else (lambda x: sc.erfinv(x).astype(x.dtype)))
add("lgamma", tl.lgamma, _inputs(0.3, 4.0), _vec(math.lgamma))
add("lgamma", tl.lgamma, _inputs(-3.9, -0.1), _vec(math.lgamma), name="negative",
    grad=False)
add("digamma", tl.digamma, _inputs(0.3, 4.0),
    None if sc is None else (lambda x: sc.psi(x).astype(x.dtype)))


def _poly_inputs(draw):
    return [arr(draw, draw(shapes(max_dims=2, max_side=4)), 0.5, 4.0)], {
        "n": draw(st.integers(1, 3))}


add("polygamma", lambda x, n: tl.polygamma(n, x), _poly_inputs,
    None if sc is None else (lambda x, n: sc.polygamma(n, x).astype(x.dtype)),
    rtol=1e-3)
add("i0", tl.i0, _inputs(-3.0, 3.0), lambda x: np.i0(x).astype(x.dtype))
add("i1", tl.special.i1, _inputs(-3.0, 3.0),
    None if sc is None else (lambda x: sc.i1(x).astype(x.dtype)))
