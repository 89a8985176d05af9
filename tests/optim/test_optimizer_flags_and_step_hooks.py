"""Optimizer trial 19: implementation flags in defaults/param_groups (F3), global step hooks
(F2), and the retrace advice for a float lr changed by a scheduler (F1), against torch.optim."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.optim.optimizer as tlopt

torch = pytest.importorskip("torch")
import torch.optim.optimizer as torchopt  # noqa: E402

NAMES = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
         "Rprop", "ASGD", "Adafactor", "SparseAdam", "LBFGS"]


def _pair(name, **kw):
    t = getattr(torch.optim, name)([torch.ones(3, dtype=torch.float64, requires_grad=True)],
                                   **kw)
    o = getattr(tl.optim, name)([tl.ones(3, dtype=tl.float64, requires_grad=True)], **kw)
    return t, o


# --- F3: flags kept as PyTorch keeps them ---------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_defaults_groups_repr_match_torch(name):
    t, o = _pair(name)
    assert list(o.defaults.items()) == list(t.defaults.items())
    assert list(o.param_groups[0]) == list(t.param_groups[0])
    assert repr(o) == repr(t)
    ts, os_ = t.state_dict()["param_groups"][0], o.state_dict()["param_groups"][0]
    assert list(os_) == list(ts)
    assert {k: v for k, v in os_.items()} == {k: v for k, v in ts.items()}


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(["SGD", "Adam", "AdamW", "Adagrad"]),
       foreach=st.sampled_from([None, True, False]), fused=st.sampled_from([None, True, False]))
def test_flags_stored_as_torch(name, foreach, fused):
    kw = dict(foreach=foreach, fused=fused)
    try:
        t = getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kw)
    except RuntimeError as e:       # fused and foreach both True
        with pytest.raises(RuntimeError, match="cannot be `True` together"):
            getattr(tl.optim, name)([tl.ones(2, requires_grad=True)], **kw)
        assert "together" in str(e)
        return
    o = getattr(tl.optim, name)([tl.ones(2, requires_grad=True)], **kw)
    assert o.defaults == t.defaults
    assert o.param_groups[0]["foreach"] is t.param_groups[0]["foreach"]
    assert o.param_groups[0]["fused"] is t.param_groups[0]["fused"]
    # a trainer rebuilding the optimizer from its defaults (AdamW's decoupled_weight_decay
    # key is not an AdamW argument in PyTorch either)
    try:
        t2 = type(t)([torch.ones(2, requires_grad=True)], **t.defaults)
    except TypeError:
        with pytest.raises(TypeError, match="decoupled_weight_decay"):
            type(o)([tl.ones(2, requires_grad=True)], **o.defaults)
        return
    o2 = type(o)([tl.ones(2, requires_grad=True)], **o.defaults)
    assert o2.defaults == o.defaults == t2.defaults


def test_capturable_and_add_param_group():
    t, o = _pair("Adam", capturable=False, foreach=True)
    t.add_param_group({"params": [torch.ones(2, dtype=torch.float64, requires_grad=True)]})
    o.add_param_group({"params": [tl.ones(2, dtype=tl.float64, requires_grad=True)]})
    assert o.param_groups[1]["foreach"] is True
    assert [list(g) for g in o.param_groups] == [list(g) for g in t.param_groups]


def test_differentiable_and_fused_foreach_errors():
    with pytest.raises(NotImplementedError, match="differentiable"):
        tl.optim.Adam([tl.ones(2, requires_grad=True)], differentiable=True)
    with pytest.raises(RuntimeError, match="SGD"):
        tl.optim.SGD([tl.ones(2, requires_grad=True)], lr=0.1, foreach=True, fused=True)


def _grads(rs, shapes):
    return [rs.randn(*s) for s in shapes]


# (not NAdam: PyTorch keeps its mu_product in float32 unless the default dtype is float64)
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "Adagrad", "RAdam"])
def test_load_state_dict_without_flag_keys(name):
    """A state_dict saved before the flags existed (or by an old PyTorch) still loads; the
    flags keep their values and the run continues as PyTorch's."""
    rs = np.random.RandomState(0)
    w0 = rs.randn(4, 3)
    kw = {"lr": 0.05} | ({"momentum": 0.9} if name in ("SGD", "RMSprop") else {})
    tp = torch.tensor(w0, requires_grad=True)
    topt = getattr(torch.optim, name)([tp], **kw)
    grads = _grads(rs, [(4, 3)] * 6)
    for g in grads[:3]:
        tp.grad = torch.tensor(g)
        topt.step()
    sd = topt.state_dict()
    for g in sd["param_groups"]:
        for k in ("foreach", "fused", "capturable", "differentiable"):
            g.pop(k, None)
    sd = {"state": {i: {k: (v.numpy() if isinstance(v, torch.Tensor) else v)
                        for k, v in s.items()} for i, s in sd["state"].items()},
          "param_groups": sd["param_groups"]}
    p = tl.tensor(tp.detach().numpy().copy(), requires_grad=True)
    opt = getattr(tl.optim, name)([p], foreach=True, **kw)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["foreach"] is True      # kept: not in the saved groups
    for g in grads[3:]:
        tp.grad = torch.tensor(g)
        topt.step()
        p.grad = tl.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_state_dict_round_trip_to_torch_keeps_flags():
    t, o = _pair("Adam", foreach=True)
    sd = o.state_dict()
    t.load_state_dict(sd)
    assert t.param_groups[0]["foreach"] is True


# --- F2: global step hooks ------------------------------------------------------------------
def _hook_log(mod, opt, log, tag):
    handles = [
        mod.register_optimizer_step_pre_hook(lambda o, a, k: log.append(f"{tag}gpre")),
        opt.register_step_pre_hook(lambda o, a, k: log.append(f"{tag}pre")),
        opt.register_step_post_hook(lambda o, a, k: log.append(f"{tag}post")),
        mod.register_optimizer_step_post_hook(lambda o, a, k: log.append(f"{tag}gpost")),
        mod.register_optimizer_step_pre_hook(
            lambda o, a, k: log.append(f"{tag}gpre2:{type(o).__name__}:{len(a)}")),
        mod.register_optimizer_step_post_hook(lambda o, a, k: log.append(f"{tag}gpost2")),
    ]
    return handles


def test_global_hooks_order_and_removal_match_torch():
    tlog, olog = [], []
    tp = torch.ones(2, requires_grad=True)
    tp.grad = torch.ones(2)
    p = tl.ones(2, requires_grad=True)
    p.grad = tl.ones(2)
    topt, opt = torch.optim.SGD([tp], lr=0.1), tl.optim.SGD([p], lr=0.1)
    th = _hook_log(torchopt, topt, tlog, "")
    oh = _hook_log(tlopt, opt, olog, "")
    try:
        assert all(isinstance(h, tl.utils.hooks.RemovableHandle) for h in oh)
        topt.step()
        opt.step()
        assert olog == tlog
        assert olog[:3] == ["gpre", "gpre2:SGD:1", "pre"]
        # they run for every optimizer, also one made after registering
        t2 = torch.optim.Adam([tp], lr=0.1)
        o2 = tl.optim.Adam([p], lr=0.1)
        tlog.clear()
        olog.clear()
        t2.step()
        o2.step()
        assert olog == tlog == ["gpre", "gpre2:Adam:1", "gpost", "gpost2"]
        for h in th[:1] + th[3:4]:
            h.remove()
        for h in oh[:1] + oh[3:4]:
            h.remove()
        tlog.clear()
        olog.clear()
        topt.step()
        opt.step()
        assert olog == tlog
        assert "gpre" not in olog and "gpost" not in olog
    finally:
        for h in th + oh:
            h.remove()
    olog.clear()
    opt.step()
    assert olog == []
    assert not tlopt._global_optimizer_pre_hooks and not tlopt._global_optimizer_post_hooks


def test_global_pre_hook_replaces_args_and_runs_for_lbfgs_and_subclass():
    p = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    seen = []

    def closure():
        p.grad = None
        loss = (p * p).sum()
        loss.backward()
        seen.append("closure")
        return loss

    def swap(o, args, kwargs):
        seen.append(("pre", type(o).__name__))
        return (args[0],), {"closure": closure}     # the step gets the closure from here

    h = tlopt.register_optimizer_step_pre_hook(swap)
    h2 = tlopt.register_optimizer_step_post_hook(lambda o, a, k: seen.append("post"))
    try:
        opt = tl.optim.LBFGS([p], max_iter=2)
        opt.step(lambda: 1 / 0)         # never called: the hook replaced it
        assert seen[0] == ("pre", "LBFGS") and seen[-1] == "post" and "closure" in seen
        h.remove()
        h = tlopt.register_optimizer_step_pre_hook(
            lambda o, a, k: seen.append(("pre", type(o).__name__)))

        class Lion(tl.optim.Optimizer):
            def __init__(self, params, lr=0.1):
                super().__init__(params, {"lr": lr})

            @tl.no_grad()
            def step(self, closure=None):
                loss = closure() if closure is not None else None
                for g in self.param_groups:
                    for q in g["params"]:
                        q.sub_(g["lr"] * q.grad.sign())
                return loss

        seen.clear()
        Lion([p]).step()
        assert seen[0] == ("pre", "Lion") and seen[-1] == "post"
    finally:
        h.remove()
        h2.remove()


def test_global_hook_errors():
    with pytest.raises(TypeError, match="register_optimizer_step_pre_hook"):
        tlopt.register_optimizer_step_pre_hook(3)
    with pytest.raises(TypeError, match="register_optimizer_step_post_hook"):
        tlopt.register_optimizer_step_post_hook(None)
    h = tlopt.register_optimizer_step_pre_hook(lambda o, a, k: "bad")
    try:
        p = tl.ones(2, requires_grad=True)
        p.grad = tl.ones(2)
        with pytest.raises(RuntimeError, match="SGD.step: a step pre-hook must return"):
            tl.optim.SGD([p], lr=0.1).step()
    finally:
        h.remove()


# --- F1: a float lr changed by a scheduler under capture -----------------------------------
def _captured_run(lr, n=8):
    tl.manual_seed(0)
    m = tl.nn.Linear(3, 2).to(tl.float64)
    opt = tl.optim.Adam(m.parameters(), lr=lr)
    sch = tl.optim.lr_scheduler.ExponentialLR(opt, 0.9)

    @tl.function
    def step(x, y):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    rs = np.random.RandomState(1)
    x, y = tl.tensor(rs.randn(8, 3)), tl.tensor(rs.randn(8, 2))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(n):
            step(x, y)
            sch.step()
    return m, step, [str(x.message) for x in w], x, y


def test_float_lr_retrace_warning_says_build_with_tensor_lr():
    _, step, msgs, _, _ = _captured_run(0.05)
    traced = [s for s in msgs if "traced" in s]
    assert traced, msgs
    assert "param_groups[0]['lr'] changed" in traced[-1]
    assert "lr=tl.tensor(" in traced[-1]
    assert "pad batches" not in traced[-1]      # the batch-size advice does not apply here


def test_tensor_lr_does_not_retrace_and_matches_torch():
    m, step, msgs, x, y = _captured_run(tl.tensor(0.05, dtype=tl.float64))
    assert step.trace_count <= 2 and not [s for s in msgs if "traced" in s]
    tl.manual_seed(0)
    m0 = tl.nn.Linear(3, 2).to(tl.float64)
    tm = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m0.weight.numpy()))
        tm.bias.copy_(torch.tensor(m0.bias.numpy()))
    topt = torch.optim.Adam(tm.parameters(), lr=0.05)
    tsch = torch.optim.lr_scheduler.ExponentialLR(topt, 0.9)
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    for _ in range(8):
        topt.zero_grad()
        ((tm(tx) - ty) ** 2).mean().backward()
        topt.step()
        tsch.step()
    np.testing.assert_allclose(m.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(m.bias.numpy(), tm.bias.detach().numpy(), rtol=1e-12,
                               atol=1e-14)


def test_replaced_tensor_lr_warning_says_fill_in_place():
    m = tl.nn.Linear(3, 2)
    opt = tl.optim.SGD(m.parameters(), lr=tl.tensor(0.01))

    @tl.function
    def step(x, y):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x, y = tl.randn(4, 3), tl.randn(4, 2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for i in range(8):
            step(x, y)
            opt.param_groups[0]["lr"] = tl.tensor(0.01 / (i + 1))
    msgs = [str(x.message) for x in w if "traced" in str(x.message)]
    assert msgs and "fill_(value)" in msgs[-1] and "another tensor" in msgs[-1]
