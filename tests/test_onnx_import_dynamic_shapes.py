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


CASES = {
    "view-flatten": (ViewFlatten, (3, 8, 8), {0: "N"}, [(1, 3, 8, 8), (4, 3, 8, 8)]),
    "heads": (Heads, (5, 8), {0: "N", 1: "T"}, [(1, 3, 8), (3, 7, 8)]),
    "cls-positions": (ClsPositions, (5, 8), {0: "N", 1: "T"}, [(1, 2, 8), (3, 9, 8)]),
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


def test_a_run_time_shape_used_as_data_is_named(tmp_path):
    class ShapeAsData(tnn.Module):
        def forward(self, x):
            return x / x.size(0)         # the batch size as a number in the arithmetic
    path = tmp_path / "d.onnx"
    torch.onnx.export(ShapeAsData(), (torch.randn(2, 3),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})
    with pytest.raises(NotImplementedError, match="shape computed at run time"):
        tl.onnx.load(path)
