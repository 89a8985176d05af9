"""Every registry op on its own: capture its case, export to ONNX, check, run in
onnxruntime, import back, and round-trip the native graph file; all must match eager."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from cases import load_all
from tensorlib.graph import CaptureError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CASES = load_all()
BY_ID = {c.id: c for c in CASES}


def _draw(case, draw):
    got = case.inputs(draw)
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict):
        return list(got[0]), got[1]
    return list(got), {}


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-4,
                                   atol=1e-5, equal_nan=True, err_msg=what)


def _capture(case, arrays, params):
    ts = [tl.tensor(a) for a in arrays]
    fn = (lambda *xs: case.fn(*xs, **params)) if params else case.fn
    with tl.capture(*ts) as g:
        out = _as_tuple(fn(*ts))
    outs = [o for o in out if isinstance(o, tl.Tensor)]
    g.set_outputs(*outs)
    return g, [o.numpy() for o in outs]


@pytest.mark.parametrize("cid", sorted(BY_ID))
@settings(max_examples=2)
@given(data=st.data())
def test_op_exports_alone(cid, data, tmp_path_factory):
    case = BY_ID[cid]
    arrays, params = _draw(case, data.draw)
    arrays = [np.asarray(a).astype(np.float32) if np.asarray(a).dtype == np.float64
              else np.asarray(a) for a in arrays]
    try:
        g, want = _capture(case, arrays, params)
    except CaptureError as e:      # e.g. indexing with a tensor read into Python
        pytest.skip(f"not capturable: {str(e)[:80]}")
    # the native graph file (every op, gradient kernels included)
    path = tmp_path_factory.mktemp("native") / "op.tlg"
    tl.save_graph(g, path)
    with tl.no_grad():
        nat = _as_tuple(tl.load_graph(path)(*arrays))
    for k, (b, w) in enumerate(zip(nat, want)):
        _close(b.numpy(), w, f"{cid} output {k} (native file)")
    ops = {n.op for n in g.nodes} - {"placeholder", "variable", "constant"}
    blocked = sorted(op for op in ops if op in tl.onnx.UNSUPPORTED)
    if blocked:
        with pytest.raises(tl.onnx.UnsupportedOpError, match=blocked[0]):
            tl.onnx.to_model(g)
        return
    try:
        model = tl.onnx.to_model(g, opset=17)
    except tl.onnx.UnsupportedOpError as e:
        assert case.op in tl.onnx.rules.PARTIAL, f"{cid}: {e}"
        pytest.skip(f"partial rule: {e}")
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(model.graph.input, arrays)}
    got = sess.run(None, feeds)
    assert len(got) == len(want)
    for k, (gv, w) in enumerate(zip(got, want)):
        _close(gv, w, f"{cid} output {k} (onnxruntime)")
    # back into tensorlib
    m = tl.onnx.load(model)
    with tl.no_grad():
        back = _as_tuple(m(*arrays))
    for k, (b, w) in enumerate(zip(back, want)):
        _close(b.numpy(), w, f"{cid} output {k} (tl.onnx.load)")


def test_every_op_has_a_rule_or_is_listed():
    missing = [n for n, op in tl.REGISTRY.items()
               if not callable(op.onnx) and n not in tl.onnx.UNSUPPORTED]
    assert not missing, f"ops with neither an ONNX rule nor an entry in UNSUPPORTED: {missing}"


def test_unsupported_op_is_named_at_export(tmp_path):
    x = tl.randn(3, 4)
    with tl.capture(x) as g:
        y = tl.cumprod(x, axis=1)
    g.set_outputs(y)
    with pytest.raises(tl.onnx.UnsupportedOpError, match="cumprod"):
        g.to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_docs_list_is_current():
    from pathlib import Path

    from tensorlib.onnx.docs import render
    doc = Path(__file__).resolve().parents[2] / "docs" / "onnx_ops.md"
    assert doc.read_text() == render(), "docs/onnx_ops.md is stale: python -m tensorlib.onnx.docs"


def test_docs_command_prints_its_usage_for_help(tmp_path, capsys, monkeypatch):
    from tensorlib.onnx.docs import main
    monkeypatch.chdir(tmp_path)
    assert main(["--help"]) == 0 and "usage" in capsys.readouterr().out
    assert main(["--verbose"]) == 2 and not list(tmp_path.iterdir())   # no file named so
    assert main([str(tmp_path / "ops.md")]) == 0 and (tmp_path / "ops.md").exists()


def test_atan2_export_covers_every_quadrant_and_both_axes():
    y = np.array([1, -1, 1, -1, 0, 0, 2, -2, 0], np.float32)
    x = np.array([1, 1, -1, -1, 1, -1, 0, 0, 0], np.float32)
    ty, tx = tl.tensor(y), tl.tensor(x)
    with tl.capture(ty, tx) as g:
        out = tl.atan2(ty, tx)
    g.set_outputs(out)
    model = tl.onnx.to_model(g, opset=17)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: a for i, a in zip(model.graph.input, [y, x])})[0]
    np.testing.assert_allclose(got, np.arctan2(y, x), atol=1e-6)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_extremes_export_at_opset_18(reduce, include_self):
    x = np.array([[0.5, -1.0, 2.0], [1.0, 3.0, -2.0]], np.float32)
    s = np.array([[4.0, -3.0, 1.0, 0.0], [-5.0, 2.0, 2.5, 1.5]], np.float32)
    idx = tl.tensor(np.array([[0, 0, 2, 0], [1, 1, 1, 0]]))
    tx, ts = tl.tensor(x), tl.tensor(s)
    with tl.capture(tx, ts) as g:
        out = tx.scatter_reduce(1, idx, ts, reduce, include_self=include_self)
    g.set_outputs(out)
    want = out.numpy()
    with pytest.raises(tl.onnx.UnsupportedOpError, match="opset >= 18"):
        tl.onnx.to_model(g, opset=17)
    model = tl.onnx.to_model(g, opset=18)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: a for i, a in zip(model.graph.input, [x, s])})[0]
    np.testing.assert_array_equal(got, want)
    with tl.no_grad():
        back = tl.onnx.load(model)(x, s)
    np.testing.assert_array_equal(back.numpy(), want)
