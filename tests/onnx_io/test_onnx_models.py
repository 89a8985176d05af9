"""ONNX round trips for whole models: tensorlib -> ONNX -> onnxruntime (MLP, the seed's
convnet, an LSTM language model, a transformer encoder block), and PyTorch -> ONNX ->
tensorlib (a ResNet-18-style network and an MLP), including fine-tuning the import."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab: int = 20, emb: int = 8, hidden: int = 16):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ids):
        h, _ = self.lstm(self.emb(ids))
        return self.out(h)


def _models():
    from tensorlib.demo import DeepMnist
    rng = np.random.default_rng(0)
    return {
        "mlp": (lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
                lambda n: rng.standard_normal((n, 8)).astype(np.float32), True),
        "convnet": (DeepMnist, lambda n: rng.random((n, 784)).astype(np.float32), True),
        "lstm_lm": (LSTMLanguageModel,
                    lambda n: rng.integers(0, 20, (n, 5)).astype(np.int64), False),
        "transformer": (lambda: nn.TransformerEncoderLayer(16, 4, dim_feedforward=32,
                                                           batch_first=True),
                        lambda n: rng.standard_normal((n, 5, 16)).astype(np.float32), False),
        # resizing and padding layers: composites of take, pad, slices and transposes
        "upsampler": (lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(8, 8, 3), nn.Upsample(size=(9, 7)),
            nn.ReplicationPad2d((1, 0, 0, 1)), nn.PixelShuffle(2)),
            lambda n: rng.standard_normal((n, 3, 6, 5)).astype(np.float32), True),
    }


@pytest.mark.parametrize("name", ["mlp", "convnet", "lstm_lm", "transformer", "upsampler"])
def test_model_matches_onnxruntime(name, tmp_path):
    make, data, dynamic = _models()[name]
    tl.manual_seed(0)
    model = make()
    model.train()            # export must switch to eval (dropout off) and back
    x = data(2)
    path = tmp_path / f"{name}.onnx"
    tl.onnx.export(model, (tl.tensor(x),), path, dynamic_axes={0: {0: "batch"}} if dynamic
                   else None)
    assert model.training
    model.eval()
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    inits = {i.name for i in proto.graph.initializer}
    assert {k for k, _ in model.named_parameters()} <= inits, "weights must be initializers"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in ((2, 5) if dynamic else (2,)):
        xn = data(n)
        want = model(tl.tensor(xn)).numpy()
        got = sess.run(None, {"input0": xn})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if dynamic:
        dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
        assert dim.dim_param == "batch"
    # and back: the ONNX file imports and runs in tensorlib
    back = tl.onnx.load(path)
    with tl.no_grad():
        np.testing.assert_allclose(back(x).numpy(), model(tl.tensor(x)).numpy(), rtol=1e-4,
                                   atol=1e-5)


def test_graph_to_onnx_from_capture(tmp_path):
    tl.manual_seed(1)
    w = tl.randn(4, 3, requires_grad=True)
    x = tl.randn(2, 4)
    with tl.capture(x) as g:
        y = (x @ w).tanh().sum(axis=1)
    g.set_outputs(y)
    g.to_onnx(tmp_path / "g.onnx", opset=13)
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("affine", ["wb", "w", ""])
def test_layer_norm_exports_at_each_opset(tmp_path, opset, affine):
    # opset 17+: one LayerNormalization node; before: the decomposition. Mean and rstd too.
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
    w = tl.tensor(rng.standard_normal((4, 5)).astype(np.float32)) if "w" in affine else None
    b = tl.tensor(rng.standard_normal((4, 5)).astype(np.float32)) if "b" in affine else None
    with tl.capture(x) as g:
        y = tl.nn.functional.layer_norm(x, (4, 5), w, b, eps=1e-3)
    g.set_outputs(y)
    g.to_onnx(tmp_path / "g.onnx", opset=opset)
    types = [nd.op_type for nd in onnx.load(str(tmp_path / "g.onnx")).graph.node]
    assert ("LayerNormalization" in types) == (opset >= 17)
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 3, 7), (8, 3)])
def test_batch_norm_in_training_exports_its_batch_statistics(tmp_path, shape):
    # ONNX's BatchNormalization returns running statistics; the rule writes the batch ones out
    rng = np.random.default_rng(0)
    x = tl.tensor((rng.standard_normal(shape) * 2 + 5).astype(np.float32))
    w, b = (tl.tensor(rng.standard_normal(3).astype(np.float32)) for _ in range(2))
    with tl.capture(x) as g:
        y = F.batch_norm(x, weight=w, bias=b, training=True, eps=1e-3)
    g.set_outputs(y)
    g.to_onnx(tmp_path / "g.onnx")
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-4, atol=1e-4)
    axes = (0,) + tuple(range(2, len(shape)))
    want = (x.numpy() - x.numpy().mean(axes, keepdims=True)) / np.sqrt(
        x.numpy().var(axes, keepdims=True) + 1e-3)
    np.testing.assert_allclose(got, want * w.numpy().reshape(-1, *[1] * (len(shape) - 2))
                               + b.numpy().reshape(-1, *[1] * (len(shape) - 2)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("track", [False, True])
def test_instance_norm_exports_with_a_dynamic_batch(tmp_path, track):
    # instance_norm once reshaped to (1, N*C, ...): the exported file kept the example's N
    rng = np.random.default_rng(0)
    m = nn.InstanceNorm2d(4, affine=True, track_running_stats=track)
    if track:
        m.running_mean.copy_(tl.tensor(rng.standard_normal(4).astype(np.float32)))
    tl.onnx.export(m, (tl.randn(2, 4, 3, 3),), tmp_path / "in.onnx", dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(tmp_path / "in.onnx"), providers=["CPUExecutionProvider"])
    m.eval()
    for n in (1, 3, 5):
        x = rng.standard_normal((n, 4, 3, 3)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with tl.no_grad():
            np.testing.assert_allclose(got, m(tl.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_bad_opset_is_rejected(tmp_path):
    x = tl.randn(2, 2)
    with tl.capture(x) as g:
        y = x.exp()
    g.set_outputs(y)
    with pytest.raises(ValueError, match="opset"):
        g.to_onnx(tmp_path / "g.onnx", opset=7)


# --- PyTorch-made models --------------------------------------------------------------------
def _torch_resnet(torch):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = tnn.BatchNorm2d(cout)
            self.c2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = tnn.BatchNorm2d(cout)
            self.down = None if stride == 1 and cin == cout else tnn.Sequential(
                tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class ResNet18(tnn.Module):
        """ResNet-18's layout (stem, 4 stages of 2 basic blocks, global pool, fc), narrow."""

        def __init__(self, width=8, classes=10):
            super().__init__()
            self.stem = tnn.Sequential(tnn.Conv2d(3, width, 7, 2, 3, bias=False),
                                       tnn.BatchNorm2d(width), tnn.ReLU(),
                                       tnn.MaxPool2d(3, 2, 1))
            blocks, cin = [], width
            for i, c in enumerate([width, 2 * width, 4 * width, 8 * width]):
                blocks += [Block(cin, c, 1 if i == 0 else 2), Block(c, c, 1)]
                cin = c
            self.layers = tnn.Sequential(*blocks)
            self.pool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(cin, classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))

    torch.manual_seed(0)
    m = ResNet18().eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, tnn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("keep_bn", [False, True])
def test_torch_resnet_imports_and_matches(torch, tmp_path, keep_bn):
    m = _torch_resnet(torch)
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "resnet.onnx"
    kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False) \
        if keep_bn else {}
    torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "N"}}, **kw)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Conv", "MaxPool", "GlobalAveragePool", "Gemm", "Add", "Relu"} <= ops
    assert ("BatchNormalization" in ops) == keep_bn
    g = tl.onnx.load(path)
    assert g.input_names == ["x"] and g.graph.inputs[0].shape[0] is None
    assert all(p.requires_grad for _, p in g.named_parameters())
    x5 = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        want = m(x5).numpy()
    with tl.no_grad():
        got = g(x5.numpy()).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    got_tape = g(x5.numpy())                  # the eager (tape) path gives the same answer
    np.testing.assert_allclose(got_tape.detach().numpy(), want, rtol=1e-4, atol=1e-4)


def test_torch_mlp_imports_and_matches(torch, tmp_path):
    tnn = torch.nn
    torch.manual_seed(0)
    m = tnn.Sequential(tnn.Linear(6, 32), tnn.ReLU(), tnn.Linear(32, 16), tnn.Tanh(),
                       tnn.Linear(16, 3), tnn.Softmax(dim=-1)).eval()
    x = torch.randn(4, 6)
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "N"}})
    g = tl.onnx.load(path)
    x7 = torch.randn(7, 6)
    with torch.no_grad():
        want = m(x7).numpy()
    with tl.no_grad():
        np.testing.assert_allclose(g(x=x7.numpy()).numpy(), want, rtol=1e-5, atol=1e-6)
    assert len(g.parameters()) == 6


def test_torch_lstm_imports_and_matches(torch, tmp_path):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7, num_layers=1, bidirectional=True).eval()
    x = torch.randn(4, 3, 5)
    path = tmp_path / "lstm.onnx"
    torch.onnx.export(lstm, (x,), str(path), dynamo=False, input_names=["x"])
    assert "LSTM" in {n.op_type for n in onnx.load(str(path)).graph.node}
    g = tl.onnx.load(path)
    with torch.no_grad():
        want = [t.numpy() for t in (lstm(x)[0],) + lstm(x)[1]]
    with tl.no_grad():
        got = g(x.numpy())
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-4, atol=1e-5)


def test_retraining_the_imported_last_layer_lowers_the_loss(torch, tmp_path):
    m = _torch_resnet(torch)
    path = tmp_path / "resnet.onnx"
    torch.onnx.export(m, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})
    g = tl.onnx.load(path)
    for name, p in g.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    head = g.parameters()
    assert {k for k, _ in g.named_parameters()} == {"fc.weight", "fc.bias"}
    frozen = {k: t.numpy().copy() for k, t in g.state_dict().items() if not k.startswith("fc")}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    y = tl.tensor((x[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64) * 3)  # 2 new classes
    opt = tl.optim.SGD(head, lr=0.5)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(g(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.7 * losses[0], losses
    for k, v in frozen.items():       # only the head moved
        np.testing.assert_array_equal(g[k].numpy(), v)


def test_unsupported_onnx_ops_are_listed_at_once(tmp_path):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Hardmax", ["a"], ["b"]),
             helper.make_node("ThresholdedRelu", ["b"], ["c"]),
             helper.make_node("Shrink", ["c"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]))
    with pytest.raises(NotImplementedError) as e:
        tl.onnx.load(model)
    listed = str(e.value).split("(supported")[0]
    assert "Hardmax, Shrink, ThresholdedRelu" in listed and ", Relu" not in listed


def test_not_an_onnx_file(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        tl.onnx.load(p)


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_imports_and_matches_onnxruntime(largest):
    from onnx import TensorProto, helper, numpy_helper
    ort = pytest.importorskip("onnxruntime")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 7])
    outs = [helper.make_tensor_value_info(n, t, None)
            for n, t in (("v", TensorProto.FLOAT), ("i", TensorProto.INT64))]
    k = numpy_helper.from_array(np.array([3], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=largest)
    model = helper.make_model(helper.make_graph([node], "g", [x], outs, [k]),
                              opset_imports=[helper.make_opsetid("", 17)])
    a = np.random.default_rng(0).integers(0, 3, (3, 7)).astype(np.float32)   # ties
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": a})
    with tl.no_grad():
        got = tl.onnx.load(model)(a)
    np.testing.assert_array_equal(got[0].numpy(), want[0])
    np.testing.assert_array_equal(got[1].numpy(), want[1])


@pytest.mark.parametrize("kind,batch_first", [("LSTM", True), ("GRU", False), ("RNN", True)])
def test_rnn_exports_with_a_dynamic_batch(kind, batch_first, tmp_path):
    """The default zero state follows the batch (an op on the input's shape, not a constant of
    the traced size): ONNX and a captured graph with a None batch run any batch size."""
    ort = pytest.importorskip("onnxruntime")
    tl.manual_seed(0)
    rnn = getattr(tl.nn, kind)(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first)
    rnn.eval()

    def model(x):
        return rnn(x)[0]

    def shaped(n):
        return tl.randn(n, 3, 4) if batch_first else tl.randn(3, n, 4)
    axis = 0 if batch_first else 1
    tl.onnx.export(tl.function(model), (shaped(2),), tmp_path / "m.onnx",
                   dynamic_axes={0: [axis]})
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x6 = shaped(6)
    want = model(x6).detach().numpy()
    np.testing.assert_allclose(sess.run(None, {"input0": x6.numpy()})[0], want, rtol=1e-5,
                               atol=1e-6)
    spec = [None if i == axis else d for i, d in enumerate(x6.shape)]
    f = tl.function(model, input_signature=[tl.TensorSpec(tuple(spec))])
    with tl.no_grad():
        f(shaped(2))
        np.testing.assert_allclose(f(x6).numpy(), want, rtol=1e-6, atol=1e-7)
    assert f.trace_count == 1


def test_integer_true_division_is_float_everywhere(tmp_path):
    # the graph recorded int64 for a / 2 of an int64 input, ONNX exported an integer Div,
    # and the three paths gave three answers ([-3.5, .5, 1.5], [-3, 0, 1], [-4, 0, 1])
    f = tl.function(lambda a: a / 2, input_signature=[tl.TensorSpec((None,), dtype=tl.int64)])
    a = np.array([-7, 1, 3])
    want = f(tl.tensor(a)).numpy()
    np.testing.assert_array_equal(want, [-3.5, 0.5, 1.5])
    assert f.graphs[0].outputs[0].dtype == np.float32
    f.graphs[0].to_onnx(tmp_path / "d.onnx")
    sess = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {sess.get_inputs()[0].name: a})[0], want)
    np.testing.assert_array_equal(tl.onnx.load(tmp_path / "d.onnx")(a).numpy(), want)


def test_onnx_integer_div_imports_as_truncation(tmp_path):
    from onnx import TensorProto, helper
    vi = [helper.make_tensor_value_info(k, TensorProto.INT64, [None]) for k in "xyz"]
    g = helper.make_graph([helper.make_node("Div", ["x", "y"], ["z"])], "g", vi[:2], vi[2:])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "i.onnx"))
    x, y = np.array([-7, 7, -7, 7, 6, -6, 0, -1]), np.array([2, 2, -2, -2, 3, 3, 5, 4])
    sess = ort.InferenceSession(str(tmp_path / "i.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(tl.onnx.load(tmp_path / "i.onnx")(x, y).numpy(),
                                  sess.run(None, {"x": x, "y": y})[0])


def test_logcumsumexp_exports_infinities(tmp_path):
    # the rule's shift was -inf where both terms were -inf (NaN), and its padding leaked out
    x = np.array([[-np.inf, -np.inf, 1.0, -np.inf, 2.0], [0.5, -np.inf, -np.inf, 3, 1]],
                 np.float32)
    tl.onnx.export(lambda t: tl.logcumsumexp(t, 1), [tl.tensor(x)], tmp_path / "l.onnx")
    sess = ort.InferenceSession(str(tmp_path / "l.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, tl.logcumsumexp(tl.tensor(x), 1).numpy(), rtol=1e-6)
