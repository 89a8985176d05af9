"""adaptive_max_pool2d with windows that do not divide the input: a separable gather + max
(it sliced every window: 13-29x PyTorch in a performance trial); values and gradients
against PyTorch, and an ONNX export against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

F = tl.nn.functional
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape,out", [((8, 4, 16, 16), 5), ((2, 3, 7, 9), (3, 4)),
                                       ((3, 10, 11), (4, None)), ((1, 1, 5, 5), 3)])
def test_values_indices_and_gradients_match_torch(shape, out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    a, t = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, ia = F.adaptive_max_pool2d(a, out, return_indices=True)
    yt, it = torch.nn.functional.adaptive_max_pool2d(t, out, return_indices=True)
    np.testing.assert_array_equal(ya.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(ia.numpy(), it.numpy())
    w = rng.standard_normal(tuple(yt.shape))
    (ya * tl.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = tl.nn.AdaptiveMaxPool2d((3, 4))
    x = np.random.default_rng(1).random((2, 3, 7, 9), dtype=np.float32)
    path = str(tmp_path / "amp.onnx")
    tl.onnx.export(m, (tl.tensor(x),), path)
    got = ort.InferenceSession(path).run(None, {ort.InferenceSession(path).get_inputs()[0].name: x})
    np.testing.assert_array_equal(got[0], m(tl.tensor(x)).numpy())
