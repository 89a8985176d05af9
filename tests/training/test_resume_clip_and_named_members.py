"""Round-16 training utilities against PyTorch: exact resumption of LR schedulers (the
scheduler's load_state_dict leaves the optimizer's lr alone), clip_grad_value_(foreach=),
named_parameters/named_buffers(remove_duplicate=False) over shared modules,
ConvTranspose*d(padding_mode=), Generator(device=) and F.upsample*."""
import copy
import io
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
# the schedule tests also step some schedulers before an optimizer step (both libraries warn)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --- LR schedulers: resuming from a checkpoint ---------------------------------------------
def _opt(lib, lr=1.0):
    P = tl.nn.Parameter if lib is tl else torch.nn.Parameter
    z = tl.zeros if lib is tl else torch.zeros
    return lib.optim.SGD([{"params": [P(z(1))]}, {"params": [P(z(1))], "lr": lr * 0.3}],
                         lr=lr, momentum=0.9)


SCHEDS = {
    "StepLR": lambda S, o: [S.StepLR(o, step_size=3, gamma=0.5)],
    "MultiStepLR": lambda S, o: [S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3)],
    "ExponentialLR": lambda S, o: [S.ExponentialLR(o, gamma=0.9)],
    "CosineAnnealingLR": lambda S, o: [S.CosineAnnealingLR(o, T_max=7, eta_min=0.01)],
    "LinearLR": lambda S, o: [S.LinearLR(o, start_factor=0.1, total_iters=4)],
    "ConstantLR": lambda S, o: [S.ConstantLR(o, factor=0.5, total_iters=3)],
    "PolynomialLR": lambda S, o: [S.PolynomialLR(o, total_iters=8, power=2.0)],
    "MultiplicativeLR": lambda S, o: [S.MultiplicativeLR(o, lambda e: 0.9)],
    "LambdaLR": lambda S, o: [S.LambdaLR(o, lambda e: 1 / (1 + e))],
    "CosineAnnealingWarmRestarts": lambda S, o: [S.CosineAnnealingWarmRestarts(o, 2, 2, 0.001)],
    "CyclicLR": lambda S, o: [S.CyclicLR(o, 0.01, 0.1, step_size_up=3)],
    "OneCycleLR": lambda S, o: [S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=40)],
    "SequentialLR": lambda S, o: [S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=4), S.CosineAnnealingLR(o, T_max=10)],
        milestones=[4])],
    "ChainedScheduler": lambda S, o: [S.ChainedScheduler(
        [S.ConstantLR(o, factor=0.1, total_iters=3), S.ExponentialLR(o, gamma=0.9)])],
    "ReduceLROnPlateau": lambda S, o: [S.ReduceLROnPlateau(o, patience=0, factor=0.5)],
    # two schedulers on one optimizer, the plateau one stepped last (the trial's case)
    "CosineWR+Plateau": lambda S, o: [S.CosineAnnealingWarmRestarts(o, T_0=2),
                                      S.ReduceLROnPlateau(o, patience=0, factor=0.5)],
    "Exponential+Step": lambda S, o: [S.ExponentialLR(o, gamma=0.9),
                                      S.StepLR(o, step_size=2, gamma=0.5)],
}
# metrics that plateau now and then, so ReduceLROnPlateau cuts the rate
METRICS = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.7, 0.7, 0.75, 0.6, 0.6, 0.65, 0.5] * 3


def _step(scheds, i):
    for s in scheds:
        if type(s).__name__ == "ReduceLROnPlateau":
            s.step(METRICS[i])
        else:
            s.step()


def _lrs(o):
    return [float(g["lr"]) for g in o.param_groups]


def _run(lib, name, edit, stop, total=24, resume=True):
    """lrs of ``total`` steps; with ``resume`` the run is checkpointed after ``stop`` steps
    (optimizer then schedulers, deep-copied), rebuilt from scratch and carried on."""
    S = lib.optim.lr_scheduler
    o = _opt(lib)
    scheds = SCHEDS[name](S, o)
    out = []
    for i in range(total):
        if resume and i == stop:
            osd = copy.deepcopy(o.state_dict())
            ssd = [copy.deepcopy(s.state_dict()) for s in scheds]
            o = _opt(lib)
            scheds = SCHEDS[name](S, o)
            o.load_state_dict(osd)
            for s, sd in zip(scheds, ssd):
                s.load_state_dict(sd)
            out.append(("resumed", _lrs(o)))
        o.step()
        _step(scheds, i)
        if edit and i == stop - 1:     # after the last step before the checkpoint
            for g in o.param_groups:        # a manual change: the scheduler did not set it
                g["lr"] = g["lr"] * 0.37
        out.append(_lrs(o))
    return out


@pytest.mark.parametrize("edit", [False, True], ids=["plain", "manual_lr"])
@pytest.mark.parametrize("stop", [3, 7])
@pytest.mark.parametrize("name", sorted(SCHEDS))
def test_resume_is_exact_and_matches_torch(name, stop, edit):
    if edit and name in ("CyclicLR", "OneCycleLR"):
        pytest.skip("not chainable: both libraries recompute lr from scratch")
    got = _run(tl, name, edit, stop)
    ref = _run(torch, name, edit, stop)
    flat = [x[1] if isinstance(x, tuple) else x for x in got]
    np.testing.assert_allclose(flat, [x[1] if isinstance(x, tuple) else x for x in ref],
                               rtol=1e-12, atol=1e-15)
    assert [x for x in got if isinstance(x, tuple)] == [("resumed", got[stop - 1])]
    resumed = [x for x in got if not isinstance(x, tuple)]
    assert resumed == _run(tl, name, edit, stop, resume=False)     # bit-exact, as PyTorch's
    assert [x for x in ref if not isinstance(x, tuple)] == _run(torch, name, edit, stop,
                                                                 resume=False)


def test_scheduler_load_state_dict_keeps_optimizer_lr_as_torch():
    def run(lib):
        def build():
            p = (tl.nn.Parameter(tl.ones(1)) if lib is tl
                 else torch.nn.Parameter(torch.ones(1)))
            o = lib.optim.SGD([p], lr=0.1)
            return o, lib.optim.lr_scheduler.StepLR(o, step_size=10)
        o, s = build()
        o.step()
        s.step()
        for g in o.param_groups:
            g["lr"] = 0.01
        osd, ssd = o.state_dict(), s.state_dict()
        o2, s2 = build()
        o2.load_state_dict(osd)
        s2.load_state_dict(ssd)
        return o2.param_groups[0]["lr"], s2.get_last_lr(), s2.last_epoch
    assert run(tl) == run(torch) == (0.01, [0.1], 1)


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "SequentialLR",
                                  "ChainedScheduler", "LambdaLR"])
def test_scheduler_state_alone_continues_from_optimizer_lr_as_torch(name):
    # without the optimizer's state the groups keep the fresh optimizer's lr (PyTorch does
    # not write the scheduler's last rate into the optimizer)
    def run(lib):
        S = lib.optim.lr_scheduler
        o = _opt(lib)
        scheds = SCHEDS[name](S, o)
        for i in range(5):
            o.step()
            _step(scheds, i)
        sd = [s.state_dict() for s in scheds]
        o2 = _opt(lib)
        s2 = SCHEDS[name](S, o2)
        for s, d in zip(s2, sd):
            s.load_state_dict(d)
        out = [_lrs(o2)]
        for i in range(6):
            o2.step()
            _step(s2, i)
            out.append(_lrs(o2))
        return out
    np.testing.assert_allclose(run(tl), run(torch), rtol=1e-12)


def test_state_dict_argument_is_not_modified():
    o = _opt(tl)
    s = SCHEDS["SequentialLR"](tl.optim.lr_scheduler, o)[0]
    sd = s.state_dict()
    keys = set(sd)
    s.load_state_dict(sd)
    assert set(sd) == keys and "_schedulers" in sd


def test_checkpoint_resume_through_save_load_trains_identically():
    """The trial's case: Linear + AdamW + CosineAnnealingWarmRestarts + ReduceLROnPlateau,
    checkpointed through tl.save / tl.load after 3 epochs."""
    rng = np.random.default_rng(0)
    X = tl.tensor(rng.standard_normal((16, 4)))
    Y = tl.tensor(rng.standard_normal((16, 1)))

    def build():
        tl.manual_seed(0)
        m = tl.nn.Linear(4, 1).to(tl.float64)
        o = tl.optim.AdamW(m.parameters(), lr=0.01)
        cos = tl.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2)
        pl = tl.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0)
        return m, o, cos, pl

    def epoch(m, o, cos, pl):
        o.zero_grad()
        loss = ((m(X) - Y) ** 2).mean()
        loss.backward()
        o.step()
        cos.step()
        pl.step(1.0)
        return float(loss)

    m, o, cos, pl = build()
    straight = [epoch(m, o, cos, pl) for _ in range(6)]
    m, o, cos, pl = build()
    first = [epoch(m, o, cos, pl) for _ in range(3)]
    buf = io.BytesIO()
    tl.save({"m": m.state_dict(), "o": o.state_dict(), "cos": cos.state_dict(),
             "pl": pl.state_dict()}, buf)
    buf.seek(0)
    ck = tl.load(buf)
    m, o, cos, pl = build()
    m.load_state_dict(ck["m"])
    o.load_state_dict(ck["o"])
    cos.load_state_dict(ck["cos"])
    pl.load_state_dict(ck["pl"])
    rest = [epoch(m, o, cos, pl) for _ in range(3)]
    assert first + rest == straight


# --- clip_grad_value_ ----------------------------------------------------------------------
@pytest.mark.parametrize("foreach", [None, True, False])
@settings(max_examples=15, deadline=None)
@given(st.floats(0.0, 3.0), st.integers(0, 2**31 - 1))
def test_clip_grad_value_foreach_matches_torch(foreach, clip, seed):
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal(s) * 2 for s in [(3, 4), (5,), ()]]
    ps = [tl.nn.Parameter(tl.zeros(g.shape, dtype=tl.float64)) for g in gs]
    qs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in gs]
    for p, q, g in zip(ps, qs, gs):
        p.grad, q.grad = tl.tensor(g), torch.tensor(g)
    ps.append(tl.nn.Parameter(tl.zeros(2)))         # no grad: skipped
    qs.append(torch.nn.Parameter(torch.zeros(2)))
    assert tl.nn.utils.clip_grad_value_(ps, clip, foreach=foreach) is None
    torch.nn.utils.clip_grad_value_(qs, clip, foreach=foreach)
    for p, q in zip(ps[:-1], qs[:-1]):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert ps[-1].grad is None


def test_clip_grad_value_single_tensor_and_errors():
    p = tl.nn.Parameter(tl.ones(3))
    p.grad = tl.tensor([2.0, -2.0, 0.1])
    tl.nn.utils.clip_grad_value_(p, 0.5, foreach=True)
    np.testing.assert_allclose(p.grad.numpy(), [0.5, -0.5, 0.1])
    with pytest.raises(ValueError, match="clip_grad_value_"):
        tl.nn.utils.clip_grad_value_(p, -1.0, foreach=False)


# --- named_parameters / named_buffers(remove_duplicate=False) -------------------------------
def _shared(lib):
    nn = lib.nn
    sh = nn.BatchNorm1d(2)
    inner = nn.Sequential(nn.Linear(2, 2), sh)
    return nn.Sequential(sh, nn.ReLU(), sh, inner, nn.Sequential(inner))


@pytest.mark.parametrize("prefix", ["", "net"])
@pytest.mark.parametrize("remove_duplicate", [True, False])
@pytest.mark.parametrize("recurse", [True, False])
def test_named_members_of_shared_modules_match_torch(remove_duplicate, prefix, recurse):
    a, b = _shared(tl), _shared(torch)
    for meth in ("named_parameters", "named_buffers"):
        got = [n for n, _ in getattr(a, meth)(prefix, recurse, remove_duplicate)]
        ref = [n for n, _ in getattr(b, meth)(prefix, recurse, remove_duplicate)]
        assert got == ref, meth
    got = [n for n, _ in a.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)]
    ref = [n for n, _ in b.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)]
    assert got == ref


def test_shared_module_listed_at_every_path_and_rest_unchanged():
    for T in (tl, torch):
        sh = T.nn.Linear(2, 2)
        m = T.nn.Sequential(sh, T.nn.ReLU(), sh)
        names = [n for n, _ in m.named_parameters(remove_duplicate=False)]
        assert names == ["0.weight", "0.bias", "2.weight", "2.bias"], T.__name__
        ps = list(m.named_parameters(remove_duplicate=False))
        assert ps[0][1] is ps[2][1]
        assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias"]
        assert len(list(m.parameters())) == 2
        assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    a, b = _shared(tl), _shared(torch)
    assert list(a.state_dict()) == list(b.state_dict())
    assert len(list(a.parameters())) == len(list(b.parameters()))
    assert len(list(a.buffers())) == len(list(b.buffers()))


def test_tied_parameter_across_modules_remove_duplicate_false():
    for T in (tl, torch):
        e, h = T.nn.Embedding(5, 3), T.nn.Linear(3, 5, bias=False)
        h.weight = e.weight
        m = T.nn.ModuleDict({"e": e, "h": h})
        assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == ["e.weight",
                                                                               "h.weight"]
        assert [n for n, _ in m.named_parameters()] == ["e.weight"]


# --- ConvTranspose*d(padding_mode=) ---------------------------------------------------------
CT = {1: ((1, 4, 5), "ConvTranspose1d"), 2: ((1, 4, 5, 3), "ConvTranspose2d"),
      3: ((1, 4, 3, 2, 3), "ConvTranspose3d")}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("positional", [False, True])
def test_conv_transpose_padding_mode_zeros_matches_torch(nd, positional):
    shape, cls = CT[nd]
    args = (4, 6, 3, 2, 1, 1, 2, True, 1)    # stride, padding, output_padding, groups, bias, dil
    if positional:
        a = getattr(tl.nn, cls)(*args, "zeros", None, tl.float64)
        b = getattr(torch.nn, cls)(*args, "zeros", None, torch.float64)
    else:
        a = getattr(tl.nn, cls)(*args, padding_mode="zeros", dtype=tl.float64)
        b = getattr(torch.nn, cls)(*args, padding_mode="zeros", dtype=torch.float64)
    assert a.padding_mode == b.padding_mode == "zeros"
    a.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in b.state_dict().items()})
    x = np.random.default_rng(nd).standard_normal(shape)
    xa = tl.tensor(x, requires_grad=True)
    xb = torch.tensor(x, requires_grad=True)
    ya, yb = a(xa), b(xb)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12, atol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.weight.grad.numpy(), b.weight.grad.numpy(), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "bogus"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_other_padding_modes_rejected_as_torch(nd, mode):
    cls = CT[nd][1]
    with pytest.raises(ValueError) as ref:
        getattr(torch.nn, cls)(2, 2, 3, padding_mode=mode)
    with pytest.raises(ValueError, match=f'^{ref.value}'):
        getattr(tl.nn, cls)(2, 2, 3, padding_mode=mode)


def test_conv_padding_modes_unchanged():
    assert tl.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect").padding_mode == "reflect"
    with pytest.raises(ValueError, match="padding_mode"):
        tl.nn.Conv2d(2, 2, 3, padding_mode="bogus")


# --- Generator(device=) ---------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda L: L.Generator(), lambda L: L.Generator("cpu"), lambda L: L.Generator(device="cpu"),
    lambda L: L.Generator(device=None),
    lambda L: L.Generator(device=L.device("cpu")),
    lambda L: L.Generator(device=torch.device("cpu"))])
def test_generator_device_matches_torch(make):
    g, t = make(tl), make(torch)
    assert str(g.device) == str(t.device) == "cpu"
    assert g.device == tl.device("cpu") and g.device.type == t.device.type
    assert g.manual_seed(3) is g
    ref = tl.Generator().manual_seed(3)
    np.testing.assert_array_equal(tl.randn(4, generator=g).numpy(),
                                  tl.randn(4, generator=ref).numpy())
    assert g.initial_seed() == 3


def test_generator_seeding_kept():
    g = tl.Generator(5)
    assert g.initial_seed() == 5 and g.device == "cpu"
    assert tl.Generator(seed=5).initial_seed() == 5
    assert tl.Generator(device="cpu", seed=5).initial_seed() == 5
    np.testing.assert_array_equal(tl.rand(3, generator=g).numpy(),
                                  tl.rand(3, generator=tl.Generator(seed=5)).numpy())
    st_ = g.get_state()
    a = tl.rand(3, generator=g)
    h = tl.Generator("cpu")
    h.set_state(st_)
    np.testing.assert_array_equal(a.numpy(), tl.rand(3, generator=h).numpy())
    assert h.initial_seed() == 5
    s = h.seed()
    assert h.initial_seed() == s
    assert tl.Generator([1, 2]).device == "cpu"       # NumPy-style seed sequence, as before


@pytest.mark.skipif(tl.cuda.is_available(), reason="checks the error without a GPU")
@pytest.mark.parametrize("dev", ["cuda", "cuda:0", 0])
def test_generator_cuda_without_gpu_is_a_clear_error(dev):
    with pytest.raises(RuntimeError, match="Generator: device cuda:0 is not available"):
        tl.Generator(device=dev)


@pytest.mark.skipif(not tl.cuda.is_available(), reason="needs a GPU")
def test_generator_cuda_device():
    g = tl.Generator(device="cuda").manual_seed(0)
    assert g.device == "cuda:0"
    x = tl.randn(3, device="cuda", generator=g)
    assert x.device == "cuda:0"


def test_generator_bad_arguments():
    with pytest.raises(ValueError, match="Generator: invalid device 'bogus'"):
        tl.Generator("bogus")
    with pytest.raises(TypeError, match="Generator: device must be"):
        tl.Generator(device=1.5)
    with pytest.raises(TypeError, match="both positionally"):
        tl.Generator("cpu", device="cpu")
    with pytest.raises(TypeError, match="both positionally"):
        tl.Generator(1, seed=2)


# --- F.upsample, upsample_nearest, upsample_bilinear ---------------------------------------
def _both(fn_name, shape, kw, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    xa = tl.tensor(x, requires_grad=True)
    xb = torch.tensor(x, requires_grad=True)
    with pytest.warns(UserWarning) as wa:
        ya = getattr(tl.nn.functional, fn_name)(xa, **kw)
    with pytest.warns(UserWarning) as wb:
        yb = getattr(torch.nn.functional, fn_name)(xb, **kw)
    assert [str(w.message) for w in wa] == [str(w.message) for w in wb]
    assert wa[0].filename == __file__                 # points at the caller, as a deprecation
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(yb.shape))
    ya.backward(tl.tensor(g))
    yb.backward(torch.tensor(g))
    np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,kw", [
    ((1, 2, 5), dict(scale_factor=2)),
    ((1, 2, 5), dict(size=7, mode="linear")),
    ((1, 2, 5), dict(size=7, mode="linear", align_corners=True)),
    ((2, 1, 3, 4), dict(scale_factor=2, mode="bilinear")),
    ((2, 1, 3, 4), dict(size=(5, 7), mode="bilinear", align_corners=True)),
    ((2, 1, 3, 4), dict(scale_factor=(2, 3), mode="bicubic", align_corners=False)),
    ((1, 1, 4, 4), dict(size=(2, 3))),
    ((1, 1, 2, 3, 2), dict(scale_factor=2, mode="trilinear")),
    ((1, 1, 2, 3, 2), dict(size=(3, 4, 5))),
])
def test_upsample_matches_torch(shape, kw):
    _both("upsample", shape, kw)


@pytest.mark.parametrize("shape,kw", [
    ((1, 2, 5), dict(scale_factor=3)), ((2, 1, 3, 4), dict(size=(6, 9))),
    ((2, 1, 3, 4), dict(size=5)), ((1, 1, 2, 3, 2), dict(scale_factor=2))])
def test_upsample_nearest_matches_torch(shape, kw):
    _both("upsample_nearest", shape, kw)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.one_of(
    st.tuples(st.integers(1, 8), st.integers(1, 8)).map(lambda s: dict(size=s)),
    st.sampled_from([2, 3, 1.5]).map(lambda f: dict(scale_factor=f))), st.integers(0, 99))
def test_upsample_bilinear_is_align_corners_true_as_torch(h, w, kw, seed):
    _both("upsample_bilinear", (2, 2, h, w), kw, seed)
    x = tl.tensor(np.random.default_rng(seed).standard_normal((1, 1, h, w)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tl.nn.functional.upsample_bilinear(x, **kw)
    ref = tl.nn.functional.interpolate(x, mode="bilinear", align_corners=True, **kw)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_upsample_errors_as_interpolate():
    x = tl.ones(1, 1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torch raises NotImplementedError here (a RuntimeError); tensorlib's interpolate, a
        # ValueError naming the function
        with pytest.raises(ValueError, match="bilinear"):
            tl.nn.functional.upsample_bilinear(x, scale_factor=2)
        with pytest.raises(ValueError):
            tl.nn.functional.upsample(tl.ones(1, 1, 4, 4), size=3, scale_factor=2)
        with pytest.raises(ValueError):
            tl.nn.functional.upsample_nearest(tl.ones(1, 1, 4, 4), size=(2, 2),
                                              scale_factor=2)
