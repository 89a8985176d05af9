"""tl.func transforms composed (grad/jacrev/jacfwd/hessian/vmap, up to 4 deep) against
torch.func: values, and that every result is a plain tensor (no vmap level leaks out)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.vmap.batched import BatchedArray

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(22)
_P = [_RNG.standard_normal(s) / 2 for s in [(3, 2), (3,), (1, 3), (1,)]]
_NAMES = ("grad", "jacrev", "jacfwd", "hessian", "vmap")
_ORDER = {"grad": 1, "jacrev": 1, "jacfwd": 1, "hessian": 2, "vmap": 0}


def _mlp(lib):
    ps = [lib.tensor(p) for p in _P]

    def f(z):
        h = lib.tanh(ps[0] @ z + ps[1])
        return (ps[2] @ h + ps[3])[0]
    return f


def _compose(F, f, seq):
    for name in seq:            # innermost first
        f = getattr(F, name)(f)
    return f


def _seqs():
    for d in range(1, 5):
        for s in itertools.product(_NAMES, repeat=d):
            if "grad" in s[1:]:         # grad needs a scalar: only directly on the MLP
                continue
            if sum(_ORDER[n] for n in s) > 4:
                # (derivatives of order 5+ of the MLP take seconds each; order 4 already
                # nests every transform in every position)
                continue
            yield pytest.param(s, id="-".join(reversed(s)))


@pytest.mark.parametrize("seq", list(_seqs()))
def test_composed_transforms_match_torch_func(seq):
    x = np.random.default_rng(len(seq)).uniform(-1, 1, (2,) * seq.count("vmap") + (2,))
    r = _compose(tl.func, _mlp(tl), seq)(tl.tensor(x))
    assert type(r._data) is not BatchedArray, r._data
    want = _compose(torch.func, _mlp(torch), seq)(torch.tensor(x)).numpy()
    got = r.numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert "tensor" in repr(r) and float(r.sum().item()) == pytest.approx(float(want.sum()))


def test_third_derivative_from_the_report_prints():
    F, TF = tl.func, torch.func
    x = tl.tensor([0.37, 0.5], dtype=tl.float64)
    f = lambda z: tl.tanh(z).sum()        # noqa: E731
    want = TF.jacfwd(TF.jacrev(TF.jacrev(lambda z: torch.tanh(z).sum())))(
        torch.tensor([0.37, 0.5], dtype=torch.float64)).numpy()
    for r in (F.jacfwd(F.jacrev(F.jacrev(f)))(x), F.jacfwd(F.hessian(f))(x)):
        str(r)
        np.testing.assert_allclose(r.numpy(), want, rtol=0, atol=1e-12)


def test_gradient_through_a_lift_made_by_a_later_backward():
    """grad of jacfwd(jacrev(jacrev)) w.r.t. a closure weight: the lift's vjp must sum
    exactly the level it added (PyTorch's value)."""
    w = tl.tensor(np.array([0.7, -0.4]), requires_grad=True)
    wt = torch.tensor([0.7, -0.4], dtype=torch.float64, requires_grad=True)
    x = np.array([0.3, -0.2])

    def third(lib, F, ww):
        return F.jacfwd(F.jacrev(F.jacrev(lambda z: lib.tanh(ww * z).sum())))

    r = third(tl, tl.func, w)(tl.tensor(x)).sum()
    (g,) = tl.autograd.grad(r, [w])
    rt = third(torch, torch.func, wt)(torch.tensor(x)).sum()
    (gt,) = torch.autograd.grad(rt, [wt])
    np.testing.assert_allclose(r.item(), rt.item(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=0, atol=1e-10)


def _pinn_step(N, captured, seed=0):
    """The report's torch.func-style PINN training step (grad + hessian under vmap)."""
    F = tl.func
    rng = np.random.default_rng(seed)
    ps = [tl.tensor(rng.standard_normal(s) / 6, requires_grad=True)
          for s in [(8, 2), (8,), (8, 8), (8,), (1, 8), (1,)]]

    def u1(z, ps):
        h = z
        for i in range(3):
            h = ps[2 * i] @ h + ps[2 * i + 1]
            if i < 2:
                h = tl.tanh(h)
        return h[0]
    opt = tl.optim.SGD(ps, lr=1e-2)

    def step(x):
        opt.zero_grad()
        r = F.vmap(lambda z: F.grad(u1)(z, ps)[0] - 0.01 * F.hessian(u1)(z, ps)[1, 1])(x)
        loss = (r ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    if captured:
        step = tl.function(step)
    xs = [tl.tensor(np.random.default_rng(k).uniform(-1, 1, (N, 2))) for k in range(3)]
    losses = [step(x).item() for x in xs]
    graph = step.get_graph(xs[0]) if captured else None
    return losses, [p.numpy().copy() for p in ps], graph


def test_captured_vmap_records_the_batched_ops_once():
    counts = {}
    for N in (16, 256):
        losses, params, g = _pinn_step(N, True)
        want_losses, want_params, _ = _pinn_step(N, False)
        np.testing.assert_allclose(losses, want_losses, rtol=1e-12, atol=0)
        for p, q in zip(params, want_params):
            np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)
        counts[N] = [n.op for n in g.nodes]
    # (the graph's optimizer may keep an expanded constant apart at one size: not an op)
    ops = {N: sorted(o for o in c if o != "constant") for N, c in counts.items()}
    assert ops[16] == ops[256]
    assert abs(len(counts[16]) - len(counts[256])) <= 2
    assert len(counts[256]) < 400


def test_captured_vmap_matches_torch_func_per_sample_grads():
    rng = np.random.default_rng(3)
    W, X = rng.standard_normal((3, 4)), rng.standard_normal((32, 4))
    w = tl.tensor(W)

    @tl.function
    def per_sample(x):
        return tl.func.vmap(tl.func.grad(lambda ww, xx: tl.tanh(ww @ xx).sum()),
                            in_dims=(None, 0))(w, x)
    got = [per_sample(tl.tensor(X * s)).numpy() for s in (1.0, 0.5)]
    wt = torch.tensor(W)
    for s, g in zip((1.0, 0.5), got):
        want = torch.func.vmap(torch.func.grad(lambda ww, xx: torch.tanh(ww @ xx).sum()),
                               in_dims=(None, 0))(wt, torch.tensor(X * s)).numpy()
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-12)
    assert len(per_sample.graphs) == 1
    assert [n.op for n in per_sample.graphs[0].nodes].count("tanh") == 1


def test_captured_vmap_with_an_inplace_write_falls_back_per_example():
    def f(v):
        out = v * 2.0
        out[0] = v[1]
        return out

    @tl.function
    def g(x):
        return tl.func.vmap(f)(x)
    x = tl.tensor(np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(g(x).numpy(), tl.func.vmap(f)(x).numpy())
    np.testing.assert_array_equal(g(x + 1).numpy(), tl.func.vmap(f)(x + 1).numpy())
    assert len(g.graphs) == 1
    assert [n.op for n in g.graphs[0].nodes].count("mul") == 3     # one copy per example
