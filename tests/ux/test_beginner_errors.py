"""Fixes from the fifteenth session's teaching trial (beginner mistakes and their errors)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def test_bce_refuses_targets_outside_0_1_as_pytorch():
    for L in (torch, tl):
        with pytest.raises((RuntimeError, ValueError), match="target"):
            L.nn.functional.binary_cross_entropy(L.tensor([0.3, 0.6]), L.tensor([2.0, -1.0]))
    loss = tl.nn.functional.binary_cross_entropy(tl.tensor([0.3, 0.6]), tl.tensor([0.0, 1.0]))
    assert loss.item() > 0


def test_softmax_without_dim_warns_where_pytorchs_implicit_choice_differs():
    x = tl.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    with pytest.warns(UserWarning, match="no dim given"):
        y = tl.nn.functional.softmax(x)
    np.testing.assert_allclose(y.sum(-1).numpy(), 1.0)          # the last dim, as documented
    with pytest.warns(UserWarning, match="PyTorch's implicit choice"):
        tl.nn.Softmax()(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.nn.functional.softmax(tl.ones(2, 3))          # 1-d and 2-d: the same dim as PyTorch
        tl.nn.functional.log_softmax(x, dim=1)


def test_mistakes_are_refused_where_they_are_made():
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        tl.nn.Conv2d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(TypeError, match=r"nn.CrossEntropyLoss\(\)\(logits, target\)"):
        tl.nn.CrossEntropyLoss(tl.randn(4, 3), tl.tensor([0, 1, 2, 0]))
    assert tl.nn.CrossEntropyLoss(tl.ones(3)).weight.shape == (3,)


def test_sgd_default_lr_and_dim_errors_as_pytorch():
    p = tl.nn.Parameter(tl.ones(2))
    assert tl.optim.SGD([p]).defaults["lr"] == torch.optim.SGD(
        [torch.nn.Parameter(torch.ones(2))]).defaults["lr"] == 1e-3
    for L in (torch, tl):
        with pytest.raises(IndexError):
            L.ones(2, 3).sum(5)
    with pytest.raises(ValueError):            # still a ValueError for NumPy-style code
        tl.ones(2, 3).sum(5)


@pytest.mark.parametrize("data,where", [([[1, 2], [3]], "length 2 at dim 1 (got 1 at index [1])"),
                                        ([[1, 2], 3], "at dim 1 (got a number at index [1])"),
                                        ([[[1, 2], [3, 4]], [[1, 2], [3]]],
                                         "length 2 at dim 2 (got 1 at index [1, 1])")])
def test_a_ragged_list_says_where_it_is_ragged(data, where):
    with pytest.raises(ValueError, match=r"ragged") as e:
        tl.tensor(data)
    assert where in str(e.value)
    with pytest.raises((ValueError, TypeError)):       # PyTorch refuses them too
        torch.tensor(data)
