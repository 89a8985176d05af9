"""Graph capture: training steps whose zero_grad sits under a condition (gradient
accumulation) or keeps the tensors (set_to_none=False) settle after one trace per signature
and match eager and PyTorch; ``b[mask] = v`` with a traced bool mask."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.graph.tracer import CaptureError

torch = pytest.importorskip("torch")


def _np(t):
    return np.asarray(t.detach().numpy())


class _Net:
    """A Linear (and optionally an unused extra parameter) in tensorlib and PyTorch."""

    def __init__(self, lib, w, b, unused):
        if lib is tl:
            self.lin = nn.Linear(w.shape[1], w.shape[0]).double()
            with tl.no_grad():
                self.lin.weight.copy_(tl.tensor(w))
                self.lin.bias.copy_(tl.tensor(b))
            self.params = list(self.lin.parameters())
            if unused:
                self.extra = tl.tensor(np.ones(2), requires_grad=True)
                self.params.append(self.extra)
        else:
            self.lin = torch.nn.Linear(w.shape[1], w.shape[0]).double()
            with torch.no_grad():
                self.lin.weight.copy_(torch.tensor(w))
                self.lin.bias.copy_(torch.tensor(b))
            self.params = list(self.lin.parameters())
            if unused:
                self.params.append(torch.ones(2, dtype=torch.float64, requires_grad=True))


def _steps(lib, kind, optname, net, k):
    Fn = F if lib is tl else torch.nn.functional
    kw = {"Adam": {"lr": 0.01, "weight_decay": 0.1},
          "SGD": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}}[optname]
    opt = getattr(lib.optim, optname)(net.params, **kw)

    def acc_first(x, y, flag):
        if flag:
            opt.zero_grad()
        loss = Fn.mse_loss(net.lin(x), y)
        loss.backward()
        opt.step()
        return loss

    def acc_last(x, y, flag):
        loss = Fn.mse_loss(net.lin(x), y) / k
        loss.backward()
        if flag:
            opt.step()
            opt.zero_grad()
        return loss

    def keep(x, y, flag):
        opt.zero_grad(set_to_none=False)
        loss = Fn.mse_loss(net.lin(x), y)
        loss.backward()
        opt.step()
        return loss
    return {"acc_first": acc_first, "acc_last": acc_last, "keep": keep}[kind]


@pytest.mark.parametrize("kind", ["acc_first", "acc_last", "keep"])
@pytest.mark.parametrize("optname", ["Adam", "SGD"])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("unused", [False, True])
def test_accumulating_steps_trace_once_per_signature_and_match(kind, optname, k, unused):
    rng = np.random.default_rng(k)
    w, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    nets = [_Net(tl, w, b, unused), _Net(tl, w, b, unused), _Net(torch, w, b, unused)]
    captured = tl.function(_steps(tl, kind, optname, nets[0], k))
    eager = _steps(tl, kind, optname, nets[1], k)
    ref = _steps(torch, kind, optname, nets[2], k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3 * k + 1):
            x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
            flag = (i % k == 0) if kind != "acc_last" else ((i + 1) % k == 0)
            a = captured(tl.tensor(x), tl.tensor(y), flag).item()
            e = eager(tl.tensor(x), tl.tensor(y), flag).item()
            r = ref(torch.tensor(x), torch.tensor(y), flag).item()
            np.testing.assert_allclose(a, r, rtol=1e-10)
            np.testing.assert_allclose(e, r, rtol=1e-10)
            for pc, pe, pr in zip(nets[0].params, nets[1].params, nets[2].params):
                np.testing.assert_allclose(_np(pc), pr.detach().numpy(), rtol=1e-10,
                                           atol=1e-12)
                np.testing.assert_allclose(_np(pe), pr.detach().numpy(), rtol=1e-10,
                                           atol=1e-12)
                # .grad as eager and PyTorch leave it (None for the unused parameter)
                assert (pc.grad is None) == (pr.grad is None), (i, pc.grad, pr.grad)
                if pr.grad is not None:
                    np.testing.assert_allclose(_np(pc.grad), pr.grad.numpy(), rtol=1e-10,
                                               atol=1e-12)
    if not unused:
        # one graph per value of the flag: the first call's missing gradients do not
        # trace again
        assert captured.trace_count == 2, captured.retrace_reasons


def test_keep_step_without_flag_traces_once():
    tl.manual_seed(0)
    m = nn.Linear(4, 2).double()
    opt = tl.optim.Adam(m.parameters(), lr=0.01)

    @tl.function
    def step(x):
        opt.zero_grad(set_to_none=False)
        loss = m(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    for i in range(4):
        step(tl.ones(3, 4, dtype="float64") * i)
    assert step.trace_count == 1, step.retrace_reasons


# --- b[mask] = v with a traced mask -------------------------------------------------------
shapes = st.sampled_from([((5,), 1), ((3, 4), 2), ((3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), 1)])


def _value_shape(shape, nd, which):
    trailing = shape[nd:]
    return {"scalar": None, "0d": (), "one": (1,), "trail": trailing,
            "lead1": (1,) + trailing}[which]


@settings(max_examples=40, deadline=None)
@given(shapes, st.sampled_from(["scalar", "0d", "one", "trail", "lead1"]),
       st.integers(0, 2 ** 16))
def test_setitem_traced_mask_matches_eager_and_torch(sm, which, seed):
    shape, nd = sm
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(shape)
    mask = rng.random(shape[:nd]) < 0.5
    vs = _value_shape(shape, nd, which)
    v = 0.5 if vs is None else rng.standard_normal(vs)

    def f(lib, b, m, v):
        b = b * 1.0
        b[m] = v
        return (b * b).sum(), b
    g = tl.function(lambda b, m, v: f(tl, b, m, v)[0])
    # values and gradients through b and v, against PyTorch
    tb = torch.tensor(b, requires_grad=True)
    tv = None if vs is None else torch.tensor(v, requires_grad=True)
    tloss, tres = f(torch, tb, torch.tensor(mask), 0.5 if tv is None else tv)
    tloss.backward()
    lb = tl.tensor(b, requires_grad=True)
    lv = None if vs is None else tl.tensor(v, requires_grad=True)

    @tl.function
    def step(b, m, v):
        loss, res = f(tl, b, m, 0.5 if v is None else v)
        grads = tl.autograd.grad(loss, [b] if v is None else [b, v])
        return (loss, res, *grads)
    outs = step(lb, tl.tensor(mask), lv)
    np.testing.assert_allclose(_np(outs[1]), tres.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(outs[0].item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(_np(outs[2]), tb.grad.numpy(), rtol=1e-12, atol=1e-12)
    if tv is not None:
        np.testing.assert_allclose(_np(outs[3]), tv.grad.numpy(), rtol=1e-12, atol=1e-12)
    # a replay with another mask: the mask is an input of the graph, not a constant
    mask2 = ~mask
    with tl.no_grad():
        got = g(tl.tensor(b), tl.tensor(mask2), 0.5 if vs is None else tl.tensor(v)).item()
    tb2 = torch.tensor(b)
    want = f(torch, tb2, torch.tensor(mask2), 0.5 if vs is None else torch.tensor(v))[0]
    np.testing.assert_allclose(got, want.item(), rtol=1e-12)
    with tl.no_grad():
        g(tl.tensor(b), tl.tensor(mask), 0.5 if vs is None else tl.tensor(v))
    assert g.trace_count == 1


def test_setitem_traced_mask_fewer_dims_in_place_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    b = rng.standard_normal((2, 3, 4))
    m1 = rng.random((2, 3)) < 0.5
    m2 = rng.random((2, 3)) < 0.5

    @tl.function
    def f(b, m):
        out = b.clone()
        out[m] = 0
        return out
    with tl.no_grad():
        a = _np(f(tl.tensor(b), tl.tensor(m1)))
        c = _np(f(tl.tensor(b), tl.tensor(m2)))
    for got, m in ((a, m1), (c, m2)):
        want = torch.tensor(b)
        want[torch.tensor(m)] = 0
        np.testing.assert_array_equal(got, want.numpy())
    assert f.trace_count == 1
    path = tmp_path / "g.tlg"
    tl.save_graph(f.graphs[-1], str(path))
    loaded = tl.load_graph(str(path))
    res = loaded(tl.tensor(b), tl.tensor(m2))
    res = res[0] if isinstance(res, (tuple, list)) else res
    np.testing.assert_array_equal(_np(res), c)


def test_setitem_traced_mask_refusals():
    b = tl.zeros(3, 4)

    @tl.function
    def per_element(b, m, v):
        out = b.clone()
        out[m] = v
        return out
    m = tl.tensor(np.array([True, False, True]))
    with pytest.raises(CaptureError, match="mask.sum\\(\\)"):
        per_element(b, m, tl.ones(2, 4))
    with pytest.raises(IndexError, match="shape of the mask"):
        per_element(b, tl.tensor(np.array([True, False])), tl.ones(4))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        per_element(b, m, tl.ones(3))
