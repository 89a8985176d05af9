"""Optimizers, schedulers and clipping; differential tests against PyTorch."""
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn, optim

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.9, centered=True, weight_decay=1e-2)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adamax", dict(lr=1e-2)),
    ("Adamax", dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=1e-2)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=1e-2)),
    ("RAdam", dict(lr=1e-2, betas=(0.9, 0.9), weight_decay=0.1)),   # rectified from step 7
    ("RAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
]

# the schedule tests step schedules without an optimizer step, which warns (as PyTorch)
pytestmark = pytest.mark.filterwarnings("ignore:.*step\\(\\) was called before optimizer")


def _grads(rng, shapes, steps):
    return [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]


@pytest.mark.torch
@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=lambda v: str(v))
def test_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shapes = [(3, 4), (4,)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = _grads(rng, shapes, 12)     # RAdam's rectification starts after a few steps
    ours = [nn.Parameter(tl.tensor(a)) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    o = getattr(optim, name)(ours, **kw)
    t = getattr(torch.optim, name)(theirs, **kw)
    for step in grads:
        for p, q, g in zip(ours, theirs, step):
            p.grad = tl.tensor(g)
            q.grad = torch.tensor(g)
        o.step()
        t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(
        np.float32)
    pa, pb = nn.Parameter(tl.tensor(a)), nn.Parameter(tl.tensor(b))
    qa, qb = torch.nn.Parameter(torch.tensor(a)), torch.nn.Parameter(torch.tensor(b))
    o = optim.SGD([{"params": [pa]}, {"params": [pb], "lr": 0.5}], lr=0.1, momentum=0.9)
    t = torch.optim.SGD([{"params": [qa]}, {"params": [qb], "lr": 0.5}], lr=0.1, momentum=0.9)
    for _ in range(3):
        g1, g2 = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(
            np.float32)
        pa.grad, pb.grad = tl.tensor(g1), tl.tensor(g2)
        qa.grad, qb.grad = torch.tensor(g1), torch.tensor(g2)
        o.step()
        t.step()
    np.testing.assert_allclose(pa.numpy(), qa.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(pb.numpy(), qb.detach().numpy(), rtol=1e-6)


def test_parameters_without_grad_are_skipped():
    p, q = nn.Parameter(tl.ones(2)), nn.Parameter(tl.ones(2))
    o = optim.Adam([p, q], lr=0.1)
    p.grad = tl.ones(2)
    o.step()
    assert q.numpy().tolist() == [1.0, 1.0]
    assert p.numpy()[0] < 1.0
    assert q not in o.state


@pytest.mark.parametrize("make_opt", [lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
                                      lambda ps: optim.NAdam(ps, lr=0.05),
                                      lambda ps: optim.RAdam(ps, lr=0.05),
                                      lambda ps: optim.Adadelta(ps)],
                         ids=["Adam", "NAdam", "RAdam", "Adadelta"])
def test_state_dict_round_trip_continues_identically(tmp_path, make_opt):
    def make():
        tl.manual_seed(0)
        m = nn.Linear(3, 2)
        return m, make_opt(m.parameters())
    x, y = tl.randn(8, 3), tl.randn(8, 2)

    def step(m, o):
        o.zero_grad()
        ((m(x) - y) ** 2).mean().backward()
        o.step()
    m1, o1 = make()
    for _ in range(3):
        step(m1, o1)
    tl.save({"model": m1.state_dict(), "opt": o1.state_dict()}, tmp_path / "ck.safetensors")
    for _ in range(2):
        step(m1, o1)
    ck = tl.load(tmp_path / "ck.safetensors")
    m2, o2 = make()
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    assert o2.state[m2.weight]["step"] == 3
    for _ in range(2):
        step(m2, o2)
    np.testing.assert_array_equal(m1.weight.numpy(), m2.weight.numpy())
    np.testing.assert_array_equal(m1.bias.numpy(), m2.bias.numpy())
    # a state dict whose step counts are plain ints (PyTorch < 1.12, hand-made) loads too
    sd = o1.state_dict()
    for st in sd["state"].values():
        st["step"] = int(st["step"])
    m3, o3 = make()
    m3.load_state_dict(m1.state_dict())
    o3.load_state_dict(sd)
    step(m1, o1)
    step(m3, o3)
    assert o3.state[m3.weight]["step"].dtype == np.float64
    np.testing.assert_array_equal(m1.weight.numpy(), m3.weight.numpy())


def test_state_dict_mismatch_is_clear():
    o = optim.SGD([nn.Parameter(tl.ones(2))], lr=0.1)
    other = optim.SGD([nn.Parameter(tl.ones(2)), nn.Parameter(tl.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        o.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        o.load_state_dict({"foo": 1})


def test_bad_hyperparameters():
    p = [nn.Parameter(tl.ones(2))]
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(p, lr=-1)
    assert optim.SGD(p).defaults["lr"] == 1e-3        # PyTorch 2.x's default
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="RAdam: invalid betas"):
        optim.RAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Adamax: invalid eps"):
        optim.Adamax(p, eps=-1.0)
    with pytest.raises(ValueError, match="NAdam: invalid momentum_decay"):
        optim.NAdam(p, momentum_decay=-0.1)
    with pytest.raises(ValueError, match="Adadelta: invalid rho"):
        optim.Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(p[0])
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2], lr=0.1)


def test_zero_grad():
    p = nn.Parameter(tl.ones(2))
    o = optim.SGD([p], lr=0.1)
    p.grad = tl.ones(2)
    o.zero_grad(set_to_none=False)
    assert p.grad.numpy().tolist() == [0.0, 0.0]
    o.zero_grad()
    assert p.grad is None


def test_sgd_trains_a_model():
    tl.manual_seed(0)
    x = tl.randn(64, 3)
    w_true = tl.tensor([[1.0], [-2.0], [0.5]])
    y = x @ w_true
    m = nn.Linear(3, 1)
    o = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    for _ in range(100):
        o.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        o.step()
    assert float(loss) < 1e-4


# --- schedulers ------------------------------------------------------------------------
SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5], gamma=0.1)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("LinearLR", dict(start_factor=0.25, total_iters=4)),
    ("ConstantLR", dict(factor=0.5, total_iters=3)),
    ("PolynomialLR", dict(total_iters=6, power=2.0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, eta_min=0.01)),
    ("CosineAnnealingWarmRestarts", dict(T_0=2, T_mult=2)),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.9 if e % 2 else 0.5)),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,kw", SCHEDULERS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULERS)])
def test_schedulers_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    o = optim.SGD([nn.Parameter(tl.ones(1))], lr=0.5)
    t = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.5)
    s = getattr(optim.lr_scheduler, name)(o, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(t, **kw)
    ours, theirs = [], []
    for _ in range(10):
        ours.append(o.param_groups[0]["lr"])
        theirs.append(t.param_groups[0]["lr"])
        o.step()
        t.step()
        s.step()
        ts.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert s.get_last_lr() == [o.param_groups[0]["lr"]]


def test_warmup_then_cosine():
    o = optim.SGD([nn.Parameter(tl.ones(1))], lr=1.0)
    warm = optim.LinearLR(o, start_factor=0.1, total_iters=4)
    cos = optim.CosineAnnealingLR(o, T_max=10)
    s = optim.SequentialLR(o, [warm, cos], milestones=[4])
    lrs = []
    for _ in range(15):
        lrs.append(o.param_groups[0]["lr"])
        s.step()
    np.testing.assert_allclose(lrs[:5], [0.1, 0.325, 0.55, 0.775, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert lrs[14] == pytest.approx(0.0)


def test_scheduler_state_round_trip():
    o = optim.SGD([nn.Parameter(tl.ones(1))], lr=1.0)
    s = optim.StepLR(o, step_size=2, gamma=0.5)
    for _ in range(5):
        s.step()
    st = s.state_dict()
    o2 = optim.SGD([nn.Parameter(tl.ones(1))], lr=1.0)
    s2 = optim.StepLR(o2, step_size=2, gamma=0.5)
    # as PyTorch: the optimizer's state holds the lr; the scheduler's only its own fields
    o2.load_state_dict(o.state_dict())
    s2.load_state_dict(st)
    s.step()
    s2.step()
    assert o.param_groups[0]["lr"] == o2.param_groups[0]["lr"] == 0.125


# --- clipping ----------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    ps = [nn.Parameter(tl.zeros(g.shape)) for g in gs]
    qs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
    for p, q, g in zip(ps, qs, gs):
        p.grad, q.grad = tl.tensor(g), torch.tensor(g)
    n1 = optim.clip_grad_norm_(ps, 1.5, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(qs, 1.5, norm_type)
    assert float(n1) == pytest.approx(float(n2), rel=1e-5)
    for p, q in zip(ps, qs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_and_nonfinite():
    p = nn.Parameter(tl.zeros(3))
    p.grad = tl.tensor([-5.0, 0.5, 5.0])
    optim.clip_grad_value_([p], 1.0)
    assert p.grad.numpy().tolist() == [-1.0, 0.5, 1.0]
    p.grad = tl.tensor([float("nan"), 1.0, 1.0])
    with pytest.raises(RuntimeError, match="nan"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    small = nn.Parameter(tl.zeros(2))
    small.grad = tl.tensor([0.3, 0.4])
    total = optim.clip_grad_norm_(small, 1.0)
    assert float(total) == pytest.approx(0.5)
    np.testing.assert_allclose(small.grad.numpy(), [0.3, 0.4])


def test_clip_grad_norm_inside_a_captured_step_matches_eager():
    # the scale is a tensor (no float() of the norm), so capture records it and each replay
    # clips by that step's own norm: small gradients pass unchanged, large ones are scaled
    def make():
        tl.manual_seed(0)
        m = nn.Linear(4, 3)
        opt = optim.SGD(m.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            total = optim.clip_grad_norm_(m.parameters(), 0.5)
            opt.step()
            return total
        return m, step
    (m1, eager), (m2, captured) = make(), make()
    captured = tl.function(captured)
    rng = np.random.default_rng(1)
    for scale in (0.01, 10.0, 0.01, 10.0):       # below and above max_norm, alternating
        x = tl.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        y = tl.tensor((rng.standard_normal((5, 3)) * scale).astype(np.float32))
        np.testing.assert_allclose(captured(x, y).numpy(), eager(x, y).numpy(), rtol=1e-5)
        for a, b in zip(m1.parameters(), m2.parameters()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-7)
    assert captured.trace_count <= 2        # the optimizer's state fills on the first step


@pytest.mark.parametrize("name,kw", OPTIMIZERS[:8], ids=lambda v: str(v))
def test_fused_kernels_match_tensor_op_updates(name, kw, monkeypatch):
    """The fused in-place kernels and the plain tensor-op updates agree."""
    from tensorlib.optim import _fused
    rng = np.random.default_rng(3)
    init = rng.standard_normal((5, 3)).astype(np.float32)
    grads = _grads(rng, [(5, 3)], 4)

    def run():
        p = nn.Parameter(tl.tensor(init))
        o = getattr(optim, name)([p], **kw)
        for (g,) in grads:
            p.grad = tl.tensor(g)
            o.step()
        return p.numpy()
    fused = run()
    monkeypatch.setattr(_fused, "sgd", lambda *a, **k: False)
    monkeypatch.setattr(_fused, "adam", lambda *a, **k: False)
    np.testing.assert_allclose(run(), fused, rtol=1e-5, atol=1e-6)


def test_tensor_learning_rate_matches_float_and_round_trips():
    def make(lr):
        tl.manual_seed(0)
        m = nn.Linear(3, 2)
        return m, optim.SGD(m.parameters(), lr=lr, momentum=0.9)
    x, y = tl.randn(8, 3), tl.randn(8, 2)
    (m1, o1), (m2, o2) = make(0.1), make(tl.tensor(0.1))
    lr_t = o2.param_groups[0]["lr"]
    s1, s2 = optim.lr_scheduler.StepLR(o1, 1, 0.5), optim.lr_scheduler.StepLR(o2, 1, 0.5)
    for _ in range(3):
        for m, o, s in ((m1, o1, s1), (m2, o2, s2)):
            o.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            o.step()
            s.step()
    np.testing.assert_allclose(m1.weight.numpy(), m2.weight.numpy(), rtol=1e-6)
    assert o2.param_groups[0]["lr"] is lr_t and float(lr_t) == pytest.approx(0.1 * 0.5 ** 3)
    sd = o1.state_dict()                      # float lr loaded into the tensor, in place
    o2.load_state_dict(sd)
    assert o2.param_groups[0]["lr"] is lr_t and float(lr_t) == pytest.approx(0.0125)


def test_tensor_learning_rate_validation_and_groups_do_not_share_it():
    w1, w2 = tl.zeros(2, requires_grad=True), tl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="0-d float tensor"):
        optim.SGD([w1], lr=tl.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="invalid learning rate"):
        optim.SGD([w1], lr=tl.tensor(-1.0))
    lr = tl.tensor(0.1)
    o = optim.SGD([{"params": [w1]}, {"params": [w2]}], lr=lr)
    assert o.param_groups[0]["lr"] is lr and o.param_groups[1]["lr"] is not lr


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=lambda v: str(v))
def test_captured_training_step_matches_eager(name, kw):
    # step counts and running products are tensors, so a captured step replays with the
    # current count (RAdam's switch to the rectified update happens inside the graph)
    def make():
        tl.manual_seed(0)
        m = nn.Linear(4, 3)
        opt = getattr(optim, name)(m.parameters(), **kw)

        def step(x, y):
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return m, step
    (m1, eager), (m2, captured) = make(), make()
    captured = tl.function(captured)
    rng = np.random.default_rng(2)
    for _ in range(9):
        x = tl.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        y = tl.tensor(rng.standard_normal((5, 3)).astype(np.float32))
        np.testing.assert_allclose(captured(x, y).numpy(), eager(x, y).numpy(), rtol=1e-5,
                                   atol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-5, atol=1e-6)
    assert captured.trace_count <= 2        # the optimizer's state fills on the first step


@pytest.mark.parametrize("opt_name, kw", [
    ("SGD", dict(max_lr=0.5, total_steps=20)),
    ("SGD", dict(max_lr=0.5, epochs=4, steps_per_epoch=5, pct_start=0.4,
                 anneal_strategy="linear", three_phase=True, div_factor=10.0)),
    ("Adam", dict(max_lr=0.01, total_steps=12, base_momentum=0.8, max_momentum=0.9)),
    ("Adam", dict(max_lr=0.01, total_steps=12, cycle_momentum=False)),
])
def test_one_cycle_matches_torch_with_momentum(opt_name, kw):
    torch = pytest.importorskip("torch")
    okw = dict(momentum=0.9) if opt_name == "SGD" else {}
    o = getattr(optim, opt_name)([nn.Parameter(tl.ones(1))], lr=0.1, **okw)
    t = getattr(torch.optim, opt_name)([torch.nn.Parameter(torch.ones(1))], lr=0.1, **okw)
    s, ts = optim.OneCycleLR(o, **kw), torch.optim.lr_scheduler.OneCycleLR(t, **kw)
    key = "momentum" if opt_name == "SGD" else "betas"
    steps = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    for _ in range(steps - 1):
        np.testing.assert_allclose(o.param_groups[0]["lr"], t.param_groups[0]["lr"], rtol=1e-9)
        np.testing.assert_allclose(o.param_groups[0][key], t.param_groups[0][key], rtol=1e-9)
        o.step()
        t.step()
        s.step()
        ts.step()
    with pytest.raises(ValueError, match="total_steps"):
        for _ in range(3):
            s.step()


def test_one_cycle_needs_momentum_or_lengths():
    p = [nn.Parameter(tl.ones(1))]
    with pytest.raises(ValueError, match="cycle_momentum needs"):
        optim.OneCycleLR(optim.Adagrad(p, lr=0.1), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="epochs and steps_per_epoch"):
        optim.OneCycleLR(optim.SGD(p, lr=0.1, momentum=0.9), max_lr=1.0)


@pytest.mark.parametrize("kw", [dict(patience=2), dict(mode="max", factor=0.5, patience=1,
                                                        cooldown=2, threshold_mode="abs",
                                                        threshold=0.05, min_lr=0.02)])
def test_reduce_on_plateau_matches_torch(kw):
    torch = pytest.importorskip("torch")
    o = optim.SGD([nn.Parameter(tl.ones(1))], lr=0.5)
    t = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.5)
    s = optim.ReduceLROnPlateau(o, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(t, **kw)
    metrics = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.5, 0.52, 0.51, 0.55, 0.56, 0.57, 0.6, 0.4]
    for m in metrics:
        s.step(m)
        ts.step(m)
        assert o.param_groups[0]["lr"] == pytest.approx(t.param_groups[0]["lr"], rel=1e-12)
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    assert o.param_groups[0]["lr"] < 0.5          # it did reduce
    with pytest.raises(TypeError, match="needs the metric"):
        s.step()


@pytest.mark.torch
@pytest.mark.parametrize("make", [
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4, step_size_down=3),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="triangular2"),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.9),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=2, scale_fn=lambda c: 0.5 ** c),
    lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=3),
                                     S.ExponentialLR(o, gamma=0.9)]),
], ids=["cyclic", "cyclic-triangular2", "cyclic-exp_range", "cyclic-scale_fn", "chained"])
def test_cyclic_and_chained_schedulers_match_torch(make):
    """Rates and the cycled momentum, step for step."""
    torch = pytest.importorskip("torch")

    def run(S, opt):
        sch, out = make(S, opt), []
        for _ in range(25):
            opt.step()
            sch.step()
            out.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
        return np.array(out)
    ours = run(optim.lr_scheduler, optim.SGD([nn.Parameter(tl.ones(2))], lr=0.1, momentum=0.9))
    theirs = run(torch.optim.lr_scheduler,
                 torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_cyclic_lr_needs_momentum_to_cycle_it():
    o = optim.Adagrad([nn.Parameter(tl.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum"):
        optim.lr_scheduler.CyclicLR(o, 0.01, 0.1)
    optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, cycle_momentum=False)


def test_a_scheduler_stepped_before_the_optimizer_warns_as_torch():
    m = tl.nn.Linear(2, 2)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    sched = tl.optim.lr_scheduler.StepLR(opt, 1)        # its own first step: silent
    with pytest.warns(UserWarning, match=r"StepLR.step\(\) was called before optimizer"):
        sched.step()
    opt2 = tl.optim.SGD(m.parameters(), lr=0.1)
    sched2 = tl.optim.lr_scheduler.StepLR(opt2, 1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.step()
        sched2.step()


def test_state_reads_as_empty_dict_and_a_user_optimizer_loads_state_of_other_shapes():
    # PyTorch's state is a defaultdict(dict) and load_state_dict does not check shapes:
    # optimizers ported from it (L-BFGS-style flat history) rely on both
    p = tl.zeros(3, requires_grad=True)
    assert tl.optim.SGD([p], lr=0.1).state[p] == {}

    class Flat(tl.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 1.0})

        def step(self, closure=None):
            self.state[self.param_groups[0]["params"][0]]["d"] = tl.arange(7.0)

    a = Flat([p])
    a.step()
    b = Flat([p])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.state[p]["d"].numpy(), np.arange(7.0))
    # tensorlib's own optimizers still refuse a state from parameters of another shape
    p.grad = tl.ones(3)
    adam = tl.optim.Adam([p])
    adam.step()
    with pytest.raises(ValueError, match="exp_avg"):
        tl.optim.Adam([tl.zeros(4, requires_grad=True)]).load_state_dict(adam.state_dict())
