"""Double backward through the norm layers (the GAN gradient penalty): the norm's bias, which
does not influence d out / d x when nothing nonlinear follows the norm, gets None from
``grad(..., allow_unused=True)`` as in PyTorch; connected gradients match PyTorch's values."""
import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

NORMS = {
    "layer_norm": ((5, 4), lambda L: L.nn.LayerNorm(6)),
    "batch_norm1d": ((5, 4), lambda L: L.nn.BatchNorm1d(6)),
    "batch_norm2d": ((3, 2, 4, 4), lambda L: L.nn.BatchNorm2d(4)),
    "group_norm": ((3, 2, 4, 4), lambda L: L.nn.GroupNorm(2, 4)),
    "instance_norm": ((3, 2, 4, 4), lambda L: L.nn.InstanceNorm2d(4, affine=True)),
}


def _penalty_grads(L, norm, shape, act, seed=0):
    rng = np.random.default_rng(seed)
    first = L.nn.Conv2d(2, 4, 3, padding=1) if len(shape) == 4 else L.nn.Linear(4, 6)
    layers = [first, norm(L)] + ([getattr(L.nn, act)()] if act else []) + [L.nn.Flatten()]
    D = L.nn.Sequential(*layers).double()
    with L.no_grad():
        for p in D.parameters():
            p.copy_(L.tensor(rng.standard_normal(tuple(p.shape))))
    x = L.tensor(rng.standard_normal(shape)).requires_grad_(True)
    out = D(x)
    w = L.tensor(np.linspace(-1, 1, out.shape[1]))
    (g,) = L.autograd.grad((out * w).sum(), x, create_graph=True)
    gp = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return L.autograd.grad(gp, list(D.parameters()), allow_unused=True)


@pytest.mark.parametrize("act", [None, "Tanh", "LeakyReLU"])
@pytest.mark.parametrize("name", sorted(NORMS))
def test_gradient_penalty_matches_torch(name, act):
    shape, norm = NORMS[name]
    want = _penalty_grads(torch, norm, shape, act)
    got = _penalty_grads(tl, norm, shape, act)
    assert [g is None for g in got] == [g is None for g in want]
    for a, b in zip(got, want):
        if b is not None:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-9)


def test_bias_is_none_without_nonlinearity():
    got = _penalty_grads(tl, NORMS["layer_norm"][1], (5, 4), None)
    assert got[-1] is None and got[-2] is not None      # bias None, weight connected


@pytest.mark.parametrize("fn", [
    lambda x, w, b: tl.nn.functional.layer_norm(x, (4,), w, b),
    lambda x, w, b: tl.nn.functional.group_norm(x.reshape(3, 4, 1), 2, w, b),
    lambda x, w, b: tl.nn.functional.batch_norm(x, None, None, w, b, training=True),
])
def test_gradgradcheck_with_bias(fn):
    rng = np.random.default_rng(1)
    x = tl.tensor(rng.standard_normal((3, 4))).requires_grad_(True)
    w = tl.tensor(rng.standard_normal(4)).requires_grad_(True)
    b = tl.tensor(rng.standard_normal(4)).requires_grad_(True)
    assert tl.autograd.gradcheck(lambda *a: fn(*a).tanh(), (x, w, b))
    assert tl.autograd.gradgradcheck(lambda *a: fn(*a).tanh(), (x, w, b))
    assert tl.autograd.gradgradcheck(lambda *a: fn(*a) * fn(*a), (x, w, b))


def test_first_order_unchanged():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 6))
    res = []
    for L in (torch, tl):
        m = L.nn.LayerNorm(6).double()
        x = L.tensor(a).requires_grad_(True)
        (m(x) * L.tensor(a)).sum().backward()
        res.append((x.grad.numpy(), m.weight.grad.numpy(), m.bias.grad.numpy()))
    for u, v in zip(*res):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
