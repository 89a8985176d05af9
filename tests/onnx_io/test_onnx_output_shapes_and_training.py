"""ONNX export fixes: every output declares a shape at every opset (opset 13's Reshape to a
computed shape stopped ONNX shape inference, and full_check refused the model), no dead
nodes in the model, and a training step (a graph with assigns) is refused, not silently cut
down to its loss."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

OPSETS = [13, 14, 17, 21]


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(path, *arrays):
    s = _session(path)
    return s.run(None, {i.name: a for i, a in zip(s.get_inputs(), arrays)})


def _assert_output_shapes(path, eager_outs):
    """Each output has a shape of the eager result's rank; a fixed dim equals the eager one."""
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert len(m.graph.output) == len(eager_outs)
    for out, want in zip(m.graph.output, eager_outs):
        tt = out.type.tensor_type
        assert tt.HasField("shape"), out
        assert len(tt.shape.dim) == want.ndim, out
        for d, w in zip(tt.shape.dim, want.shape):
            assert d.HasField("dim_value") or d.HasField("dim_param"), out
            if d.HasField("dim_value"):
                assert d.dim_value == w, out


def _dead_nodes(path) -> list[str]:
    m = onnx.load(str(path))
    read = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    return [n.name for n in m.graph.node if not any(o in read for o in n.output)]


def _to_torch(torch, m, tm):
    tm.load_state_dict({k: torch.tensor(np.asarray(v.numpy())) for k, v in
                        m.state_dict().items()}, strict=True)
    return tm.eval()


# --- #3: output shapes at opset 13 (and the others) ------------------------------------------

@pytest.mark.parametrize("opset", OPSETS)
def test_group_norm_exports_with_output_shape_and_no_dead_nodes(tmp_path, opset):
    torch = pytest.importorskip("torch")
    tl.manual_seed(0)
    gn = nn.GroupNorm(2, 4).eval()
    with tl.no_grad():
        gn.weight.copy_(tl.randn(4))
        gn.bias.copy_(tl.randn(4))
    x = tl.randn(3, 4, 6, 5)
    f = tl.function(lambda t: gn(t))
    with tl.no_grad():
        g = f.get_graph(x)
        y = gn(x).numpy()
    g.to_onnx(tmp_path / "gn.onnx", opset=opset)      # full_check inside
    _assert_output_shapes(tmp_path / "gn.onnx", [y])
    assert _dead_nodes(tmp_path / "gn.onnx") == []
    got = _run(tmp_path / "gn.onnx", x.numpy())[0]
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-5)
    want = _to_torch(torch, gn, torch.nn.GroupNorm(2, 4))(torch.tensor(x.numpy())).detach()
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", OPSETS)
def test_group_norm_with_dynamic_dims_has_symbolic_output_dims(tmp_path, opset):
    gn = nn.GroupNorm(3, 6).eval()
    f = tl.function(lambda t: gn(t), input_signature=[tl.TensorSpec((None, 6, None))])
    with tl.no_grad():
        g = f.get_graph(tl.randn(2, 6, 5))
    g.to_onnx(tmp_path / "gn.onnx", opset=opset)
    dims = onnx.load(str(tmp_path / "gn.onnx")).graph.output[0].type.tensor_type.shape.dim
    assert [d.HasField("dim_param") for d in dims] == [True, False, True]
    assert dims[1].dim_value == 6
    x = tl.randn(4, 6, 9)               # another batch and length than traced
    with tl.no_grad():
        y = gn(x).numpy()
    np.testing.assert_allclose(_run(tmp_path / "gn.onnx", x.numpy())[0], y, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_dynamic_hw_exports_at_each_opset(tmp_path, opset, mode):
    torch = pytest.importorskip("torch")
    f = tl.function(lambda t: F.interpolate(t, scale_factor=2, mode=mode),
                    input_signature=[tl.TensorSpec((None, 3, None, None))])
    with tl.no_grad():
        g = f.get_graph(tl.randn(1, 3, 4, 5))
    g.to_onnx(tmp_path / "i.onnx", opset=opset)
    x = tl.randn(2, 3, 7, 3)
    with tl.no_grad():
        y = f(x).numpy()
    _assert_output_shapes(tmp_path / "i.onnx", [y])
    got = _run(tmp_path / "i.onnx", x.numpy())[0]
    assert got.shape == (2, 3, 14, 6)
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-5)
    want = torch.nn.functional.interpolate(torch.tensor(x.numpy()), scale_factor=2, mode=mode)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def _encoder(n):
    class E(n.Module):
        def __init__(self):
            super().__init__()
            layer = n.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.enc = n.TransformerEncoder(layer, 2, enable_nested_tensor=False)

        def forward(self, x, pad):
            causal = n.Transformer.generate_square_subsequent_mask(x.shape[1])
            return self.enc(x, mask=causal, src_key_padding_mask=pad)
    return E()


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("opset", OPSETS)
def test_transformer_encoder_with_masks_exports_at_each_opset(tmp_path, opset):
    torch = pytest.importorskip("torch")
    tl.manual_seed(1)
    m = _encoder(nn).eval()
    tm = _to_torch(torch, m, _encoder(torch.nn))
    f = tl.function(lambda x, p: m(x, p), input_signature=[
        tl.TensorSpec((None, None, 8)), tl.TensorSpec((None, None), "bool")])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    pad = np.zeros((3, 5), bool)
    pad[1, 3:] = True
    with tl.no_grad():
        g = f.get_graph(tl.tensor(x), tl.tensor(pad))
    g.to_onnx(tmp_path / "t.onnx", opset=opset)
    x2 = rng.standard_normal((2, 7, 8)).astype(np.float32)
    pad2 = np.zeros((2, 7), bool)
    pad2[0, 4:] = True
    for xs, ps in [(x, pad), (x2, pad2)]:
        with tl.no_grad():
            y = f(tl.tensor(xs), tl.tensor(ps)).numpy()
        got = _run(tmp_path / "t.onnx", xs, ps)[0]
        np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            want = tm(torch.tensor(xs), torch.tensor(ps)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    _assert_output_shapes(tmp_path / "t.onnx", [y])


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.sampled_from([1, 2, 4]), per_group=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 4), min_size=0, max_size=2),
       opset=st.integers(13, 18), dynamic=st.booleans())
def test_group_norm_any_shape_passes_full_check(tmp_path, groups, per_group, spatial, opset,
                                                dynamic):
    torch = pytest.importorskip("torch")
    c = groups * per_group
    gn = nn.GroupNorm(groups, c, eps=1e-3).eval()
    with tl.no_grad():
        gn.weight.copy_(tl.randn(c))
    shape = (2, c, *spatial)
    sig = tl.TensorSpec((None, c, *[None] * len(spatial)) if dynamic else shape)
    f = tl.function(lambda t: gn(t), input_signature=[sig])
    x = tl.randn(*shape, dtype="float64")
    with tl.no_grad():
        g = f.get_graph(tl.randn(*shape))
    path = tmp_path / f"gn_{groups}_{per_group}_{len(spatial)}_{opset}_{dynamic}.onnx"
    g.to_onnx(path, opset=opset)
    assert _dead_nodes(path) == []
    got = _run(path, x.numpy().astype(np.float32))[0]
    want = torch.nn.functional.group_norm(torch.tensor(x.numpy()), groups,
                                          torch.tensor(gn.weight.numpy(), dtype=torch.float64),
                                          torch.tensor(gn.bias.numpy(), dtype=torch.float64),
                                          eps=1e-3)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
    _assert_output_shapes(path, [want.numpy()])


def test_batch_norm_training_forward_leaves_no_dead_statistics(tmp_path):
    x = tl.randn(4, 3, 5)
    with tl.capture(x) as g:
        y = F.batch_norm(x, training=True)
    g.set_outputs(y)
    g.to_onnx(tmp_path / "b.onnx", opset=13)
    assert _dead_nodes(tmp_path / "b.onnx") == []
    np.testing.assert_allclose(_run(tmp_path / "b.onnx", x.numpy())[0], y.numpy(), rtol=1e-4,
                               atol=1e-4)


def test_group_norm_statistics_that_are_outputs_stay(tmp_path):
    # the rule must still write a statistic some output reads
    x = tl.randn(2, 4, 3)
    with tl.capture(x) as g:
        y = F.group_norm(x, 2)
    node = next(n for n in g.nodes if n.op == "group_norm")
    g.set_outputs(y, node.outputs[1])
    g.to_onnx(tmp_path / "s.onnx", opset=13)
    mean = _run(tmp_path / "s.onnx", x.numpy())[1]
    np.testing.assert_allclose(mean, x.numpy().reshape(2, 2, -1).mean(-1), rtol=1e-5,
                               atol=1e-6)


# --- #7: training steps ----------------------------------------------------------------------

def _train_step(opt_cls=tl.optim.SGD):
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    opt = opt_cls(m.parameters(), lr=0.1)

    @tl.function
    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    x, y = tl.randn(2, 6), tl.tensor([0, 1])
    step(x, y)
    step(x, y)
    return m, step, x, y


@pytest.mark.parametrize("opt_cls", [tl.optim.SGD, tl.optim.Adam])
def test_training_step_export_is_refused_naming_what_is_dropped(tmp_path, opt_cls):
    _, step, _, _ = _train_step(opt_cls)
    g = step.graphs[-1]
    with pytest.raises(tl.onnx.UnsupportedOpError) as e:
        g.to_onnx(tmp_path / "train.onnx")
    msg = str(e.value)
    assert "'step'" in msg and "m.0.weight" in msg and "m.2.bias.grad" in msg
    assert "linear_grad" in msg and "cross_entropy_grad" in msg
    assert "drop_updates=True" in msg
    assert not (tmp_path / "train.onnx").exists()
    with pytest.raises(tl.onnx.UnsupportedOpError, match="updates state"):
        tl.onnx.to_model(g)


def test_training_step_exports_its_loss_when_asked(tmp_path):
    m, step, x, y = _train_step()
    g = step.graphs[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.to_onnx(tmp_path / "loss.onnx", opset=13, drop_updates=True)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "loss.onnx")).graph.node}
    assert not any("grad" in o.lower() for o in ops)
    with tl.no_grad():
        want = F.cross_entropy(m(x), y).numpy()
    got = _run(tmp_path / "loss.onnx", x.numpy(), y.numpy())[0]
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:tl.function")
def test_batch_norm_train_mode_state_updates_are_refused(tmp_path):
    bn = nn.BatchNorm1d(3)           # training mode: the forward writes running statistics
    f = tl.function(lambda t: bn(t))
    with tl.no_grad():
        g = f.get_graph(tl.randn(4, 3))
    assert g.assigns
    with pytest.raises(tl.onnx.UnsupportedOpError, match="3 variables written"):
        g.to_onnx(tmp_path / "bn.onnx")
    g.to_onnx(tmp_path / "bn.onnx", drop_updates=True)     # the batch-statistics output
    x = tl.randn(4, 3)
    want = (x.numpy() - x.numpy().mean(0)) / np.sqrt(x.numpy().var(0) + 1e-5)
    np.testing.assert_allclose(_run(tmp_path / "bn.onnx", x.numpy())[0], want, rtol=1e-4,
                               atol=1e-4)


def test_inference_graph_exports_without_warning(tmp_path):
    m, _, x, _ = _train_step()
    m.eval()
    f = tl.function(lambda t: m(t))
    with tl.no_grad():
        g = f.get_graph(x)
        want = m(x).numpy()
    assert not g.assigns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.to_onnx(tmp_path / "inf.onnx", opset=13)
    np.testing.assert_allclose(_run(tmp_path / "inf.onnx", x.numpy())[0], want, rtol=1e-5,
                               atol=1e-6)
    # the one-call export captures in eval mode: no state written, nothing refused
    bn = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3))
    tl.onnx.export(bn, (x,), tmp_path / "bn.onnx", dynamic_axes={0: [0]}, opset=13)
    assert bn.training


class _InPlace(tl.nn.Module):
    """ReLU(inplace=True), mul_ and clamp_: the vision trial's ResNet stem."""

    def __init__(self):
        super().__init__()
        self.lin = tl.nn.Linear(4, 4)
        self.act = tl.nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.act(self.lin(x))
        h.mul_(2.0).clamp_(max=5.0)
        return h


def test_export_with_a_dynamic_batch_takes_in_place_ops(tmp_path):
    import warnings
    ort = pytest.importorskip("onnxruntime")
    m = _InPlace()
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no retrace per size, no "Python loop" advice
        tl.onnx.export(m, (tl.ones(2, 4),), tmp_path / "m.onnx", dynamic_axes={0: [0]})
    s = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    with tl.no_grad():
        want = m(tl.tensor(x)).numpy()
    np.testing.assert_allclose(s.run(None, {s.get_inputs()[0].name: x})[0], want, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("op,k", [("triu", 0), ("triu", 2), ("tril", -1), ("tril", 1)])
def test_triu_tril_export_below_opset_14(tmp_path, opset, op, k):
    """LLM trial: opset 13 emitted Trilu (opset 14); below it a mask from the run-time
    shape, dynamic dims kept."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    f = tl.function(lambda a: getattr(tl, op)(a, k) * 1.0)
    p = tmp_path / "m.onnx"
    tl.onnx.export(f, (tl.randn(3, 5),), p, opset=opset, dynamic_axes={0: [0, 1]})
    m = onnx.load(str(p))
    onnx.checker.check_model(m)
    assert ("Trilu" in {n.op_type for n in m.graph.node}) == (opset >= 14)
    s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for shape in [(3, 5), (6, 2)]:
        a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        got = s.run(None, {s.get_inputs()[0].name: a})[0]
        np.testing.assert_array_equal(got, getattr(np, op)(a, k))
