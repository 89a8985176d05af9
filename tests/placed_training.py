"""A captured training step whose forward is pinned to another device, checked against the
same step run eagerly (tests/test_placement.py and tests/test_distributed.py)."""
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
