"""F.interpolate(x, size=skip.shape[-2:]) under capture with None dims: the size, read from
another tensor's shape, is computed when the graph runs (an extra input of the resize op),
so the captured graph, its gradients and an ONNX export with dynamic H/W follow every size
(a computer-vision trial's U-Net decoder line; before, the size was fixed at capture)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

SPEC = tl.TensorSpec((None, 3, None, None), "float64")
SIZES = [(5, 7, 10, 14), (8, 8, 16, 16), (9, 4, 5, 11)]


def _up(mode):
    kw = {} if mode.startswith("nearest") else {"align_corners": False}

    def f(a, b):
        return F.interpolate(a, size=b.shape[-2:], mode=mode, **kw) * b
    return f


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
def test_captured_resize_to_another_shape_follows_sizes_and_gradients(mode):
    f = _up(mode)
    g = tl.function(f, input_signature=[SPEC, SPEC])
    rng = np.random.default_rng(0)
    for h, w, H, W in SIZES:
        a = rng.standard_normal((1, 3, h, w))
        b = rng.standard_normal((1, 3, H, W))
        out, want = g(tl.tensor(a), tl.tensor(b)), f(tl.tensor(a), tl.tensor(b))
        np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
    assert g.trace_count == 1           # one graph replayed at every size


def test_captured_training_step_resizing_to_another_shape():
    """A captured step with backward(): the resize's gradient takes its size from the
    gradient it gets (one graph for every size)."""
    w = tl.tensor(np.ones((1, 3, 1, 1)), requires_grad=True)
    f = _up("bilinear")

    def step(a, b):
        loss = (f(a * w, b) ** 2).sum()
        loss.backward()
        return loss
    g = tl.function(step, input_signature=[SPEC, SPEC])
    rng = np.random.default_rng(3)
    for h, wd, H, W in SIZES:
        a, b = rng.standard_normal((1, 3, h, wd)), rng.standard_normal((1, 3, H, W))
        w.grad = None
        got = g(tl.tensor(a), tl.tensor(b)).numpy()
        got_grad = w.grad.numpy().copy()
        w.grad = None
        want = step(tl.tensor(a), tl.tensor(b)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10)
        np.testing.assert_allclose(got_grad, w.grad.numpy(), rtol=1e-10)


def test_resize_to_another_shape_grad_and_double_grad():
    rng = np.random.default_rng(1)
    a = tl.tensor(rng.standard_normal((1, 2, 4, 5)), requires_grad=True)
    b = tl.tensor(rng.standard_normal((1, 2, 7, 9)))

    def step(x):
        y = F.interpolate(x, size=b.shape[-2:], mode="bilinear", align_corners=False)
        (gx,) = tl.grad((y * b).sum(), [x], create_graph=True)
        return (gx * gx).sum()
    with tl.capture(a) as cg:
        loss = step(a)
    cg.set_outputs(loss)
    np.testing.assert_allclose(cg.run({a: a}).numpy(), step(a).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_onnx_export_with_dynamic_hw(tmp_path, mode):
    ort = pytest.importorskip("onnxruntime")
    f = _up(mode)

    class M(tl.nn.Module):
        def forward(self, a, b):
            return f(a, b)
    path = str(tmp_path / "m.onnx")
    tl.onnx.export(M(), (tl.randn(2, 3, 8, 8), tl.randn(2, 3, 16, 16)), path,
                   input_names=["a", "b"], output_names=["y"],
                   dynamic_axes={"a": {0: "n", 2: "h", 3: "w"}, "b": {0: "n", 2: "H", 3: "W"}})
    sess = ort.InferenceSession(path)
    rng = np.random.default_rng(2)
    for h, w, H, W in SIZES:
        a = rng.random((1, 3, h, w), dtype=np.float32)
        b = rng.random((1, 3, H, W), dtype=np.float32)
        want = f(tl.tensor(a), tl.tensor(b)).numpy()
        np.testing.assert_allclose(sess.run(None, {"a": a, "b": b})[0], want, rtol=1e-5,
                                   atol=1e-6)


def test_graph_file_round_trip(tmp_path):
    f = _up("bilinear")
    g = tl.function(f, input_signature=[SPEC, SPEC])
    g(tl.randn(1, 3, 5, 7, dtype="float64"), tl.randn(1, 3, 10, 14, dtype="float64"))
    tl.save_graph(g, tmp_path / "r.tlg")
    m = tl.load_graph(tmp_path / "r.tlg")
    a, b = tl.randn(2, 3, 9, 4, dtype="float64"), tl.randn(2, 3, 5, 11, dtype="float64")
    np.testing.assert_allclose(m(a, b).numpy(), f(a, b).numpy(), rtol=1e-10, atol=1e-12)
