"""Cases for the Bessel, Airy and incomplete-gamma functions of
tensorlib/ops/special_more.py; SciPy references when installed."""
from __future__ import annotations

import numpy as np

import tensorlib as tl
from tensorlib.ops import special_more as SM

from . import add, arr, broadcastable, shapes
from .special_scaled import _inputs, sc


def _ref(fn):
    return None if sc is None else (lambda x: np.asarray(fn(x)).astype(x.dtype))


def _gamma_inputs(draw):
    shape = draw(shapes(max_dims=2, max_side=4))
    return [arr(draw, shape, 0.5, 5.0), arr(draw, broadcastable(draw, shape), 0.2, 6.0)]


# J, I, spherical j0 and Ai are defined on the whole line; Y and K only for x > 0
for _name, _fn in {"bessel_j0": "j0", "bessel_j1": "j1", "modified_bessel_i0": "i0",
                   "modified_bessel_i1": "i1"}.items():
    add(_name, getattr(tl.special, _name), _inputs(-4.0, 4.0),
        _ref(lambda x, f=_fn: getattr(sc, f)(x)))
add("spherical_bessel_j0", tl.special.spherical_bessel_j0, _inputs(-4.0, 4.0),
    lambda x: np.sinc(x / np.pi).astype(x.dtype))
add("airy_ai", tl.special.airy_ai, _inputs(-4.0, 4.0), _ref(lambda x: sc.airy(x)[0]))
add("airy_ai_prime", SM._airy_ai_prime, _inputs(-4.0, 4.0), _ref(lambda x: sc.airy(x)[1]))
for _name, _fn in {"bessel_y0": "y0", "bessel_y1": "y1", "modified_bessel_k0": "k0",
                   "modified_bessel_k1": "k1", "scaled_modified_bessel_k0": "k0e",
                   "scaled_modified_bessel_k1": "k1e"}.items():
    add(_name, getattr(tl.special, _name), _inputs(0.3, 5.0),
        _ref(lambda x, f=_fn: getattr(sc, f)(x)))
# differentiable in x only (in a, as PyTorch, it raises)
add("gammainc", tl.special.gammainc, _gamma_inputs,
    None if sc is None else (lambda a, x: sc.gammainc(a, x).astype(a.dtype)), diff=(1,))
add("gammaincc", tl.special.gammaincc, _gamma_inputs,
    None if sc is None else (lambda a, x: sc.gammaincc(a, x).astype(a.dtype)), diff=(1,))
