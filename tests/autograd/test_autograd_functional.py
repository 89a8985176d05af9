"""tl.autograd.functional (vjp, jvp, jacobian, hessian, hvp): analytic values, agreement
with each other and, when PyTorch is installed, with torch.autograd.functional."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

AF = tl.autograd.functional


def f_vec(x):                       # R^n -> R^n, a full (non-diagonal) Jacobian
    return (x * x.sum()).tanh()


def f_two(a, b):                    # (R^n, R^n) -> R
    return (a.sin() * b).sum() + (a * a * b).sum()


def _x(seed, n=4):
    return tl.tensor(np.random.default_rng(seed).standard_normal(n))


def test_analytic_hessian_and_jacobian():
    x = tl.tensor([1.0, 2.0, -1.0], dtype=tl.float64)
    h = AF.hessian(lambda v: (v ** 3).sum(), x)
    np.testing.assert_allclose(h.numpy(), np.diag(6 * x.numpy()))
    j = AF.jacobian(lambda v: v[:2] * v[1:], x)          # (2,) out, (3,) in
    np.testing.assert_allclose(j.numpy(), [[2.0, 1.0, 0.0], [0.0, -1.0, 2.0]])
    assert not x.requires_grad and x.grad is None         # the caller's tensor is untouched


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_products_agree_with_the_jacobian(seed):
    x = _x(seed)
    v = _x(seed + 1)
    j = AF.jacobian(f_vec, x).numpy()
    out, jv = AF.jvp(f_vec, x, v)
    out2, vj = AF.vjp(f_vec, x, v)
    np.testing.assert_allclose(out.numpy(), f_vec(x).numpy())
    np.testing.assert_allclose(out2.numpy(), out.numpy())
    np.testing.assert_allclose(jv.numpy(), j @ v.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vj.numpy(), v.numpy() @ j, rtol=1e-10, atol=1e-12)
    h = AF.hessian(lambda t: f_vec(t).sum(), x).numpy()
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)
    _, hv = AF.hvp(lambda t: f_vec(t).sum(), x, v)
    np.testing.assert_allclose(hv.numpy(), h @ v.numpy(), rtol=1e-10, atol=1e-12)


def test_several_inputs_and_create_graph():
    a, b = _x(0, 3), _x(1, 3)
    ha = AF.hessian(f_two, (a, b))
    assert len(ha) == 2 and len(ha[0]) == 2 and ha[0][1].shape == (3, 3)
    # d2/da db of sum(sin(a) b + a^2 b) is diag(cos(a) + 2a)
    np.testing.assert_allclose(ha[0][1].numpy(), np.diag(np.cos(a.numpy()) + 2 * a.numpy()),
                               rtol=1e-12)
    w = tl.tensor(a.numpy(), requires_grad=True)
    _, g = AF.vjp(lambda t: (t ** 3).sum(), w, create_graph=True)
    (gg,) = tl.grad(g.sum(), [w])                           # differentiate the result again
    np.testing.assert_allclose(gg.numpy(), 6 * a.numpy())


def test_errors_name_the_function():
    x = _x(0)
    with pytest.raises(ValueError, match="hessian: func's output must be a single-element"):
        AF.hessian(f_vec, x)
    with pytest.raises(ValueError, match="vjp: v is needed"):
        AF.vjp(f_vec, x)
    with pytest.raises(ValueError, match="jvp: v: shape"):
        AF.jvp(f_vec, x, tl.ones(2, dtype=tl.float64))
    with pytest.raises(TypeError, match="floating point"):
        AF.jacobian(f_vec, tl.arange(3))
    # an output that does not depend on the input: a zero Jacobian, not an error
    np.testing.assert_array_equal(AF.jacobian(lambda t: tl.ones(2), x).numpy(), np.zeros((2, 4)))


def test_matches_torch():
    torch = pytest.importorskip("torch")
    TAF = torch.autograd.functional
    a, b = _x(3, 3), _x(4, 3)
    ta, tb = torch.tensor(a.numpy()), torch.tensor(b.numpy())

    def t_two(p, q):
        return (p.sin() * q).sum() + (p * p * q).sum()
    for mine, theirs in zip(AF.hessian(f_two, (a, b)), TAF.hessian(t_two, (ta, tb))):
        for m, t in zip(mine, theirs):
            np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(AF.jacobian(f_vec, a).numpy(),
                               TAF.jacobian(lambda p: (p * p.sum()).tanh(), ta).numpy(),
                               rtol=1e-12, atol=1e-14)
