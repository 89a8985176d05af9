"""Interop findings of a user trial: np.array(t) copies (NumPy 2's copy protocol), and an
imported graph (GraphModule) re-exported to ONNX, or called inside a captured function,
stays a graph of its input instead of a constant."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl


def test_numpy_copy_protocol():
    t = tl.tensor([1.0, 2.0])
    a = np.array(t)                         # a copy, as PyTorch's
    a[0] = 9
    assert t.numpy()[0] == 1.0
    b = np.asarray(t)                       # may share
    b[1] = 7
    assert t.numpy()[1] == 7.0
    c = np.asarray(t, copy=True)
    c[0] = 5
    assert t.numpy()[0] == 1.0
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="copy"):
        np.asarray(t, dtype=np.float64, copy=False)


def _imported(tmp_path):
    tl.manual_seed(0)
    m = tl.nn.Sequential(tl.nn.Linear(8, 16), tl.nn.GELU(), tl.nn.Linear(16, 4)).eval()
    path = tmp_path / "mlp.onnx"
    tl.onnx.export(m, (tl.randn(3, 8),), str(path))
    return m, tl.onnx.load(str(path))


def test_reexported_imported_model_follows_its_input(tmp_path):
    pytest.importorskip("onnx")
    m, g = _imported(tmp_path)
    x2 = tl.randn(3, 8)
    tl.onnx.export(g, (tl.randn(3, 8),), str(tmp_path / "re.onnx"))
    r = tl.onnx.load(str(tmp_path / "re.onnx"))
    np.testing.assert_allclose(r(x2).numpy(), m(x2).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_captured_function_around_an_imported_model(tmp_path):
    pytest.importorskip("onnx")
    m, g = _imported(tmp_path)
    f = tl.function(lambda a: g(a) * 2.0)
    with tl.no_grad():
        f(tl.randn(3, 8))
        x2 = tl.randn(3, 8)
        np.testing.assert_allclose(f(x2).numpy(), 2 * m(x2).numpy(), rtol=1e-5, atol=1e-6)


def test_imported_batchnorm_weights_stay_trainable_when_pytorch_shares_them(tmp_path):
    """PyTorch's exporter shares equal initializers: a BatchNorm whose statistics are still
    0 and 1 exports running_mean = Identity(bias), running_var = Identity(weight). Freezing
    the statistics froze the weight and bias too, so fine-tuning skipped them."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    import copy
    import warnings
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                            torch.nn.Linear(6, 3)).eval()
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    path = str(tmp_path / "bn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(m, (x,), path, dynamo=False, opset_version=17,
                              input_names=["x"])
        except Exception as e:       # noqa: BLE001 - an exporter without its dependencies
            pytest.skip(f"torch.onnx.export unavailable: {e}")
    g = tl.onnx.load(path)
    names = {n for n, _ in g.named_parameters()}
    assert {"1.weight", "1.bias"} <= names and "1.running_mean" not in names
    tm = copy.deepcopy(m)
    topt = torch.optim.SGD(tm.parameters(), lr=0.5)
    opt = tl.optim.SGD(g.parameters(), lr=0.5)
    for _ in range(3):
        topt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(tm(x), y)
        t_loss.backward()
        topt.step()
        opt.zero_grad()
        loss = tl.nn.functional.cross_entropy(g(tl.tensor(x.numpy())), tl.tensor(y.numpy()))
        loss.backward()
        opt.step()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)


def test_onnx_import_of_one_dimensional_convs_and_pools(tmp_path):
    """Conv1d, ConvTranspose1d, MaxPool1d and AvgPool1d exported by PyTorch import (3-D
    inputs ran into 'tensorlib imports the 2-D form'), with a dynamic length."""
    pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    import warnings
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv1d(3, 5, 3, padding=1, stride=2), nn.MaxPool1d(2),
                      nn.AvgPool1d(3, stride=1, padding=1),
                      nn.ConvTranspose1d(5, 4, 3, stride=2, output_padding=1),
                      nn.Conv1d(4, 4, 5, padding=2, groups=2, dilation=2, bias=False)).eval()
    path = str(tmp_path / "c1d.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(m, (torch.randn(2, 3, 17),), path, dynamo=False,
                              opset_version=17, input_names=["x"],
                              dynamic_axes={"x": {0: "n", 2: "l"}})
        except Exception as e:       # noqa: BLE001 - an exporter without its dependencies
            pytest.skip(f"torch.onnx.export unavailable: {e}")
    g = tl.onnx.load(path)
    assert sorted(g.state_dict()) == sorted(m.state_dict())
    for length in (17, 23):
        x = torch.randn(2, 3, length)
        with torch.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(g(tl.tensor(x.numpy())).detach().numpy(), want, rtol=1e-5,
                                   atol=1e-6)


def test_onnx_import_of_selu_celu_and_depth_to_space(tmp_path):
    """Selu, Celu and DepthToSpace (PyTorch's pixel_shuffle, mode CRD; DCR and SpaceToDepth
    against onnxruntime) import."""
    onnx = pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    import warnings

    from onnx import TensorProto, helper
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.SELU(), nn.CELU(0.7),
                      nn.PixelShuffle(2), nn.Conv2d(3, 4, 1)).eval()
    path = str(tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(m, (torch.randn(2, 3, 5, 6),), path, dynamo=False,
                              opset_version=17, input_names=["x"],
                              dynamic_axes={"x": {0: "n"}})
        except Exception as e:       # noqa: BLE001 - an exporter without its dependencies
            pytest.skip(f"torch.onnx.export unavailable: {e}")
    g = tl.onnx.load(path)
    for n in (2, 3):
        x = torch.randn(n, 3, 5, 6)
        with torch.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(g(tl.tensor(x.numpy())).detach().numpy(), want, rtol=1e-5,
                                   atol=1e-6)
    ort = pytest.importorskip("onnxruntime")
    for op, mode, shape in (("DepthToSpace", "DCR", [1, 8, 3, 4]),
                            ("DepthToSpace", "CRD", [2, 8, 3, 4]),
                            ("SpaceToDepth", None, [1, 2, 4, 6])):
        kw = {"blocksize": 2, **({"mode": mode} if mode else {})}
        graph = helper.make_graph(
            [helper.make_node(op, ["x"], ["y"], **kw)], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        q = str(tmp_path / f"{op}{mode}.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), q)
        a = np.random.default_rng(0).random(shape).astype(np.float32)
        want = ort.InferenceSession(q).run(None, {"x": a})[0]
        np.testing.assert_array_equal(tl.onnx.load(q)(tl.tensor(a)).numpy(), want)
