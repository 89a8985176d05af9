"""The native graph file: round trips (inference and training steps), a fresh process
with no model code, and hostile/corrupt files (clear errors, never a crash), fuzzed."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.export import GraphFileError

ROOT = Path(__file__).resolve().parents[2]


def _mlp():
    tl.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _saved_mlp(tmp_path) -> tuple[Path, object]:
    m = _mlp()
    f = tl.function(lambda x: F.softmax(m(x), -1), input_signature=[tl.TensorSpec((None, 4))])
    f(tl.randn(2, 4))
    path = tmp_path / "mlp.tlg"
    tl.save_graph(f, path)
    return path, m


def test_inference_graph_round_trip(tmp_path):
    path, m = _saved_mlp(tmp_path)
    g = tl.load_graph(path)
    assert g.graph.inputs[0].shape == (None, 4)
    for n in (1, 6):
        x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        np.testing.assert_array_equal(g(x).numpy(), F.softmax(m(tl.tensor(x)), -1).numpy())
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["graph.json", "weights.safetensors"]
        doc = json.loads(z.read("graph.json"))
    assert doc["version"] == 1 and doc["signature"]["inputs"][0]["shape"] == [None, 4]
    assert all(n["device"] == "cpu" for n in doc["graph"]["nodes"])
    with pytest.raises(ValueError, match="expects"):
        g(np.zeros((2, 5), np.float32))


def test_graph_saved_on_a_gpu_loads_where_asked(tmp_path):
    # a file whose nodes say cuda:0: device="cpu" moves nodes, constants and weights; with
    # no device the graph goes where it was saved, so without a GPU that is a clear error
    m = _mlp()
    x = tl.randn(5, 4)
    with tl.capture(x) as g:
        y = F.softmax(m(x) * 2.0, -1)
    g.set_outputs(y)
    for n in g.nodes:
        n.device = "cuda:0"
    path = tmp_path / "gpu.tlg"
    tl.save_graph(g, path)
    gm = tl.load_graph(path, device="cpu")
    assert {n.device for n in gm.graph.nodes} == {"cpu"}
    assert all(t.device == tl.device("cpu") for t in gm.parameters())
    np.testing.assert_allclose(gm(x).numpy(), y.numpy(), rtol=1e-6)
    if not tl.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            tl.load_graph(path)
    params = gm.parameters()
    assert gm.to("cpu") is gm and gm.parameters() == params     # identity kept


def test_training_step_round_trip(tmp_path):
    m = _mlp()
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    @tl.function
    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((6, 4)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 3, 6))
    step(x, y)
    path = tmp_path / "step.tlg"
    tl.save_graph(step, path)
    g = tl.load_graph(path)
    assert g.graph.assigns, "the update must travel with the file"
    eager = [float(step(x, y).item()) for _ in range(4)]
    loaded = [float(g(x, y).item()) for _ in range(4)]
    np.testing.assert_allclose(loaded, eager, rtol=1e-6)
    assert loaded[-1] < loaded[0]
    for k, p in m.named_parameters():          # the variables moved exactly as the model's
        np.testing.assert_allclose(g[k].numpy(), p.numpy(), rtol=1e-6, atol=1e-7)


def test_loaded_graph_is_trainable(tmp_path):
    path, _ = _saved_mlp(tmp_path)
    g = tl.load_graph(path)
    params = g.parameters()
    assert params and all(p.requires_grad for p in params)
    x = tl.randn(5, 4)
    loss = (g(x) ** 2).sum()
    loss.backward()
    assert all(p.grad is not None for p in params)


def test_fresh_process_runs_it_without_model_code(tmp_path):
    path, m = _saved_mlp(tmp_path)
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, tensorlib as tl\n"
            f"g = tl.load_graph({str(path)!r})\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, g(np.load({str(tmp_path / 'x.npy')!r}))"
            ".numpy())\n"
            "assert not [k for k in sys.modules if k.startswith(('tests', 'test_'))]\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=_env())
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"),
                                  F.softmax(m(tl.tensor(x)), -1).numpy())


def _env():
    import os
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- hostile and broken files -------------------------------------------------------------
def _parts(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("graph.json")), z.read("weights.safetensors")


def _write(path, members: dict, compress=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for k, v in members.items():
            z.writestr(k, v if isinstance(v, bytes) else json.dumps(v))
    path.write_bytes(buf.getvalue())
    return path


def _edited(tmp_path, edit, name="bad.tlg"):
    src, _ = _saved_mlp(tmp_path)
    doc, w = _parts(src)
    doc2 = edit(doc)
    return _write(tmp_path / name, {"graph.json": doc2 if doc2 is not None else doc,
                                    "weights.safetensors": w})


def _node(doc, op):
    return next(n for n in doc["graph"]["nodes"] if n["op"] == op)


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.update(version=99), "unknown format version 99"),
    (lambda d: d.update(format="other"), "format tag"),
    (lambda d: _node(d, "linear").update(op="os.system"), "unknown op"),
    (lambda d: _node(d, "linear").update(op="__import__"), "unknown op"),
    (lambda d: d["graph"]["values"][0].update(shape=[2 ** 40, 2 ** 30]), "invalid shape|elements"),
    (lambda d: d["graph"]["values"][0].update(dtype="object"), "dtype"),
    (lambda d: _node(d, "softmax")["attrs"].update(axis={"__dtype__": "O"}), "not allowed"),
    (lambda d: _node(d, "linear")["inputs"].reverse(), "linear"),
    (lambda d: _node(d, "linear").update(inputs=[12345]), "before it is made"),
    (lambda d: d["owners"][0].update(shape=[99, 99]), "weights hold"),
    (lambda d: d["owners"][0].update(name="nope"), "lack the variable"),
    (lambda d: d["graph"].update(nodes="x"), "must be a list"),
    (lambda d: d.update(bind={"1": [999, "data"]}), "binding"),
])
def test_hostile_documents_are_rejected(tmp_path, edit, match):
    path = _edited(tmp_path, lambda d: (edit(d), d)[1])
    with pytest.raises(GraphFileError, match=match):
        tl.load_graph(path)


def test_conv_geometry_is_checked(tmp_path):
    tl.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3)
    f = tl.function(lambda x: F.max_pool2d(conv(x), 2))
    f(tl.randn(1, 1, 8, 8))
    src = tmp_path / "conv.tlg"
    tl.save_graph(f, src)
    for key, val in (("stride", {"__tuple__": [0, 1]}), ("padding", {"__tuple__": [-5, 0, 0, 0]}),
                     ("groups", 0)):
        doc, w = _parts(src)
        _node(doc, "conv2d")["attrs"][key] = val
        with pytest.raises(GraphFileError, match="conv2d"):
            tl.load_graph(_write(tmp_path / "c.tlg", {"graph.json": doc,
                                                      "weights.safetensors": w}))
    doc, w = _parts(src)
    _node(doc, "max_pool2d")["attrs"]["ceil_mode"] = 3
    with pytest.raises(GraphFileError, match="max_pool2d: ceil_mode must be a bool"):
        tl.load_graph(_write(tmp_path / "p.tlg", {"graph.json": doc, "weights.safetensors": w}))
    # files written before the pools took ceil_mode held the output size: still read, and a
    # size that fits neither rounding is refused
    x = tl.randn(1, 1, 8, 8)
    for out_hw, ok in (([3, 3], True), ([40, 40], False)):
        doc, w = _parts(src)
        attrs = _node(doc, "max_pool2d")["attrs"]
        del attrs["ceil_mode"]
        attrs["out_hw"] = {"__tuple__": out_hw}
        path = _write(tmp_path / "old.tlg", {"graph.json": doc, "weights.safetensors": w})
        if ok:
            np.testing.assert_array_equal(tl.load_graph(path)(x).numpy(), f(x).numpy())
        else:
            with pytest.raises(GraphFileError, match="max_pool2d: output size"):
                tl.load_graph(path)


def test_archive_level_attacks(tmp_path):
    src, _ = _saved_mlp(tmp_path)
    doc, w = _parts(src)
    data = src.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "not zip": b"\x08\x00\x00\x00\x00\x00\x00\x00{}" + b"\x00" * 20,
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.tlg"
        p.write_bytes(blob)
        with pytest.raises(GraphFileError):
            tl.load_graph(p)
    # path traversal and extra members: rejected, nothing written outside
    p = _write(tmp_path / "trav.tlg", {"graph.json": doc, "weights.safetensors": w,
                                       "../../evil.py": b"print('owned')"})
    with pytest.raises(GraphFileError, match="exactly"):
        tl.load_graph(p)
    assert not (tmp_path.parent.parent / "evil.py").exists()
    # a zip bomb: a member that inflates far past the limit stops at the limit
    import tensorlib.export as ex
    bomb = _write(tmp_path / "bomb.tlg", {"graph.json": b" " * (ex.MAX_JSON_BYTES + 10),
                                          "weights.safetensors": w})
    with pytest.raises(GraphFileError, match="limit|inflates"):
        tl.load_graph(bomb)
    # corrupt weights: bad offsets and wrong dtype codes
    n = int.from_bytes(w[:8], "little")
    header = json.loads(w[8:8 + n])
    k = next(k for k in header if k != "__metadata__")
    header[k]["data_offsets"] = [0, 10 ** 12]
    hb = json.dumps(header).encode()
    bad = len(hb).to_bytes(8, "little") + hb + w[8 + n:]
    with pytest.raises(GraphFileError, match="weights"):
        tl.load_graph(_write(tmp_path / "off.tlg", {"graph.json": doc,
                                                    "weights.safetensors": bad}))
    header[k]["data_offsets"] = [0, 4]
    header[k]["dtype"] = "PICKLE"
    hb = json.dumps(header).encode()
    bad = len(hb).to_bytes(8, "little") + hb + w[8 + n:]
    with pytest.raises(GraphFileError, match="dtype"):
        tl.load_graph(_write(tmp_path / "dt.tlg", {"graph.json": doc,
                                                   "weights.safetensors": bad}))


# --- fuzz --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    m = _mlp()
    conv = nn.Conv2d(1, 2, 3)
    f = tl.function(lambda x: m(F.max_pool2d(conv(x), 2).reshape(1, -1)[:, :4]))
    f(tl.randn(1, 1, 6, 6))
    path = tmp / "seed.tlg"
    tl.save_graph(f, path)
    return path.read_bytes()


_SAFE = (GraphFileError,)


def _try_load_and_run(path):
    try:
        g = tl.load_graph(path)
    except _SAFE:
        return
    try:   # whatever loads must run or fail with an ordinary Python error
        with tl.no_grad():
            g(*[np.ones([d or 1 for d in v.shape], v.dtype) for v in g.graph.inputs])
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError, ArithmeticError,
            MemoryError):
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_bytes(valid_file, data, tmp_path_factory):
    blob = bytearray(valid_file)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[i] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del blob[i:i + data.draw(st.integers(1, 64))]
        else:
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    p = tmp_path_factory.mktemp("fz") / "f.tlg"
    p.write_bytes(bytes(blob))
    _try_load_and_run(p)


_json = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40)
                     | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                            c, max_size=4),
                     max_leaves=10)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_document(valid_file, data, tmp_path_factory):
    with zipfile.ZipFile(io.BytesIO(valid_file)) as z:
        doc, w = json.loads(z.read("graph.json")), z.read("weights.safetensors")
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        p = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for k in p[:-1]:
                parent = parent[k]
            parent[p[-1]] = data.draw(_json)
        except (KeyError, IndexError, TypeError):
            continue
    path = _write(tmp_path_factory.mktemp("fd") / "f.tlg",
                  {"graph.json": doc, "weights.safetensors": w})
    _try_load_and_run(path)


def test_dict_outputs_keep_their_names(tmp_path):
    """A function returning {"logits": ..., "probs": ...}: the saved graph returns the dict,
    its signature and the ONNX outputs carry the keys."""
    lin = tl.nn.Linear(3, 2).eval()
    f = tl.function(lambda x: {"logits": lin(x), "probs": tl.nn.functional.softmax(lin(x), -1)},
                    input_signature=[tl.TensorSpec((None, 3))])
    x = tl.randn(4, 3)
    with tl.no_grad():
        want = f(x)
    tl.save_graph(f, tmp_path / "d.tlg")
    got = tl.load_graph(tmp_path / "d.tlg")(x.numpy())
    assert isinstance(got, dict) and list(got) == ["logits", "probs"]
    np.testing.assert_allclose(got["probs"].numpy(), want["probs"].numpy(), rtol=1e-6)
    assert [s["name"] for s in tl.load_graph(tmp_path / "d.tlg").signature["outputs"]] == [
        "logits", "probs"]
    onnx = pytest.importorskip("onnx")
    f.graphs[0].to_onnx(tmp_path / "d.onnx")
    assert [o.name for o in onnx.load(str(tmp_path / "d.onnx")).graph.output] == ["logits",
                                                                                   "probs"]
