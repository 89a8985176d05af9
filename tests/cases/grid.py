"""Cases for the grid-sampling ops (tensorlib/ops/nn_grid.py), with naive NumPy references
(PyTorch parity is in tests/nn/test_grid_sample.py)."""
from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_grid

from . import add, arr

_apply = tl.apply


def _grid_points(draw, sp, gsp, align):
    """A grid whose points lie 0.1-0.4 px from every integer and half-integer position (the
    kinks: taps, borders, reflection folds), inside and outside an input of sizes ``sp``."""
    nd = len(sp) + 2
    grid = np.empty(gsp + (nd - 2,))
    for d in range(nd - 2):
        n = sp[nd - 3 - d]
        u = arr(draw, grid.shape[:-1], -2.4, n + 1.4)
        u = np.floor(u * 2) / 2 + 0.1 + 0.3 * (u * 2 - np.floor(u * 2))
        grid[..., d] = (2 * u / (n - 1) - 1) if align else (2 * u + 1) / n - 1
    return grid


def _grid_case_inputs(nd, modes):
    def inputs(draw):
        sp = tuple(draw(st.integers(2, 3)) for _ in range(nd - 2))
        N = draw(st.integers(1, 2))
        gsp = (N,) + tuple(draw(st.integers(1, 2)) for _ in range(nd - 2))
        align = draw(st.booleans())
        x = arr(draw, (N, draw(st.integers(1, 2))) + sp)
        return [x, _grid_points(draw, sp, gsp, align)], {
            "mode": draw(st.sampled_from(modes)), "align_corners": align,
            "padding_mode": draw(st.sampled_from(["zeros", "border", "reflection"]))}
    return inputs


def _pad_ref(u, size, padding_mode, align_corners):
    """A position after the padding rule: clamped, or reflected (as often as needed) then
    clamped."""
    if padding_mode == "zeros":
        return u
    if padding_mode == "reflection":
        lo, hi = (0, size - 1) if align_corners else (-0.5, size - 0.5)
        if hi > lo:
            u = abs(u - lo) % (2 * (hi - lo))
            u = lo + (u if u <= hi - lo else 2 * (hi - lo) - u)
        else:
            u = 0.0
    return min(max(u, 0), size - 1)


def _keys(d):
    """Keys' cubic convolution kernel (a = -0.75) at distance d."""
    a, d = -0.75, abs(d)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a if d < 2 else 0.0


def _grid_ref(x, grid, mode, padding_mode, align_corners):
    """Point by point, tap by tap, PyTorch's documented rule: bilinear and nearest read the
    padded position; bicubic reads 4 taps around the position, each tap padded."""
    N, C, *sp = x.shape
    out = np.zeros((N, C) + grid.shape[1:-1])
    for n in range(N):
        for p in np.ndindex(*grid.shape[1:-1]):
            pos = []
            for a, size in enumerate(sp):          # spatial axis a: grid component -1 - a
                c = grid[(n, *p, len(sp) - 1 - a)]
                u = ((c + 1) / 2) * (size - 1) if align_corners else ((c + 1) * size - 1) / 2
                if mode == "bicubic":
                    f = int(np.floor(u))
                    pos.append([(int(_pad_ref(f + k, size, padding_mode, align_corners)),
                                 _keys(u - f - k)) for k in (-1, 0, 1, 2)])
                    continue
                u = _pad_ref(u, size, padding_mode, align_corners)
                if mode == "nearest":
                    pos.append([(int(np.rint(u)), 1.0)])
                else:
                    f = int(np.floor(u))
                    pos.append([(f, 1 - (u - f)), (f + 1, u - f)])
            for taps in itertools.product(*pos):
                if all(0 <= i < s for (i, _), s in zip(taps, sp)):
                    w = np.prod([t[1] for t in taps])
                    out[(n, slice(None), *p)] += w * x[(n, slice(None), *(i for i, _ in taps))]
    return out


for _nd in (4, 5):
    add("grid_sample", lambda x, g, **kw: F.grid_sample(x, g, **kw),
        _grid_case_inputs(_nd, ["bilinear", "nearest"]), _grid_ref, name=f"{_nd}d")
add("grid_sample", lambda x, g, **kw: F.grid_sample(x, g, **kw),
    _grid_case_inputs(4, ["bicubic"]), _grid_ref, name="bicubic")


def _grid_grad_inputs(with_x):
    def inputs(draw):
        (x, grid), kw = _grid_case_inputs(4, ["bilinear", "bicubic"])(draw)
        g = arr(draw, x.shape[:2] + grid.shape[1:-1])
        return ([g, x, grid] if with_x else [g, grid]), dict(kw, xs=x.shape)
    return inputs


def _input_grad(g, grid, xs, **kw):
    return _apply(nn_grid.GRID_SAMPLE_INPUT_GRAD, g, grid, input_size=tuple(xs[2:]),
                  deriv=(0, 0), **kw)


def _input_grad_ref(g, grid, xs, **kw):
    # the adjoint of sampling: dx[i] = sum over outputs of g * d(out)/d(x[i])
    dx = np.zeros(xs, grid.dtype)
    for i in np.ndindex(*xs):
        e = np.zeros(xs, grid.dtype)
        e[i] = 1.0
        dx[i] = (F.grid_sample(tl.tensor(e), tl.tensor(grid), **kw).numpy() * g).sum()
    return dx


add("grid_sample_input_grad", _input_grad, _grid_grad_inputs(False), _input_grad_ref)
def _grid_grad_ref(g, x, grid, xs, **kw):
    # sum over channels of g * d(out)/d(grid), by central differences of the reference (the
    # points lie away from the kinks), in float64
    g, x, grid = (a.astype(np.float64) for a in (g, x, grid))
    out = np.zeros(grid.shape)
    h = 1e-6
    for i in np.ndindex(*grid.shape):
        e = np.zeros(grid.shape)
        e[i] = h
        d = (_grid_ref(x, grid + e, **kw) - _grid_ref(x, grid - e, **kw)) / (2 * h)
        out[i] = (d * g).sum()
    return out


add("grid_sample_grid_grad",
    lambda g, x, grid, xs, **kw: _apply(nn_grid.GRID_SAMPLE_GRID_GRAD, g, x, grid,
                                        deriv=(0, 0), **kw),
    _grid_grad_inputs(True), _grid_grad_ref)


def _affine_inputs(draw):
    spatial = draw(st.sampled_from([(3, 4), (2, 3, 4), (1, 1)]))
    k = len(spatial)
    n = draw(st.integers(1, 2))
    return [arr(draw, (n, k, k + 1))], {"size": (n, 2) + spatial,
                                         "align_corners": draw(st.booleans())}


def _affine_ref(theta, size, align_corners):
    return np.einsum("pk,ndk->npd", nn_grid.base_grid(size[2:], align_corners, theta.dtype),
                     theta).reshape((theta.shape[0],) + size[2:] + (theta.shape[1],))


add("affine_grid", lambda t, size, align_corners: F.affine_grid(t, size, align_corners),
    _affine_inputs, _affine_ref)
