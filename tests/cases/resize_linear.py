"""Cases for resize_linear (interpolate's linear modes under capture with None dims) and
its adjoint, against PyTorch's interpolate along one axis."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tensorlib.ops import nn_resize_linear as R

from . import add, arr


def _inputs(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5)))
    return [arr(draw, shape)], {"factor": draw(st.sampled_from([0.5, 1.5, 2.0, 3.0])),
                                "align_corners": draw(st.booleans())}


def _ref(x, factor, align_corners):
    import torch
    return torch.nn.functional.interpolate(
        torch.tensor(x), scale_factor=factor, mode="linear",
        align_corners=align_corners).numpy()


def _grad_inputs(draw):
    (x,), a = _inputs(draw)
    n_out = R._out_len(x.shape[2], a["factor"])
    return [arr(draw, x.shape[:2] + (max(n_out, 1),))], dict(a, n_in=x.shape[2])


def _grad_ref(g, factor, align_corners, n_in):
    i0, i1, w = R._tables(n_in, factor, align_corners)
    out = np.zeros(g.shape[:2] + (n_in,))
    for j in range(g.shape[2]):
        out[..., i0[j]] += g[..., j] * (1 - w[j])
        out[..., i1[j]] += g[..., j] * w[j]
    return out


add("resize_linear", lambda x, factor, align_corners: R.resize_linear(x, 2, factor,
                                                                      align_corners),
    lambda draw: _filter_empty(_inputs(draw)), _ref)
add("resize_linear_grad", lambda g, factor, align_corners, n_in: R.apply(
    R.RESIZE_LINEAR_GRAD, g, axis=2, factor=factor, align_corners=align_corners, n_in=n_in),
    lambda draw: _filter_grad(_grad_inputs(draw)), _grad_ref)


def _filter_empty(got):
    (x,), a = got
    if R._out_len(x.shape[2], a["factor"]) < 1:        # floor(1 * 0.5) = 0: one more
        x = np.concatenate([x, x], axis=2)
    return [x], a


def _filter_grad(got):
    (g,), a = got
    if R._out_len(a["n_in"], a["factor"]) != g.shape[2]:
        a = dict(a, n_in=2 * a["n_in"]) if R._out_len(a["n_in"], a["factor"]) < 1 else a
        g = np.zeros(g.shape[:2] + (R._out_len(a["n_in"], a["factor"]),)) + g.mean()
    return [g], a
