"""Cases for the Householder QR op (``geqrf``; ``tl.geqrf`` / ``tl.ormqr``
are compared against torch in tests/linalg/test_linalg_norms_nan_and_empty.py)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add


def _geqrf_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return [rng.standard_normal(batch + (draw(st.integers(1, 5)), draw(st.integers(1, 5))))]


def _geqrf_ref(a):
    h, tau = np.linalg.qr(a, mode="raw")
    return np.swapaxes(h, -1, -2), tau


add("geqrf", lambda a: tuple(tl.geqrf(a)), _geqrf_inputs, _geqrf_ref, grad=False, atol=1e-8)
