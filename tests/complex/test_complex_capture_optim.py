"""Complex parameters in captured (tl.function) optimizer steps, against eager steps and
PyTorch's eager loop; complex/real cotangent mismatches; alpha dropout of complex input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch")

_TORCH_DT = {np.complex128: torch.complex128, np.complex64: torch.complex64}

OPTIMIZERS = {
    "sgd": lambda P, p: P.SGD(p, lr=0.05),
    "sgd_momentum": lambda P, p: P.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1),
    "sgd_nesterov": lambda P, p: P.SGD(p, lr=0.05, momentum=0.5, nesterov=True),
    "sgd_maximize": lambda P, p: P.SGD(p, lr=0.05, momentum=0.3, maximize=True),
    "adam": lambda P, p: P.Adam(p, lr=0.05, weight_decay=0.05),
    "adam_maximize": lambda P, p: P.Adam(p, lr=0.05, maximize=True),
    "adamw": lambda P, p: P.AdamW(p, lr=0.05, amsgrad=True),
    "rmsprop": lambda P, p: P.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda P, p: P.Adagrad(p, lr=0.1, weight_decay=0.1, lr_decay=0.01),
}


def _data(dt, seed=0):
    rng = np.random.default_rng(seed)
    z0 = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dt)
    x = (rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4))).astype(dt)
    t = (rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))).astype(dt)
    return z0, x, t


def _tl_loop(make, dt, n, captured, seed=0):
    z0, x, t = _data(dt, seed)
    z = nn.Parameter(tl.tensor(z0))
    X, T = tl.tensor(x), tl.tensor(t)
    opt = make(tl.optim, [z])

    def step(X, T):
        opt.zero_grad()
        loss = ((X @ z.mT - T).abs() ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    f = tl.function(step) if captured else step
    losses = [float(f(X, T)) for _ in range(n)]
    if captured:
        assert f.trace_count == 1
    return z, opt, losses, f


def _torch_loop(make, dt, n, seed=0):
    z0, x, t = _data(dt, seed)
    z = torch.nn.Parameter(torch.tensor(z0))
    X, T = torch.tensor(x), torch.tensor(t)
    opt = make(torch.optim, [z])
    losses = []
    for _ in range(n):
        opt.zero_grad()
        loss = ((X @ z.mT - T).abs() ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return z, opt, losses


@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_captured_step_matches_eager_and_torch(name, dt):
    make = OPTIMIZERS[name]
    n = 5
    zc, oc, lc, _ = _tl_loop(make, dt, n, True)
    ze, oe, le, _ = _tl_loop(make, dt, n, False)
    zt, ot, lt = _torch_loop(make, dt, n)
    tol = dict(rtol=1e-12, atol=1e-13) if dt == np.complex128 else dict(rtol=2e-5, atol=2e-6)
    assert zc.dtype == dt and zc.grad.dtype == dt
    np.testing.assert_allclose(zc.detach().numpy(), ze.detach().numpy(), **tol)
    np.testing.assert_allclose(zc.grad.numpy(), ze.grad.numpy(), **tol)
    np.testing.assert_allclose(lc, le, **tol)
    np.testing.assert_allclose(zc.detach().numpy(), zt.detach().numpy(), **tol)
    np.testing.assert_allclose(lc, lt, **tol)
    sc, se, stt = oc.state[zc], oe.state[ze], ot.state[zt]
    assert set(sc) == set(se)
    for k, v in stt.items():
        if k == "step":
            assert float(sc[k]) == float(se[k]) == float(v) == n
            continue
        assert sc[k].dtype == dt, k           # complex state, as eager's and PyTorch's
        np.testing.assert_allclose(sc[k].numpy(), se[k].numpy(), **tol)
        np.testing.assert_allclose(sc[k].numpy(), v.detach().numpy(), **tol)


@settings(max_examples=8, deadline=None)
@given(lr=st.floats(1e-3, 0.2), mom=st.sampled_from([0.0, 0.9]), seed=st.integers(0, 2**16),
       adam=st.booleans())
def test_captured_step_matches_torch_property(lr, mom, seed, adam):
    if adam:
        def make(P, p):
            return P.Adam(p, lr=lr, betas=(mom or 0.8, 0.99))
    else:
        def make(P, p):
            return P.SGD(p, lr=lr / 10, momentum=mom)
    zc, _, lc, _ = _tl_loop(make, np.complex128, 3, True, seed)
    zt, _, lt = _torch_loop(make, np.complex128, 3, seed)
    np.testing.assert_allclose(zc.detach().numpy(), zt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lc, lt, rtol=1e-10)


def test_captured_complex_step_writes_through_the_real_views():
    """The update is recorded as writes into view_as_real views; the graph must write the
    complex parameter and its complex state, not a copy."""
    z, opt, _, f = _tl_loop(OPTIMIZERS["adam"], np.complex128, 2, True)
    g = f.graphs[-1]
    ops = {n.op for n in g.nodes}
    assert "view_as_real" in ops and "assign" in ops
    before = z.detach().numpy().copy()
    m = opt.state[z]["exp_avg"]
    m_obj, m_before = m, m.numpy().copy()
    z0, x, t = _data(np.complex128)
    f(tl.tensor(x), tl.tensor(t))
    assert f.trace_count == 1
    assert opt.state[z]["exp_avg"] is m_obj          # updated in place, as eager
    assert not np.allclose(z.detach().numpy(), before)
    assert not np.allclose(m_obj.numpy(), m_before)


def test_capture_block_with_complex_parameter():
    z0, x, t = _data(np.complex128)
    z = nn.Parameter(tl.tensor(z0))
    ze = nn.Parameter(tl.tensor(z0))
    opt, opte = tl.optim.SGD([z], lr=0.02, momentum=0.9), tl.optim.SGD([ze], lr=0.02,
                                                                       momentum=0.9)
    X, T = tl.tensor(x), tl.tensor(t)
    for p, o in ((ze, opte), (z, opt)):     # a first eager step makes the buffer
        o.zero_grad()
        ((X @ p.mT - T).abs() ** 2).sum().backward()
        o.step()
    with tl.capture(X, T) as g:
        opt.zero_grad()
        loss = ((X @ z.mT - T).abs() ** 2).sum()
        loss.backward()
        opt.step()
    g.set_outputs(loss)
    for _ in range(2):
        g.run({X: X, T: T})
    for _ in range(3):
        opte.zero_grad()
        ((X @ ze.mT - T).abs() ** 2).sum().backward()
        opte.step()
    np.testing.assert_allclose(z.detach().numpy(), ze.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(opt.state[z]["momentum_buffer"].numpy(),
                               opte.state[ze]["momentum_buffer"].numpy(), rtol=1e-12)


@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
def test_saved_training_graph_with_complex_parameter(tmp_path, dt):
    class M(nn.Module):
        def __init__(self, z0):
            super().__init__()
            self.w = nn.Parameter(tl.tensor(z0))

        def forward(self, x):
            return x @ self.w.mT

    z0, x, t = _data(dt)
    m = M(z0)
    lr_dt = tl.float64 if dt == np.complex128 else tl.float32
    opt = tl.optim.Adam(m.parameters(), lr=tl.tensor(0.05, dtype=lr_dt))

    @tl.function
    def step(x, t):
        opt.zero_grad()
        loss = ((m(x) - t).abs() ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    X, T = tl.tensor(x), tl.tensor(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            step(X, T)
        tl.save_graph(step, tmp_path / "cx.tlg")
    gm = tl.load_graph(tmp_path / "cx.tlg")
    sd = gm.state_dict()
    assert sd["w"].dtype == dt and sd["opt.state.w.exp_avg"].dtype == dt
    assert sd["opt.state.w.exp_avg_sq"].dtype == dt
    gm(x, t)
    step(X, T)
    tol = dict(rtol=1e-12) if dt == np.complex128 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gm["w"].numpy(), m.w.detach().numpy(), **tol)
    np.testing.assert_allclose(gm["opt.state.w.exp_avg"].numpy(),
                               opt.state[m.w]["exp_avg"].numpy(), **tol)
    np.testing.assert_allclose(gm["opt.state.w.exp_avg_sq"].numpy(),
                               opt.state[m.w]["exp_avg_sq"].numpy(), **tol)
    assert float(gm["opt.state.w.step"].item()) == 4.0


# --- cotangent dtype: complex and real do not mix, as PyTorch ------------------------------
_MISMATCH = "For complex Tensors, both grad_output and output are required to have the same"


@pytest.mark.parametrize("out_cx", [False, True])
def test_grad_outputs_complex_real_mismatch_refused(out_cx):
    x0 = np.array([1.0 + 0.5j, -2.0 + 1j]) if out_cx else np.array([1.0, -2.0])
    bad = np.ones(2) if out_cx else np.ones(2, dtype=np.complex128)
    x = tl.tensor(x0, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=f"grad: {_MISMATCH}"):
        tl.autograd.grad(y, x, tl.tensor(bad), retain_graph=True)
    with pytest.raises(RuntimeError, match=f"backward: {_MISMATCH}"):
        y.backward(tl.tensor(bad), retain_graph=True)
    _, vjp_fn = tl.func.vjp(lambda a: a * 2, tl.tensor(x0))
    with pytest.raises(RuntimeError, match=_MISMATCH):
        vjp_fn(tl.tensor(bad))
    # PyTorch refuses the same
    xt = torch.tensor(x0, requires_grad=True)
    yt = xt * 2
    with pytest.raises(RuntimeError, match=_MISMATCH):
        torch.autograd.grad(yt, xt, torch.tensor(bad), retain_graph=True)
    with pytest.raises(RuntimeError, match=_MISMATCH):
        torch.func.vjp(lambda a: a * 2, torch.tensor(x0))[1](torch.tensor(bad))
    if not out_cx:
        with pytest.raises(RuntimeError, match=f"grad: {_MISMATCH}"):
            tl.autograd.grad(y, x, [1j, 1.0], retain_graph=True)


def test_grad_outputs_matching_kinds_still_accepted():
    # complex64 output, complex128 cotangent; float64 output, float32 cotangent: as PyTorch
    z0 = np.array([1.0 + 0.5j, -2.0 + 1j], dtype=np.complex64)
    ct = np.array([0.5 - 1j, 2.0 + 0.25j])
    z = tl.tensor(z0, requires_grad=True)
    (g,) = tl.autograd.grad(z * (2 + 1j), z, tl.tensor(ct))
    zt = torch.tensor(z0, requires_grad=True)
    (gt,) = torch.autograd.grad(zt * (2 + 1j), zt, torch.tensor(ct))
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-6)
    x = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    (g,) = tl.autograd.grad(x * 3, x, tl.tensor([1.0, 2.0], dtype=tl.float32))
    np.testing.assert_array_equal(g.numpy(), [3.0, 6.0])
    out, vjp_fn = tl.func.vjp(lambda a: (a * a).sum(), tl.tensor(z0.astype(np.complex128)))
    (g,) = vjp_fn(tl.tensor(1.0 + 0j, dtype=tl.complex128))
    _, vt = torch.func.vjp(lambda a: (a * a).sum(), torch.tensor(z0.astype(np.complex128)))
    np.testing.assert_allclose(g.numpy(), vt(torch.tensor(1.0 + 0j,
                                                          dtype=torch.complex128))[0].numpy())


# --- alpha dropout of complex input ----------------------------------------------------------
@pytest.mark.parametrize("name", ["alpha_dropout", "feature_alpha_dropout"])
@pytest.mark.parametrize("dt", [np.complex64, np.complex128])
def test_alpha_dropout_complex(name, dt):
    rng = np.random.default_rng(3)
    z0 = (rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))).astype(dt)
    w = (rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))).astype(dt)
    F, TF = tl.nn.functional, torch.nn.functional
    z = tl.tensor(z0, requires_grad=True)
    zt = torch.tensor(z0, requires_grad=True)
    for y, yt in ((getattr(F, name)(z, 0.5, False), getattr(TF, name)(zt, 0.5, False)),
                  (getattr(tl, name)(z, 0.5, False), getattr(torch, name)(zt, 0.5, False))):
        assert y.dtype == dt
        np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
        (g,) = tl.autograd.grad((y * tl.tensor(w).conj()).real.sum(), z)
        (gt,) = torch.autograd.grad((yt * torch.tensor(w).conj()).real.sum(), zt)
        np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-6)
    for p in (0.0, 1.0):        # no mask drawn: PyTorch computes these in training too
        np.testing.assert_array_equal(getattr(tl, name)(z, p, True).detach().numpy(),
                                      getattr(torch, name)(zt, p, True).detach().numpy())
    with pytest.raises(NotImplementedError, match=f"{name}: complex"):
        getattr(tl, name)(z, 0.5, True)
    with pytest.raises(NotImplementedError, match=f"{name}: complex"):
        getattr(F, name)(z, 0.5, True)
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(zt, 0.5, True)
    mod = (tl.nn.AlphaDropout if name == "alpha_dropout" else tl.nn.FeatureAlphaDropout)(0.5)
    np.testing.assert_array_equal(mod.eval()(z).detach().numpy(), z0)
