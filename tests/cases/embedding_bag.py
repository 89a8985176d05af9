"""Cases for the segment embedding_bag ops (tensorlib/ops/nn_embedding_bag.py) and the
scale_grad_by_freq lookup, on 2-d inputs (the 1-d + offsets form, which has no ONNX rule,
is tested against PyTorch in tests/nn/test_embedding_bag.py)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_embedding_bag as eb

from . import add, arr


def _inputs(draw, psw=False):
    V, D = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    idx = np.random.default_rng(draw(st.integers(0, 99))).integers(0, V, shape)
    w = arr(draw, (V, D))
    return ([idx, w, arr(draw, shape)] if psw else [idx, w]), {}


def _ref(idx, w, p=None, mode="sum"):
    rows = w[idx] * (1.0 if p is None else p[..., None])
    return {"sum": rows.sum(1), "mean": rows.mean(1), "max": rows.max(1)}[mode]


add("embedding_bag_sum", lambda i, w: F.embedding_bag(i, w, mode="mean"), _inputs,
    lambda i, w: _ref(i, w, mode="mean"), diff=(1,))
add("embedding_bag_sum", lambda i, w, p: F.embedding_bag(i, w, mode="sum", per_sample_weights=p),
    lambda d: _inputs(d, psw=True), _ref, diff=(1, 2), name="per_sample_weights")
# a random table has no ties: max is differentiable there
add("embedding_bag_max", lambda i, w: F.embedding_bag(i, w, mode="max"), _inputs,
    lambda i, w: _ref(i, w, mode="max"), diff=(1,), gradgrad=False)
# its gradient is rescaled by definition (finite differences disagree): forward only here
add("embedding_scale_grad_by_freq", lambda i, w: F.embedding(i, w, scale_grad_by_freq=True),
    _inputs, lambda i, w: w[i], diff=(1,), grad=False)


def _grad_inputs(draw):
    (idx, w), _ = _inputs(draw)
    return [arr(draw, (idx.shape[0], w.shape[1])), idx], {"V": w.shape[0]}


def _grad_ref(g, idx, V):
    out = np.zeros((V, g.shape[1]))
    np.add.at(out, idx, np.repeat(g[:, None, :], idx.shape[1], axis=1))
    return out


add("embedding_bag_grad", lambda g, i, V: tl.apply(
    eb.EMBEDDING_BAG_GRAD, g, i, num_weights=V, mode="sum", padding_idx=None, last=False,
    freq=False), _grad_inputs, _grad_ref, diff=(0,))
