"""A captured training step whose forward is pinned to another device, checked against the
same step run eagerly (tests/placement/test_placement.py and
tests/placement/test_ray_workers.py)."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F


def placed_step_trains_like_eager(make_opt, pin: str, devices, run=None, steps: int = 3,
                                  pins=None):
    """Capture ``zero_grad; loss(model(x)); backward; step`` with the first two layers
    inside ``with tl.device(pin)``, place it over ``devices`` (and ``pins``), then run it
    ``steps`` times beside an eager twin: losses and parameters must agree. Returns the
    graph."""
    x, y = tl.randn(16, 20), tl.tensor(np.random.default_rng(1).integers(0, 5, 16))

    def make():
        tl.manual_seed(0)
        m = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 5))
        return m, make_opt(m.parameters())

    def step(m, o, where=None):
        o.zero_grad()
        with tl.device(where) if where else contextlib.nullcontext():
            h = m[1](m[0](x))
        loss = F.cross_entropy(m[2](h), y)
        loss.backward()
        o.step()
        return loss

    (m1, o1), (m2, o2) = make(), make()
    step(m1, o1)
    step(m2, o2)        # .grad and optimizer state exist when the step is captured
    with tl.capture(x, y) as g:
        loss = step(m2, o2, pin)
    step(m1, o1)
    g.set_outputs(loss)
    tl.graph.place(g, devices, pins=pins(g) if pins else None)
    run = run or (lambda graph, feeds: graph.run(feeds))
    for _ in range(steps):
        want = step(m1, o1).item()
        assert run(g, {0: x, 1: y}).item() == pytest.approx(want, rel=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p2.numpy(), p1.numpy(), rtol=1e-5, atol=1e-6)
    return g


def data_parallel_trains_like_eager(devices, run=None, steps: int = 3, shard: int = 8,
                                    **dp_kwargs):
    """Capture an SGD-with-momentum step on one shard, rewrite it with
    ``tl.graph.data_parallel`` over ``devices`` and train it on batches of
    ``len(devices) * shard`` beside an eager twin that takes the whole batch: averaged
    shard gradients equal the batch gradient of a mean loss. The step also returns its
    logits, which come back concatenated. Returns the data-parallel graph."""
    k = len(devices)
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((k * shard, 20)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 5, k * shard))

    def make():
        tl.manual_seed(0)
        m = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 5))
        return m, tl.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def step(m, o, xb, yb):
        o.zero_grad()
        logits = m(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        o.step()
        return loss, logits

    (m1, o1), (m2, o2) = make(), make()
    xs, ys = x[:shard], y[:shard]
    for m, o in ((m1, o1), (m2, o2)):
        step(m, o, xs, ys)      # .grad and the momentum buffers exist when captured
    with tl.capture(xs, ys) as g:
        loss, logits = step(m2, o2, xs, ys)
    g.set_outputs(loss, logits)
    step(m1, o1, xs, ys)
    dp = tl.graph.data_parallel(g, devices, **dp_kwargs)
    assert dp.inputs[0].shape == (k * shard, 20)
    run = run or (lambda graph, feeds: graph.run(feeds))
    for _ in range(steps):
        want_loss, want_logits = step(m1, o1, x, y)
        got_loss, got_logits = run(dp, {0: x, 1: y})
        assert got_loss.item() == pytest.approx(want_loss.item(), rel=1e-5)
        np.testing.assert_allclose(got_logits.numpy(), want_logits.detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p2.numpy(), p1.numpy(), rtol=1e-5, atol=1e-6)
    return dp
