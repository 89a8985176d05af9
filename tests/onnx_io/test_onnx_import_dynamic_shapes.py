"""ONNX import of shapes computed at run time: PyTorch exports with dynamic axes compute shapes
as tensors (Shape -> Gather -> Unsqueeze -> Concat -> Reshape for ``x.view(x.size(0), -1)``;
Expand for ``cls.expand(x.size(0), -1, -1)``; Range for ``arange(x.size(1))``;
ConstantOfShape for ``zeros(x.size(0), k)``). tensorlib follows them symbolically into the
consuming ops' run-time sizes; the imported graphs must match PyTorch at other sizes, save
and reload, and export again."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
tnn = torch.nn


class ViewFlatten(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = tnn.Conv2d(3, 4, 3), tnn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(h.view(h.size(0), -1))


class Heads(tnn.Module):
    """Multi-head split and merge with the batch and length read from the input."""

    def __init__(self):
        super().__init__()
        self.proj = tnn.Linear(8, 8)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.proj(x).view(b, t, 2, 4).transpose(1, 2)
        att = (q @ q.transpose(-1, -2)).softmax(-1) @ q
        return att.transpose(1, 2).reshape(b, t * 8 // 8, -1)


class ClsPositions(tnn.Module):
    """A ViT-style class token expanded to the batch, positions from arange(length), and a
    zeros(batch, k) state."""

    def __init__(self):
        super().__init__()
        self.cls = tnn.Parameter(torch.randn(1, 1, 8))
        self.pos = tnn.Embedding(16, 8)

    def forward(self, x):
        cls = self.cls.expand(x.size(0), -1, -1)
        h = torch.cat([cls, x], dim=1)
        h = h + self.pos(torch.arange(h.size(1)))
        state = torch.zeros(x.size(0), 8)
        return h.sum(1) + state


class Encoder(tnn.Module):
    """PyTorch's encoder layer: its attention casts the head dim (a static size read at run
    time) to float for the scale, and a padding mask expands to the batch."""

    def __init__(self):
        super().__init__()
        self.layer = tnn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.layer(x, src_key_padding_mask=x[..., 0] > 1.5)


CASES = {
    "view-flatten": (ViewFlatten, (3, 8, 8), {0: "N"}, [(1, 3, 8, 8), (4, 3, 8, 8)]),
    "heads": (Heads, (5, 8), {0: "N", 1: "T"}, [(1, 3, 8), (3, 7, 8)]),
    "cls-positions": (ClsPositions, (5, 8), {0: "N", 1: "T"}, [(1, 2, 8), (3, 9, 8)]),
    # (PyTorch's attention export fixes the sequence length; the batch stays dynamic)
    "encoder": (Encoder, (5, 16), {0: "N"}, [(1, 5, 16), (3, 5, 16)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_torch_exports_with_run_time_shapes_import_and_match(name, tmp_path):
    cls, tail, axes, shapes = CASES[name]
    torch.manual_seed(0)
    m = cls().eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(m, (torch.randn(2, *tail),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": axes})
    ops = {nd.op_type for nd in onnx.load(str(path)).graph.node}
    assert "Shape" in ops                    # the export computes shapes at run time
    g = tl.onnx.load(path)
    saved = tmp_path / f"{name}.tlg"
    tl.save_graph(g.graph, saved)
    reloaded = tl.load_graph(saved)
    again = tmp_path / f"{name}-again.onnx"
    g.graph.to_onnx(again)
    sess = ort.InferenceSession(str(again), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            want = m(torch.tensor(x)).numpy()
        with tl.no_grad():
            np.testing.assert_allclose(g(x).numpy(), want, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(reloaded(x).numpy(), want, rtol=1e-4, atol=1e-5)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_tensorlib_exports_with_run_time_sizes_import_again(tmp_path):
    def f(x):
        return x.reshape(-1, 4).sum(1).reshape(x.shape[0], -1)
    tl.onnx.export(f, (tl.ones(2, 3, 4),), tmp_path / "f.onnx", dynamic_axes={0: [0]})
    g = tl.onnx.load(tmp_path / "f.onnx")
    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(g(x).numpy(), f(tl.tensor(x)).numpy(), rtol=1e-6)


def test_a_run_time_shape_used_as_data_follows_the_input(tmp_path):
    class ShapeAsData(tnn.Module):
        def forward(self, x):
            return x / x.size(0)         # the batch size as a number in the arithmetic
    path = tmp_path / "d.onnx"
    torch.onnx.export(ShapeAsData(), (torch.randn(2, 3),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})
    g = tl.onnx.load(path)
    for n in (2, 5, 1):
        x = np.arange(3.0 * n, dtype=np.float32).reshape(n, 3)
        np.testing.assert_allclose(np.asarray(g(tl.tensor(x)).numpy()), x / n, rtol=1e-6)


# --- recurrent language models exported by PyTorch; constant shapes too large -------------------
class RecurrentLM(tnn.Module):
    def __init__(self, cell: str, bidirectional: bool = False):
        super().__init__()
        self.emb = tnn.Embedding(20, 8)
        self.rnn = getattr(tnn, cell)(8, 16, num_layers=2, batch_first=True,
                                      bidirectional=bidirectional)
        self.out = tnn.Linear(32 if bidirectional else 16, 20)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.out(h)


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_torch_recurrent_lm_with_a_dynamic_batch_imports_and_matches(cell, bidirectional,
                                                                      tmp_path):
    torch.manual_seed(0)
    m = RecurrentLM(cell, bidirectional).eval()
    path = tmp_path / "lm.onnx"
    torch.onnx.export(m, (torch.randint(0, 20, (2, 5)),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})
    g = tl.onnx.load(path)
    rng = np.random.default_rng(0)
    for n in (1, 2, 7):
        x = rng.integers(0, 20, (n, 5))
        with torch.no_grad():
            want = m(torch.tensor(x)).numpy()
        with tl.no_grad():
            np.testing.assert_allclose(g(x).numpy(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_torch_recurrent_lm_with_a_dynamic_time_axis_imports_for_every_length(cell, tmp_path):
    # ONNX LSTM/GRU nodes import as tensorlib's sequence ops, whose time dim stays dynamic
    # (they were unrolled at one length before, and a dynamic time axis was refused)
    m = RecurrentLM(cell).eval()
    path = tmp_path / "lm.onnx"
    torch.onnx.export(m, (torch.randint(0, 20, (2, 5)),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N", 1: "T"}})
    g = tl.onnx.load(path)
    rng = np.random.default_rng(0)
    for n, t in ((2, 5), (3, 9), (1, 2)):
        x = rng.integers(0, 20, (n, t))
        with torch.no_grad():
            want = m(torch.tensor(x)).numpy()
        with tl.no_grad():
            np.testing.assert_allclose(g(x).numpy(), want, rtol=1e-4, atol=1e-5)


def _const_model(path, kind, arg):
    from onnx import TensorProto, helper, numpy_helper
    i64 = lambda v, n: numpy_helper.from_array(np.array(v, np.int64), n)   # noqa: E731
    if kind == "ConstantOfShape":
        inits, ins = [i64(arg, "s")], ["s"]
    elif kind == "Range":
        inits, ins = [i64(0, "a"), i64(arg, "b"), i64(1, "c")], ["a", "b", "c"]
    elif kind == "Tile":
        inits, ins = [i64([1, 2, 3, 4], "x"), i64([arg], "r")], ["x", "r"]
    else:
        inits, ins = [i64([7], "x"), i64(arg, "r")], ["x", "r"]
    out_type = TensorProto.FLOAT if kind == "ConstantOfShape" else TensorProto.INT64
    g = helper.make_graph([helper.make_node(kind, ins, ["y"], name=f"big_{kind}")], "g", [],
                          [helper.make_tensor_value_info("y", out_type, None)],
                          initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("kind,arg", [("ConstantOfShape", [10 ** 6] * 3),
                                      ("ConstantOfShape", [-1, 4]), ("Range", 10 ** 12),
                                      ("Tile", 10 ** 12), ("Expand", [10 ** 6, 10 ** 6])])
def test_constant_shapes_beyond_the_element_limit_are_refused_naming_the_node(kind, arg,
                                                                              tmp_path):
    _const_model(tmp_path / "m.onnx", kind, arg)
    with pytest.raises(ValueError, match=f"node 'big_{kind}' \\({kind}\\).*"
                                         "(elements|negative)"):
        tl.onnx.load(tmp_path / "m.onnx")


@pytest.mark.parametrize("kind,arg,want", [
    ("ConstantOfShape", [500_000_000], ((500_000_000,), 0.0)),
    ("Range", 500_000_000, ((500_000_000,), None)), ("Tile", 10 ** 8, ((4 * 10 ** 8,), None)),
    ("Expand", [10 ** 8], ((10 ** 8,), 7))])
def test_large_constants_are_not_allocated_at_import(kind, arg, want, tmp_path):
    """A 100-byte model must not make tl.onnx.load allocate gigabytes: a result over the
    import-time folding limit is a node that allocates when the graph runs."""
    _const_model(tmp_path / "m.onnx", kind, arg)
    g = tl.onnx.load(tmp_path / "m.onnx")
    held = sum(np.asarray(n.attrs["value"]).nbytes for n in g.graph.nodes if n.op == "constant")
    assert held <= 8 << 20           # bytes: nothing near the 2 GB the output will take
    assert g.graph.outputs[0].shape == want[0]


@pytest.mark.parametrize("kind,arg,want", [
    ("ConstantOfShape", [(1 << 20) + 3], np.zeros((1 << 20) + 3, np.float32)),
    ("Range", (1 << 20) + 3, np.arange((1 << 20) + 3)),
    ("Tile", (1 << 18) + 1, np.tile([1, 2, 3, 4], (1 << 18) + 1)),
    ("Expand", [(1 << 20) + 3], np.full((1 << 20) + 3, 7))])
def test_constants_computed_at_run_time_have_the_right_values(kind, arg, want, tmp_path):
    _const_model(tmp_path / "m.onnx", kind, arg)
    g = tl.onnx.load(tmp_path / "m.onnx")
    got = g().numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn, shape", [
    (lambda x: x.reshape(x.shape[0], -1), (None, None, 4)),
    (lambda x: x.reshape(-1, x.shape[1]), (None, None, 4)),
    (lambda x: tl.flatten(x, 1), (None, None, 4)),
])
def test_own_exports_with_a_copied_dim_and_another_dynamic_one_import(fn, shape, tmp_path):
    # ONNX Reshape's 0 (copy a dim) beside another unknown dim was refused at import
    tl.onnx.export(fn, (tl.ones(2, 3, 4),), tmp_path / "r.onnx", dynamic_axes={0: [0, 1]})
    g = tl.onnx.load(tmp_path / "r.onnx")
    x = np.random.default_rng(0).standard_normal((5, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(g(x).numpy(), fn(tl.tensor(x)).numpy(), rtol=1e-6)


def test_a_slice_at_a_run_time_bound_imports(tmp_path):
    class Positions(tnn.Module):
        def __init__(self):
            super().__init__()
            self.pos = tnn.Parameter(torch.randn(1, 16, 8))

        def forward(self, x):
            return x + self.pos[:, :x.size(1)]
    model = Positions()
    path = tmp_path / "p.onnx"
    torch.onnx.export(model, (torch.randn(2, 5, 8),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N", 1: "T"}})
    m = tl.onnx.load(path)            # the slice's end follows T at run time
    for T in (1, 5, 16):
        x = np.random.default_rng(T).standard_normal((2, T, 8)).astype(np.float32)
        with torch.no_grad():
            want = model(torch.tensor(x)).numpy()
        np.testing.assert_allclose(m(tl.tensor(x)).numpy(), want, rtol=1e-6, atol=1e-6)


class LastStep(tnn.Module):
    """The last valid step of a padded batch: torch.onnx writes ``squeeze(1)`` of a dim it
    cannot prove is 1 as an If on that dim's size (static here: the gather keeps one step)."""

    def forward(self, x, lens):
        idx = (lens - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
        return x.gather(1, idx).squeeze(1)


def test_an_if_on_a_static_size_imports_as_its_branch(tmp_path):
    path = tmp_path / "last.onnx"
    torch.onnx.export(LastStep(), (torch.randn(4, 6, 3), torch.tensor([6, 2, 3, 1])),
                      str(path), dynamo=False, input_names=["x", "lens"], opset_version=17,
                      dynamic_axes={"x": {0: "B", 1: "T"}, "lens": {0: "B"}})
    assert "If" in [n.op_type for n in onnx.load(str(path)).graph.node]
    m = tl.onnx.load(str(path))
    for b, t in ((4, 6), (7, 9), (1, 2)):
        x = np.random.default_rng(b).standard_normal((b, t, 3)).astype(np.float32)
        lens = np.random.default_rng(t).integers(1, t + 1, b)
        want = LastStep()(torch.from_numpy(x), torch.from_numpy(lens)).numpy()
        with tl.no_grad():
            got = m(tl.tensor(x), tl.tensor(lens)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_an_if_on_a_run_time_value_is_refused_clearly(tmp_path):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Constant", [], ["z"], value=helper.make_tensor(
                 "z", TensorProto.FLOAT, [], [0.0])),
             helper.make_node("Greater", ["s", "z"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(NotImplementedError, match="condition depends on the inputs at run time"):
        tl.onnx.load(model)
