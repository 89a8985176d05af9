"""ONNX export of var/std (and var_mean/std_mean, mean) reduced over dynamic axes: the
divisor ``max(count - correction, 0)`` is computed in the graph from the input's run-time
shape, so the exported model matches PyTorch at sizes other than the traced one."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# PyTorch warns when correction >= count (the degenerate cases checked here on purpose)
pytestmark = pytest.mark.filterwarnings(r"ignore:var\(\). degrees of freedom")


class Fn(tl.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _export(fn, tmp_path, opset=None, shape=(2, 30, 4), dynamic=None, dtype=None):
    path = str(tmp_path / "m.onnx")
    x = tl.randn(*shape) if dtype is None else tl.randn(*shape).astype(dtype)
    dyn = {0: {0: "B", 1: "T"}} if dynamic is None else dynamic
    tl.onnx.export(Fn(fn), (x,), path, dynamic_axes=dyn, opset=opset)
    onnx.checker.check_model(onnx.load(path))
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _run(sess, x):
    return sess.run(None, {sess.get_inputs()[0].name: x})


# (tensorlib fn, torch fn); every case reduces over the dynamic axis 1 (or all axes)
CASES = {
    "std_keepdim": (lambda x: x.std(dim=1, keepdim=True),
                    lambda x: x.std(dim=1, keepdim=True)),
    "var": (lambda x: x.var(dim=1), lambda x: x.var(dim=1)),
    "var_c0": (lambda x: x.var(dim=1, correction=0), lambda x: x.var(dim=1, correction=0)),
    "std_c2_tuple": (lambda x: x.std(dim=(1, 2), correction=2),
                     lambda x: x.std(dim=(1, 2), correction=2)),
    "std_neg_dim": (lambda x: x.std(dim=-2), lambda x: x.std(dim=-2)),
    "var_all": (lambda x: x.var(), lambda x: x.var()),
    "var_mean": (lambda x: tl.var_mean(x, dim=1), lambda x: torch.var_mean(x, dim=1)),
    "std_mean": (lambda x: tl.std_mean(x, dim=(0, 1), keepdim=True),
                 lambda x: torch.std_mean(x, dim=(0, 1), keepdim=True)),
    "mean": (lambda x: x.mean(dim=1), lambda x: x.mean(dim=1)),
}


def _check(outs, ref, rtol=1e-5):
    ref = ref if isinstance(ref, tuple) else (ref,)
    assert len(outs) == len(ref)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r.numpy(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamic_axis_matches_torch_at_other_sizes(tmp_path, name):
    fn, tfn = CASES[name]
    sess = _export(fn, tmp_path)
    rng = np.random.default_rng(0)
    for b, t in ((2, 30), (3, 7), (1, 64), (5, 3)):
        x = rng.standard_normal((b, t, 4)).astype(np.float32)
        _check(_run(sess, x), tfn(torch.from_numpy(x)))


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_dynamic_std_at_opsets(tmp_path, opset):
    # ReduceProd/ReduceMean take axes as an attribute before opset 18, an input from 18
    sess = _export(lambda x: x.std(dim=(0, 1)), tmp_path, opset=opset)
    x = np.random.default_rng(1).standard_normal((4, 11, 4)).astype(np.float32)
    _check(_run(sess, x), torch.from_numpy(x).std(dim=(0, 1)))


def test_float64_and_degenerate_count(tmp_path):
    # one sample with Bessel's correction divides 0 by max(1 - 1, 0) = 0: NaN, as PyTorch
    sess = _export(lambda x: x.var(dim=1), tmp_path, dtype=tl.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 4))
    _check(_run(sess, x), torch.from_numpy(x).var(dim=1), rtol=1e-12)
    x1 = rng.standard_normal((2, 1, 4))
    (out,) = _run(sess, x1)
    assert np.isnan(out).all() and torch.from_numpy(x1).var(dim=1).isnan().all()


def test_divisor_is_computed_from_the_shape(tmp_path):
    sess = _export(lambda x: x.std(dim=1), tmp_path)
    model = onnx.load(str(tmp_path / "m.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"Shape", "ReduceProd"} <= ops
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", "T", 4]
    assert sess is not None


def test_static_axes_keep_a_constant_divisor(tmp_path):
    # reducing over a static axis needs no shape arithmetic, even with a dynamic batch
    sess = _export(lambda x: x.var(dim=2), tmp_path, dynamic={0: {0: "B"}})
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert "ReduceProd" not in {node.op_type for node in model.graph.node}
    x = np.random.default_rng(3).standard_normal((5, 30, 4)).astype(np.float32)
    _check(_run(sess, x), torch.from_numpy(x).var(dim=2))


@settings(max_examples=15, deadline=None)
@given(t=st.integers(1, 40), b=st.integers(1, 4), correction=st.integers(0, 3))
def test_dynamic_var_any_length(tmp_path_factory, t, b, correction):
    tmp = tmp_path_factory.mktemp("v")
    sess = _export(lambda x: x.var(dim=1, correction=correction), tmp)
    x = np.random.default_rng(t * 7 + b).standard_normal((b, t, 4)).astype(np.float32)
    (out,) = _run(sess, x)
    ref = torch.from_numpy(x).var(dim=1, correction=correction).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
