"""Cases for tl.linalg's decompositions: svd, qr (sign-free outputs for the references)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add


def _matrix(draw, tall_only=False):
    batch = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=1)))
    m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if tall_only and m < n:
        m, n = n, m
    k = min(m, n)
    # distinct, well separated singular values: the singular vectors' gradients divide by gaps
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    a = np.empty(batch + (m, n))
    for idx in np.ndindex(*batch):
        u, _ = np.linalg.qr(rng.standard_normal((m, m)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
        s = np.zeros((m, n))
        s[range(k), range(k)] = 1.0 + 1.5 * np.arange(k)[::-1]
        a[idx] = u @ s @ v.T
    return a


def _svd_inputs(draw):
    return [_matrix(draw)], {"full_matrices": draw(st.booleans())}


def _svd_fn(a, full_matrices):
    u, s, vh = tl.linalg.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    u, vh = u[..., :, :k], vh[..., :k, :]
    return s, u @ vh, u * u, vh * vh        # invariant under the vectors' signs


def _svd_ref(a, full_matrices):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return s, u @ vh, u * u, vh * vh


def _qr_inputs(draw):
    return [_matrix(draw, tall_only=True)], {"mode": draw(st.sampled_from(["reduced",
                                                                           "complete"]))}


def _qr_fn(a, mode):
    q, r = tl.linalg.qr(a, mode="reduced" if a.shape[-2] > a.shape[-1] else mode)
    return q, r


def _qr_ref(a, mode):
    return np.linalg.qr(a, "reduced" if a.shape[-2] > a.shape[-1] else mode)


add("svd", _svd_fn, _svd_inputs, _svd_ref, atol=1e-6)
add("qr", _qr_fn, _qr_inputs, _qr_ref, atol=1e-6)


def _svdvals_op(a):
    # the values-only op itself: tl.linalg.svdvals of a tensor that requires grad takes
    # the full svd, so the cases (which differentiate) call the op directly
    from tensorlib._apply import apply
    from tensorlib.ops.decompositions import SVDVALS
    return apply(SVDVALS, a)


add("svdvals", _svdvals_op, lambda draw: [_matrix(draw)],
    lambda a: np.linalg.svd(a, compute_uv=False), atol=1e-6)
