"""A tl.function whose outputs eager gives no history (behind detach(), or tl.grad without
create_graph) replays its graph with gradients on, instead of running the Python every call
(a capture trial); outputs that need a history still run eagerly."""
from __future__ import annotations

import warnings

import numpy as np

import tensorlib as tl

nn = tl.nn


def _calls(f, x, n=3):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = [f(x) for _ in range(n)]
    return out[-1], [str(m.message) for m in w]


def test_detached_and_gradient_outputs_replay():
    tl.manual_seed(0)
    lin = nn.Linear(8, 8)
    x = tl.randn(4, 8)
    params = list(lin.parameters())
    cases = [(lambda x: lin(x).detach(), lambda: [lin(x).detach()]),
             (lambda x: tl.grad(lin(x).tanh().sum(), params),
              lambda: list(tl.grad(lin(x).tanh().sum(), params)))]
    for fn, ref in cases:
        f = tl.function(fn)
        got, msgs = _calls(f, x)
        got = list(got) if isinstance(got, (list, tuple)) else [got]
        assert f.trace_count == 1 and not any("runs eagerly" in m for m in msgs), msgs
        for a, b in zip(got, ref()):
            assert not a.requires_grad
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)
        lin.weight.data.mul_(0.5)           # replays read the variables' current values
        got2 = f(x)
        got2 = list(got2) if isinstance(got2, (list, tuple)) else [got2]
        for a, b in zip(got2, ref()):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_outputs_with_a_history_still_run_eagerly():
    lin = nn.Linear(3, 3)
    f = tl.function(lambda x: lin(x))
    out, msgs = _calls(f, tl.randn(2, 3))
    assert out.requires_grad and any("runs eagerly" in m for m in msgs)
