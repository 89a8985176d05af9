"""Regressions from the review of session 21's changes (each failed before its fix)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.autograd.forward_ad as fwd

torch = pytest.importorskip("torch")


def test_where_with_a_broadcast_condition_keeps_the_branches_shape():
    """The select kernel takes single-valued branches only where the condition has the
    output's shape; a branch with more dims broadcasts (forward and sum's backward)."""
    c = np.random.default_rng(0).random(4096) < 0.5
    got = tl.where(tl.tensor(c), tl.tensor(1.5).broadcast_to((3, 4096)), tl.tensor(0.0))
    want = torch.where(torch.tensor(c), torch.tensor(1.5).broadcast_to((3, 4096)),
                       torch.tensor(0.0))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    a = tl.ones((3, 4096), requires_grad=True)
    tl.where(tl.tensor(c), a, 0.0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.broadcast_to(c, (3, 4096)))


class _Ident(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def jvp(ctx, tx):
        return tx * 10

    @staticmethod
    def backward(ctx, g):
        return g


class _IdentView(_Ident):
    @staticmethod
    def jvp(ctx, tx):
        return tx


@pytest.mark.parametrize("rg", [False, True])
def test_function_jvp_returning_an_input_needs_its_tangent(rg):
    """An input returned as-is whose jvp makes a new tangent raises (as PyTorch), whether or
    not the input requires grad; returning the input's tangent keeps it."""
    with fwd.dual_level():
        d = fwd.make_dual(tl.tensor([1.0, 2.0], requires_grad=rg), tl.tensor([0.5, 0.1]))
        with pytest.raises(RuntimeError, match="matching view"):
            _Ident.apply(d)
        t = fwd.unpack_dual(_IdentView.apply(d)).tangent
        np.testing.assert_allclose(t.numpy(), [0.5, 0.1])


def test_traced_mask_setitem_mismatch_names_the_shapes():
    @tl.function
    def f(x, m):
        y = x * 1.0
        y[m] = [1.0, 2.0, 3.0]
        return y
    with pytest.raises(ValueError, match=r"shape \[3\].*\[N, 2\]"):
        f(tl.ones(4, 2), tl.tensor([True, False, True, False]))


def test_complex_value_into_a_real_tensor_through_a_mask_raises():
    x = tl.zeros(3)
    with pytest.raises(RuntimeError, match="cannot be converted"):
        x[tl.tensor([True, False, True])] = tl.tensor(1j)
    xt = torch.zeros(3)
    with pytest.raises(RuntimeError):
        xt[torch.tensor([True, False, True])] = torch.tensor(1j)
