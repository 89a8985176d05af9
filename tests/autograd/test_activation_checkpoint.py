"""tl.autograd.checkpoint: the same values and gradients as running the block normally,
through .backward(), tl.grad and create_graph, with dropout replayed; only the inputs and
parameters are kept for the backward pass."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn


def _block():
    tl.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 4))


def _run(block, x, checkpointed: bool):
    tl.manual_seed(1)                   # the dropout mask
    h = tl.autograd.checkpoint(block, x) if checkpointed else block(x)
    return (h.square() * tl.arange(4, dtype=h.dtype)).sum()


def test_same_loss_and_gradients_as_without_checkpoint():
    block = _block()
    x = tl.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32),
                  requires_grad=True)
    got = {}
    for ck in (False, True):
        for t in [x, *block.parameters()]:
            t.grad = None
        loss = _run(block, x, ck)
        loss.backward()
        got[ck] = [loss.numpy()] + [t.grad.numpy().copy() for t in [x, *block.parameters()]]
    for a, b in zip(got[False], got[True]):       # the same float32 computation, twice
        np.testing.assert_array_equal(b, a)


def test_only_inputs_and_parameters_are_kept():
    block = _block()
    x = tl.randn(3, 4, requires_grad=True)
    h = tl.autograd.checkpoint(block, x)
    # the output's node holds the input and the 4 parameters: no intermediate activation
    assert len(h._node.inputs) == 5 and h._node.inputs[0] is x


def test_tl_grad_returns_parameter_gradients_without_touching_grad():
    block = _block()
    x = tl.randn(3, 4)
    w = list(block.parameters())
    want = tl.grad(_run(block, x, False), w)
    got = tl.grad(_run(block, x, True), w)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in w)


def test_second_order_through_a_checkpoint():
    w = tl.tensor([[0.5, -0.3], [0.2, 0.8]], dtype=tl.float64, requires_grad=True)

    def f(x):
        return tl.autograd.checkpoint(lambda v: (v @ w).tanh(), x, params=[w])

    x = tl.tensor([[0.3, -0.4]], dtype=tl.float64, requires_grad=True)
    assert tl.gradcheck(lambda a: f(a).sum(), [x])
    assert tl.gradgradcheck(lambda a: f(a).sum(), [x])
    (gw,) = tl.grad(f(x).sum(), [w], create_graph=True)
    (gw2,) = tl.grad((lambda v: (v @ w).tanh())(x).sum(), [w], create_graph=True)
    np.testing.assert_allclose(gw.numpy(), gw2.numpy(), rtol=1e-12)
    (h,) = tl.grad(gw.sum(), [x])
    (h2,) = tl.grad(gw2.sum(), [x])
    np.testing.assert_allclose(h.numpy(), h2.numpy(), rtol=1e-12)


def test_undeclared_parameters_are_found_or_an_error_not_lost_gradients():
    w = tl.randn(4, 4, requires_grad=True)
    x = tl.randn(2, 4, requires_grad=True)
    want = np.broadcast_to(x.numpy().sum(0)[:, None], (4, 4))
    # closed over (a lambda, a Module in a closure, a partial's keyword): found, as PyTorch
    tl.autograd.checkpoint(lambda v: v @ w, x).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5)
    lin = tl.nn.Linear(4, 3)
    tl.autograd.checkpoint(lambda v: lin(v), x).sum().backward()
    assert lin.weight.grad is not None and lin.bias.grad.tolist() == [2.0, 2.0, 2.0]
    w.grad = None
    tl.autograd.checkpoint(lambda v, scale: (v @ w) * scale, x, scale=1.0).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5)

    class Holder:                                       # reached through an attribute: missed
        pass
    h = Holder()
    h.w = w
    y = tl.autograd.checkpoint(lambda v: v @ h.w, x)
    with pytest.raises(RuntimeError, match="pass them with"):
        y.sum().backward()
    w.grad = None
    tl.autograd.checkpoint(lambda v: v @ h.w, x, params=[w]).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5)
    with pytest.raises(TypeError, match="need gradients; pass them positionally"):
        tl.autograd.checkpoint(lambda v, m: v @ m, x, m=w)
    # a non-tensor argument is passed as it is, a Module's parameters among them found
    # (PyTorch's checkpoint(step, model, y) form; it raised "arguments must be tensors")
    np.testing.assert_allclose(tl.autograd.checkpoint(lambda v, k: v * k, x, 2).numpy(),
                               (x * 2).numpy())
    lin = tl.nn.Linear(x.shape[-1], 2)
    x.grad = None
    tl.autograd.checkpoint(lambda model, v, dt: dt * model(v).tanh(), lin, x, 0.5).sum().backward()
    gw, gx = lin.weight.grad.numpy().copy(), x.grad.numpy().copy()
    lin.zero_grad()
    x.grad = None
    (0.5 * lin(x).tanh()).sum().backward()
    np.testing.assert_allclose(gw, lin.weight.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-6)
