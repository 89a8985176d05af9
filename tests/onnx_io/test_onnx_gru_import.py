"""ONNX GRU import: models built with the onnx helper API (both linear_before_reset values,
every direction, with and without initial_h and bias) against onnxruntime, and PyTorch's
exported nn.GRU against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

T, N, I, H = 4, 3, 5, 6


def _gru_model(direction: str, lbr: int, with_h0: bool, with_bias: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    D = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array(rng.standard_normal((D, 3 * H, I)).astype(np.float32),
                                     "W"),
             numpy_helper.from_array(rng.standard_normal((D, 3 * H, H)).astype(np.float32) * .5,
                                     "R")]
    names = ["X", "W", "R"]
    if with_bias:
        inits.append(numpy_helper.from_array(
            rng.standard_normal((D, 6 * H)).astype(np.float32), "B"))
    names.append("B" if with_bias else "")
    names.append("")                                     # sequence_lens
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, N, I])]
    if with_h0:
        names.append("H0")
        inputs.append(helper.make_tensor_value_info("H0", TensorProto.FLOAT, [D, N, H]))
    node = helper.make_node("GRU", names, ["Y", "Y_h"], hidden_size=H, direction=direction,
                            linear_before_reset=lbr)
    graph = helper.make_graph(
        [node], "gru", inputs,
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, D, N, H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [D, N, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model, D


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("with_h0,with_bias", [(True, True), (False, True), (True, False)])
def test_gru_import_matches_onnxruntime(tmp_path, direction, lbr, with_h0, with_bias):
    model, D = _gru_model(direction, lbr, with_h0, with_bias)
    path = tmp_path / "gru.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    feeds = {"X": x}
    if with_h0:
        feeds["H0"] = rng.standard_normal((D, N, H)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want_y, want_h = sess.run(None, feeds)
    g = tl.onnx.load(path)
    with tl.no_grad():
        got_y, got_h = g(*feeds.values())
    assert tuple(got_y.shape) == (T, D, N, H) and tuple(got_h.shape) == (D, N, H)
    np.testing.assert_allclose(got_y.numpy(), want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_h.numpy(), want_h, rtol=1e-5, atol=1e-5)


def test_gru_import_rejects_unsupported_activations(tmp_path):
    model, _ = _gru_model("forward", 1, True, True)
    model.graph.node[0].attribute.append(helper.make_attribute("activations",
                                                               ["Relu", "Tanh"]))
    path = tmp_path / "gru.onnx"
    onnx.save(model, str(path))
    with pytest.raises(NotImplementedError, match="GRU activations"):
        tl.onnx.load(path)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_torch_exported_gru_matches_torch_and_trains(tmp_path, bidirectional):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = torch.nn.GRU(I, H, num_layers=2, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    x, h0 = torch.randn(T, N, I), torch.randn(2 * D, N, H)
    path = tmp_path / "gru.onnx"
    kw = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x, h0), str(path), input_names=["x", "h0"],
                          output_names=["y", "hn"], opset_version=14, **kw)
    types = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "GRU" in types
    with torch.no_grad():
        want_y, want_h = m(x, h0)
    g = tl.onnx.load(path)
    got_y, got_h = g(x.numpy(), h0.numpy())
    np.testing.assert_allclose(got_y.detach().numpy(), want_y.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_h.detach().numpy(), want_h.numpy(), rtol=1e-5, atol=1e-6)
    # the imported weights are trainable parameters that receive gradients
    (got_y.sum() + got_h.sum()).backward()
    params = [p for p in g.parameters() if p.requires_grad]
    assert params and all(p.grad is not None for p in params)
