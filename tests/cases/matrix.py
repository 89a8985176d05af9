"""Cases for the matrix functions (tl.linalg): inv, solve, det, slogdet, cholesky, eigh."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops import diagonal as DG

from . import add, arr, shapes


def _stack(draw, n=None):
    """A shape (..., n, n) with up to two batch dimensions."""
    n = draw(st.integers(1, 4)) if n is None else n
    return draw(shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)) + (n, n)


def _well_conditioned(draw):
    """Entries in [-1, 1] plus n on the diagonal: diagonally dominant, so invertible with a
    condition number that keeps finite differences accurate."""
    shape = _stack(draw)
    return arr(draw, shape, -1, 1) + shape[-1] * np.eye(shape[-1])


def _square_inputs(draw):
    return [_well_conditioned(draw)]


def _solve_inputs(draw):
    a = _well_conditioned(draw)
    n = a.shape[-1]
    if draw(st.booleans()):
        return [a, arr(draw, (n,))]                        # one right-hand side vector
    if a.ndim > 2 and draw(st.booleans()):
        return [a, arr(draw, a.shape[:-1])]                # a vector per matrix (torch's)
    batch = a.shape[:-2][draw(st.integers(0, len(a.shape) - 2)):]   # broadcast batch dims
    return [a, arr(draw, batch + (n, draw(st.integers(1, 3))))]


def _spd(x):       # x x^T + I: symmetric positive definite for any x
    return x @ np.swapaxes(x, -1, -2) + np.eye(x.shape[-1])


def _sym_spread(draw):
    """Symmetric with eigenvalues kept apart (the eigenvector gradient divides by gaps)."""
    shape = _stack(draw)
    n = shape[-1]
    return [arr(draw, shape, -0.5, 0.5) + 3.0 * np.diag(np.arange(n, dtype=np.float64))]


def _eigh_ref(a):
    s = (a + np.swapaxes(a, -1, -2)) / 2
    w, v = np.linalg.eigh(s)
    return w, v * v[..., :1, :]       # sign-free: each column times its own first entry


def _eigh_fn(a):
    w, v = tl.linalg.eigh((a + a.mT) * 0.5)
    return w, v * v[..., :1, :]


add("inv", tl.linalg.inv, _square_inputs, np.linalg.inv, atol=1e-6)
def _solve_ref(a, b):
    # torch.linalg.solve's rule: B is a batch of vectors when 1-d or shaped A.shape[:-1]
    if b.ndim == 1 or b.shape == a.shape[:-1]:
        return np.linalg.solve(a, b[..., None])[..., 0]
    return np.linalg.solve(a, b)


add("solve", tl.linalg.solve, _solve_inputs, _solve_ref, atol=1e-6)
add("det", tl.linalg.det, _square_inputs, np.linalg.det, rtol=1e-4, atol=1e-6)
add("slogdet", tl.linalg.slogdet, _square_inputs, np.linalg.slogdet, atol=1e-6)
add("cholesky", lambda x: tl.linalg.cholesky(x @ x.mT + tl.eye(x.shape[-1], dtype=x.dtype,
                                                                     device=x.device)),
    lambda draw: [arr(draw, _stack(draw))], lambda x: np.linalg.cholesky(_spd(x)), atol=1e-6)
add("eigh", _eigh_fn, _sym_spread, _eigh_ref, atol=1e-6)


def _eigvalsh_op(a):
    # the values-only op itself (tl.linalg.eigvalsh of a tensor that requires grad takes
    # the full eigh); symmetrised first, as _eigh_fn's input
    from tensorlib._apply import apply
    from tensorlib.ops.matrix import EIGVALSH
    return apply(EIGVALSH, a + a.mT)


add("eigvalsh", _eigvalsh_op, _sym_spread,
    lambda a: np.linalg.eigvalsh(a + np.swapaxes(a, -1, -2)), atol=1e-6)


# --- diagonal (a view) and diagonal_embed (its backward) -------------------------------------
def _diag_inputs(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=1)))
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = arr(draw, lead + (n, m))
    axes = draw(st.sampled_from([(-2, -1), (-1, -2)] + ([(0, 2), (2, 0)] if lead else [])))
    return [x], {"offset": draw(st.integers(-3, 3)), "axis1": axes[0] % x.ndim,
                 "axis2": axes[1] % x.ndim}


add("diagonal", lambda x, **kw: tl.apply(DG.DIAGONAL, x, **kw), _diag_inputs,
    lambda x, offset, axis1, axis2: np.diagonal(x, offset, axis1, axis2))


def _embed_inputs(draw):
    (x,), kw = _diag_inputs(draw)
    g = np.diagonal(x, kw["offset"], kw["axis1"], kw["axis2"]).copy()
    return [g], dict(kw, shape=x.shape)


def _embed_ref(g, shape, offset, axis1, axis2):
    out = np.zeros(shape)
    idx = np.diagonal(np.arange(out.size).reshape(shape), offset, axis1, axis2)
    out.reshape(-1)[idx.reshape(-1)] = g.reshape(-1)
    return out


add("diagonal_embed", lambda g, **kw: tl.apply(DG.DIAGONAL_EMBED, g, **kw), _embed_inputs,
    _embed_ref)
