"""Every tl.optim optimizer against torch.optim over 20 steps (float64, default and other
hyper-parameters, eager and under tl.function); ASGD and NAdam under capture; complex
parameters' real views."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,)]
STEPS = 20

# (name, kwargs): each run eagerly and under tl.function
CONFIGS = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, foreach=True)),
    ("SGD", dict(lr=0.01, momentum=0.5, dampening=0.2, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, foreach=True, capturable=False)),
    ("Adam", dict(lr=0.01, maximize=True, decoupled_weight_decay=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True, foreach=False)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1, maximize=True, foreach=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01, capturable=False)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("NAdam", dict(lr=0.01, foreach=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, foreach=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1, maximize=True,
                     foreach=True, capturable=False)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1,
                     maximize=True, foreach=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True, foreach=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-4, 0.1), maximize=True,
                   foreach=True, capturable=False)),
    ("ASGD", dict(lr=0.01)),
    # (not foreach=True: PyTorch's foreach ASGD computes eta in float32 tensor arithmetic
    # and mu * (p - ax) also at mu == 1, ~3e-8 off its own for-loop step)
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=3, weight_decay=0.1, maximize=True,
                  foreach=False, capturable=False)),
    ("Adafactor", dict(lr=0.01)),
    ("Adafactor", dict(lr=0.01, weight_decay=0.1, maximize=True, beta2_decay=-0.5,
                       eps=(1e-20, 0.5))),
]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    tgt = [rng.standard_normal(s) for s in SHAPES]
    # positive weights: the gradient 2 c (p - t) is the same IEEE arithmetic in both
    # libraries, so any difference comes from the optimizers
    wts = [rng.uniform(0.5, 2.0, s) for s in SHAPES]
    return init, tgt, wts


def _loss(ps, tgt, wts):
    return sum((c * ((p - t) * (p - t))).sum() for p, t, c in zip(ps, tgt, wts))


def _run_tl(name, kw, captured, dtype=np.float64, steps=STEPS, seed=0):
    init, tgt, wts = _data(seed)
    ps = [nn.Parameter(tl.tensor(a.astype(dtype))) for a in init]
    T = [tl.tensor(t.astype(dtype)) for t in tgt]
    C = [tl.tensor(c.astype(dtype)) for c in wts]
    opt = getattr(tl.optim, name)(ps, **kw)

    def step(T, C):
        opt.zero_grad()
        loss = _loss(ps, T, C)
        loss.backward()
        opt.step()
        return loss

    f = tl.function(step) if captured else step
    traj = []
    for _ in range(steps):
        f(T, C)
        traj.append([p.detach().numpy().copy() for p in ps])
    if captured:
        assert f.trace_count == 1, f"{name}: retraced ({f.trace_count} traces)"
    return ps, opt, traj


def _run_torch(name, kw, dtype=torch.float64, steps=STEPS, seed=0):
    init, tgt, wts = _data(seed)
    ps = [torch.nn.Parameter(torch.tensor(a).to(dtype)) for a in init]
    T = [torch.tensor(t).to(dtype) for t in tgt]
    C = [torch.tensor(c).to(dtype) for c in wts]
    opt = getattr(torch.optim, name)(ps, **kw)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(ps, T, C).backward()
        opt.step()
        traj.append([p.detach().numpy().copy() for p in ps])
    return ps, opt, traj


def _assert_traj(ours, theirs, tol):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=tol, atol=tol, err_msg=f"step {i + 1}")


def _assert_state(o_opt, o_ps, t_opt, t_ps, tol):
    for p, q in zip(o_ps, t_ps):
        so, sq = o_opt.state[p], t_opt.state[q]
        assert set(so) == set(sq)
        for k, v in sq.items():
            if isinstance(v, torch.Tensor):
                np.testing.assert_allclose(np.asarray(so[k].numpy(), np.float64),
                                           v.double().numpy(), rtol=tol, atol=tol,
                                           err_msg=k)


@pytest.mark.parametrize("captured", [False, True], ids=["eager", "captured"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_matches_torch_float64(name, kw, captured):
    ps, opt, ours = _run_tl(name, kw, captured)
    tps, topt, theirs = _run_torch(name, kw)
    _assert_traj(ours, theirs, 1e-12)
    _assert_state(opt, ps, topt, tps, 1e-12)


# --- ASGD and Adafactor under capture ---------------------------------------------------

@pytest.mark.parametrize("name,kw", [
    ("ASGD", dict(lr=0.05)), ("ASGD", dict(lr=0.05, t0=2, weight_decay=0.1)),
    ("ASGD", dict(lr=0.1, lambd=0.1, alpha=0.5, t0=0, maximize=True)),
    ("Adafactor", dict(lr=0.05, weight_decay=0.1))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_captured_equals_eager(name, kw, dtype):
    pc, oc, tc = _run_tl(name, kw, True, dtype, steps=5)
    pe, oe, te = _run_tl(name, kw, False, dtype, steps=5)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    _assert_traj(tc, te, tol)
    for p, q in zip(pc, pe):
        sc, se = oc.state[p], oe.state[q]
        assert set(sc) == set(se)
        for k in se:
            assert sc[k].dtype == se[k].dtype, k
            np.testing.assert_allclose(sc[k].numpy(), se[k].numpy(), rtol=tol, atol=tol)
        assert float(sc["step"]) == 5


def test_asgd_captured_with_tensor_lr_follows_the_schedule():
    """A tensor lr changed between calls is read by the replay, not frozen (no retrace)."""
    init, tgt, wts = _data()
    outs = []
    for captured in (True, False):
        ps = [nn.Parameter(tl.tensor(a)) for a in init]
        T, C = [tl.tensor(t) for t in tgt], [tl.tensor(c) for c in wts]
        lr = tl.tensor(0.05, dtype=tl.float64)
        opt = tl.optim.ASGD(ps, lr=lr, t0=1)

        def step(T, C):
            opt.zero_grad()
            _loss(ps, T, C).backward()
            opt.step()

        f = tl.function(step) if captured else step
        for i in range(4):
            f(T, C)
            with tl.no_grad():
                lr.fill_(0.05 / (i + 2))
        if captured:
            assert f.trace_count == 1
        outs.append([p.detach().numpy() for p in ps])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad,match", [(dict(weight_decay=-0.1), "ASGD: invalid weight_decay"),
                                       (dict(lr=-1.0), "ASGD: invalid learning rate")])
def test_asgd_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        tl.optim.ASGD([nn.Parameter(tl.zeros(2))], **bad)


# --- NAdam: PyTorch's arithmetic and state dtypes -----------------------------------------

NADAM = [dict(lr=0.01), dict(lr=0.01, momentum_decay=0.02),
         dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
         dict(lr=0.01, weight_decay=0.1, momentum_decay=0.0, maximize=True)]


@pytest.mark.parametrize("captured", [False, True], ids=["eager", "captured"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kw", NADAM)
def test_nadam_matches_torch_exactly(kw, dtype, captured):
    ps, opt, ours = _run_tl("NAdam", kw, captured, np.dtype(dtype))
    tps, topt, theirs = _run_torch("NAdam", kw, getattr(torch, dtype))
    tol = 1e-13 if dtype == "float64" else 1e-6
    _assert_traj(ours, theirs, tol)
    _assert_state(opt, ps, topt, tps, tol)
    for p, q in zip(ps, tps):
        for k, v in topt.state[q].items():
            if k != "step":     # (tensorlib counts in float64: the same integers)
                # PyTorch's: mu_product in its scalar dtype (float32), whatever the param's
                assert opt.state[p][k].dtype.name == str(v.dtype).removeprefix("torch."), k


def test_nadam_state_dtype_follows_default_dtype():
    old = tl.get_default_dtype()
    tl.set_default_dtype(tl.float64)
    try:
        p = nn.Parameter(tl.ones(3))
        opt = tl.optim.NAdam([p])
        p.grad = tl.ones(3)
        opt.step()
        assert opt.state[p]["mu_product"].dtype == tl.float64
    finally:
        tl.set_default_dtype(old)


@settings(max_examples=6, deadline=None)
@given(lr=st.floats(1e-3, 0.1), b1=st.floats(0.5, 0.95), md=st.floats(0.0, 0.05),
       seed=st.integers(0, 2**16))
def test_nadam_property(lr, b1, md, seed):
    kw = dict(lr=lr, betas=(b1, 0.99), momentum_decay=md)
    _, _, ours = _run_tl("NAdam", kw, False, steps=8, seed=seed)
    _, _, theirs = _run_torch("NAdam", kw, steps=8, seed=seed)
    _assert_traj(ours, theirs, 1e-13)


def test_nadam_errors():
    with pytest.raises(ValueError, match="NAdam: invalid momentum_decay"):
        tl.optim.NAdam([nn.Parameter(tl.zeros(2))], momentum_decay=-1.0)


# --- complex parameters: the real views are view_as_real's, written back in place ----------

@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
@pytest.mark.parametrize("sl", [np.s_[...], np.s_[:, ::2], np.s_[1]])
def test_real_view_matches_view_as_real(dt, sl):
    from tensorlib.optim.optimizer import _as_complex_array, _real_view
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dt)
    t = tl.tensor(a)[sl]
    v, made = _real_view(t)
    np.testing.assert_array_equal(v.numpy(), torch.view_as_real(torch.tensor(a[sl])).numpy())
    assert np.shares_memory(made, t._data)        # a view, as PyTorch's
    assert v._version is t._version
    back = _as_complex_array(made * 2)            # a copy of strided values
    np.testing.assert_array_equal(back, 2 * a[sl])
    assert back.dtype == dt


@pytest.mark.parametrize("captured", [False, True], ids=["eager", "captured"])
@pytest.mark.parametrize("name,kw", [("ASGD", dict(lr=0.05, t0=1)),
                                     ("NAdam", dict(lr=0.05, momentum_decay=0.01)),
                                     ("Adam", dict(lr=0.05, amsgrad=True))])
def test_complex_parameter_matches_torch(name, kw, captured):
    rng = np.random.default_rng(2)
    z0 = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    t0 = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    z, T = nn.Parameter(tl.tensor(z0)), tl.tensor(t0)
    opt = getattr(tl.optim, name)([z], **kw)

    def step(T):
        opt.zero_grad()
        ((z - T).abs() ** 2).sum().backward()
        opt.step()

    f = tl.function(step) if captured else step
    for _ in range(6):
        f(T)
    tz, tT = torch.nn.Parameter(torch.tensor(z0)), torch.tensor(t0)
    topt = getattr(torch.optim, name)([tz], **kw)
    for _ in range(6):
        topt.zero_grad()
        ((tz - tT).abs() ** 2).sum().backward()
        topt.step()
    np.testing.assert_allclose(z.detach().numpy(), tz.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    for k, v in topt.state[tz].items():
        if v.dim():
            assert opt.state[z][k].dtype == np.complex128, k      # stays complex
            np.testing.assert_allclose(opt.state[z][k].numpy(), v.numpy(), rtol=1e-12,
                                       atol=1e-12)
