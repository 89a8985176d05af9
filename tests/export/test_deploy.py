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


def test_results_never_alias_inputs_weights_or_each_other_after_the_passes(tmp_path):
    """The passes turn x * 1.0 into x and merge two equal results; a replay (and a loaded
    graph) must still hand out memory of their own, as eager and ONNX Runtime do."""
    lin = tl.nn.Linear(3, 3)
    w = tl.ones(3)

    def f(x):
        return x * 1.0, w * 1.0, lin(x).relu(), lin(x).relu()
    fn = tl.function(f)
    x = tl.zeros(2, 3)
    with tl.no_grad():
        for _ in range(3):                     # traced, then replayed
            a, b, c, d = fn(x)
            a += 5.0
            b += 5.0
            c += 100.0
            assert x.numpy().sum() == 0.0 and w.tolist() == [1.0, 1.0, 1.0]
            assert not np.allclose(c.numpy(), d.numpy())
        tl.save_graph(fn, tmp_path / "f.tlg")
        m = tl.load_graph(tmp_path / "f.tlg")
        a, b, c, d = m(x)
        a += 5.0
        c += 100.0
        assert x.numpy().sum() == 0.0 and not np.allclose(c.numpy(), d.numpy())
        # a view of the input stays a view, as in eager
        v = tl.function(lambda t: t.reshape(-1))
        v(x)
        v(x)[0] += 1.0
        assert x.numpy()[0, 0] == 1.0


def test_deployment_mistakes_are_named(tmp_path):
    m = tl.nn.Sequential(tl.nn.Linear(3, 4), tl.nn.BatchNorm1d(4))
    f = tl.function(lambda x: m(x), input_signature=[tl.TensorSpec((None, 3))])
    with pytest.raises(ValueError, match="has not been called yet"):
        tl.save_graph(f, tmp_path / "n.tlg")
    with tl.no_grad():
        f(tl.ones(5, 3))
    with pytest.warns(UserWarning, match=r"model.eval\(\)"):   # BatchNorm left in training
        tl.save_graph(f, tmp_path / "bn.tlg")
    with pytest.raises(ValueError, match="write None where -1 stands"):
        tl.TensorSpec((-1, 3))
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="no graph outputs"):
        tl.onnx.load(tmp_path / "empty.onnx")
    w = tl.ones(6, 2)
    g = tl.function(lambda x: x.reshape(x.shape[0], -1) @ w,
                    input_signature=[tl.TensorSpec((None, 2, 3))])
    with tl.no_grad():
        g(tl.ones(4, 2, 3))
    tl.save_graph(g, tmp_path / "r.tlg")
    loaded = tl.load_graph(tmp_path / "r.tlg")
    assert loaded(tl.ones(5, 2, 3)).shape == (5, 2)
    # the file is fine, these inputs are not: a ValueError, not GraphFileError
    with pytest.raises(ValueError, match=r"cannot run on inputs of shape \(0, 2, 3\)") as e:
        loaded(tl.zeros(0, 2, 3))
    assert not isinstance(e.value, tl.export.GraphFileError)


def test_saved_variables_take_the_models_parameter_names(tmp_path):
    # a lambda over one model: the loaded graph's state_dict loads back into that model
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                           batch_first=True), 2).eval()
    f = tl.function(lambda x: enc(x), input_signature=[tl.TensorSpec((None, 5, 8))])
    x = tl.randn(3, 5, 8)
    with tl.no_grad():
        want = f(x).numpy()
    tl.save_graph(f, tmp_path / "e.tlg")
    state = tl.load_graph(tmp_path / "e.tlg").state_dict()
    assert sorted(state) == sorted(k for k, _ in enc.named_parameters())
    fresh = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                             batch_first=True), 2).eval()
    fresh.load_state_dict(state)
    with tl.no_grad():
        np.testing.assert_allclose(fresh(x).numpy(), want, atol=1e-6)
    # two models in reach: names as traced, unless model= says which
    a, b = nn.Linear(3, 3), nn.Linear(3, 2)
    g = tl.function(lambda x: b(a(x)))
    with tl.no_grad():
        g(tl.ones(2, 3))
    tl.save_graph(g, tmp_path / "ab.tlg", model=a)
    assert {"weight", "bias"} <= set(tl.load_graph(tmp_path / "ab.tlg").state_dict())


def test_state_the_graph_never_reads_still_loads_strictly(tmp_path):
    # an eval-mode graph never reads BatchNorm's num_batches_tracked (nor a parameter the
    # forward skips); the file keeps them, so load_state_dict(strict=True) takes the loaded
    # graph's state_dict, also after the loaded graph is saved again
    def make():
        net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        net.skip = nn.Parameter(tl.zeros(3))
        return net
    m = make()
    m(tl.randn(16, 4))
    m(tl.randn(16, 4))
    m.eval()
    f = tl.function(lambda x: m(x))
    x = tl.randn(5, 4)
    want = f(x).numpy()
    tl.save_graph(f, tmp_path / "bn.tlg")
    loaded = tl.load_graph(tmp_path / "bn.tlg")
    assert len(loaded.graph.bindings) < len(m.state_dict())      # some state is unread
    tl.save_graph(loaded, tmp_path / "bn2.tlg")
    for path in ("bn.tlg", "bn2.tlg"):
        state = tl.load_graph(tmp_path / path).state_dict()
        assert sorted(state) == sorted(m.state_dict())
        fresh = make()
        fresh.load_state_dict(state)           # strict: no missing keys
        assert int(fresh[1].num_batches_tracked.item()) == 2
        np.testing.assert_allclose(fresh.eval()(x).numpy(), want, atol=1e-6)
