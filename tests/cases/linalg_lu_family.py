"""Cases for the ops behind tl.linalg's LU family, lstsq, cholesky_ex and ldl_factor (the
public functions are tested against torch.linalg in tests/linalg/test_linalg_lu_lstsq_family.py)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import COVERED_ELSEWHERE, add


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**31 - 1)))


def _batch(draw):
    return tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=1)))


def _well_conditioned(rng, shape):
    """A matrix (stack) with singular values in [1, 2.5]: finite differences stay valid."""
    m, n = shape[-2:]
    k = min(m, n)
    out = np.empty(shape)
    for idx in np.ndindex(*shape[:-2]):
        u, _ = np.linalg.qr(rng.standard_normal((m, m)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
        s = np.zeros((m, n))
        s[range(k), range(k)] = np.linspace(2.5, 1.0, k)
        out[idx] = u @ s @ v.T
    return out


def _lu_inputs(draw):
    rng = _rng(draw)
    m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return [_well_conditioned(rng, _batch(draw) + (m, n))]


def _lu_ref(a):
    """LAPACK's packed factors, one matrix at a time (SciPy's getrf)."""
    from scipy.linalg import lapack
    getrf = lapack.dgetrf if a.dtype == np.float64 else lapack.sgetrf
    out = np.empty_like(a)
    for idx in np.ndindex(*a.shape[:-2]):
        out[idx] = getrf(a[idx])[0]
    return out


def _plu_ref(a):
    from scipy.linalg import lu as slu
    m, n = a.shape[-2:]
    k = min(m, n)
    P = np.empty(a.shape[:-2] + (m, m), a.dtype)
    L = np.empty(a.shape[:-2] + (m, k), a.dtype)
    U = np.empty(a.shape[:-2] + (k, n), a.dtype)
    for idx in np.ndindex(*a.shape[:-2]):
        P[idx], L[idx], U[idx] = slu(a[idx])
    return P, L, U


def _lu_solve_inputs(draw):
    rng = _rng(draw)
    n, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    batch = _batch(draw)
    return ([_well_conditioned(rng, batch + (n, n)), rng.standard_normal(batch + (n, k))],
            {"adjoint": draw(st.booleans())})


def _lu_solve_fn(a, b, adjoint):
    LU, piv = tl.linalg.lu_factor(a)
    return tl.linalg.lu_solve(LU, piv, b, adjoint=adjoint)


def _lu_solve_ref(a, b, adjoint):
    return np.linalg.solve(np.swapaxes(a, -1, -2) if adjoint else a, b)


def _lstsq_inputs(draw):
    rng = _rng(draw)
    m, n, k = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    batch = _batch(draw)
    return [_well_conditioned(rng, batch + (m, n)), rng.standard_normal(batch + (m, k))]


def _lstsq_ref(a, b):
    out = np.empty(a.shape[:-2] + (a.shape[-1], b.shape[-1]), a.dtype)
    for idx in np.ndindex(*a.shape[:-2]):
        out[idx] = np.linalg.lstsq(a[idx], b[idx], rcond=None)[0]
    return out


def _spd_inputs(draw):
    rng = _rng(draw)
    n = draw(st.integers(1, 4))
    a = rng.standard_normal(_batch(draw) + (n, n))
    return [a @ np.swapaxes(a, -1, -2) + n * np.eye(n)]


def _ldl_inputs(draw):
    rng = _rng(draw)
    n = draw(st.integers(1, 4))
    batch = _batch(draw)
    # symmetric and indefinite: Bunch-Kaufman's 2x2 pivots get exercised
    sign = np.where(np.arange(n) % 2, -1.0, 1.0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * (sign * np.linspace(2.5, 1.0, n))) @ q.T
    return [np.broadcast_to(a, batch + (n, n)).copy(), rng.standard_normal(batch + (n, 2))]


def _ldl_fn(a, b):
    LD, piv = tl.linalg.ldl_factor(a)
    return tl.linalg.ldl_solve(LD, piv, b)


add("lu_factor", lambda a: tl.linalg.lu_factor_ex(a).LU, _lu_inputs, _lu_ref, atol=1e-6)
add("lu_pivots_to_permutation", lambda a: tuple(tl.linalg.lu(a)), _lu_inputs, _plu_ref,
    atol=1e-6)
add("triangular_solve_nocheck", _lu_solve_fn, _lu_solve_inputs, _lu_solve_ref, atol=1e-6)
add("lstsq", lambda a, b: tl.linalg.lstsq(a, b).solution, _lstsq_inputs, _lstsq_ref,
    atol=1e-6)
add("cholesky_ex", lambda a: tl.linalg.cholesky_ex((a + a.mT) * 0.5).L, _spd_inputs,
    lambda a: np.linalg.cholesky(a), atol=1e-6)
add("ldl_factor", _ldl_fn, _ldl_inputs, lambda a, b: np.linalg.solve(a, b), grad=False,
    atol=1e-6)
COVERED_ELSEWHERE["ldl_solve"] = "ldl_factor's case solves with its factors"
