"""Cases for the ops backed by tensorlib/_scan_kernels.pyx: ``cum_extreme`` (cummax/cummin
values and indices; its gradient is scatter_add's case), ``nansum``, ``nanmean``,
``mode_indices``, ``cdist_l1`` and its gradient ``cdist_l1_grad``."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl

from . import add, arr, shapes


def _axis(draw, nd):
    return draw(st.integers(-max(nd, 1), max(nd, 1) - 1))


def _seeded(draw):
    return np.random.default_rng(draw(st.integers(0, 2**31 - 1)))


# --- cum_extreme -----------------------------------------------------------------------------
def _cum(x, dim, mode):
    return (tl.cummax if mode == "max" else tl.cummin)(x, dim)


def _cum_ref(x, dim, mode):
    """Values and indices by PyTorch's rule, one element at a time."""
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    xl = np.moveaxis(x, dim, -1)
    vals, idx = np.empty_like(xl), np.zeros(xl.shape, np.int64)
    for row in np.ndindex(xl.shape[:-1]):
        best, bi = None, 0
        for j, v in enumerate(xl[row]):
            if best is None or np.isnan(v) or (not np.isnan(best) and (
                    v >= best if mode == "max" else v <= best)):
                best, bi = v, j
            vals[row + (j,)], idx[row + (j,)] = best, bi
    return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim)


def _cum_ties(draw):
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=6))
    rng = _seeded(draw)
    x = rng.integers(0, 3, shape).astype(np.float64)
    if draw(st.booleans()) and x.size:
        x[rng.random(shape) < 0.2] = np.nan
    return [x], {"dim": _axis(draw, len(shape)), "mode": draw(st.sampled_from(["max", "min"]))}


def _cum_distinct(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=6))
    rng = _seeded(draw)
    n = int(np.prod(shape))
    x = (rng.permutation(n) * 0.5 + rng.uniform(-0.1, 0.1, n)).reshape(shape)
    return [x], {"dim": _axis(draw, len(shape)), "mode": draw(st.sampled_from(["max", "min"]))}


add("cum_extreme", lambda x, dim, mode: tuple(_cum(x, dim, mode)), _cum_ties, _cum_ref,
    grad=False, name="ties")
add("cum_extreme", lambda x, dim, mode: _cum(x, dim, mode).values, _cum_distinct,
    lambda x, dim, mode: _cum_ref(x, dim, mode)[0], name="values")


# --- nansum / nanmean ------------------------------------------------------------------------
def _nan_inputs(draw):
    """Some NaNs, never a whole reduced slice of them (a NaN mean has no finite difference;
    all-NaN slices are tested in tests/kernels/test_scan_kernels.py)."""
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=5))
    x = arr(draw, shape)
    nd = len(shape)
    dim = draw(st.one_of(st.none(), st.integers(-max(nd, 1), max(nd, 1) - 1),
                         st.lists(st.integers(0, max(nd - 1, 0)), min_size=1, max_size=nd,
                                  unique=True).map(tuple) if nd else st.none()))
    if x.size and nd:
        finite = x.copy()
        x[_seeded(draw).random(shape) < 0.3] = np.nan
        axes = range(nd) if dim is None else [d % nd for d in np.atleast_1d(dim)]
        corner = tuple(0 if a in axes else slice(None) for a in range(nd))
        x[corner] = finite[corner]          # each reduced slice keeps one number
    return [x], {"dim": dim, "keepdim": draw(st.booleans())}


def _np_axis(x, dim):
    return None if x.ndim == 0 else dim


def _nansum_ref(x, dim, keepdim):
    return np.asarray(np.nansum(x, axis=_np_axis(x, dim), keepdims=keepdim), x.dtype)


def _nanmean_ref(x, dim, keepdim):
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmean(x, axis=_np_axis(x, dim), keepdims=keepdim), x.dtype)


add("nansum", lambda x, dim, keepdim: tl.nansum(x, dim, keepdim), _nan_inputs, _nansum_ref)
add("nanmean", lambda x, dim, keepdim: tl.nanmean(x, dim, keepdim), _nan_inputs,
    _nanmean_ref)


# --- mode ------------------------------------------------------------------------------------
def _mode_ref(x, dim):
    """The smallest of the most frequent values and its last index; NaNs count as one value,
    larger than every number, and a NaN mode gives the first NaN's index (scipy.stats.mode)."""
    src = x.reshape(1) if x.ndim == 0 else x
    d = dim % src.ndim
    xl = np.moveaxis(src, d, -1)
    vals, idx = np.empty(xl.shape[:-1], x.dtype), np.empty(xl.shape[:-1], np.int64)
    for row in np.ndindex(xl.shape[:-1]):
        r = xl[row]
        nan = np.isnan(r) if r.dtype.kind == "f" else np.zeros(r.shape, bool)
        finite = r[~nan]
        u, c = np.unique(finite, return_counts=True)
        if nan.sum() > (c.max() if c.size else 0):
            vals[row], idx[row] = r[np.flatnonzero(nan)[0]], np.flatnonzero(nan)[0]
            continue
        v = u[np.argmax(c)]              # the first of the most frequent: the smallest
        vals[row], idx[row] = v, np.flatnonzero(r == v)[-1]
    if x.ndim == 0:
        return vals.reshape(()), idx.reshape(())
    return vals, idx


def _mode_ties(draw):
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=6))
    x = _seeded(draw).integers(0, 3, shape).astype(np.float64)
    return [x], {"dim": _axis(draw, len(shape))}


def _mode_distinct(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    rng = _seeded(draw)
    n = int(np.prod(shape))
    return [(rng.permutation(n) * 0.5).reshape(shape)], {"dim": _axis(draw, len(shape))}


add("mode_indices", lambda x, dim: tuple(tl.mode(x, dim)), _mode_ties, _mode_ref, grad=False,
    name="ties")
# distinct values: the mode is the smallest; the gradient goes to it
add("mode_indices", lambda x, dim: tl.mode(x, dim).values, _mode_distinct,
    lambda x, dim: _mode_ref(x, dim)[0], name="values")


# --- cdist p = 1 -----------------------------------------------------------------------------
def _l1_inputs(draw):
    batch = draw(shapes(min_dims=0, max_dims=1, max_side=3))
    p, r, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = _seeded(draw)
    # coordinates on a 0.5 grid, x2 shifted by 0.25: no difference within 0.1 of the kink
    a = rng.integers(-4, 4, batch + (p, m)) * 0.5
    b = rng.integers(-4, 4, batch + (r, m)) * 0.5 + 0.25
    return [a, b]


def _l1_ref(a, b):
    return np.abs(a[..., :, None, :] - b[..., None, :, :]).sum(-1)


add("cdist_l1", lambda a, b: tl.cdist(a, b, p=1), _l1_inputs, _l1_ref)


def _l1_grad_inputs(draw):
    a, b = _l1_inputs(draw)
    return [arr(draw, a.shape[:-1] + (b.shape[-2],)), a, b]


def _l1_grad_ref(g, a, b):
    s = np.sign(a[..., :, None, :] - b[..., None, :, :]) * g[..., None]
    return s.sum(-2), -s.sum(-3)


def _l1_grad(g, a, b):
    from tensorlib._apply import apply
    from tensorlib.ops.pairwise import CDIST_L1_GRAD
    return apply(CDIST_L1_GRAD, g, a, b)


add("cdist_l1_grad", _l1_grad, _l1_grad_inputs, _l1_grad_ref, diff=(0,))


# --- cdist p = 2 by matrix products (the cdist_euclid op) ----------------------------------
def _euclid_op(a, b):
    from tensorlib._apply import apply
    from tensorlib.ops.pairwise import CDIST_EUCLID
    return apply(CDIST_EUCLID, a, b)


def _euclid_inputs(draw):
    a, b = _l1_inputs(draw)     # a and b never meet (b is shifted by 0.25): distances > 0
    return [a, b]


add("cdist_euclid", _euclid_op, _euclid_inputs,
    lambda a, b: np.sqrt(((a[..., :, None, :] - b[..., None, :, :]) ** 2).sum(-1)),
    atol=1e-6)


# --- pdist p = 2 by matrix products (the pdist_euclid op and its gradient) -------------------
def _pd_inputs(draw):
    n, m = draw(st.integers(2, 5)), draw(st.integers(1, 4))
    rng = _seeded(draw)
    # distinct rows on a grid plus a per-row shift: distances > 0, away from the kink at 0
    x = rng.integers(-4, 4, (n, m)) * 0.5 + np.arange(n)[:, None] * 0.125
    return [x]


def _pd_ref(x):
    i, j = np.triu_indices(x.shape[0], 1)
    return np.sqrt(((x[i] - x[j]) ** 2).sum(-1))


def _pd_op(x):
    from tensorlib.ops.pairwise import pdist_euclid
    return pdist_euclid(x)


add("pdist_euclid", _pd_op, _pd_inputs, _pd_ref, atol=1e-6)


def _pd_grad_inputs(draw):
    (x,) = _pd_inputs(draw)
    n = x.shape[0]
    return [arr(draw, (n * (n - 1) // 2,)), x, _pd_ref(x)]


def _pd_grad_ref(g, x, d):
    i, j = np.triu_indices(x.shape[0], 1)
    w = (g / d)[:, None] * (x[i] - x[j])
    out = np.zeros_like(x)
    np.add.at(out, i, w)
    np.add.at(out, j, -w)
    return out


def _pd_grad(g, x, d):
    from tensorlib._apply import apply
    from tensorlib.ops.pairwise import PDIST_EUCLID_GRAD
    return apply(PDIST_EUCLID_GRAD, g, x, d)


add("pdist_euclid_grad", _pd_grad, _pd_grad_inputs, _pd_grad_ref, diff=(0, 1, 2), atol=1e-6)
