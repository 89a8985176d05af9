"""Rprop, ASGD and Adafactor against torch.optim: 20-step trajectories in float64."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import optim

torch = pytest.importorskip("torch")

# a matrix, a batch of matrices and a vector (Adafactor factors the first two)
SHAPES = [(3, 4), (2, 3, 2), (5,)]


def _loss_tl(ps, targets):
    return sum(((p - t) ** 2 * (1.0 + p.sin() ** 2)).sum() for p, t in zip(ps, targets))


def _loss_torch(ps, targets):
    return sum(((p - t) ** 2 * (1.0 + p.sin() ** 2)).sum() for p, t in zip(ps, targets))


def _run_both(name, kw, steps=20, seed=0, use_closure=False):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    tgt = [rng.standard_normal(s) for s in SHAPES]
    ours = [tl.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    tt_tl = [tl.tensor(t) for t in tgt]
    tt_torch = [torch.tensor(t) for t in tgt]
    o = getattr(optim, name)(ours, **kw)
    t = getattr(torch.optim, name)(theirs, **kw)
    traj_o, traj_t = [], []
    for _ in range(steps):
        if use_closure:
            def closure_o():
                o.zero_grad()
                loss = _loss_tl(ours, tt_tl)
                loss.backward()
                return loss

            def closure_t():
                t.zero_grad()
                loss = _loss_torch(theirs, tt_torch)
                loss.backward()
                return loss
            lo, lt = o.step(closure_o), t.step(closure_t)
            np.testing.assert_allclose(float(lo.numpy()), float(lt.item()), rtol=1e-10)
        else:
            o.zero_grad()
            t.zero_grad()
            _loss_tl(ours, tt_tl).backward()
            _loss_torch(theirs, tt_torch).backward()
            o.step()
            t.step()
        traj_o.append([p.numpy().copy() for p in ours])
        traj_t.append([q.detach().numpy().copy() for q in theirs])
    return o, t, ours, theirs, traj_o, traj_t


def _assert_traj(traj_o, traj_t, rtol=1e-9, atol=1e-11):
    for k, (a, b) in enumerate(zip(traj_o, traj_t)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {k}")


CASES = [
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"lr": 0.02, "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 5, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.01, "t0": 0, "maximize": True}),
    ("Adafactor", {}),
    ("Adafactor", {"lr": 0.1, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 2.0,
                   "weight_decay": 0.1}),
    ("Adafactor", {"lr": 0.05, "eps": (None, 1e-3), "maximize": True}),
    ("Adafactor", {"lr": 0.5, "d": 1.0}),
]


@pytest.mark.parametrize("name,kw", CASES)
def test_trajectory_matches_torch(name, kw):
    *_, traj_o, traj_t = _run_both(name, kw)
    _assert_traj(traj_o, traj_t)
    # the problem is not trivial: the parameters moved
    assert not np.allclose(traj_o[0][0], traj_o[-1][0])


@pytest.mark.parametrize("name,kw", [("Rprop", {"lr": 0.03}), ("ASGD", {"t0": 3}),
                                     ("Adafactor", {"lr": 0.1})])
def test_closure_matches_torch(name, kw):
    *_, traj_o, traj_t = _run_both(name, kw, use_closure=True)
    _assert_traj(traj_o, traj_t)


def test_asgd_average_matches_torch():
    o, t, ours, theirs, *_ = _run_both("ASGD", {"lr": 0.05, "t0": 4})
    for p, q in zip(ours, theirs):
        so, st = o.state[p], t.state[q]
        np.testing.assert_allclose(so["ax"].numpy(), st["ax"].numpy(), rtol=1e-10)
        np.testing.assert_allclose(float(so["eta"].numpy()), st["eta"].item(), rtol=1e-12)
        np.testing.assert_allclose(float(so["mu"].numpy()), st["mu"].item(), rtol=1e-12)


def test_adafactor_state_is_factored_like_torch():
    o, t, ours, theirs, *_ = _run_both("Adafactor", {"lr": 0.1}, steps=3)
    for p, q in zip(ours, theirs):
        so, st = o.state[p], t.state[q]
        assert set(so) == set(st)
        for k in st:
            if k != "step":
                assert tuple(so[k].shape) == tuple(st[k].shape)
                np.testing.assert_allclose(so[k].numpy(), st[k].numpy(), rtol=1e-10)


def test_param_groups_match_torch():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal(4)
    pa, pb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    qa, qb = torch.nn.Parameter(torch.tensor(a)), torch.nn.Parameter(torch.tensor(b))
    o = optim.Rprop([{"params": [pa]}, {"params": [pb], "lr": 0.1}], lr=0.01)
    t = torch.optim.Rprop([{"params": [qa]}, {"params": [qb], "lr": 0.1}], lr=0.01)
    for _ in range(10):
        for opt in (o, t):
            opt.zero_grad()
        ((pa ** 3).sum() + (pb.cos()).sum()).backward()
        ((qa ** 3).sum() + (qb.cos()).sum()).backward()
        o.step()
        t.step()
    np.testing.assert_allclose(pa.numpy(), qa.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(pb.numpy(), qb.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("name,kw", [("Rprop", {"lr": 0.05}), ("ASGD", {"t0": 2}),
                                     ("Adafactor", {"lr": 0.1})])
def test_state_dict_round_trip(name, kw):
    """Ten steps, save, load into a fresh optimizer, ten more: same as twenty straight."""
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s) for s in SHAPES]
    tgt = [tl.tensor(rng.standard_normal(s)) for s in SHAPES]

    def run(opt, ps, n):
        for _ in range(n):
            opt.zero_grad()
            _loss_tl(ps, tgt).backward()
            opt.step()

    ref = [tl.tensor(a.copy(), requires_grad=True) for a in init]
    run(getattr(optim, name)(ref, **kw), ref, 20)

    ps = [tl.tensor(a.copy(), requires_grad=True) for a in init]
    o1 = getattr(optim, name)(ps, **kw)
    run(o1, ps, 10)
    sd = o1.state_dict()
    o2 = getattr(optim, name)(ps, **kw)
    o2.load_state_dict(sd)
    run(o2, ps, 10)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p.numpy(), r.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,kw", [("Rprop", {"lr": 0.05}), ("ASGD", {"t0": 2}),
                                     ("Adafactor", {"lr": 0.1})])
def test_loads_torch_state_dict(name, kw):
    """A torch optimizer's state_dict, loaded here, continues the same trajectory."""
    o, t, ours, theirs, *_ = _run_both(name, kw, steps=5)
    o.load_state_dict(t.state_dict())
    tgt = [tl.tensor(q.detach().numpy() * 0 + 0.5) for q in theirs]
    tgt_t = [torch.tensor(x.numpy()) for x in tgt]
    for _ in range(5):
        o.zero_grad()
        t.zero_grad()
        _loss_tl(ours, tgt).backward()
        _loss_torch(theirs, tgt_t).backward()
        o.step()
        t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_float32_params_stay_float32():
    for name in ("Rprop", "ASGD", "Adafactor"):
        p = tl.ones(3, 2, requires_grad=True)
        o = getattr(optim, name)([p], lr=0.1)
        (p * p).sum().backward()
        o.step()
        assert p.dtype == np.float32
        assert np.all(p.numpy() < 1.0)


def test_skips_params_without_grad():
    for name in ("Rprop", "ASGD", "Adafactor"):
        p = tl.ones(3, requires_grad=True)
        o = getattr(optim, name)([p], lr=0.1)
        o.step()
        np.testing.assert_array_equal(p.numpy(), np.ones(3))
        assert len(o.state) == 0


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.Rprop([p], lr=-1.0), "learning rate"),
    (lambda p: optim.Rprop([p], etas=(1.5, 1.2)), "etas"),
    (lambda p: optim.Rprop([p], etas=(0.5, 0.9)), "etas"),
    (lambda p: optim.Rprop([p], step_sizes=(1.0, 0.1)), "step_sizes"),
    (lambda p: optim.ASGD([p], weight_decay=-0.1), "weight_decay"),
    (lambda p: optim.ASGD([p], lr=-0.1), "learning rate"),
    (lambda p: optim.Adafactor([p], beta2_decay=0.5), "beta2_decay"),
    (lambda p: optim.Adafactor([p], eps=(-1.0, 1e-3)), "eps"),
    (lambda p: optim.Adafactor([p], eps=(None, -1e-3)), "eps"),
    (lambda p: optim.Adafactor([p], d=0.5), "d must be >= 1"),
    (lambda p: optim.Adafactor([p], weight_decay=-1.0), "weight_decay"),
])
def test_invalid_hyperparameters(make, match):
    p = tl.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=match):
        make(p)


def test_differentiable_not_supported():
    p = tl.ones(2, requires_grad=True)
    for name in ("Rprop", "ASGD"):
        with pytest.raises(NotImplementedError, match=name):
            getattr(optim, name)([p], differentiable=True)
    # foreach/capturable are accepted and change nothing
    optim.Rprop([p], foreach=True, capturable=True)
    optim.ASGD([p], foreach=False)
    optim.Adafactor([p], foreach=True)
