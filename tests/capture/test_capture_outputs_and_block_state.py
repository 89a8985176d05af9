"""Captured outputs rebuilt per call (sizes, dataclasses, namespaces, dict subclasses) and
optimizer state created inside a ``tl.capture`` block: eager and captured agree on every
call (calls 2.. replay the graph), compared against PyTorch."""
import collections
import dataclasses
import types
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.graph.tracer import CaptureError

torch = pytest.importorskip("torch")

SHAPES = [(3, 2), (5, 4), (7, 6), (2, 9)]


def _sizes(x):
    return x.sum(0), x.shape[0], x.size(1), x.shape, x.shape[0] * 2 + x.size(1) // 2


@pytest.mark.parametrize("how", ["signature", "dynamic"])
def test_returned_sizes_follow_each_call(how):
    h = (tl.function(_sizes, input_signature=[tl.TensorSpec((None, None), "float64")])
         if how == "signature" else tl.function(_sizes, dynamic=True))
    for n in SHAPES:
        x = np.random.default_rng(0).standard_normal(n)
        s, a, b, shp, e = h(tl.tensor(x))
        t = torch.tensor(x)
        assert (a, b, shp, e) == (t.shape[0], t.size(1), tuple(t.shape),
                                  t.shape[0] * 2 + t.size(1) // 2)
        assert type(a) is int and type(b) is int and type(e) is int
        np.testing.assert_allclose(s.numpy(), t.sum(0).numpy())
    assert h.trace_count <= 2      # one graph serves every size (dynamic=True: 2 traces)


def test_returned_size_of_intermediate_and_saved_graph(tmp_path):
    def f(x):
        y = x.reshape(-1)
        return {"y": y * 2, "n": y.shape[0], "shape": x.shape}
    h = tl.function(f, input_signature=[tl.TensorSpec((None, 3))])
    for b in (2, 4, 5):
        r = h(tl.ones(b, 3))
        assert r["n"] == 3 * b and r["shape"] == (b, 3) and tuple(r["y"].shape) == (3 * b,)
    path = str(tmp_path / "size.tlg")
    tl.save_graph(h, path)
    g = tl.load_graph(path)
    for b in (7, 1, 3):
        r = g(tl.ones(b, 3))
        assert r["n"] == 3 * b and r["shape"] == (b, 3) and type(r["n"]) is int


def test_saved_graph_returns_sizes_per_call(tmp_path):
    h = tl.function(_sizes, input_signature=[tl.TensorSpec((None, None))])
    h(tl.ones(3, 2))
    path = str(tmp_path / "s.tlg")
    tl.save_graph(h, path)
    g = tl.load_graph(path)
    for n in SHAPES:
        r = g(tl.ones(*n))
        assert r[1:] == (n[0], n[1], n, n[0] * 2 + n[1] // 2)


@dataclasses.dataclass
class _Out:
    y: object
    parts: list
    tag: str = "out"


@dataclasses.dataclass(frozen=True)
class _Frozen:
    y: object
    z: object


def _check_calls(f, check, calls=4):
    g = tl.function(f)
    for i in range(calls):
        x = np.random.default_rng(i).standard_normal((2, 3))
        check(g(tl.tensor(x)), x)


def test_dataclass_output_rebuilt_per_call():
    def f(x):
        return _Out(x * 2, [x.exp(), x.sum()])

    def check(r, x):
        t = torch.tensor(x)
        assert type(r) is _Out and r.tag == "out"
        np.testing.assert_allclose(r.y.numpy(), (t * 2).numpy())
        np.testing.assert_allclose(r.parts[0].numpy(), t.exp().numpy())
        np.testing.assert_allclose(r.parts[1].numpy(), t.sum().numpy())
    _check_calls(f, check)


def test_frozen_dataclass_and_namespace_outputs():
    def f(x):
        return _Frozen(x + 1, x.relu()), types.SimpleNamespace(a=x * 3, n=2, d={"k": x - 1})

    def check(r, x):
        t = torch.tensor(x)
        fr, ns = r
        assert type(fr) is _Frozen and type(ns) is types.SimpleNamespace and ns.n == 2
        np.testing.assert_allclose(fr.y.numpy(), (t + 1).numpy())
        np.testing.assert_allclose(fr.z.numpy(), t.relu().numpy())
        np.testing.assert_allclose(ns.a.numpy(), (t * 3).numpy())
        np.testing.assert_allclose(ns.d["k"].numpy(), (t - 1).numpy())
    _check_calls(f, check)


def test_dataclass_gradients_match_torch():
    w = tl.tensor(np.linspace(-1, 1, 3), requires_grad=True)
    wt = torch.tensor(np.linspace(-1, 1, 3), requires_grad=True)

    def f(x):
        loss = (x * w).tanh().sum()
        loss.backward()
        return _Frozen(loss.detach(), w.grad.clone())
    g = tl.function(f)
    for i in range(4):
        x = np.random.default_rng(i).standard_normal((2, 3))
        w.grad = None
        wt.grad = None
        r = g(tl.tensor(x))
        lt = (torch.tensor(x) * wt).tanh().sum()
        lt.backward()
        np.testing.assert_allclose(r.y.numpy(), lt.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(r.z.numpy(), wt.grad.numpy(), rtol=1e-12)


def test_dict_subclass_outputs_keep_their_type():
    class MyDict(dict):
        pass

    def f(x):
        od = collections.OrderedDict(b=x * 2, a=x.sum())
        dd = collections.defaultdict(list, y=x + 1)
        md = MyDict(z=x - 1)
        md.note = "kept"
        return od, dd, md

    def check(r, x):
        t = torch.tensor(x)
        od, dd, md = r
        assert type(od) is collections.OrderedDict and list(od) == ["b", "a"]
        assert type(dd) is collections.defaultdict and dd.default_factory is list
        assert type(md) is MyDict and md.note == "kept"
        np.testing.assert_allclose(od["b"].numpy(), (t * 2).numpy())
        np.testing.assert_allclose(od["a"].numpy(), t.sum().numpy())
        np.testing.assert_allclose(dd["y"].numpy(), (t + 1).numpy())
        np.testing.assert_allclose(md["z"].numpy(), (t - 1).numpy())
    _check_calls(f, check)


def test_ordered_dict_output_survives_save_graph(tmp_path):
    g = tl.function(lambda x: collections.OrderedDict(b=x * 2, a=x + 1))
    g(tl.ones(2))
    path = str(tmp_path / "od.tlg")
    tl.save_graph(g, path)
    r = tl.load_graph(path)(tl.full((2,), 3.0))
    assert type(r) is collections.OrderedDict and list(r) == ["b", "a"]
    assert r["b"].tolist() == [6.0, 6.0] and r["a"].tolist() == [4.0, 4.0]


def test_dataclass_output_replays_and_save_graph_refuses_it(tmp_path):
    g = tl.function(lambda x: _Frozen(x * 2, x))
    for i in range(3):
        r = g(tl.full((2,), float(i)))
        assert r.y.tolist() == [2.0 * i] * 2 and r.z.tolist() == [float(i)] * 2
    with pytest.raises(ValueError, match="_Frozen"):
        tl.save_graph(g, str(tmp_path / "dc.tlg"))


class _Holder:
    def __init__(self, y):
        self.y = y


def test_opaque_object_with_call_tensors_is_refused():
    g = tl.function(lambda x: _Holder(x * 2))
    with pytest.raises(CaptureError, match="_Holder"):
        g(tl.ones(2))
    # an argument held by an object would be the first call's too
    with pytest.raises(CaptureError, match="_Holder"):
        tl.function(lambda x: [_Holder(x)])(tl.ones(2))
    # objects holding only state (or no tensors) are the same on every call: kept as they are
    w = tl.ones(2)
    holder = _Holder(w)
    g = tl.function(lambda x: (x * 2, holder, _Holder(3)))
    for i in range(3):
        y, h, plain = g(tl.full((2,), float(i)))
        assert h is holder and plain.y == 3 and y.tolist() == [2.0 * i] * 2


# --- optimizer state created inside a tl.capture block ------------------------------------
def _mlp_data():
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((4, 5)) * 0.5, rng.standard_normal(4) * 0.1
    w2, b2 = rng.standard_normal((3, 4)) * 0.5, rng.standard_normal(3) * 0.1
    xs = [rng.standard_normal((8, 5)) for _ in range(5)]
    ys = [rng.integers(0, 3, 8) for _ in range(5)]
    return (w1, b1, w2, b2), xs, ys


OPTS = {
    "sgd_momentum": (lambda p: tl.optim.SGD(p, lr=0.1, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd_dampening": (lambda p: tl.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3),
                      lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3)),
    "adam": (lambda p: tl.optim.Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
    "adamw": (lambda p: tl.optim.AdamW(p, lr=0.05, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1)),
}


def _torch_steps(init, xs, ys, make, n):
    ps = [torch.tensor(a, requires_grad=True) for a in init]
    opt = make(ps)
    losses = []
    for x, y in list(zip(xs, ys))[:n]:
        opt.zero_grad()
        h = torch.tanh(torch.tensor(x) @ ps[0].T + ps[1])
        loss = torch.nn.functional.cross_entropy(h @ ps[2].T + ps[3], torch.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return ps, losses


@pytest.mark.parametrize("name", sorted(OPTS))
def test_capture_block_first_step_carries_optimizer_state(name):
    init, xs, ys = _mlp_data()
    ps = [tl.tensor(a, requires_grad=True) for a in init]
    opt = OPTS[name][0](ps)
    assert not opt.state      # never stepped: the state is made inside the block
    x, y = tl.tensor(xs[0]), tl.tensor(ys[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a tensorlib optimizer is primed: no warning
        with tl.capture(x, y) as g:
            opt.zero_grad()
            h = (x @ ps[0].T + ps[1]).tanh()
            loss = F.cross_entropy(h @ ps[2].T + ps[3], y)
            loss.backward()
            opt.step()
    g.set_outputs(loss)
    losses = [loss.item()]
    for xb, yb in zip(xs[1:], ys[1:]):
        losses.append(g.run({x: tl.tensor(xb), y: tl.tensor(yb)}).item())
    pt, lt = _torch_steps(init, xs, ys, OPTS[name][1], len(xs))
    np.testing.assert_allclose(losses, lt, rtol=1e-9, atol=1e-12)
    for p, q in zip(ps, pt):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-8,
                                   atol=1e-10)
    # the optimizer's state is the graph's, advanced by every run
    st = opt.state[ps[0]]
    if "step" in st:
        assert float(st["step"].item()) == len(xs)


def test_capture_block_unprimable_optimizer_warns():
    class MyOpt(tl.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

        def _update(self, group):
            for p in group["params"]:
                st = self.state.setdefault(p, {})
                if "buf" not in st:
                    st["buf"] = p.grad.clone()
                else:
                    st["buf"].mul_(0.5).add_(p.grad)
                p.sub_(st["buf"] * group["lr"])

    w = tl.tensor([1.0, 2.0], requires_grad=True)
    opt = MyOpt([w])
    x = tl.ones(2)
    with pytest.warns(UserWarning, match="MyOpt.*first step"):
        with tl.capture(x):
            opt.zero_grad()
            (w * x).sum().backward()
            opt.step()


def test_data_parallel_cold_capture_matches_full_batch():
    init, xs, ys = _mlp_data()
    ps = [tl.tensor(a, requires_grad=True) for a in init]
    opt = tl.optim.SGD(ps, lr=0.1, momentum=0.9)
    x, y = tl.tensor(xs[0][:4]), tl.tensor(ys[0][:4])
    with tl.capture(x, y) as g:     # the docstring's pattern, on a fresh optimizer
        opt.zero_grad()
        h = (x @ ps[0].T + ps[1]).tanh()
        loss = F.cross_entropy(h @ ps[2].T + ps[3], y)
        loss.backward()
        opt.step()
    g.set_outputs(loss)
    # the capture itself took a step on the first half batch: undo it for the comparison
    for p, a in zip(ps, init):
        p.data.copy_(tl.tensor(a))
    for st in opt.state.values():
        st["momentum_buffer"].zero_()
    dp = tl.graph.data_parallel(g, ["cpu:0", "cpu:1"])
    losses = [dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)}).item()
              for xb, yb in zip(xs[:4], ys[:4])]
    pt, lt = _torch_steps(init, xs, ys, OPTS["sgd_momentum"][1], 4)
    np.testing.assert_allclose(losses, lt, rtol=1e-9)
    for p, q in zip(ps, pt):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-8,
                                   atol=1e-10)
