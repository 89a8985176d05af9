"""tl.bincount: eager values and dtypes against PyTorch, and capture as the ``bincount``
registry op (``minlength`` bins, a replay check on the values, dynamic input length, ONNX in
onnxruntime, the native graph file)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph.tracer import CaptureError

torch = pytest.importorskip("torch")

INT_DTYPES = ["uint8", "int8", "int16", "int32", "int64"]
W_DTYPES = [None, "float32", "float64", "float16", "int64"]


def _torch_counts(x, w, minlength):
    return torch.bincount(torch.tensor(x), None if w is None else torch.tensor(w),
                          minlength=minlength)


def _check_like_torch(got, x, w, minlength):
    want = _torch_counts(x, w, minlength)
    if x.size == 0 and w is not None:
        # PyTorch 2.13 returns int64 zeros for an empty weighted input; tensorlib keeps the
        # weights' count dtype, which a captured graph must fix before it sees the values
        assert got.dtype == (w.dtype if w.dtype in (np.float32, np.float64) else np.float64)
    else:
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64),
                               rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 30), hi=st.integers(1, 12), minlength=st.integers(0, 15),
       dt=st.sampled_from(INT_DTYPES), wdt=st.sampled_from(W_DTYPES), seed=st.integers(0, 99))
def test_eager_matches_torch(n, hi, minlength, dt, wdt, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, hi, n).astype(dt)
    w = None if wdt is None else rng.uniform(-2, 2, n).astype(wdt) if wdt != "int64" \
        else rng.integers(-3, 4, n)
    got = tl.bincount(tl.tensor(x), None if w is None else tl.tensor(w), minlength=minlength)
    _check_like_torch(got, x, w, minlength)
    assert got.shape == (max(minlength, int(x.max()) + 1 if n else 0),)


@pytest.mark.parametrize("call", [
    lambda L: L.bincount(L.tensor([1, -1])),
    lambda L: L.bincount(L.tensor([[1]])),
    lambda L: L.bincount(L.tensor([1.0, 2.0])),
    lambda L: L.bincount(L.tensor([1, 2]), L.tensor([1.0])),
    lambda L: L.bincount(L.tensor([1, 2]), minlength=-1),
])
def test_eager_errors_like_torch(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(RuntimeError, match="bincount"):
        call(tl)


def test_not_differentiable_like_torch():
    x = np.array([0, 2, 2, 1])
    tw = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="not implemented"):
        torch.bincount(torch.tensor(x), tw).sum().backward()
    w = tl.tensor([1.0, 2.0, 3.0, 4.0], dtype=tl.float64, requires_grad=True)
    out = tl.bincount(tl.tensor(x), w, minlength=4)
    assert not out.requires_grad
    f = tl.function(lambda a, b: tl.bincount(a, b, minlength=4))
    with tl.no_grad():
        assert not f(tl.tensor(x), w).requires_grad
    assert not tl.REGISTRY["bincount"].differentiable


def _cm_fn(lib, C=4):
    def cm(pred, y):
        idx = lib.where(y != 255, y * C + pred, C * C).reshape(-1)
        return lib.bincount(idx, minlength=C * C + 1)[:C * C].reshape(C, C)
    return cm


def test_confusion_matrix_compiles_and_replays():
    """The segmentation trial's confusion matrix under tl.compile and tl.function."""
    for wrap in (tl.compile, tl.function):
        f = wrap(_cm_fn(tl))
        for seed in range(3):
            rng = np.random.default_rng(seed)
            p, y = rng.integers(0, 4, (2, 8, 8)), rng.integers(0, 4, (2, 8, 8))
            y[:, seed] = 255
            want = _cm_fn(torch)(torch.tensor(p), torch.tensor(y)).numpy()
            np.testing.assert_array_equal(f(tl.tensor(p), tl.tensor(y)).numpy(), want)
    assert f.trace_count == 1


@pytest.mark.parametrize("wdt", [None, "float32", "float64", "int32"])
def test_one_trace_replays_other_values(wdt):
    f = tl.function(lambda x, *w: tl.bincount(x, *w, minlength=6))
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.integers(0, 6, 9)
        w = () if wdt is None else (rng.uniform(-1, 1, 9).astype(wdt) if wdt != "int32"
                                    else rng.integers(-5, 5, 9).astype(wdt),)
        got = f(tl.tensor(x), *map(tl.tensor, w))
        _check_like_torch(got, x, w[0] if w else None, 6)
    assert f.trace_count == 1
    g = f.graphs[0]
    assert [n.op for n in g.nodes].count("bincount") == 1


def test_replay_raises_on_values_outside_minlength():
    f = tl.function(lambda x: tl.bincount(x, minlength=5))
    np.testing.assert_array_equal(f(tl.tensor([0, 4, 4])).numpy(), [1, 0, 0, 0, 2])
    with pytest.raises(RuntimeError, match=r"value 5 does not fit the minlength=5 bins.*"
                                           r"at least 6.*outside tl.function"):
        f(tl.tensor([0, 5, 1]))
    with pytest.raises(RuntimeError, match="must not be negative"):
        f(tl.tensor([0, -2, 1]))
    np.testing.assert_array_equal(f(tl.tensor([3, 3, 3])).numpy(), [0, 0, 0, 3, 0])
    assert f.trace_count == 1
    # a trace whose values already exceed minlength raises the same error
    g = tl.function(lambda x: tl.bincount(x, minlength=2))
    with pytest.raises(RuntimeError, match="does not fit the minlength=2 bins"):
        g(tl.tensor([0, 7]))


def test_capture_without_minlength_names_the_fix():
    f = tl.function(lambda x: tl.bincount(x))
    with pytest.raises(CaptureError, match=r"tl\.bincount.*pass minlength"):
        f(tl.tensor([0, 1, 1]))
    with pytest.raises(CaptureError, match="pass minlength"):
        tl.compile(lambda x: tl.bincount(x, minlength=0))(tl.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="bincount.*GiB"):
        tl.function(lambda x: tl.bincount(x, minlength=2 ** 50))(tl.tensor([0, 1]))


def test_dynamic_input_length():
    sig = tl.function(lambda x, w: tl.bincount(x, w, minlength=7),
                      input_signature=[tl.TensorSpec((None,), "int64"),
                                       tl.TensorSpec((None,), "float64")])
    dyn = tl.function(lambda x: tl.bincount(x, minlength=7), dynamic=True)
    rng = np.random.default_rng(2)
    for n in (5, 9, 2, 13):
        x, w = rng.integers(0, 7, n), rng.standard_normal(n)
        _check_like_torch(sig(tl.tensor(x), tl.tensor(w)), x, w, 7)
        _check_like_torch(dyn(tl.tensor(x)), x, None, 7)
    assert sig.trace_count == 1
    assert dyn.trace_count == 1
    for n in (0, 1):    # (dynamic=True traces sizes 0 and 1 apart, whatever the ops)
        x, w = rng.integers(0, 7, n), rng.standard_normal(n)
        _check_like_torch(sig(tl.tensor(x), tl.tensor(w)), x, w, 7)
        _check_like_torch(dyn(tl.tensor(x)), x, None, 7)
    assert sig.trace_count == 1
    with pytest.raises(RuntimeError, match="does not fit"):
        sig(tl.tensor([8]), tl.tensor(np.array([1.0])))


def _graph(fn, *examples, signature=None):
    f = tl.function(fn, input_signature=signature)
    return f.get_graph(*examples)


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_onnx_export_runs_in_onnxruntime(tmp_path, opset, weighted):
    ort = pytest.importorskip("onnxruntime")
    specs = [tl.TensorSpec((None,), "int32")] + \
        ([tl.TensorSpec((None,), "float32")] if weighted else [])
    fn = (lambda x, w: tl.bincount(x, w, minlength=6)) if weighted else \
        (lambda x: tl.bincount(x, minlength=6))
    ex = [tl.tensor(np.array([0, 2, 2], np.int32))] + \
        ([tl.tensor(np.ones(3, np.float32))] if weighted else [])
    g = _graph(fn, *ex, signature=specs)
    path = tmp_path / "bc.onnx"
    g.to_onnx(path, opset=opset)
    import onnx
    ops = {nd.op_type for nd in onnx.load(str(path)).graph.node}
    assert ("ScatterElements" in ops) == (opset >= 16) and ("OneHot" in ops) == (opset < 16)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(3)
    for n in (4, 11, 0):
        x = rng.integers(0, 6, n).astype(np.int32)
        w = rng.uniform(-1, 1, n).astype(np.float32)
        feeds = dict(zip(names, [x, w] if weighted else [x]))
        (got,) = sess.run(None, feeds)
        want = _torch_counts(x, w if weighted else None, 6).numpy()
        assert got.dtype == (np.float32 if weighted else np.int64)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    back = tl.onnx.load(str(path))
    x = rng.integers(0, 6, 8).astype(np.int32)
    w = rng.uniform(-1, 1, 8).astype(np.float32)
    got = back(*([x, w] if weighted else [x]))
    got = got[0] if isinstance(got, (tuple, list)) else got
    np.testing.assert_allclose(np.asarray(got.numpy()), _torch_counts(
        x, w if weighted else None, 6).numpy(), rtol=1e-6, atol=1e-6)


def test_onnx_rule_is_attached():
    g = _graph(lambda x: tl.bincount(x, minlength=3), tl.tensor([0, 1]))
    assert callable(tl.REGISTRY["bincount"].onnx)
    assert "bincount" not in tl.onnx.UNSUPPORTED
    assert any(n.op == "bincount" for n in g.nodes)


def test_graph_file_round_trip(tmp_path):
    f = tl.function(lambda x, w: tl.bincount(x, w, minlength=5) * 2,
                    input_signature=[tl.TensorSpec((None,), "int64"),
                                     tl.TensorSpec((None,), "float64")])
    f(tl.tensor([0, 1, 1]), tl.tensor(np.array([0.5, 1.0, 2.0])))
    path = tmp_path / "bc.tlg"
    tl.save_graph(f, path)
    m = tl.load_graph(path)
    rng = np.random.default_rng(4)
    for n in (3, 10):
        x, w = rng.integers(0, 5, n), rng.standard_normal(n)
        got = m(tl.tensor(x), tl.tensor(w))
        np.testing.assert_allclose(got.numpy(), 2 * _torch_counts(x, w, 5).numpy(),
                                   rtol=1e-12)
        assert got.dtype == tl.float64
    with pytest.raises(RuntimeError, match="does not fit the minlength=5 bins"):
        m(tl.tensor([9]), tl.tensor(np.array([1.0])))
