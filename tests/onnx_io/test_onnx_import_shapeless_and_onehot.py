"""ONNX import: inputs the file gives no shape, and OneHot's negative and out-of-range
indices, as onnxruntime runs them."""
import numpy as np
import pytest

import tensorlib as tl

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
h, TP = onnx.helper, onnx.TensorProto


def _model(nodes, inputs, outputs):
    m = h.make_model(h.make_graph(nodes, "g", inputs, outputs),
                     opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_an_input_without_a_shape_takes_input_shapes():
    x_info = h.make_tensor_value_info("x", TP.FLOAT, None)      # unknown rank
    m = _model([h.make_node("Relu", ["x"], ["y"])], [x_info],
               [h.make_tensor_value_info("y", TP.FLOAT, None)])
    with pytest.raises(ValueError, match="input_shapes"):
        tl.onnx.load(m)
    g = tl.onnx.load(m, input_shapes={"x": (None, 3)})
    for n in (1, 4):
        x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
        want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
        np.testing.assert_array_equal(g(tl.tensor(x)).numpy(), want)
    with pytest.raises(ValueError, match="names no graph input"):
        tl.onnx.load(m, input_shapes={"x": (None, 3), "z": (1,)})


def test_one_hot_counts_negative_indices_from_the_end_and_leaves_others_off():
    nodes = [h.make_node("Constant", [], ["d"], value=h.make_tensor("dv", TP.INT64, [], [4])),
             h.make_node("Constant", [], ["v"],
                         value=h.make_tensor("vv", TP.FLOAT, [2], [0.5, 2.0])),
             h.make_node("OneHot", ["i", "d", "v"], ["o"])]
    m = _model(nodes, [h.make_tensor_value_info("i", TP.INT64, [5])],
               [h.make_tensor_value_info("o", TP.FLOAT, [5, 4])])
    i = np.array([1, -1, 5, -4, -5], np.int64)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"i": i})[0]
    np.testing.assert_array_equal(tl.onnx.load(m)(tl.tensor(i)).numpy(), want)
