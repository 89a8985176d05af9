"""Fixes from the CV porting trial: tl.function(model) / tl.function(model.forward) guard the
module's own state, DataLoader workers seed np.random and random (and take worker_init_fn),
ONNX export takes torch-style dynamic_axes naming outputs, tl.load recognises PyTorch
files."""
import functools
import random
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.data import DataLoader, Dataset
from tensorlib.graph import signature

nn = tl.nn


# --- tl.function of a Module, of a bound method -------------------------------------------
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.scale = 1.0

    def forward(self, x):
        x = self.bn(self.conv(x)).relu().mean((2, 3))
        return self.fc(x) * self.scale


class _Decorated(_Net):
    @tl.function
    def forward(self, x):
        x = self.bn(self.conv(x)).relu().mean((2, 3))
        return self.fc(x) * self.scale


def _eager(m, x):
    """The module's own forward, run eagerly (also for _Decorated)."""
    return _Net.forward(m, x)


_WRAPS = {
    "module": lambda m: tl.function(m),
    "bound method": lambda m: tl.function(m.forward),
    "partial": lambda m: tl.function(functools.partial(_Net.__call__, m)),
    "tl.function of a module": lambda m: tl.function(tl.function(m)),
    "decorated method": lambda m: m,
}


@pytest.mark.parametrize("how", list(_WRAPS))
def test_function_of_a_module_follows_its_mode_attributes_and_submodules(how):
    """tl.function(model) replayed the graph traced first after model.train(), a changed
    attribute or a replaced submodule (torch.compile(model)'s translation)."""
    tl.manual_seed(0)
    m = (_Decorated if how == "decorated method" else _Net)()
    f = _WRAPS[how](m)
    x = tl.randn(4, 3, 6, 6)

    def check():
        with tl.no_grad():
            want = _eager(m, x).numpy()
            for _ in range(2):      # the second call replays
                np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5, atol=1e-6)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.eval()
        check()
        m.train()                   # BatchNorm: batch statistics now (and stats updates)
        check()
        m.eval()
        check()
        m.scale = 3.0               # a Python attribute forward reads
        check()
        m.fc = nn.Linear(4, 2)      # a replaced submodule
        check()


def test_function_of_a_module_whose_attributes_share_the_wrappers_names():
    """tl.function copied the module's __dict__ onto itself: an attribute named ``fn`` (or
    ``max_cached``...) replaced the function it runs."""
    class M(nn.Module):
        """M's doc."""

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.fn = tl.tanh
            self.max_cached = 0

        def forward(self, x):
            return self.fn(self.lin(x)) + 100

    m = M()
    f = tl.function(m)
    x = tl.randn(2, 3)
    with tl.no_grad():
        np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6)
        np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert f.fn is m and f.max_cached == 8 and f.__doc__ == "M's doc." and f.__wrapped__ is m


def test_retrace_reason_names_the_module_state():
    m = _Net().eval()
    f = tl.function(m)
    with tl.no_grad():
        f(tl.randn(2, 3, 4, 4))
        m.train()
        f(tl.randn(2, 3, 4, 4))
    assert f.trace_count == 2
    assert "training changed from False to True" in f.retrace_reasons[-1]
    assert "self:_Net" in f.retrace_reasons[-1]


def test_decorated_method_keeps_one_graph_per_instance_state():
    """One tl.function shared by the class: the instance is an argument (key: its identity;
    guards: its state)."""
    tl.manual_seed(0)
    a, b = _Decorated().eval(), _Decorated().eval()
    x = tl.randn(2, 3, 4, 4)
    with tl.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")     # traces counted over every instance of the class
        np.testing.assert_allclose(a(x).numpy(), _eager(a, x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b(x).numpy(), _eager(b, x).numpy(), rtol=1e-5, atol=1e-6)
        b.scale = 2.0
        np.testing.assert_allclose(a(x).numpy(), _eager(a, x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b(x).numpy(), _eager(b, x).numpy(), rtol=1e-5, atol=1e-6)


def test_guard_check_does_not_walk_the_state_on_a_replay(monkeypatch):
    """The per-call guard is a compiled check of flat tuples: replaying walks nothing."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    f = tl.function(model)
    x = tl.randn(3, 8)
    with tl.no_grad():
        f(x)
        calls = []
        real = signature._describe
        monkeypatch.setattr(signature, "_describe", lambda *a: calls.append(1) or real(*a))
        for _ in range(5):
            f(x)
        assert calls == [] and f.trace_count == 1
        model.scale = 2.0          # a new attribute: the check fails, the walk says why
        f(x)
    assert f.trace_count == 2 and calls
    assert "state reachable" in f.retrace_reasons[-1] or "scale" in f.retrace_reasons[-1]


class _Box:
    pass


def _mutations():
    """(name, make the state, change it in place or None for a same-state rewrite)."""
    def setattr_equal(s):
        s.box.lr = float("0.1")          # a new float object, the same value

    def reorder(s):
        s.od.move_to_end("a")

    def resize(s):
        s.arr.shape = (3, 2)

    def grad(s):
        s.t.grad = tl.ones(2, 3)

    def rg(s):
        s.t.requires_grad_(True)

    def replace_tensor(s):
        s.box.w = tl.zeros(2)

    def list_item(s):
        s.items[1] = "c"

    def list_equal(s):
        s.items[0] = int("1")

    def dict_key(s):
        s.d["new"] = 1

    def dict_del_readd(s):
        v = s.d.pop("k")
        s.d["k"] = v

    def set_add(s):
        s.st.add(3)

    def deep(s):
        s.box.inner.inner.flag = True

    def dict_swap_equal(s):
        s.box.__dict__ = dict(s.box.__dict__)

    def data_swap(s):
        s.t.data = tl.zeros(3, 2)

    return [("equal float", setattr_equal, False), ("OrderedDict order", reorder, True),
            ("ndarray shape", resize, True), (".grad set", grad, True),
            ("requires_grad", rg, True), ("tensor replaced", replace_tensor, True),
            ("list item", list_item, True), ("list equal int", list_equal, False),
            ("dict key", dict_key, True), ("dict key re-added", dict_del_readd, False),
            ("set grows", set_add, True), ("deep attribute", deep, True),
            ("__dict__ swapped for an equal one", dict_swap_equal, False),
            ("tensor data of another shape", data_swap, True)]


@pytest.mark.parametrize("name,change,differs", _mutations(), ids=[m[0] for m in _mutations()])
def test_the_compiled_guard_agrees_with_the_walk(name, change, differs):
    from collections import OrderedDict

    class S:
        pass

    s = S()
    s.box = _Box()
    s.box.lr = 0.1
    s.box.w = tl.ones(2)
    s.box.inner = _Box()
    s.box.inner.inner = _Box()
    s.box.inner.inner.flag = False
    s.od = OrderedDict(a=1, b=2)
    s.arr = np.zeros(6)
    s.t = tl.ones(2, 3)
    s.items = [1, "b"]
    s.d = {"k": [1, 2]}
    s.st = {1, 2}
    g = signature.Guards(lambda: None, [s])
    assert g.plan is not None and g.check() is None
    change(s)
    walked_same = g._take() == g.snapshot
    assert walked_same == (not differs)
    assert (g.check() is None) == (not differs)
    if not differs:         # the plan was renewed: the next check passes the fast way
        assert signature._holds(g.plan, g.roots)


# --- DataLoader workers ---------------------------------------------------------------------
class _NumpyAug(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = tl.data.get_worker_info()
        return np.array([np.random.randint(0, 1 << 30), random.randint(0, 1 << 30),
                         -1 if info is None else info.id, _INIT_ID], np.int64)


_INIT_ID = -1


def _record_init(worker_id):
    global _INIT_ID
    _INIT_ID = 100 + worker_id


def _epochs(loader, n=2):
    return [np.concatenate([b.numpy() for b in loader]) for _ in range(n)]


def test_workers_seed_numpy_and_random_per_batch_and_epoch():
    tl.manual_seed(0)
    np.random.seed(0)
    loader = DataLoader(_NumpyAug(), batch_size=2, num_workers=2)
    e0, e1 = _epochs(loader)
    both = np.concatenate([e0, e1])
    assert len(set(both[:, 0].tolist())) == 16      # np.random: no repeats across workers,
    assert len(set(both[:, 1].tolist())) == 16      # batches or epochs; random too
    tl.manual_seed(0)
    again = np.concatenate(_epochs(loader))
    np.testing.assert_array_equal(again[:, :2], both[:, :2])     # reproducible after a seed


def test_worker_init_fn_and_get_worker_info():
    assert tl.data.get_worker_info() is None
    rows = np.concatenate([b.numpy() for b in DataLoader(_NumpyAug(), batch_size=2,
                                                          num_workers=2,
                                                          worker_init_fn=_record_init)])
    ids = rows[:, 2]
    assert set(ids.tolist()) <= {0, 1} and (rows[:, 3] == 100 + ids).all()
    assert tl.data.get_worker_info() is None
    with pytest.raises(TypeError, match="worker_init_fn"):
        DataLoader(_NumpyAug(), num_workers=2, worker_init_fn=3)


# --- ONNX export: dynamic_axes naming outputs --------------------------------------------
def _cnn():
    tl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


@pytest.mark.parametrize("out_axes", [{0: "batch"}, [0]])
def test_onnx_dynamic_axes_may_name_outputs(tmp_path, out_axes):
    onnx = pytest.importorskip("onnx")
    m = _cnn()
    p = tmp_path / "m.onnx"
    tl.onnx.export(m, (tl.randn(1, 3, 8, 8),), p, input_names=["images"],
                   output_names=["logits"],
                   dynamic_axes={"images": {0: "batch"}, "logits": out_axes})
    model = onnx.load(str(p))
    assert _dims(model.graph.input[0]) == ["batch", 3, 8, 8]
    out = _dims(model.graph.output[0])
    assert isinstance(out[0], str) and out[0] and out[1] == 4
    if isinstance(out_axes, dict):
        assert out[0] == "batch"
    ort = pytest.importorskip("onnxruntime")
    x = np.random.randn(3, 3, 8, 8).astype(np.float32)
    (got,) = ort.InferenceSession(str(p)).run(None, {"images": x})
    with tl.no_grad():
        np.testing.assert_allclose(got, m(tl.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_dynamic_axes_unknown_names_and_fixed_output_axes_say_why(tmp_path):
    pytest.importorskip("onnx")
    m = _cnn()
    kw = dict(input_names=["images"], output_names=["logits"])
    x = tl.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"'image'.*did you mean 'images'.*\['images'\].*"
                                         r"\['logits'\]"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"image": {0: "b"}}, **kw)
    with pytest.raises(ValueError, match=r"'logit'.*neither an input nor an output"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"logit": [0]}, **kw)
    # default names: output0
    with pytest.raises(ValueError, match=r"'out0'.*\['input0'\].*\['output0'\]"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"input0": [0], "out0": [0]})
    tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"input0": [0], "output0": [0]})
    with pytest.raises(ValueError, match="axis 1 of output 'logits'.*fixed size 4"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx",
                       dynamic_axes={"images": [0], "logits": {1: "c"}}, **kw)
    with pytest.raises(ValueError, match="axis 0 of output 'logits'.*none"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"logits": [0]}, **kw)
    with pytest.raises(ValueError, match="axis 4, but the input has 4 dims"):
        tl.onnx.export(m, (x,), tmp_path / "a.onnx", dynamic_axes={"images": [4]}, **kw)


# --- tl.load of a PyTorch file --------------------------------------------------------------
def test_load_recognises_pytorch_and_numpy_files(tmp_path):
    torch = pytest.importorskip("torch")
    sd = torch.nn.Linear(3, 2).state_dict()
    torch.save(sd, tmp_path / "new.pth")
    torch.save(sd, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    for name, fmt in (("new.pth", "zip format"), ("old.pth", "legacy pickle format")):
        with pytest.raises(tl.io.CheckpointError,
                           match=rf"PyTorch file \(torch.save's {fmt}\).*never unpickles.*"
                                 r"load_state_dict\(torch.load"):
            tl.load(tmp_path / name)
    lin = nn.Linear(3, 2)
    lin.load_state_dict(torch.load(tmp_path / "new.pth"))   # the advice works
    np.testing.assert_array_equal(lin.weight.numpy(), sd["weight"].numpy())
    np.savez(tmp_path / "a.npz", a=np.ones(2))
    with pytest.raises(tl.io.CheckpointError, match="NumPy .npz archive.*np.load"):
        tl.load(tmp_path / "a.npz")
    (tmp_path / "junk.bin").write_bytes(b"\xff" * 32)
    with pytest.raises(tl.io.CheckpointError, match="implausibly large"):
        tl.load(tmp_path / "junk.bin")
    tl.save({"w": tl.ones(2)}, tmp_path / "ok.safetensors")
    assert tl.load(tmp_path / "ok.safetensors")["w"].numpy().tolist() == [1.0, 1.0]


def test_variables_of_a_wrapped_module_are_named_by_their_path():
    class Net(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tl.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x).relu()
    f = tl.function(Net())
    with tl.no_grad():
        f(tl.randn(4, 3))
    names = [n.name for n in f.graphs[0].nodes if n.op == "variable"]
    assert names == ["net.fc.weight", "net.fc.bias"]
