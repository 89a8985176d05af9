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


@pytest.mark.parametrize("f", [lambda T: T.flip(0, 2), lambda T: T.tile(2, 1),
                               lambda T: T.squeeze(0, 1), lambda T: T.flip((0, 3)),
                               lambda T: T.tile((1, 2)), lambda T: T.squeeze(1)],
                         ids=["flip", "tile", "squeeze", "flip-tuple", "tile-tuple", "squeeze1"])
def test_methods_take_dims_as_separate_arguments(f):
    x = np.arange(8.0).reshape(2, 1, 2, 2)
    want, got = f(torch.tensor(x)).numpy(), f(tl.tensor(x)).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_to_and_module_to_take_pytorchs_keywords():
    x = tl.ones(2, 3)
    assert x.to("cpu", non_blocking=True) is x
    assert x.to(tl.float64, non_blocking=True).dtype == tl.float64
    assert x.to("cpu", tl.float64, True, False).dtype == tl.float64     # (non_blocking, copy)
    assert x.clone(memory_format=tl.contiguous_format).shape == (2, 3)
    with pytest.raises(RuntimeError, match="rank"):     # (PyTorch: "required rank 4")
        x.contiguous(memory_format=tl.channels_last)
    m = tl.nn.Linear(2, 2).to("cpu", non_blocking=True)
    m.to(memory_format=tl.channels_last)
    m.to(tl.ones(1, dtype=tl.float64))                 # a tensor's dtype (and device)
    assert m.weight.dtype == tl.float64


def test_load_state_dict_assign_keeps_the_given_objects_as_pytorch():
    for L in (torch, tl):
        m = L.nn.Linear(2, 3)
        w, b = L.nn.Parameter(L.ones(3, 2)), L.zeros(3)
        m.load_state_dict({"weight": w, "bias": b}, assign=True)
        assert m.weight is w and isinstance(m.bias, L.nn.Parameter) and m.bias.requires_grad
        bn = L.nn.BatchNorm1d(3)
        sd = dict(bn.state_dict())
        sd["running_mean"] = rm = L.ones(3)
        bn.load_state_dict(sd, assign=True)
        assert bn.running_mean is rm
    m = tl.nn.Linear(2, 3)
    m.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)}, assign=True)
    assert m.weight.dtype == tl.float64          # an array: copied in the value's dtype


@pytest.mark.parametrize("name", ["zeros_like", "new_zeros", "setitem", "index_add_",
                                  "full_like"])
def test_tensors_made_like_a_batched_one_are_batched_inside_vmap(name):
    # the research trial: out = zeros_like(x); out[...] += ... inside a per-example function
    r = np.random.default_rng(0)
    x, i = r.standard_normal((5, 4, 3)), r.integers(0, 3, (5, 2))
    fs = {
        "zeros_like": lambda L, x, i: L.zeros_like(x).add_(x),
        "new_zeros": lambda L, x, i: x.new_zeros(4, 3).add_(x),
        "setitem": lambda L, x, i: _set_row(L.zeros_like(x), x),
        "index_add_": lambda L, x, i: L.zeros_like(x).index_add_(1, i, x[:, :2]),
        "full_like": lambda L, x, i: L.full_like(x, 2.0).mul_(x),
    }
    f = fs[name]
    got = tl.func.vmap(lambda a, b: f(tl, a, b))(tl.tensor(x), tl.tensor(i))
    want = torch.func.vmap(lambda a, b: f(torch, a, b))(torch.tensor(x), torch.tensor(i))
    np.testing.assert_allclose(got.numpy(), want.numpy())


def _set_row(z, x):
    z[0] = x[1]
    return z


def test_grad_fn_name_is_also_callable_as_pytorch():
    y = tl.ones(2, requires_grad=True) * 2
    ty = torch.ones(2, requires_grad=True) * 2
    assert y.grad_fn.name == "Mul"                        # tensorlib's attribute stays
    assert y.grad_fn.name() == ty.grad_fn.name() == "MulBackward0"
