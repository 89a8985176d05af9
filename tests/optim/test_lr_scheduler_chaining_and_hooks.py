"""LR schedulers chained, edited by hand, subclassed and stepped with an epoch, against
PyTorch; optimizer step / state-dict hooks."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import nn, optim

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _opts(lib, n_groups, lr=1.0, **kw):
    P = nn.Parameter if lib is tl else torch.nn.Parameter
    z = tl.zeros if lib is tl else torch.zeros
    if n_groups == 1:
        return lib.optim.SGD([P(z(1))], lr=lr, momentum=0.9, **kw)
    return lib.optim.SGD([{"params": [P(z(1))]}, {"params": [P(z(1))], "lr": lr * 0.3}],
                         lr=lr, momentum=0.9, **kw)


MAKERS = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.1, total_iters=4),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=3),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=8, power=2.0),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9 if e % 2 else 0.95),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda e: 1 / (1 + e)),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 3, 2, 0.001),
    "CyclicLR": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3),
}
PAIRS = [("ExponentialLR", "MultiStepLR"), ("LinearLR", "CosineAnnealingLR"),
         ("StepLR", "ExponentialLR"), ("ConstantLR", "PolynomialLR"),
         ("MultiplicativeLR", "StepLR"), ("CosineAnnealingLR", "LinearLR"),
         ("LambdaLR", "ExponentialLR"), ("ExponentialLR", "LambdaLR"),
         ("CosineAnnealingWarmRestarts", "ExponentialLR"), ("MultiStepLR", "ConstantLR")]


def _run(lib, makers, n_groups, steps=32, edit=None, lr=1.0):
    o = _opts(lib, n_groups, lr)
    S = lib.optim.lr_scheduler
    scheds = [m(S, o) for m in makers]
    out = [[float(g["lr"]) for g in o.param_groups]]
    for i in range(steps):
        o.step()
        for s in scheds:
            s.step()
        if edit is not None and i == edit:
            for g in o.param_groups:
                g["lr"] *= 0.1
        out.append([float(g["lr"]) for g in o.param_groups])
        assert [float(v) for v in scheds[-1].get_last_lr()] == pytest.approx(
            [float(g["lr"]) for g in o.param_groups] if edit != i else
            [float(g["lr"]) * 10 for g in o.param_groups])
    return np.array(out)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_single_scheduler_matches_torch(name, n_groups):
    _close(_run(tl, [MAKERS[name]], n_groups), _run(torch, [MAKERS[name]], n_groups))


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("a,b", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_two_schedulers_stepped_back_to_back_match_torch(a, b, n_groups):
    ms = [MAKERS[a], MAKERS[b]]
    _close(_run(tl, ms, n_groups), _run(torch, ms, n_groups))


def test_research_repro_exponential_then_multistep():
    ms = [lambda S, o: S.ExponentialLR(o, gamma=0.9),
          lambda S, o: S.MultiStepLR(o, milestones=[3, 6], gamma=0.1)]
    got = _run(tl, ms, 1, steps=8)[1:, 0]
    np.testing.assert_allclose(got, [0.9, 0.81, 0.0729, 0.06561, 0.059049, 0.0053144,
                                     0.00478297, 0.00430467], rtol=1e-5)


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("name", sorted(set(MAKERS) - {"CyclicLR"}))
def test_manual_lr_edit_carries_on_as_torch(name, n_groups):
    _close(_run(tl, [MAKERS[name]], n_groups, edit=3),
           _run(torch, [MAKERS[name]], n_groups, edit=3))


WRAPPED = {
    "chained": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=3),
                                                S.ExponentialLR(o, gamma=0.9)]),
    "sequential": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=4), S.CosineAnnealingLR(o, T_max=10)],
        milestones=[4]),
    "sequential3": lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o, factor=0.2, total_iters=2), S.ExponentialLR(o, gamma=0.8),
            S.StepLR(o, step_size=4, gamma=0.5)], milestones=[3, 10]),
}


@pytest.mark.parametrize("edit", [None, 5])
@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_chained_and_sequential_match_torch(name, n_groups, edit):
    _close(_run(tl, [WRAPPED[name]], n_groups, edit=edit),
           _run(torch, [WRAPPED[name]], n_groups, edit=edit))


def _custom(lib, base):
    class WarmupCosine(base(lib)):
        def __init__(self, opt, warmup, total, last_epoch=-1):
            self.warmup, self.total = warmup, total
            super().__init__(opt, last_epoch)

        def get_lr(self):
            e = self.last_epoch
            if e < self.warmup:
                return [b * (e + 1) / self.warmup for b in self.base_lrs]
            c = 0.5 * (1 + math.cos(math.pi * (e - self.warmup) / (self.total - self.warmup)))
            return [b * c for b in self.base_lrs]
    return lambda S, o: WarmupCosine(o, 3, 40)


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("base", [lambda L: L.optim.lr_scheduler.LRScheduler,
                                  lambda L: L.optim.lr_scheduler._LRScheduler],
                         ids=["LRScheduler", "_LRScheduler"])
def test_custom_get_lr_subclass_matches_torch(base, n_groups):
    _close(_run(tl, [_custom(tl, base)], n_groups), _run(torch, [_custom(torch, base)], n_groups))
    both = [_custom(tl, base), MAKERS["ExponentialLR"]]
    _close(_run(tl, both, n_groups),
           _run(torch, [_custom(torch, base), MAKERS["ExponentialLR"]], n_groups))
    assert tl.optim.lr_scheduler._LRScheduler.__name__ == "_LRScheduler"


def test_subclass_without_get_lr_says_what_to_implement():
    class Bad(tl.optim.lr_scheduler.LRScheduler):
        pass
    with pytest.raises(NotImplementedError, match=r"Bad: .*get_lr\(\)"):
        Bad(_opts(tl, 1))


def test_get_lr_returning_wrong_count_raises():
    class Bad(tl.optim.lr_scheduler.LRScheduler):
        def get_lr(self):
            return [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match=r"Bad.get_lr\(\) returned 3 learning rates"):
        Bad(_opts(tl, 2))


EPOCHS = [1, 2, 5, 3, 9, 10, 0, 7, 7, 12]


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("name", sorted(set(MAKERS) - {"CyclicLR"}))
def test_step_with_epoch_matches_torch(name, n_groups):
    def run(lib):
        o = _opts(lib, n_groups)
        s = MAKERS[name](lib.optim.lr_scheduler, o)
        out = []
        for i, e in enumerate(EPOCHS):
            o.step()
            if i % 3 == 2:
                s.step()                     # mixed with plain steps
            else:
                s.step(e)
            out.append([float(g["lr"]) for g in o.param_groups])
        return np.array(out)
    _close(run(tl), run(torch))


def test_step_with_epoch_warns_deprecation_as_torch():
    o = _opts(tl, 1)
    s = tl.optim.lr_scheduler.StepLR(o, 2)
    o.step()
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        s.step(4)
    assert s.last_epoch == 4 and o.param_groups[0]["lr"] == pytest.approx(0.01)


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("T_0,T_mult", [(3, 2), (2, 1), (4, 3)])
def test_warm_restarts_fractional_epochs_match_torch(T_0, T_mult, n_groups):
    def run(lib):
        o = _opts(lib, n_groups, lr=0.1)
        s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult,
                                                               eta_min=0.001)
        out, iters = [], 4
        for epoch in range(12):
            for i in range(iters):
                o.step()
                s.step(epoch + i / iters)
                out.append([float(g["lr"]) for g in o.param_groups] + [s.T_cur, s.T_i,
                                                                        s.last_epoch])
        return np.array(out, dtype=float)
    _close(run(tl), run(torch))
    o = _opts(tl, 1)
    s = tl.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3)
    with pytest.raises(ValueError, match="CosineAnnealingWarmRestarts.step: epoch must be"):
        s.step(-1)


def test_reduce_on_plateau_accepts_epoch():
    def run(lib):
        o = _opts(lib, 2)
        s = lib.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1)
        out = []
        for i, m in enumerate([1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8]):
            s.step(m, epoch=i * 2) if i % 2 else s.step(m)
            out.append([float(g["lr"]) for g in o.param_groups] + [s.last_epoch])
        return np.array(out)
    _close(run(tl), run(torch))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(MAKERS)), min_size=1, max_size=3),
       st.integers(1, 2), st.one_of(st.none(), st.integers(0, 20)))
def test_random_scheduler_stacks_match_torch(names, n_groups, edit):
    ms = [MAKERS[n] for n in names]
    _close(_run(tl, ms, n_groups, steps=30, edit=edit),
           _run(torch, ms, n_groups, steps=30, edit=edit))


@pytest.mark.parametrize("name", sorted(MAKERS) + sorted(WRAPPED))
def test_state_dict_round_trip_resumes_identically(name):
    make = MAKERS.get(name) or WRAPPED[name]
    S = tl.optim.lr_scheduler

    def fresh():
        o = _opts(tl, 2)
        return o, make(S, o)
    o, s = fresh()
    for _ in range(7):
        o.step()
        s.step()
    osd, ssd = o.state_dict(), s.state_dict()
    o2, s2 = fresh()
    o2.load_state_dict(osd)
    s2.load_state_dict(ssd)
    for _ in range(15):
        for oo, ss in ((o, s), (o2, s2)):
            oo.step()
            ss.step()
        assert [g["lr"] for g in o.param_groups] == [g["lr"] for g in o2.param_groups]


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LinearLR", "MultiStepLR",
                                  "CosineAnnealingWarmRestarts", "ExponentialLR"])
def test_torch_scheduler_state_loads_and_resumes(name):
    o, t = _opts(tl, 1), _opts(torch, 1)
    ts = MAKERS[name](torch.optim.lr_scheduler, t)
    for _ in range(6):
        t.step()
        ts.step()
    s = MAKERS[name](tl.optim.lr_scheduler, o)
    o.load_state_dict({"state": {}, "param_groups": [
        {k: v for k, v in g.items() if k != "params"} | {"params": [0]}
        for g in t.state_dict()["param_groups"]]})
    s.load_state_dict(ts.state_dict())
    for _ in range(12):
        o.step()
        t.step()
        s.step()
        ts.step()
        assert o.param_groups[0]["lr"] == pytest.approx(t.param_groups[0]["lr"], rel=1e-12)


def test_tensor_lr_is_scheduled_in_place_when_chained():
    o = optim.SGD([nn.Parameter(tl.zeros(1))], lr=tl.tensor(1.0, dtype=tl.float64))
    lr = o.param_groups[0]["lr"]
    s1 = optim.lr_scheduler.ExponentialLR(o, gamma=0.5)
    s2 = optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.1)
    for _ in range(3):
        o.step()
        s1.step()
        s2.step()
    assert o.param_groups[0]["lr"] is lr
    assert float(lr) == pytest.approx(0.125 * 0.1)


# --- optimizer hooks ----------------------------------------------------------------------
def test_step_hooks_match_torch_and_remove():
    def run(lib):
        o = _opts(lib, 1, lr=0.1)
        p = o.param_groups[0]["params"][0]
        p.grad = (tl.ones if lib is tl else torch.ones)(1)
        log = []
        h1 = o.register_step_pre_hook(
            lambda opt, a, k: log.append(("pre", opt is o, len(a), float(p.detach()[0]))))
        h2 = o.register_step_post_hook(
            lambda opt, a, k: log.append(("post", opt is o, len(a), float(p.detach()[0]))))
        o.step()
        h1.remove()
        o.step()
        h2.remove()
        o.step()
        return log
    assert run(tl) == pytest.approx(run(torch))


def test_step_pre_hook_may_replace_args_and_runs_once_for_subclass_steps():
    calls = []

    class MySGD(optim.SGD):
        def step(self, closure=None):
            calls.append("inner")
            return super().step(closure)
    p = nn.Parameter(tl.ones(1))
    p.grad = tl.ones(1)
    o = MySGD([p], lr=0.1)
    o.register_step_pre_hook(lambda opt, a, k: ((a[0],), {"closure": lambda: 7.0}))
    n = []
    o.register_step_post_hook(lambda opt, a, k: n.append(k["closure"]()))
    assert o.step() == 7.0 and n == [7.0] and calls == ["inner"]
    o.register_step_pre_hook(lambda opt, a, k: 3)
    with pytest.raises(RuntimeError, match="step pre-hook must return None or a tuple"):
        o.step()


def test_user_optimizer_overriding_step_counts_as_stepped():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

        def step(self, closure=None):
            return None
    o = Plain([nn.Parameter(tl.ones(1))])
    s = optim.lr_scheduler.StepLR(o, 1)
    o.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()


def test_state_dict_hooks_match_torch():
    def run(lib):
        o = _opts(lib, 1, lr=0.1)
        log = []
        o.register_state_dict_pre_hook(lambda opt: log.append("pre"))
        h = o.register_state_dict_post_hook(
            lambda opt, sd: {**sd, "extra": 1})
        o.register_state_dict_post_hook(lambda opt, sd: log.append(sorted(sd)), prepend=True)
        sd = o.state_dict()
        assert sd["extra"] == 1
        h.remove()
        assert "extra" not in o.state_dict()

        def pre(opt, sd):
            sd = dict(sd)
            sd["param_groups"] = [dict(g, lr=0.5) for g in sd["param_groups"]]
            log.append("lpre")
            return sd
        o.register_load_state_dict_pre_hook(pre)
        o.register_load_state_dict_post_hook(lambda opt: log.append(opt.param_groups[0]["lr"]))
        o.load_state_dict(sd)
        return log
    assert run(tl) == run(torch)
    with pytest.raises(TypeError, match="register_step_pre_hook: expected a callable"):
        _opts(tl, 1).register_step_pre_hook(3)
