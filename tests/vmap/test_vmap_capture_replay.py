"""vmap inside tl.function: replays follow in-place updates of mapped inputs that require grad.

Each test runs a function eagerly and captured over several calls, updating the mapped
tensor in place between calls (an optimizer step), and compares both with torch.func.vmap.
The captured graph once baked a requires-grad input's trace-time values in as a constant
wherever an op read that input alone (``w * 2``, ``w.T``, ``F.linear``'s weight).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.func import functional_call, grad, stack_module_state, vmap

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional

# ops reading the mapped weight alone (w: (4, 5) per example, x: (5,) shared)
OPS = {
    "mul": (lambda w, x: (w * 2.0).sum(-1) * x[0], lambda w, x: (w * 2.0).sum(-1) * x[0]),
    "T": (lambda w, x: w.T.sum(0) + x[:1], lambda w, x: w.T.sum(0) + x[:1]),
    "exp": (lambda w, x: w.exp().sum(-1) + x[0], lambda w, x: w.exp().sum(-1) + x[0]),
    "linear": (lambda w, x: F.linear(x, w), lambda w, x: TF.linear(x, w)),
    "permute": (lambda w, x: w.permute(1, 0).sum(1), lambda w, x: w.permute(1, 0).sum(1)),
}


def _run(fn, W0, xs, step, capture: bool):
    """Outputs of ``fn(W, x)`` over ``xs``, ``step(W, i)`` applied in place after each."""
    W = tl.tensor(W0).requires_grad_()
    f = tl.function(fn) if capture else fn
    outs = []
    for i, x in enumerate(xs):
        with tl.no_grad():
            outs.append(np.array(f(W, tl.tensor(x)).numpy()))
            step(W, i)
    return outs


def _torch_run(fn, W0, xs, step):
    W = torch.tensor(W0, requires_grad=True)
    outs = []
    for i, x in enumerate(xs):
        with torch.no_grad():
            outs.append(fn(W, torch.tensor(x)).numpy())
            step(W, i)
    return outs


def _bump(W, i):
    W.add_(0.25 * (i + 1))


def _check(eager, captured, ref):
    for k, (e, c, r) in enumerate(zip(eager, captured, ref)):
        np.testing.assert_allclose(e, r, rtol=1e-10, atol=1e-10, err_msg=f"eager, call {k}")
        np.testing.assert_allclose(c, r, rtol=1e-10, atol=1e-10, err_msg=f"captured, call {k}")


@pytest.mark.parametrize("in_dim", [0, 1])
@pytest.mark.parametrize("name", sorted(OPS))
def test_mapped_argument_follows_updates(name, in_dim):
    op, top = OPS[name]
    rng = np.random.default_rng(0)
    W0 = np.moveaxis(rng.standard_normal((3, 4, 5)), 0, in_dim).copy()
    xs = [rng.standard_normal(5) for _ in range(5)]

    def fn(W, x):
        return vmap(op, in_dims=(in_dim, None))(W, x)
    ref = _torch_run(lambda W, x: torch.func.vmap(top, in_dims=(in_dim, None))(W, x),
                     W0, xs, _bump)
    _check(_run(fn, W0, xs, _bump, False), _run(fn, W0, xs, _bump, True), ref)


@pytest.mark.parametrize("name", sorted(OPS))
def test_mapped_closure_follows_updates(name):
    op, top = OPS[name]
    rng = np.random.default_rng(1)
    W0 = rng.standard_normal((3, 4, 5))
    xs = [rng.standard_normal(5) for _ in range(4)]
    runs = []
    for capture in (False, True):
        W = tl.tensor(W0).requires_grad_()

        def fn(x, W=W):     # W closed over, not an argument of the captured function
            return vmap(lambda w: op(w, x))(W)
        f = tl.function(fn) if capture else fn
        outs = []
        for i, x in enumerate(xs):
            with tl.no_grad():
                outs.append(np.array(f(tl.tensor(x)).numpy()))
                _bump(W, i)
        runs.append(outs)
    ref = _torch_run(lambda W, x: torch.func.vmap(lambda w: top(w, x))(W), W0, xs, _bump)
    _check(*runs, ref)


def test_nested_vmap_follows_updates():
    rng = np.random.default_rng(2)
    W0 = rng.standard_normal((2, 3, 4))
    xs = [rng.standard_normal(4) for _ in range(4)]

    def inner(w, x):
        return (w * 3.0).exp().sum() + x[0]

    def fn(W, x):
        return vmap(vmap(inner, in_dims=(0, None)), in_dims=(0, None))(W, x)

    def tfn(W, x):
        return torch.func.vmap(torch.func.vmap(inner, in_dims=(0, None)), in_dims=(0, None))(W, x)

    def step(W, i):
        W.mul_(0.5)
    _check(_run(fn, W0, xs, step, False), _run(fn, W0, xs, step, True),
           _torch_run(tfn, W0, xs, step))


def test_per_example_grads_of_mapped_weights_follow_updates():
    rng = np.random.default_rng(3)
    W0 = rng.standard_normal((3, 4, 5)) * 0.3
    xs = [rng.standard_normal((3, 5)) for _ in range(4)]

    def loss(w, x):
        return ((w.T.exp() * x[:, None]) ** 2).sum()

    def fn(W, x):
        return vmap(grad(loss))(W, x)

    def tfn(W, x):
        return torch.func.vmap(torch.func.grad(loss))(W, x)

    def step(W, i):
        W.sub_(0.1 * (i + 1))
    _check(_run(fn, W0, xs, step, False), _run(fn, W0, xs, step, True),
           _torch_run(tfn, W0, xs, step))


def test_captured_backward_through_vmap_follows_updates():
    """out = vmap(x @ w.T); out.sum().backward() inside the captured function, SGD outside."""
    rng = np.random.default_rng(4)
    W0 = rng.standard_normal((2, 2, 3))
    xs = [rng.standard_normal((4, 3)) for _ in range(5)]
    got = {}
    for capture in (False, True):
        W = tl.tensor(W0).requires_grad_()

        def step(x, W=W):
            W.grad = None
            out = vmap(lambda w, xx: xx @ w.T, in_dims=(0, None))(W, x)
            out.sum().backward()
            return out.detach(), W.grad
        f = tl.function(step) if capture else step
        res = []
        for x in xs:
            out, g = f(tl.tensor(x))
            res.append((np.array(out.numpy()), np.array(g.numpy())))
            with tl.no_grad():
                W.sub_(0.1 * g)
        got[capture] = res
    Wt = torch.tensor(W0, requires_grad=True)
    for k, x in enumerate(xs):
        Wt.grad = None
        out = torch.func.vmap(lambda w, xx: xx @ w.T, in_dims=(0, None))(Wt, torch.tensor(x))
        out.sum().backward()
        for capture in (False, True):
            o, g = got[capture][k]
            np.testing.assert_allclose(o, out.detach().numpy(), rtol=1e-10, atol=1e-10,
                                       err_msg=f"capture={capture}, call {k}: output")
            np.testing.assert_allclose(g, Wt.grad.numpy(), rtol=1e-10, atol=1e-10,
                                       err_msg=f"capture={capture}, call {k}: grad")
        with torch.no_grad():
            Wt.sub_(0.1 * Wt.grad)


def _ensemble(lib, nn, stack, seed_models):
    """Linear-Tanh-Linear models (one per seed) stacked: (params, buffers, a base model)."""
    models = []
    for W1, b1, W2, b2 in seed_models:
        m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
        with lib.no_grad():
            for p, v in zip(m.parameters(), (W1, b1, W2, b2)):
                p.copy_(lib.tensor(v))
        models.append(m)
    params, buffers = stack(models)
    base = models[0]
    return params, buffers, base


def test_stacked_ensemble_training_matches_eager_and_torch():
    rng = np.random.default_rng(5)
    seeds = [(rng.standard_normal((6, 4)) * 0.5, rng.standard_normal(6) * 0.1,
              rng.standard_normal((2, 6)) * 0.5, rng.standard_normal(2) * 0.1)
             for _ in range(3)]
    xs = [(rng.standard_normal((5, 4)), rng.standard_normal((5, 2))) for _ in range(5)]

    def train(capture):
        params, buffers, base = _ensemble(tl, tl.nn, stack_module_state, seeds)
        opt = tl.optim.SGD(list(params.values()), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            out = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)),
                       in_dims=(0, 0, None))(params, buffers, x)
            loss = ((out - y) ** 2).mean()
            loss.backward()
            opt.step()
            return out.detach(), loss.detach()
        f = tl.function(step) if capture else step
        res = [tuple(np.array(t.numpy()) for t in f(tl.tensor(x), tl.tensor(y)))
               for x, y in xs]
        return res, {k: np.array(v.detach().numpy()) for k, v in params.items()}

    def train_torch():
        params, buffers, base = _ensemble(torch, torch.nn, torch.func.stack_module_state, seeds)
        base = base.to("meta")
        opt = torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9)
        res = []
        for x, y in xs:
            opt.zero_grad()
            out = torch.func.vmap(
                lambda p, b, xx: torch.func.functional_call(base, (p, b), (xx,)),
                in_dims=(0, 0, None))(params, buffers, torch.tensor(x))
            loss = ((out - torch.tensor(y)) ** 2).mean()
            loss.backward()
            opt.step()
            res.append((out.detach().numpy(), loss.detach().numpy()))
        return res, {k: v.detach().numpy() for k, v in params.items()}

    ref, ref_params = train_torch()
    for capture in (False, True):
        res, params = train(capture)
        for k, ((o, lo), (ro, rlo)) in enumerate(zip(res, ref)):
            np.testing.assert_allclose(o, ro, rtol=1e-9, atol=1e-12,
                                       err_msg=f"capture={capture}, call {k}: output")
            np.testing.assert_allclose(lo, rlo, rtol=1e-9, atol=1e-12,
                                       err_msg=f"capture={capture}, call {k}: loss")
        for name in ref_params:
            np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-9, atol=1e-12,
                                       err_msg=f"capture={capture}: {name}")


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(sorted(OPS)), st.integers(1, 4), st.lists(
    st.floats(0.1, 2.0), min_size=4, max_size=4))
def test_replays_follow_arbitrary_updates(name, B, shifts):
    op, top = OPS[name]
    rng = np.random.default_rng(B)
    W0 = rng.standard_normal((B, 4, 5))
    xs = [rng.standard_normal(5) for _ in shifts]

    def step(W, i):
        W.add_(shifts[i])

    def fn(W, x):
        return vmap(op, in_dims=(0, None))(W, x)
    _check(_run(fn, W0, xs, step, False), _run(fn, W0, xs, step, True),
           _torch_run(lambda W, x: torch.func.vmap(top, in_dims=(0, None))(W, x),
                      W0, xs, step))

