"""linalg.pinv against torch.linalg.pinv: atol and rtol (numbers or batch tensors), empty
matrices staying on the graph, gradients."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kw", [{}, {"atol": 0.6}, {"atol": 0.6, "rtol": 0.1}, {"rtol": 0.2},
                                {"atol": 0.0}, {"atol": [0.1, 0.5]}, {"rtol": [0.3, 0.05]}])
def test_pinv_tolerances_match_torch(kw):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 4, 3)) @ np.diag([3.0, 0.9, 0.5])
    tkw = {k: torch.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    lkw = {k: tl.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    want = torch.linalg.pinv(torch.tensor(A), **tkw).numpy()
    np.testing.assert_allclose(tl.linalg.pinv(tl.tensor(A), **lkw).numpy(), want, rtol=1e-10,
                               atol=1e-12)


def test_pinv_gradient_matches_torch():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 5, 4))
    w = rng.standard_normal((3, 4, 5))
    a = tl.tensor(A, requires_grad=True)
    (tl.linalg.pinv(a) * tl.tensor(w)).sum().backward()
    t = torch.tensor(A, requires_grad=True)
    (torch.linalg.pinv(t) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (3, 0), (0, 2)])
def test_pinv_of_empty_matrices_keeps_the_graph(shape):
    y = tl.zeros(*shape, dtype=tl.float64, requires_grad=True)
    out = tl.linalg.pinv(y)
    assert tuple(out.shape) == tuple(torch.linalg.pinv(torch.zeros(*shape)).shape)
    out.sum().backward()
    assert y.grad is not None and tuple(y.grad.shape) == shape


def test_pinv_rejects_vectors():
    with pytest.raises(ValueError, match="linalg.pinv"):
        tl.linalg.pinv(tl.ones(3))
