"""Shared helpers of the PyTorch parity tests: float64 tensors of both libraries from one
array, value comparison, and values plus gradients of sum(out * r) for one random r."""
from __future__ import annotations

import numpy as np
import torch

import tensorlib as tl


def _t(a, grad=False, dtype=np.float64):
    return tl.tensor(np.asarray(a, dtype), requires_grad=grad)


def _tt(a, grad=False, dtype=np.float64):
    return torch.tensor(np.asarray(a, dtype), requires_grad=grad)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, tl.Tensor):
        return x.numpy()
    return np.asarray(x)


def _close(got, want, rtol=1e-9, atol=1e-10):
    g, w = _np(got), _np(want)
    assert g.shape == w.shape, (g.shape, w.shape)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _grads(tl_fn, torch_fn, arrays, rtol=1e-8, atol=1e-10, seed=0):
    """Values and the gradients of sum(out * r) for one random r, tensorlib vs torch (an
    input either library leaves unused gets zeros)."""
    xs = [_t(a, True) for a in arrays]
    ys = [_tt(a, True) for a in arrays]
    out, ref = tl_fn(*xs), torch_fn(*ys)
    _close(out, ref, rtol, atol)
    r = np.random.default_rng(seed).normal(size=tuple(ref.shape))
    gs = tl.grad((out * _t(r)).sum(), xs, allow_unused=True)
    gr = torch.autograd.grad((ref * _tt(r)).sum(), ys, allow_unused=True)
    for g, w, y in zip(gs, gr, ys):
        _close(np.zeros(y.shape) if g is None else g, torch.zeros_like(y) if w is None else w,
               rtol, atol)
