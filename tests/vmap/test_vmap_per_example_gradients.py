"""Session 23a: per-example gradients through vmap (batched matmul/linear backward, a shared
weight's gradient contracted over the batch, nll_loss_grad's batching rule), against
torch.func on values and gradients, float64."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.vmap import phys as P

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


def _mlp_params(lib, rng, sizes, act=None):
    out = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        out[f"{2 * i}.weight"] = lib.tensor(rng.standard_normal((n_out, n_in)) * 0.3)
        out[f"{2 * i}.bias"] = lib.tensor(rng.standard_normal(n_out) * 0.1)
    return out


def _mlp(lib, sizes, act):
    nn = lib.nn
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh() if act == "tanh" else nn.ReLU())
    return nn.Sequential(*layers).to(lib.float64)


def _per_sample(lib, loss, act, B, unsq, seed=0):
    rng = np.random.default_rng(seed)
    sizes = (12, 9, 7, 5)
    model = _mlp(lib, sizes, act)
    params = _mlp_params(lib, rng, sizes)
    xb = lib.tensor(rng.standard_normal((B, 12)))
    yi = lib.tensor(rng.integers(0, 5, B))
    yf = lib.tensor(rng.standard_normal((B, 5)))
    F, fn = lib.nn.functional, lib.func

    def f(p, x, y):
        if unsq:
            x, y = x.unsqueeze(0), y.unsqueeze(0)
        out = fn.functional_call(model, p, (x,))
        if loss == "ce":
            return F.cross_entropy(out, y)
        if loss == "nll":
            return F.nll_loss(F.log_softmax(out, -1), y)
        return F.mse_loss(out, y)
    y = yf if loss == "mse" else yi
    return fn.vmap(fn.grad(f), in_dims=(None, 0, 0))(params, xb, y)


@pytest.mark.parametrize("loss", ["ce", "nll", "mse"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("unsq", [False, True])
def test_per_sample_grads_mlp(loss, act, unsq):
    a = _per_sample(tl, loss, act, 6, unsq)
    b = _per_sample(torch, loss, act, 6, unsq)
    assert set(a) == set(b)
    for k in a:
        assert tuple(a[k].shape) == tuple(b[k].shape)
        _close(a[k], b[k], 1e-12)


def test_per_sample_grads_match_loop():
    """The batched result equals the per-example computation (one grad per example)."""
    rng = np.random.default_rng(3)
    W = tl.tensor(rng.standard_normal((8, 6)))
    xb = tl.tensor(rng.standard_normal((5, 6)))

    def f(w, x):
        return tl.tanh(w @ x).sum()
    batched = tl.func.vmap(tl.func.grad(f), in_dims=(None, 0))(W, xb)
    for i in range(5):
        _close(batched[i], tl.func.grad(f)(W, xb[i]), 1e-12)


def _pinn(lib, mode, N=7, train=False, seed=1):
    rng = np.random.default_rng(seed)
    shapes = ((16, 2), (16,), (16, 16), (16,), (1, 16), (1,))
    W = [lib.tensor(rng.standard_normal(s) * 0.5) for s in shapes]
    if train:
        W = [w.requires_grad_(True) for w in W]
    pts = lib.tensor(rng.standard_normal((N, 2)))
    fn = lib.func

    def u(x):
        h = lib.tanh(W[0] @ x + W[1])
        h = lib.tanh(W[2] @ h + W[3])
        return (W[4] @ h + W[5]).sum()
    if mode == "hessian":
        H = fn.hessian(u)
    else:
        H = fn.jacfwd(fn.jacrev(u))
    lap = fn.vmap(lambda x: lib.diagonal(H(x)).sum())(pts)
    if not train:
        return [lap]
    (lap ** 2).mean().backward()
    return [lap] + [w.grad if w.grad is not None else lib.zeros(tuple(w.shape),
                                                                 dtype=lib.float64)
                    for w in W]


@pytest.mark.parametrize("mode", ["hessian", "jacfwd_jacrev"])
@pytest.mark.parametrize("train", [False, True])
def test_pinn_laplacian(mode, train):
    for a, b in zip(_pinn(tl, mode, train=train), _pinn(torch, mode, train=train)):
        _close(a, b, 1e-11)


def test_pinn_laplacian_matches_per_point():
    rng = np.random.default_rng(2)
    W1, W2 = tl.tensor(rng.standard_normal((10, 3))), tl.tensor(rng.standard_normal((1, 10)))
    pts = tl.tensor(rng.standard_normal((4, 3)))

    def u(x):
        return (W2 @ tl.tanh(W1 @ x)).sum()
    got = tl.func.vmap(tl.func.hessian(u))(pts)
    for i in range(4):
        _close(got[i], tl.func.hessian(u)(pts[i]), 1e-12)


def _shared_weight_grad(lib, in_dims, out_dims, chunk_size=None):
    rng = np.random.default_rng(4)
    W = lib.tensor(rng.standard_normal((9, 6)), requires_grad=True)
    x = lib.tensor(rng.standard_normal((6, 5) if in_dims == 1 else (5, 6)))

    def f(v):
        return lib.tanh(W @ v) * 2.0
    y = lib.func.vmap(f, in_dims=in_dims, out_dims=out_dims, chunk_size=chunk_size)(x)
    (y ** 2).sum().backward()
    return y, W.grad


@pytest.mark.parametrize("in_dims,out_dims,chunk", [(0, 0, None), (1, 0, None), (0, 1, None),
                                                     (1, 1, 2), (0, 0, 3)])
def test_shared_weight_gradient_in_out_dims(in_dims, out_dims, chunk):
    a = _shared_weight_grad(tl, in_dims, out_dims, chunk)
    b = _shared_weight_grad(torch, in_dims, out_dims, chunk)
    for p, q in zip(a, b):
        _close(p, q, 1e-12)


def test_outer_contracts_and_realizes():
    """The factored product: summed over the batch it is one GEMM, otherwise computed;
    both equal the materialised product."""
    rng = np.random.default_rng(5)
    u, v = rng.standard_normal((7, 3, 8, 1)), rng.standard_normal((7, 3, 1, 6))
    o = P.outer(u, v)
    assert isinstance(o, P.Outer)
    full = u * v
    _close(P.call(P.op("sum"), o, axis=(0,), keepdims=False), full.sum(0), 1e-12)
    _close(P.call(P.op("sum"), o, axis=(0, 1), keepdims=True), full.sum((0, 1), keepdims=True),
           1e-12)
    _close(P.call(P.op("sum"), o, axis=(3,), keepdims=False), full.sum(3), 1e-12)
    two = P.call(P.op("add"), o, P.outer(u * 2, v))
    _close(P.real(two), 3 * full, 1e-12)
    _close(P.real(P.call(P.op("transpose"), o, axes=(1, 0, 3, 2))), full.transpose(1, 0, 3, 2),
           1e-12)
    _close(np.asarray(o), full, 1e-12)
    assert P.outer(u[..., :2, :], v) is None          # too small to pay off


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["mean", "sum", "none"]), st.sampled_from([-100, 0, 2]),
       st.booleans(), st.integers(1, 4), st.integers(1, 4))
def test_nll_loss_grad_rule(reduction, ignore_index, weighted, B, N):
    rng = np.random.default_rng(B * 10 + N)
    x = rng.standard_normal((B, N, 5))
    t = rng.integers(0, 5, (B, N))
    w = rng.random(5) + 0.1
    res = []
    for lib in (tl, torch):
        F = lib.nn.functional
        wt = lib.tensor(w) if weighted else None

        def f(a, b):
            return F.nll_loss(F.log_softmax(a, 1), b, weight=wt, reduction=reduction,
                              ignore_index=ignore_index).sum()
        res.append(lib.func.vmap(lib.func.grad(f))(lib.tensor(x), lib.tensor(t)))
    _close(res[0], res[1], 1e-12)


def test_nll_loss_grad_rule_runs_batched():
    from tensorlib.vmap.rules import kind
    from tensorlib.ops.registry import REGISTRY
    for name in ("nll_loss_grad", "silu_grad", "sign", "hardswish_grad"):
        assert kind(REGISTRY[name]) != "fallback", name


@pytest.mark.parametrize("act", ["silu", "hardswish"])
def test_activation_grads_batched(act):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 7)) * 3
    res = []
    for lib in (tl, torch):
        fa = getattr(lib.nn.functional, act)
        res.append(lib.func.vmap(lib.func.grad(lambda v: fa(v).sum()))(lib.tensor(x)))
    _close(res[0], res[1], 1e-12)


def test_randomness_same_and_different():
    x = tl.zeros(4, 3)
    same = tl.func.vmap(lambda v: v + tl.rand(3), randomness="same")(x)
    assert np.allclose(same.numpy(), same.numpy()[0])
    diff = tl.func.vmap(lambda v: v + tl.rand(3), randomness="different")(x)
    assert not np.allclose(diff.numpy(), diff.numpy()[0])
    with pytest.raises(RuntimeError, match="randomness"):
        tl.func.vmap(lambda v: v + tl.rand(3))(x)


def test_errors():
    W = tl.tensor(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match="scalar"):
        tl.func.vmap(tl.func.grad(lambda w, x: w @ x), in_dims=(None, 0))(W, tl.ones(4, 2))
    with pytest.raises(ValueError, match="in_dims"):
        tl.func.vmap(lambda w, x: w @ x, in_dims=(None,))(W, tl.ones(4, 2))
