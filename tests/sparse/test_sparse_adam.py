"""tl.optim.SparseAdam against torch.optim.SparseAdam with nn.Embedding(sparse=True):
only the rows a step looks up move (with their moments), eagerly and captured."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _run(steps, captured: bool):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((20, 4)).astype(np.float32)
    te = torch.nn.Embedding(20, 4, sparse=True)
    te.weight.data = torch.tensor(w)
    le = tl.nn.Embedding(20, 4, sparse=True)       # (accepted: the gradient stays dense)
    with tl.no_grad():
        le.weight[...] = w
    to = torch.optim.SparseAdam(te.parameters(), lr=0.1, betas=(0.8, 0.99))
    lo = tl.optim.SparseAdam(le.parameters(), lr=0.1, betas=(0.8, 0.99))

    def step(idx, tgt):
        lo.zero_grad()
        ((le(idx) - tgt) ** 2).sum().backward()
        lo.step()
    f = tl.function(step) if captured else step
    for _ in range(steps):
        idx = rng.integers(0, 20, 5)
        tgt = rng.standard_normal((5, 4)).astype(np.float32)
        to.zero_grad()
        ((te(torch.tensor(idx)) - torch.tensor(tgt)) ** 2).sum().backward()
        to.step()
        f(tl.tensor(idx), tl.tensor(tgt))
        np.testing.assert_allclose(le.weight.numpy(), te.weight.detach().numpy(), atol=2e-6)
    untouched = np.setdiff1d(np.arange(20), np.nonzero(lo.state[le.weight]["exp_avg"]
                                                       .numpy().any(1))[0])
    np.testing.assert_array_equal(le.weight.numpy()[untouched], w[untouched])


@pytest.mark.parametrize("captured", [False, True])
def test_sparse_adam_matches_torch(captured):
    _run(8, captured)


def test_sparse_adam_checks_its_hyperparameters():
    with pytest.raises(ValueError, match="SparseAdam: invalid betas"):
        tl.optim.SparseAdam([tl.zeros(2, requires_grad=True)], betas=(1.0, 0.9))
