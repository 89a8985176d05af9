"""tl.vmap under graph capture (tl.function): the graph holds one copy of the function per
example; replays with new values match eager vmap, and torch.func's per-sample gradients."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_captured_vmap_replays_new_values_like_eager():
    W = tl.tensor(_rand(3, 4))

    def f(x, s):                    # x (4,), s ()
        return tl.tanh(W @ x).sum() * x + s

    @tl.function
    def g(xs, s):
        return tl.vmap(f, in_dims=(1, None), out_dims=1)(xs, s)
    for seed in range(3):           # the first call captures, the others replay
        xs, s = tl.tensor(_rand(4, 5, seed=seed)), tl.tensor(float(seed))
        got = g(xs, s)
        want = tl.vmap(f, in_dims=(1, None), out_dims=1)(xs, s)
        assert got.shape == (4, 5)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert len(g.graphs) == 1
    ops = [n.op for n in g.graphs[0].nodes]
    assert ops.count("tanh") == 1       # the batched op, recorded once (not one copy per example)


def test_captured_per_sample_gradients_match_torch_func():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((2, 4)), rng.standard_normal(2)
    model = tl.nn.Linear(4, 2).double()
    with tl.no_grad():
        model.weight[...] = w
        model.bias[...] = b
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):
        out = tl.func.functional_call(model, p, (x[None],))
        return ((tl.tanh(out) - y[None]) ** 2).sum()

    @tl.function
    def per_sample(p, x, y):
        return tl.func.vmap(tl.func.grad(loss), in_dims=(None, 0, 0))(p, x, y)

    tm = torch.nn.Linear(4, 2).double()
    tp = {"weight": torch.tensor(w), "bias": torch.tensor(b)}

    def tloss(p, x, y):
        out = torch.func.functional_call(tm, p, (x[None],))
        return ((torch.tanh(out) - y[None]) ** 2).sum()
    for seed in range(2):
        x, y = _rand(6, 4, seed=seed), _rand(6, 2, seed=seed + 10)
        got = per_sample(params, tl.tensor(x), tl.tensor(y))
        want = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(
            tp, torch.tensor(x), torch.tensor(y))
        for k in ("weight", "bias"):
            np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-10,
                                       atol=1e-12)


def test_captured_nested_vmap():
    def f(a, b):                    # scalars
        return a * b + tl.sin(a)

    @tl.function
    def outer(x, y):
        return tl.vmap(tl.vmap(f, in_dims=(None, 0)), in_dims=(0, None))(x, y)
    for seed in range(2):
        x, y = _rand(3, seed=seed), _rand(4, seed=seed + 5)
        got = outer(tl.tensor(x), tl.tensor(y)).numpy()
        np.testing.assert_allclose(got, x[:, None] * y[None] + np.sin(x)[:, None],
                                   rtol=1e-12)


def test_captured_vmap_randomness_modes():
    def noisy(x):
        return x + tl.randn(())

    with pytest.raises(RuntimeError, match="randomness error mode"):
        tl.function(lambda xs: tl.vmap(noisy)(xs))(tl.zeros(3))
    with pytest.raises(RuntimeError, match="randomness='same' is not supported under graph"):
        tl.function(lambda xs: tl.vmap(noisy, randomness="same")(xs))(tl.zeros(3))

    @tl.function
    def different(xs):
        return tl.vmap(noisy, randomness="different")(xs)
    a, b = different(tl.zeros(4)).numpy(), different(tl.zeros(4)).numpy()
    assert len(set(a.tolist())) == 4            # each example draws its own
    assert not np.array_equal(a, b)             # and each replay draws anew


def test_vmap_over_a_captured_function_runs_its_python_per_level():
    # tl.vmap(f) with f a tl.function: the batched call runs f's Python under vmap's rules
    # (it tried to trace with batched arrays and failed); f alone still captures
    f = tl.function(lambda x: x * 2 + x.sum())
    x = tl.randn(3, 5)
    got = tl.vmap(f)(x)
    np.testing.assert_allclose(got.numpy(), (x * 2 + x.sum(1, keepdims=True)).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(f(x[0]).numpy(), (x[0] * 2 + x[0].sum()).numpy(), rtol=1e-6)
    assert f.trace_count == 1
