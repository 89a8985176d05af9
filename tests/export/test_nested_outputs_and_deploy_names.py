"""Trial 17 (deployment engineer, RL item 5): nested graph outputs, Module input names,
deep checkpoints, NumPy scalars, CLI dtype/runtime/inspect, export names, ONNX Slice with
run-time bounds, and no false RNG warning for tensorlib draws with generator=."""
from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
from tensorlib.export import GraphFileError
from tensorlib.io import CheckpointError


def _same(a, b):
    if isinstance(a, tl.Tensor):
        assert isinstance(b, tl.Tensor)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


# --- F2: nested outputs survive save_graph / load_graph -------------------------------------
NESTED = [
    lambda x: {"a": (x * 2, x * 3), "b": x},
    lambda x: ({"a": x * 2}, x + 1),
    lambda x: [x * 2, None, (x + 1,), {1: x - 1, None: [x * 5]}, 3, "s", float("nan")],
    lambda x: (x * 2,),
    lambda x: {"a": x * 2},
    lambda x: (x, x * 2),
    lambda x: x + 1,
]


@pytest.mark.parametrize("k", range(len(NESTED)))
def test_nested_outputs_round_trip(tmp_path, k):
    x = tl.randn(2, 4)
    f = tl.function(NESTED[k])
    with tl.no_grad():
        live = f(x)
    tl.save_graph(f, tmp_path / "s.tlg")
    got = tl.load_graph(tmp_path / "s.tlg")(x.numpy())
    _same(live, got)


def test_nested_output_unstorable_value_is_refused(tmp_path):
    f = tl.function(lambda x: (x * 2, np.zeros(2)))
    with tl.no_grad():
        f(tl.randn(2))
    with pytest.raises(ValueError, match=r"save_graph: .*ndarray at out\[1\]"):
        tl.save_graph(f, tmp_path / "s.tlg")


def _rewrite_tree(src, dst, tree):
    with zipfile.ZipFile(src) as zf:
        doc = json.loads(zf.read("graph.json"))
        w = zf.read("weights.safetensors")
    doc["signature"]["tree"] = tree
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("graph.json", json.dumps(doc))
        zf.writestr("weights.safetensors", w)


@pytest.mark.parametrize("tree", [
    {"tuple": [{"t": 0}]},                               # an output left out
    {"tuple": [{"t": 0}, {"t": 0}]},                     # used twice
    {"tuple": [{"t": 0}, {"t": 7}]},                     # out of range
    {"eval": "os.system"},                               # unknown kind
    {"tuple": [{"t": 0}, {"t": 1}, {"v": [1, 2]}]},      # not a plain value
    {"list": [{"t": 0}, {"list": [{"t": 1}]}]} | {"dict": []},   # two kinds in one node
])
def test_hostile_output_tree_is_refused(tmp_path, tree):
    f = tl.function(lambda x: ({"a": x * 2}, x + 1))
    with tl.no_grad():
        f(tl.randn(2))
    tl.save_graph(f, tmp_path / "s.tlg")
    _rewrite_tree(tmp_path / "s.tlg", tmp_path / "bad.tlg", tree)
    with pytest.raises(GraphFileError, match="tree"):
        tl.load_graph(tmp_path / "bad.tlg")


def test_deep_output_tree_is_refused(tmp_path):
    f = tl.function(lambda x: ({"a": x * 2}, x + 1))
    with tl.no_grad():
        f(tl.randn(2))
    tl.save_graph(f, tmp_path / "s.tlg")
    tree: dict = {"t": 1}
    for _ in range(100):
        tree = {"list": [tree]}
    _rewrite_tree(tmp_path / "s.tlg", tmp_path / "bad.tlg", {"tuple": [{"t": 0}, tree]})
    with pytest.raises(GraphFileError, match="too deep"):
        tl.load_graph(tmp_path / "bad.tlg")


# --- F3: tl.function(module) takes forward's parameter names --------------------------------
class _TwoIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)

    def forward(self, x, mask):
        return self.a(x) * mask


def test_module_function_input_names(tmp_path):
    m = _TwoIn().eval()
    f = tl.function(m)
    x, mask = tl.randn(2, 4), tl.ones(2, 3)
    with tl.no_grad():
        ref = f(x, mask)
    tl.save_graph(f, tmp_path / "n.tlg")
    g = tl.load_graph(tmp_path / "n.tlg")
    assert g.input_names == ["x", "mask"]
    with tl.no_grad():
        np.testing.assert_allclose(g(mask=mask.numpy(), x=x.numpy()).numpy(), ref.numpy())
        np.testing.assert_allclose(g(arg0=x, arg1=mask).numpy(), ref.numpy())


# --- F4: deep checkpoints -----------------------------------------------------------------------
def test_load_deep_structure_is_checkpoint_error(tmp_path):
    h = json.dumps({"__metadata__": {"format": "tensorlib",
                                     "tensorlib.structure": "[" * 100000 + "]" * 100000}})
    p = tmp_path / "h.st"
    p.write_bytes(struct.pack("<Q", len(h)) + h.encode())
    with pytest.raises(CheckpointError, match="nested too deeply"):
        tl.load(p)
    raw = ("[" * 100000 + "]" * 100000).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(CheckpointError):
        tl.load(p)


def test_save_500_deep_list_like_torch(tmp_path):
    torch = pytest.importorskip("torch")
    import io

    def nest(leaf, depth=500):
        x = c = []
        for _ in range(depth - 1):
            c.append([])
            c = c[0]
        c.append(leaf)
        return x

    def walk(x):
        depth = 0
        while isinstance(x, list):
            x, depth = x[0], depth + 1
        return x, depth

    tl.save({"x": nest(tl.ones(2))}, tmp_path / "d.st")
    leaf, depth = walk(tl.load(tmp_path / "d.st")["x"])
    assert depth == 500
    # (torch.save's pickler recurses: under pytest's deeper stack it stops short of 500)
    buf = io.BytesIO()
    torch.save({"x": nest(torch.ones(2), 300)}, buf)
    buf.seek(0)
    tl.save({"x": nest(tl.ones(2), 300)}, tmp_path / "e.st")
    assert walk(tl.load(tmp_path / "e.st")["x"])[1] == walk(torch.load(buf)["x"])[1] == 300
    np.testing.assert_array_equal(leaf.numpy(), np.ones(2, np.float32))


def test_save_too_deep_or_cyclic_is_clear(tmp_path):
    x = c = {}
    for _ in range(500):
        c["a"] = {}
        c = c["a"]
    with pytest.raises(ValueError, match="nested too deeply"):
        tl.save({"x": x}, tmp_path / "d.st")
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contain itself"):
        tl.save(loop, tmp_path / "d.st")
    # the limit is the file's (what json.loads reads back in a fresh process), not this
    # process's recursion limit, which a library may have raised (torch._dynamo does)
    import sys
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        with pytest.raises(ValueError, match="nested too deeply"):
            tl.save({"x": x}, tmp_path / "d.st")
    finally:
        sys.setrecursionlimit(old)


# --- F5: NumPy scalars keep their type ----------------------------------------------------------
_NP = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
                       np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_])


@settings(max_examples=40, deadline=None)
@given(_NP, st.integers(0, 100), st.sampled_from([0.0, 1.5, -2.25, float("inf"),
                                                   float("nan")]))
def test_numpy_scalars_round_trip(tmp_path_factory, dt, i, f):
    v = dt(bool(i % 2)) if dt is np.bool_ else dt(i) if np.dtype(dt).kind in "iu" else dt(f)
    p = tmp_path_factory.mktemp("s") / "s.st"
    tl.save({"v": v, "k": {v if np.dtype(dt).kind != "f" else 1: [v]}}, p)
    got = tl.load(p)
    assert type(got["v"]) is type(v)
    assert got["v"].dtype == v.dtype
    assert (got["v"] == v) or (np.isnan(v) and np.isnan(got["v"]))


def test_numpy_scalar_hostile_values(tmp_path):
    for bad in (["I8", 300], ["F32", "x"], ["OBJ", 1], ["BOOL", 1], "x"):
        meta = {"format": "tensorlib",
                "tensorlib.structure": json.dumps({"$scalar": bad})}
        h = json.dumps({"__metadata__": meta}).encode()
        p = tmp_path / "b.st"
        p.write_bytes(struct.pack("<Q", len(h)) + h)
        with pytest.raises(CheckpointError):
            tl.load(p)


def test_numpy_complex_scalar_round_trips(tmp_path):
    # (refused before tensorlib had complex dtypes; now kept, as torch.save keeps it)
    tl.save({"c": np.complex128(1 - 2j)}, tmp_path / "c.st")
    assert tl.load(tmp_path / "c.st")["c"] == 1 - 2j


# --- F5: the CLI ----------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tensorlib", *map(str, args)],
                          capture_output=True, text=True)


def test_cli_dtype_runtime_inspect_and_nested(tmp_path):
    x = tl.randn(2, 4)
    f = tl.function(lambda x: {"a": (x * 2, x * 3), "b": x})
    with tl.no_grad():
        f(x)
    tl.save_graph(f, tmp_path / "s.tlg")
    np.save(tmp_path / "x32.npy", x.numpy())
    np.save(tmp_path / "x64.npy", x.numpy().astype(np.float64))
    r = _cli("run", tmp_path / "s.tlg", "-i", f"x={tmp_path / 'x32.npy'}",
             "-o", tmp_path / "o.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "o.npz") as z:
        assert sorted(z.files) == ["a.0", "a.1", "b"]
        np.testing.assert_allclose(z["a.1"], x.numpy() * 3)
    r = _cli("run", tmp_path / "s.tlg", "-i", f"x={tmp_path / 'x64.npy'}",
             "-o", tmp_path / "o.npz")
    assert r.returncode == 1 and "expects float32, got float64" in r.stderr
    r = _cli("run", tmp_path / "s.tlg", "-i", f"x={tmp_path / 'x32.npy'}",
             "-o", tmp_path / "o.npz", "--runtime", "ort")
    assert r.returncode == 1 and "--runtime ort runs ONNX models" in r.stderr
    tl.save({"w": tl.ones(3), "step": 3}, tmp_path / "ck.st")
    r = _cli("inspect", tmp_path / "ck.st")
    assert r.returncode == 0 and "tensorlib checkpoint" in r.stdout
    assert "w: float32[3]" in r.stdout
    r = _cli("run", tmp_path / "ck.st", "-i", f"x={tmp_path / 'x32.npy'}",
             "-o", tmp_path / "o.npz")
    assert r.returncode == 1 and "not a model graph" in r.stderr


# --- F5: export errors name the state by its state_dict names ------------------------------
def test_export_error_names_state_dict_keys(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Linear(4, 4)
            self.bn1 = nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn1(self.c(x))

    f = tl.function(M())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = f.get_graph(tl.randn(3, 4))
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"bn1\.running_mean") as e:
        tl.onnx.export_graph(g, str(tmp_path / "t.onnx"))
    assert "v0" not in str(e.value)


# --- F1: ONNX Slice with run-time bounds ---------------------------------------------------
class _Pos(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(tl.randn(1, 12, 4, dtype=tl.float64))

    def forward(self, x):
        return x + self.pos[:, :x.shape[1]]


@pytest.mark.parametrize("opset", [13, 17])
def test_onnx_dynamic_slice_reimports(tmp_path, opset):
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    m = _Pos()
    p = tmp_path / "slice.onnx"
    tl.onnx.export(m, (tl.randn(2, 5, 4, dtype=tl.float64),), str(p),
                   dynamic_axes={0: {0: "b", 1: "t"}}, opset=opset)
    g = tl.onnx.load(str(p))
    assert any(n.op == "slice_sized" for n in g.graph.nodes)
    pos_t = torch.tensor(m.pos.numpy(), requires_grad=True)
    for t in (1, 5, 7, 12):
        xn = np.random.default_rng(t).standard_normal((3, t, 4))
        x = tl.tensor(xn, requires_grad=True)
        out = g(x)
        xt = torch.tensor(xn, requires_grad=True)
        ref = xt + pos_t[:, :t]
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
        w = np.random.default_rng(100 + t).standard_normal(ref.shape)
        (out * tl.tensor(w)).sum().backward()
        (ref * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
        gpos = dict(g.named_parameters())
        (name,) = gpos
        np.testing.assert_allclose(gpos[name].grad.numpy(), pos_t.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        g(tl.randn(3, 13, 4, dtype=tl.float64))     # longer than the table: a shape error


# --- RL item 5: no false warning for tensorlib draws with generator= ------------------------
@pytest.mark.parametrize("draw", [
    lambda g: tl.randint(0, 100, (8,), generator=g),
    lambda g: tl.randperm(100, generator=g)[:8],
    lambda g: (tl.rand(8, generator=g) * 100).long(),
])
def test_generator_draw_under_capture_does_not_warn(draw):
    buf = tl.arange(100.0).reshape(100, 1)
    g = tl.Generator().manual_seed(0)
    f = tl.function(lambda b: b[draw(g)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            a, b = f(buf).numpy(), f(buf).numpy()
    assert not np.array_equal(a, b)        # replays draw anew from the stream
    g2 = tl.Generator().manual_seed(0)
    np.testing.assert_array_equal(a, buf[draw(g2)].numpy())
    np.testing.assert_array_equal(b, buf[draw(g2)].numpy())


def test_numpy_generator_under_capture_still_warns():
    rng = np.random.default_rng(0)
    buf = tl.arange(100.0).reshape(100, 1)
    f = tl.function(lambda b: b[tl.tensor(rng.integers(0, 100, 8))])
    with pytest.warns(UserWarning, match="every replay reuses them"):
        with tl.no_grad():
            f(buf)
