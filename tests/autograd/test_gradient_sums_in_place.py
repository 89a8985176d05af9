"""The backward walk adds a tensor's gradients in place into sums it made itself: the
results equal the recorded (create_graph) walk's, which adds out of place, and no tensor a
caller or a hook can see is ever changed."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

UNARY = [lambda a: a * 1.5, lambda a: a.tanh(), lambda a: a * a, lambda a: a.exp() * 0.1,
         lambda a: a.sum(0, keepdim=True).expand(3, 4), lambda a: a.T.T]
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b]


def _program(draw):
    """A random DAG over 3 leaves where values are reused many times (up to 12 steps)."""
    steps = []
    for i in range(draw(st.integers(3, 12))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)),
                          draw(st.integers(0, 2 + i))))
        else:
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)),
                          draw(st.integers(0, 2 + i)), draw(st.integers(0, 2 + i))))
    return steps


def _run(steps, leaves):
    vals = list(leaves)
    for s in steps:
        if s[0] == "u":
            vals.append(UNARY[s[1]](vals[s[2] % len(vals)]))
        else:
            vals.append(BINARY[s[1]](vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
    return sum(v.sum() for v in vals[3:]) + vals[0].sum() * 0.0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_in_place_sums_equal_recorded_sums(data):
    steps = _program(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    base = [rng.standard_normal((3, 4)) * 0.5 for _ in range(3)]
    grads = []
    for create in (False, True):
        xs = [tl.tensor(b, requires_grad=True) for b in base]
        _run(steps, xs).backward(create_graph=create)
        grads.append([x.grad.detach().numpy() if x.grad is not None else None for x in xs])
    for a, b in zip(*grads):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_caller_gradient_and_hooked_gradients_are_never_changed():
    x = tl.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g) or None)
    z = y + y + y + y            # y's gradient is a sum of four
    out = z * 1.0
    given_g = tl.tensor(np.full((2, 3), 0.5))
    before = given_g.numpy().copy()
    out.backward(gradient=given_g)
    np.testing.assert_array_equal(given_g.numpy(), before)
    np.testing.assert_array_equal(seen[0].numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))
    kept = x.grad
    (x * 3.0 + x * 3.0 + x).sum().backward()      # accumulates into .grad, as before
    assert x.grad is kept
    np.testing.assert_array_equal(kept.numpy(), np.full((2, 3), 11.0))


def test_retained_intermediate_and_leaf_sums():
    a = tl.tensor(np.arange(4.0), requires_grad=True)
    h = a * 1.0
    h.retain_grad()
    out = (h * 2.0).sum() + (h * 3.0).sum() + (h * 4.0).sum()
    out.backward()
    np.testing.assert_array_equal(h.grad.numpy(), np.full(4, 9.0))
    np.testing.assert_array_equal(a.grad.numpy(), np.full(4, 9.0))
    ga, = tl.autograd.grad((a * a).sum() + (a * a).sum() + a.sum(), [a])
    np.testing.assert_array_equal(ga.numpy(), 4 * np.arange(4.0) + 1)
