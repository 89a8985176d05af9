"""ONNX import of ScatterND (every reduction, opsets 13-18), Range and Min/Max over sizes
known at run time, so that tensorlib's own dynamic-setitem exports
(tests/onnx_io/test_dynamic_split_and_setitem_export.py) load again; models built with
onnx.helper are checked against onnxruntime, gradients of the imported graphs against
PyTorch."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto
sys.path.insert(0, str(Path(__file__).parent))
from test_dynamic_split_and_setitem_export import FPS, KEYS, _export, _Fn, _setter  # noqa: E402

BATCHES = (3, 4, 8)


def _run_ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _as_np(v):
    v = v[0] if isinstance(v, (tuple, list)) else v
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v)


# --- tensorlib's dynamic setitem exports reload ------------------------------------------
@pytest.mark.parametrize("key", KEYS, ids=repr)
@pytest.mark.parametrize("scalar", [False, True])
def test_dynamic_setitem_exports_reload(key, scalar, tmp_path):
    f = _setter(key, scalar)
    path = tmp_path / "set.onnx"
    sess = _export(_Fn(f), (tl.randn(5, 4),), path)
    assert "ScatterND" in {nd.op_type for nd in onnx.load(str(path)).graph.node}
    g = tl.onnx.load(str(path))
    for b in BATCHES:
        x = np.random.randn(b, 4).astype(np.float32)
        t = torch.tensor(x)
        t[key] = 7.0 if scalar else t[key] * -3.0 + 0.5
        got = _as_np(g(tl.tensor(x)))
        assert got.shape == (b, 4)
        np.testing.assert_allclose(got, f(tl.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got, sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got, t.numpy(), rtol=1e-5, atol=1e-6)


def test_farthest_point_sampling_reloads(tmp_path):
    m = FPS()
    sess = _export(m, (tl.randn(2, 10, 3),), tmp_path / "fps.onnx")
    g = tl.onnx.load(str(tmp_path / "fps.onnx"))
    for b in BATCHES:
        x = np.random.randn(b, 10, 3).astype(np.float32)
        got = _as_np(g(tl.tensor(x)))
        np.testing.assert_array_equal(got, m(tl.tensor(x)).numpy())
        np.testing.assert_array_equal(got, sess.run(None, {"x": x})[0])


_bound = st.one_of(st.none(), st.integers(-6, 6))


@settings(max_examples=10, deadline=None)
@given(start=_bound, stop=_bound, step=st.integers(1, 3), col=st.integers(-4, 3))
def test_random_slice_setitem_reloads(start, stop, step, col, tmp_path_factory):
    key = (slice(start, stop, step), col)
    f = _setter(key, False)
    path = tmp_path_factory.mktemp("s") / "s.onnx"
    sess = _export(_Fn(f), (tl.randn(12, 4),), path)
    g = tl.onnx.load(str(path))
    for b in (1, 2, 7, 13):
        x = np.random.randn(b, 4).astype(np.float32)
        want = x.copy()
        want[key] = want[key] * -3.0 + 0.5
        got = _as_np(g(tl.tensor(x)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got, sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_reloaded_setitem_is_differentiable(tmp_path):
    f = _setter((slice(1, None), 1), False)
    _export(_Fn(f), (tl.randn(5, 4),), tmp_path / "g.onnx")
    g = tl.onnx.load(str(tmp_path / "g.onnx"))
    for b in (3, 6):
        x = np.random.randn(b, 4).astype(np.float32)
        xt = tl.tensor(x, requires_grad=True)
        y = g(xt)
        y = y[0] if isinstance(y, (tuple, list)) else y
        (y * y).sum().backward()
        t = torch.tensor(x, requires_grad=True)
        o = t * 1.0
        o[1:, 1] = o[1:, 1] * -3.0 + 0.5
        (o * o).sum().backward()
        np.testing.assert_allclose(xt.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


# --- ScatterND built by hand -----------------------------------------------------------------
def _scatter_nd_model(data_shape, idx_shape, upd_shape, reduction, opset, dtype=TensorProto.FLOAT):
    attrs = {} if reduction is None else {"reduction": reduction}
    node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", dtype, data_shape),
         helper.make_tensor_value_info("i", TensorProto.INT64, idx_shape),
         helper.make_tensor_value_info("u", dtype, upd_shape)],
        [helper.make_tensor_value_info("y", dtype, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


CASES = [  # data shape, indices shape (k last), distinct rows?
    ((5, 3), (4, 2), True),       # element writes
    ((5, 3), (2, 1), True),       # row writes
    ((4, 3, 2), (2, 2, 1), True),  # rows, indices with two leading dims
    ((4, 3, 2), (6, 2), False),   # repeated (row, col) pairs
    ((6,), (5, 1), False),
]


def _indices(rng, data_shape, idx_shape, distinct):
    k = idx_shape[-1]
    lead = int(np.prod(idx_shape[:-1]))
    space = int(np.prod(data_shape[:k]))
    flat = (rng.choice(space, lead, replace=False) if distinct
            else rng.integers(0, space, lead))
    cols = np.stack(np.unravel_index(flat, data_shape[:k]), -1)
    neg = rng.random(cols.shape) < 0.3      # negative entries count from the end
    cols = np.where(neg, cols - np.array(data_shape[:k]), cols)
    return cols.reshape(idx_shape).astype(np.int64)


@pytest.mark.parametrize("reduction,opset", [(None, 13), ("none", 16), ("add", 16),
                                              ("mul", 16), ("max", 18), ("min", 18)])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_scatter_nd_matches_onnxruntime(reduction, opset, case):
    data_shape, idx_shape, distinct = CASES[case]
    if reduction in (None, "none") and not distinct:
        distinct = True                 # ONNX leaves repeated plain writes undefined
    rng = np.random.default_rng(case)
    k = idx_shape[-1]
    upd_shape = idx_shape[:-1] + data_shape[k:]
    dyn = ["B"] + list(data_shape[1:])          # a dynamic first data dim
    model = _scatter_nd_model(dyn, list(idx_shape), list(upd_shape), reduction, opset)
    g = tl.onnx.load(model)
    x = rng.standard_normal(data_shape).astype(np.float32)
    i = _indices(rng, data_shape, idx_shape, distinct)
    u = rng.standard_normal(upd_shape).astype(np.float32)
    want = _run_ort(model, {"x": x, "i": i, "u": u})[0]
    got = _as_np(g(tl.tensor(x), tl.tensor(i), tl.tensor(u)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_scatter_nd_int_data_and_dynamic_everything():
    model = _scatter_nd_model(["A", "B"], ["N", 2], ["N"], None, 13, TensorProto.INT64)
    g = tl.onnx.load(model)
    for a, b in ((3, 4), (5, 2)):
        x = np.arange(a * b, dtype=np.int64).reshape(a, b)
        i = np.array([[0, 1], [a - 1, -1], [-a, 0]], np.int64)
        u = np.array([100, 200, 300], np.int64)
        got = _as_np(g(tl.tensor(x), tl.tensor(i), tl.tensor(u)))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, _run_ort(model, {"x": x, "i": i, "u": u})[0])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_gradients_match_torch(reduction):
    """Element writes (k = rank) are scatter / scatter_reduce on the flat data: torch's
    gradients (amax/amin: ties share the gradient evenly) against the imported graph's."""
    rng = np.random.default_rng(1)
    data_shape = (4, 3)
    model = _scatter_nd_model(["B", 3], [5, 2], [5], reduction, 18, TensorProto.DOUBLE)
    g = tl.onnx.load(model)
    x = rng.standard_normal(data_shape)
    flat = rng.choice(12, 5, replace=False) if reduction == "none" else \
        np.array([1, 5, 1, 7, 5])
    x[1 // 3, 1 % 3] = 0.25       # a tie between the data and an update
    u = rng.standard_normal(5)
    u[2] = 0.25
    i = np.stack(np.unravel_index(flat, data_shape), -1).astype(np.int64)
    w = rng.standard_normal(data_shape)
    xt, ut = tl.tensor(x, requires_grad=True), tl.tensor(u, requires_grad=True)
    y = g(xt, tl.tensor(i), ut)
    y = y[0] if isinstance(y, (tuple, list)) else y
    (y * tl.tensor(w)).sum().backward()

    tx = torch.tensor(x, requires_grad=True)
    tu = torch.tensor(u, requires_grad=True)
    idx = torch.tensor(flat)
    if reduction == "none":
        out = tx.reshape(-1).scatter(0, idx, tu)
    elif reduction == "add":
        out = tx.reshape(-1).scatter_add(0, idx, tu)
    else:
        red = {"mul": "prod", "max": "amax", "min": "amin"}[reduction]
        out = tx.reshape(-1).scatter_reduce(0, idx, tu, red, include_self=True)
    (out.reshape(data_shape) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(y.numpy(), out.detach().numpy().reshape(data_shape), rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ut.grad.numpy(), tu.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rows", [3, 2])
@pytest.mark.parametrize("dynamic", [True, False])
def test_scatter_elements_write_is_differentiable(rows, dynamic):
    """Indices may be smaller than the data off the axis (rows < 3)."""
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1)
    xs, ixs = (["B", 4], ["R", 2]) if dynamic else ([3, 4], [rows, 2])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, xs),
                      helper.make_tensor_value_info("i", TensorProto.INT64, ixs),
                      helper.make_tensor_value_info("u", TensorProto.DOUBLE, ixs)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    g = tl.onnx.load(model)
    x, u = np.random.randn(3, 4), np.random.randn(rows, 2)
    i = np.array([[0, 2], [1, 3], [3, 0]], np.int64)[:rows]
    np.testing.assert_allclose(_as_np(g(tl.tensor(x), tl.tensor(i), tl.tensor(u))),
                               _run_ort(model, {"x": x, "i": i, "u": u})[0])
    xt, ut = tl.tensor(x, requires_grad=True), tl.tensor(u, requires_grad=True)
    y = g(xt, tl.tensor(i), ut)
    y = y[0] if isinstance(y, (tuple, list)) else y
    (y * y).sum().backward()
    tx, tu = torch.tensor(x, requires_grad=True), torch.tensor(u, requires_grad=True)
    out = tx.scatter(1, torch.tensor(i), tu)
    (out * out).sum().backward()
    np.testing.assert_allclose(y.numpy(), out.detach().numpy())
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(ut.grad.numpy(), tu.grad.numpy())


def test_scatter_nd_errors():
    with pytest.raises(ValueError, match="ScatterND.*opset >= 16"):
        tl.onnx.load(_scatter_nd_model([4, 3], [2, 2], [2], "add", 13))
    with pytest.raises(ValueError, match="ScatterND.*opset >= 18"):
        tl.onnx.load(_scatter_nd_model([4, 3], [2, 2], [2], "max", 17))
    with pytest.raises(ValueError, match="ScatterND.*last dim"):
        tl.onnx.load(_scatter_nd_model([4, 3], [2, 3], [2], None, 13))
    with pytest.raises(ValueError, match="ScatterND updates"):
        tl.onnx.load(_scatter_nd_model([4, 3], [2, 1], [2, 4], None, 13))


# --- Range and Min/Max over run-time sizes -------------------------------------------------
def _range_model(start, delta, op="Min", clamp=3):
    """y = Range(f(n), n, delta) for n = x's dynamic first dim, f(n) = op(n - start, clamp),
    cast to float and added to a constant so the output is data."""
    c = lambda name, v: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(v, np.int64), name))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        c("zero", 0), c("off", [start]), c("clamp", [clamp]), c("d", delta), c("ax", [0]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Sub", ["n1", "off"], ["lo1"]),
        helper.make_node(op, ["lo1", "clamp"], ["lo2"]),
        helper.make_node("Squeeze", ["lo2", "ax"], ["lo"]),
        helper.make_node("Range", ["lo", "n", "d"], ["r"]),
        helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["rf", "rf"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 2])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("start,delta,op,clamp", [(2, 1, "Min", 3), (0, 2, "Max", 1),
                                                  (5, 3, "Max", -2), (1, -1, "Min", 4),
                                                  (-3, -2, "Max", 9)])
def test_range_with_run_time_bounds_matches_onnxruntime(start, delta, op, clamp):
    model = _range_model(start, delta, op, clamp)
    g = tl.onnx.load(model)
    for n in (1, 2, 5, 9):
        x = np.zeros((n, 2), np.float32)
        want = _run_ort(model, {"x": x})[0]
        got = _as_np(g(tl.tensor(x)))
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_range_with_run_time_delta_is_refused():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["z"], value=numpy_helper.from_array(
                 np.asarray(0, np.int64), "z")),
             helper.make_node("Gather", ["s", "z"], ["n"], axis=0),
             helper.make_node("Range", ["z", "n", "n"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 2])], [helper.make_tensor_value_info(
            "y", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(NotImplementedError, match="Range.*run-time delta"):
        tl.onnx.load(model)


# --- Resize with sizes computed at run time -------------------------------------------------
def _resize_model(mode, ctm, extra, keep=2, opset=17):
    """Resize x (N, 2, H, W) to Concat(Shape(x)[:keep], Shape(y)[keep:])."""
    at = dict(mode=mode, coordinate_transformation_mode=ctm)
    if mode == "nearest":
        at["nearest_mode"] = extra
    if mode == "cubic":
        at["cubic_coeff_a"] = extra
    c = lambda name, v: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(v, np.int64), name))
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "H", "W"])]
    nodes = [c("s0", [0]), c("s2", [keep]), c("s4", [4]),
             helper.make_node("Shape", ["x"], ["sx"]), helper.make_node("Shape", ["y"], ["sy"]),
             helper.make_node("Slice", ["sx", "s0", "s2"], ["a"]),
             helper.make_node("Slice", ["sy", "s2", "s4"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["sz"], axis=0)]
    ins.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, "P", "Q"]))
    nodes.append(helper.make_node("Resize", ["x", "", "", "sz"], ["o"], **at))
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info(
        "o", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


FORMS = [("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_ceil"),
         ("nearest", "tf_half_pixel_for_nn", "floor"), ("linear", "half_pixel", None),
         ("linear", "pytorch_half_pixel", None), ("linear", "align_corners", None),
         ("cubic", "half_pixel", -0.75), ("cubic", "pytorch_half_pixel", -0.75),
         ("cubic", "align_corners", -0.75)]
SIZES = [(4, 5, 9, 3), (7, 3, 2, 11), (5, 5, 5, 1), (1, 6, 3, 3), (3, 3, 1, 1), (14, 10, 20, 7)]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: "-".join(map(str, f)))
@pytest.mark.parametrize("keep", [2, 3])
def test_resize_to_run_time_sizes_matches_onnxruntime(form, keep):
    model = _resize_model(*form, keep=keep)
    g = tl.onnx.load(model)
    for h, w, p, q in SIZES:
        x = np.random.randn(2, 2, h, w).astype(np.float32)
        feeds = {"x": x, "y": np.zeros((2, 1, p, q), np.float32)}
        want = _run_ort(model, feeds)[0]
        got = _as_np(g(*[tl.tensor(v) for v in feeds.values()]))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_resize_to_run_time_sizes_is_differentiable():
    """The imported resize against PyTorch's interpolate (same sampling: bilinear,
    align_corners=False is ONNX linear half_pixel), values and gradients in float64."""
    import torch.nn.functional as F
    model = _resize_model("linear", "half_pixel", None)
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    model.graph.input[1].type.tensor_type.elem_type = TensorProto.DOUBLE
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    g = tl.onnx.load(model)
    for h, w, p, q in ((4, 5, 9, 3), (6, 2, 3, 8)):
        x = np.random.randn(2, 2, h, w)
        wgt = np.random.randn(2, 2, p, q)
        xt = tl.tensor(x, requires_grad=True)
        y = g(xt, tl.tensor(np.zeros((2, 1, p, q))))
        y = y[0] if isinstance(y, (tuple, list)) else y
        (y * tl.tensor(wgt)).sum().backward()
        tx = torch.tensor(x, requires_grad=True)
        ty = F.interpolate(tx, size=(p, q), mode="bilinear", align_corners=False)
        (ty * torch.tensor(wgt)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("at", [dict(mode="linear", coordinate_transformation_mode="asymmetric"),
                                dict(mode="cubic", coordinate_transformation_mode="half_pixel",
                                     cubic_coeff_a=-0.5),
                                dict(mode="linear", coordinate_transformation_mode="half_pixel",
                                     antialias=1)])
def test_resize_run_time_forms_without_a_match_are_refused(at):
    model = _resize_model("linear", "half_pixel", None, opset=18)
    node = model.graph.node[-1]
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in at.items())
    with pytest.raises(tl.onnx.UnsupportedOpError, match="Resize (with|.*run time|with antialias)"):
        tl.onnx.load(model)


# --- TopK with k a run-time size ----------------------------------------------------------------
@pytest.mark.parametrize("descending", [False, True])
def test_argsort_over_a_dynamic_axis_reloads(descending, tmp_path):
    def f(x):
        return tl.argsort(x, axis=0, descending=descending)
    path = tmp_path / "a.onnx"
    tl.onnx.export(f, (tl.randn(5, 3),), str(path), dynamic_axes={0: [0]})
    g = tl.onnx.load(str(path))
    sess = ort.InferenceSession(str(path))
    for b in BATCHES:
        x = np.random.randn(b, 3).astype(np.float32)
        got = _as_np(g(tl.tensor(x)))
        np.testing.assert_array_equal(got, f(tl.tensor(x)).numpy())
        np.testing.assert_array_equal(got, sess.run(None, {sess.get_inputs()[0].name: x})[0])
        want = torch.argsort(torch.tensor(x), dim=0, descending=descending, stable=True)
        np.testing.assert_array_equal(got, want.numpy())


def test_topk_of_run_time_k_matches_onnxruntime_and_differentiates():
    """k = x.shape[1] - 2 from Shape: values and indices as onnxruntime, the values'
    gradient as torch.topk's."""
    c = lambda name, v: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(v, np.int64), name))
    nodes = [c("one", [1]), c("two", [2]), helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["n"], axis=0),
             helper.make_node("Sub", ["n", "two"], ["k"]),
             helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.DOUBLE, [2, "W"])], [
        helper.make_tensor_value_info("v", TensorProto.DOUBLE, None),
        helper.make_tensor_value_info("i", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    g = tl.onnx.load(model)
    for w in (3, 6):
        x = np.random.randn(2, w)
        v_want, i_want = _run_ort(model, {"x": x})
        xt = tl.tensor(x, requires_grad=True)
        v, i = g(xt)
        np.testing.assert_allclose(v.numpy(), v_want)
        np.testing.assert_array_equal(i.numpy(), i_want)
        wgt = np.random.randn(*v_want.shape)
        (v * tl.tensor(wgt)).sum().backward()
        tx = torch.tensor(x, requires_grad=True)
        (torch.topk(tx, w - 2, dim=1).values * torch.tensor(wgt)).sum().backward()
        np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy())
