"""Bool scatter / where / mask writes export to models onnxruntime loads (Where on BOOL data
has no onnxruntime kernel: the exporter casts through UINT8). GPT trial: the top-p filter's
"scatter back" step."""
import numpy as np
import pytest

import tensorlib as tl

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class TopPMask(tl.nn.Module):
    def forward(self, x):
        v, i = tl.sort(x, dim=-1, descending=True)
        cum = tl.softmax(v, dim=-1).cumsum(-1)
        remove = cum > 0.7
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        keep = x.masked_fill(remove.scatter(1, i, remove), float("-inf"))
        return keep, tl.where(x > 1, x > 0, x < -1)


def test_bool_scatter_and_where_run_in_onnxruntime(tmp_path):
    m = TopPMask()
    path = tmp_path / "topp.onnx"
    tl.onnx.export(m, (tl.randn(2, 7),), path, dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    for n in (1, 3, 6):
        x = np.random.default_rng(n).standard_normal((n, 7)).astype(np.float32)
        want = [t.numpy() for t in m(tl.tensor(x))]
        got = sess.run(None, {sess.get_inputs()[0].name: x})
        for g, w in zip(got, want):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
        for g, w in zip(back(tl.tensor(x)), want):
            np.testing.assert_array_equal(g.numpy(), w)
