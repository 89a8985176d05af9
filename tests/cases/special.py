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


# --- torch.special's orthogonal polynomials: one op, not differentiable (as PyTorch's) ---
def _poly_inputs(low, high):
    def inputs(draw):
        x = arr(draw, draw(shapes(max_dims=2, max_side=4)), low, high)
        return [x], {"n": draw(st.integers(-1, 6))}
    return inputs


def _three_term(first, a=2.0):
    """p_n of a Chebyshev-type recurrence r = a x q - p from (1, first(x))."""
    def ref(x, n):
        p, q = np.ones_like(x), first(x)
        for _ in range(n - 1):
            p, q = q, a * x * q - p
        return (np.zeros_like(x) if n < 0 else p if n == 0 else q).astype(x.dtype)
    return ref


def _basis(valfun, shift=False):
    def ref(x, n):
        if n < 0:
            return np.zeros_like(x)
        u = 2 * x - 1 if shift else x
        return valfun(u.astype(np.float64), np.eye(n + 1)[n]).astype(x.dtype)
    return ref


_P = np.polynomial
_POLY_REFS = {
    "chebyshev_polynomial_t": _basis(_P.chebyshev.chebval),
    "chebyshev_polynomial_u": _three_term(lambda x: 2 * x),
    "chebyshev_polynomial_v": _three_term(lambda x: 2 * x - 1),
    "chebyshev_polynomial_w": _three_term(lambda x: 2 * x + 1),
    "hermite_polynomial_h": _basis(_P.hermite.hermval),
    "hermite_polynomial_he": _basis(_P.hermite_e.hermeval),
    "laguerre_polynomial_l": _basis(_P.laguerre.lagval),
    "legendre_polynomial_p": _basis(_P.legendre.legval),
}
for _name, _ref_fn in _POLY_REFS.items():
    add("orthogonal_poly", getattr(tl.special, _name), _poly_inputs(-0.95, 0.95), _ref_fn,
        name=_name, grad=False, gradgrad=False)
    if _name.startswith("chebyshev"):
        _shifted = "shifted_" + _name

        def _shift_ref(x, n, f=_ref_fn):
            return f(2 * x - 1, n)
        add("orthogonal_poly", getattr(tl.special, _shifted), _poly_inputs(0.03, 0.97),
            _shift_ref, name=_shifted, grad=False, gradgrad=False)
