"""Fixes from the fifteenth session's research trial (porting research programs from PyTorch):
saved_tensors_hooks whose unpack makes new tensors, PyTorch's varargs dims on tensor methods."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _offload(L):
    """PyTorch's hooks idiom: saved tensors kept as NumPy copies, new tensors on unpack."""
    return L.autograd.graph.saved_tensors_hooks(lambda t: t.detach().numpy().copy(),
                                                lambda a: L.tensor(a))


@pytest.mark.parametrize("f", [lambda x, w: (x * x).sum(), lambda x, w: (x.exp() * x).sum(),
                               lambda x, w: (x * w).sum(), lambda x, w: (x @ w.T).tanh().sum()],
                         ids=["square", "exp-times", "two-leaves", "matmul-tanh"])
def test_unpack_hooks_making_new_tensors_keep_every_leaf_gradient(f):
    xs = np.array([[1.0, 2.0, 3.0]])
    ws = np.array([[0.5, -1.0, 2.0]])
    grads = []
    for L in (torch, tl):
        x = L.tensor(xs, requires_grad=True)
        w = L.tensor(ws, requires_grad=True)
        with _offload(L):
            y = f(x, w)
        y.backward()
        grads.append((x.grad.numpy(), w.grad.numpy() if w.grad is not None else None))
    (tx, tw), (gx, gw) = grads
    np.testing.assert_allclose(gx, tx)
    assert (tw is None) == (gw is None)
    if tw is not None:
        np.testing.assert_allclose(gw, tw)


def test_unpack_hooks_keep_a_models_parameter_gradients():
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    net = tl.nn.Sequential(tl.nn.Linear(3, 4), tl.nn.Tanh(), tl.nn.Linear(4, 1))
    net.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for L, m in ((torch, tnet), (tl, net)):
        with _offload(L):
            loss = m(L.tensor(x)).pow(2).sum()
        loss.backward()
    for (n, p), (_, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert p.grad is not None, n
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_unpack_hooks_with_create_graph_still_give_second_derivatives():
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with _offload(tl):
        y = (x * x * x).sum()
    g, = tl.autograd.grad(y, [x], create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0, 27.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0, 18.0])
