"""tensorlib.deploy: capture, export native + ONNX, reload in a fresh process, compare."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.deploy import export_and_verify, reload_in_fresh_process


def test_export_and_verify(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Dropout(0.5), nn.Linear(16, 5))
    model.train()
    x = np.random.default_rng(0).standard_normal((9, 12)).astype(np.float32)
    r = export_and_verify(model, x, tmp_path)
    out = capsys.readouterr().out
    assert r["ok"] and r["native_max_diff"] < 1e-5 and r["onnxruntime_max_diff"] < 1e-5
    assert "eager, native and onnxruntime agree" in out
    assert model.training, "the model goes back to training mode"
    assert (tmp_path / "model.tlg").exists() and (tmp_path / "model.onnx").exists()
    child = reload_in_fresh_process(tmp_path)
    assert child["model_modules"] == []          # the fresh process had no model code
    model.eval()
    np.testing.assert_allclose(child["native"], model(tl.tensor(x)).numpy(), rtol=1e-6)


def test_a_graph_over_two_devices_loads_its_weights_on_theirs(tmp_path):
    # every weight loaded on 'cpu', so an eager call of the module mixed devices and raised
    a = tl.nn.Linear(3, 5)
    b = tl.nn.Linear(5, 2).to("cpu:1")

    def model(x):
        return b(a(x).relu().to("cpu:1")).tanh().to("cpu")
    f = tl.function(model, input_signature=[tl.TensorSpec((None, 3))])
    x = tl.randn(4, 3)
    with tl.no_grad():
        ref = f(x).numpy()
    tl.save_graph(f, tmp_path / "two.tlg")
    gm = tl.load_graph(tmp_path / "two.tlg")
    assert {n: str(p.device) for n, p in gm.named_parameters()} == {
        "a.weight": "cpu", "a.bias": "cpu", "b.weight": "cpu:1", "b.bias": "cpu:1"}
    np.testing.assert_allclose(gm(x).detach().numpy(), ref, rtol=1e-6)
