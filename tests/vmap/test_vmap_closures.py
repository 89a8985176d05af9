"""Function transforms inside vmap with respect to tensors closed over from outside the vmap
(per-example gradients, MAML inner steps): compared with torch.func and a Python loop over
the examples, eager and under tl.function; no graph leaking out of nested transforms;
replace_all_batch_norm_modules_ and the BatchNorm running-statistics error under vmap."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

X0 = np.array([[1., 2.], [3., 4.]])
W0 = np.array([0.5, -1.0])


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().numpy())


def _close(a, b, tol=1e-10):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# each case: (name, body(lib, func, xi, w)) -> per-example result, w closed over
def _grad(lib, func, xi, w):
    return func.grad(lambda ww: ((xi * ww).sum()) ** 2)(w)


def _jacrev(lib, func, xi, w):
    return func.jacrev(lambda ww: (xi * ww).sin() * ww.sum())(w)


def _vjp(lib, func, xi, w):
    out, fn = func.vjp(lambda ww: (xi * ww).tanh(), w)
    return fn(lib.ones_like(out) * xi)[0]


def _hessian(lib, func, xi, w):
    return func.hessian(lambda ww: ((xi * ww).sum()) ** 3)(w)


def _jacfwd_jacrev(lib, func, xi, w):
    return func.jacfwd(func.jacrev(lambda ww: ((xi * ww).sin()).sum() * ww.sum()))(w)


def _grad_of_gradnorm(lib, func, xi, w):
    # d/dx || d/dw f(x, w) ||^2, w closed over: second order through the closure
    inner = lambda x: (func.grad(lambda ww: ((x * ww).sum()) ** 3)(w) ** 2).sum()  # noqa: E731
    return func.grad(inner)(xi)


CASES = [_grad, _jacrev, _vjp, _hessian, _jacfwd_jacrev, _grad_of_gradnorm]


def _run(lib, body, X, W):
    func = torch.func if lib is torch else tl.func
    x, w = lib.tensor(X), lib.tensor(W)
    return func.vmap(lambda xi: body(lib, func, xi, w))(x)


def _loop(body, X, W):
    w = tl.tensor(W)
    return tl.stack([body(tl, tl.func, tl.tensor(X[i]), w) for i in range(len(X))])


@pytest.mark.parametrize("body", CASES, ids=lambda f: f.__name__)
def test_closure_in_vmap_matches_torch_and_loop(body):
    got = _run(tl, body, X0, W0)
    _close(got, _run(torch, body, X0, W0))
    _close(got, _loop(body, X0, W0))
    assert not got.requires_grad


def test_report_values():
    got = _run(tl, _grad, X0, W0)
    np.testing.assert_array_equal(got.numpy(), [[-3., -6.], [-15., -20.]])
    h = _run(tl, _hessian, X0, W0)
    np.testing.assert_array_equal(h.numpy(), [[[-9., -18.], [-18., -36.]],
                                              [[-135., -180.], [-180., -240.]]])


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2 ** 31 - 1))
def test_closure_grad_random(B, n, seed):
    rs = np.random.RandomState(seed)
    X, W = rs.randn(B, n), rs.randn(n)
    for body in (_grad, _grad_of_gradnorm):
        got = _run(tl, body, X, W)
        _close(got, _run(torch, body, X, W), 1e-9)
        _close(got, _loop(body, X, W), 1e-9)


@pytest.mark.parametrize("body", [_grad, _hessian, _grad_of_gradnorm, _jacrev],
                         ids=lambda f: f.__name__)
def test_closure_in_vmap_captured(body):
    w = tl.tensor(W0)
    f = lambda x: tl.func.vmap(lambda xi: body(tl, tl.func, xi, w))(x)  # noqa: E731
    cf = tl.function(f)
    for X in (X0, 2 * X0 - 1):
        _close(cf(tl.tensor(X)), _run(torch, body, X, W0))
        _close(cf(tl.tensor(X)), f(tl.tensor(X)))


def test_closure_output_not_at_level_captured():
    # a vmapped function whose result never meets the batch (F2's KeyError)
    w = tl.tensor(W0)
    for f in (lambda x: tl.func.vmap(lambda xi: w * 2, out_dims=1)(x),
              lambda x: tl.func.vmap(lambda xi: tl.func.grad(lambda ww: (ww ** 3).sum())(w))(x)):
        e = f(tl.tensor(X0))
        _close(tl.function(f)(tl.tensor(X0)), e)
    tw = torch.tensor(W0)
    _close(tl.func.vmap(lambda xi: w * 2)(tl.tensor(X0)),
           torch.func.vmap(lambda xi: tw * 2)(torch.tensor(X0)))
    # (torch 2.13 puts an unbatched output's batch dim at 0 whatever out_dims says, or
    # fails on other shapes: compared with the stacked loop instead)
    _close(tl.func.vmap(lambda xi: w * 2, out_dims=1)(tl.tensor(X0)),
           np.stack([W0 * 2] * 2, axis=1))


def test_gradient_still_sums_outside_vmap():
    # grad(vmap(f)) with respect to the closure: the batch's sum, as torch.func
    X, W = X0, W0
    res = []
    for lib in (tl, torch):
        func = torch.func if lib is torch else tl.func
        x = lib.tensor(X)
        res.append(func.grad(lambda ww: func.vmap(lambda xi: ((xi * ww).sum()) ** 2)(x).sum())(
            lib.tensor(W)))
    _close(*res)
    w = tl.tensor(W, requires_grad=True)
    tl.func.vmap(lambda xi: ((xi * w).sum()) ** 2)(tl.tensor(X)).sum().backward()
    _close(w.grad, res[1])


def test_autograd_grad_in_vmap_wrt_outside_leaf_is_per_example():
    # torch refuses this; tensorlib gives each example's own gradient, never the sum
    w = tl.tensor(W0, requires_grad=True)
    g = tl.func.vmap(lambda xi: tl.autograd.grad(((xi * w).sum()) ** 2, w,
                                                 create_graph=True)[0])(tl.tensor(X0))
    np.testing.assert_array_equal(g.numpy(), [[-3., -6.], [-15., -20.]])
    # second order through it: d/dw sum_i |g_i|^2 = sum_i 8 (x_i.w) |x_i|^2 x_i
    (gw,) = tl.autograd.grad((g ** 2).sum(), w)
    tw = torch.tensor(W0, requires_grad=True)
    tx = torch.tensor(X0)
    ref = sum((torch.autograd.grad(((tx[i] * tw).sum()) ** 2, tw, create_graph=True)[0] ** 2)
              .sum() for i in range(2))
    _close(gw, torch.autograd.grad(ref, tw)[0])


def test_module_params_in_closure():
    rs = np.random.RandomState(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                             torch.nn.Linear(4, 2)).double()
    lm = tl.nn.Sequential(tl.nn.Linear(3, 4, dtype=tl.float64), tl.nn.Tanh(),
                          tl.nn.Linear(4, 2, dtype=tl.float64))
    lm.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    xb, yb = rs.randn(4, 3), rs.randn(4, 2)
    out = {}
    for lib, m in ((torch, tm), (tl, lm)):
        func = torch.func if lib is torch else tl.func
        params = {k: v.detach() for k, v in m.named_parameters()}
        loss = lambda p, x, y: ((func.functional_call(m, p, (x,)) - y) ** 2).sum()  # noqa
        out[lib] = func.vmap(lambda x, y: func.grad(loss)(params, x, y))(lib.tensor(xb),
                                                                          lib.tensor(yb))
        if lib is tl:
            arg = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, lib.tensor(xb),
                                                                   lib.tensor(yb))
            loop = [func.grad(loss)(params, lib.tensor(xb[i]), lib.tensor(yb[i]))
                    for i in range(4)]
    for k in out[tl]:
        _close(out[tl][k], out[torch][k])
        _close(out[tl][k], arg[k])
        _close(out[tl][k], tl.stack([g[k] for g in loop]))


def test_maml_inner_step_closure():
    # per-task post-adaptation loss, params from the enclosing scope
    rs = np.random.RandomState(1)
    Xs, Ys, W = rs.randn(3, 5, 2), rs.randn(3, 5), rs.randn(2)
    res = {}
    for lib in (tl, torch):
        func = torch.func if lib is torch else tl.func
        w = lib.tensor(W)

        def task(x, y, w=w, func=func):
            loss = lambda ww: (((x * ww).sum(-1) - y) ** 2).mean()  # noqa: E731
            w1 = w - 0.1 * func.grad(loss)(w)
            return loss(w1)
        res[lib] = func.vmap(task)(lib.tensor(Xs), lib.tensor(Ys))
        # and its meta-gradient (second order through the closure)
        res[(lib, "g")] = func.grad(lambda ww: func.vmap(lambda x, y: task(x, y, ww))(
            lib.tensor(Xs), lib.tensor(Ys)).sum())(w)
    _close(res[tl], res[torch])
    _close(res[(tl, "g")], res[(torch, "g")])


def test_no_graph_leaks_from_nested_grad():
    x = tl.tensor(np.array([1., 2., 3.]))
    w = tl.tensor(np.array([0.5, -1.0, 2.0]))
    f = lambda x, w: ((x * w).sum()) ** 2  # noqa: E731
    gg = tl.func.grad(lambda x: (tl.func.grad(f, argnums=1)(x, w) ** 2).sum())(x)
    assert not gg.requires_grad and gg.grad_fn is None
    tx, tw = torch.tensor([1., 2., 3.]).double(), torch.tensor([0.5, -1.0, 2.0]).double()
    tf = lambda x, w: ((x * w).sum()) ** 2  # noqa: E731
    ref = torch.func.grad(lambda x: (torch.func.grad(tf, argnums=1)(x, tw) ** 2).sum())(tx)
    _close(gg, ref)
    # an outer tensor that requires grad still gets a differentiable result
    wr = tl.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    g2 = tl.func.grad(lambda x: (tl.func.grad(f, argnums=1)(x, wr) ** 2).sum())(x)
    assert g2.requires_grad


def test_replace_all_batch_norm_modules_():
    m = tl.nn.Sequential(tl.nn.Conv2d(1, 4, 3), tl.nn.BatchNorm2d(4),
                         tl.nn.Sequential(tl.nn.BatchNorm2d(4, track_running_stats=False)))
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                             torch.nn.Sequential(torch.nn.BatchNorm2d(4,
                                                                      track_running_stats=False)))
    assert torch.func.replace_all_batch_norm_modules_(tm) is tm
    assert tl.func.replace_all_batch_norm_modules_(m) is m
    assert "replace_all_batch_norm_modules_" in tl.func.__all__
    for bn, tbn in ((m[1], tm[1]), (m[2][0], tm[2][0])):
        assert bn.track_running_stats is tbn.track_running_stats is False
        assert bn.running_mean is None and bn.running_var is None
        assert bn.num_batches_tracked is None
    assert sorted(dict(m.named_buffers())) == sorted(dict(tm.named_buffers())) == []
    m.load_state_dict({k: tl.tensor(v.detach().double().numpy())
                       for k, v in tm.state_dict().items()}, strict=False)
    m = m.to(tl.float64)
    tm = tm.double()
    X = np.random.RandomState(2).randn(3, 2, 1, 6, 6)
    out = []
    for lib, mod in ((tl, m), (torch, tm)):
        func = torch.func if lib is torch else tl.func
        p = {k: v.detach() for k, v in mod.named_parameters()}
        out.append(func.vmap(lambda p, x: func.functional_call(mod, p, (x,)),
                             in_dims=(None, 0))(p, lib.tensor(X)))
    _close(*out)
    with pytest.raises(TypeError, match="replace_all_batch_norm_modules_"):
        tl.func.replace_all_batch_norm_modules_(3)


def test_batch_norm_running_stats_error_under_vmap():
    m = tl.nn.Sequential(tl.nn.Conv2d(1, 4, 3), tl.nn.BatchNorm2d(4))
    p = {k: v.detach() for k, v in m.named_parameters()}
    rm = m[1].running_mean.numpy().copy()
    with pytest.raises(RuntimeError, match="Batch norm.*track_running_stats.*"
                                           "replace_all_batch_norm_modules_"):
        tl.func.vmap(lambda p, x: tl.func.functional_call(m, p, (x,)),
                     in_dims=(None, 0))(p, tl.randn(3, 2, 1, 8, 8))
    np.testing.assert_array_equal(m[1].running_mean.numpy(), rm)
    # batched running statistics (an ensemble's buffers) are fine
    models = [tl.nn.BatchNorm1d(3) for _ in range(2)]
    params, buffers = tl.func.stack_module_state(models)
    out = tl.func.vmap(lambda p, b, x: tl.func.functional_call(models[0], (p, b), (x,)),
                       in_dims=(0, 0, None))(params, buffers, tl.randn(4, 3))
    assert tuple(out.shape) == (2, 4, 3)


def test_backward_inside_vmap_is_refused_as_torch():
    torch = pytest.importorskip("torch")
    x = tl.randn(3, 2)
    w = tl.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward\(\) called inside a vmap"):
        tl.func.vmap(lambda xi: (xi * w).sum().backward())(x)
    tw = torch.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="backward"):
        torch.func.vmap(lambda xi: (xi * tw).sum().backward())(torch.randn(3, 2))
    assert w.grad is None
    (x * w).sum().backward()        # outside the transform, as usual
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().sum(0), rtol=1e-6)
