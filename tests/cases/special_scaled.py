"""Cases for the scaled special functions and the Hurwitz zeta of
tensorlib/ops/special_fns.py (erfcx, i0e, i1e, zeta); SciPy references when installed."""
from __future__ import annotations

import tensorlib as tl

from . import add, arr, broadcastable, shapes

try:
    import scipy.special as sc
except ImportError:     # pragma: no cover
    sc = None


def _inputs(low, high):
    def inputs(draw):
        return [arr(draw, draw(shapes(max_dims=3, max_side=4)), low, high)]
    return inputs


def _ref(name):
    return None if sc is None else (lambda x: getattr(sc, name)(x).astype(x.dtype))


def _zeta_inputs(draw):
    shape = draw(shapes(max_dims=2, max_side=4))
    return [arr(draw, shape, 1.5, 5.0), arr(draw, broadcastable(draw, shape), 0.5, 4.0)]


add("erfcx", tl.special.erfcx, _inputs(-2.0, 4.0), _ref("erfcx"))
add("i0e", tl.special.i0e, _inputs(-4.0, 4.0), _ref("i0e"))
add("i1e", tl.special.i1e, _inputs(-4.0, 4.0), _ref("i1e"))
# the derivative in x is not implemented (as in PyTorch): gradients in q only
add("zeta", tl.special.zeta, _zeta_inputs,
    None if sc is None else (lambda s, q: sc.zeta(s, q).astype(s.dtype)), diff=(1,))
