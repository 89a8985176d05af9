"""Hardswish and SiLU as ops with one-pass backward kernels, against PyTorch; pow's second
derivative at 0 with a zero exponent."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

EDGES = [-np.inf, -4.0, -3.0, -2.999, -1.0, -0.0, 0.0, 0.5, 2.999, 3.0, 4.0, np.inf, np.nan]


@pytest.mark.parametrize("name", ["hardswish", "silu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (7,), (3, 1000)])
def test_values_and_gradients_match_torch(name, dtype, shape):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if x.ndim:
        flat = x.reshape(-1)
        flat[:len(EDGES)] = np.array(EDGES, dtype)[:flat.size]
    g = rng.standard_normal(shape).astype(dtype)
    t = tl.tensor(x, requires_grad=True)
    y = getattr(F, name)(t)
    y.backward(tl.tensor(g))
    tt = torch.tensor(x, requires_grad=True)
    ty = getattr(TF, name)(tt)
    ty.backward(torch.tensor(g))
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    # at NaN PyTorch's own scalar and vector kernels disagree (g vs NaN): not compared
    keep = ~np.isnan(x)
    np.testing.assert_allclose(t.grad.numpy()[keep], tt.grad.numpy()[keep], **tol)


@pytest.mark.parametrize("name", ["hardswish", "silu"])
def test_sum_backward_broadcast_gradient(name):
    """``.sum().backward()`` hands the backward a broadcast gradient: same numbers."""
    x = np.linspace(-5, 5, 4001, dtype=np.float32).reshape(1, -1)
    t = tl.tensor(x, requires_grad=True)
    getattr(F, name)(t).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    getattr(TF, name)(tt).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["hardswish", "silu"])
def test_second_derivative_matches_torch(name):
    x = np.array([-5.0, -2.5, -1.0, 0.3, 1.7, 2.9, 5.0])
    t = tl.tensor(x, requires_grad=True)
    (d,) = tl.autograd.grad(getattr(F, name)(t).sum(), t, create_graph=True)
    (dd,) = tl.autograd.grad((d * d).sum(), t)
    tt = torch.tensor(x, requires_grad=True)
    (td,) = torch.autograd.grad(getattr(TF, name)(tt).sum(), tt, create_graph=True)
    (tdd,) = torch.autograd.grad((td * td).sum(), tt)
    np.testing.assert_allclose(d.detach().numpy(), td.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dd.numpy(), tdd.numpy(), rtol=1e-12, atol=1e-14)


def test_hardswish_float16_and_onnx_names():
    x = np.linspace(-4, 4, 33).astype(np.float16)
    np.testing.assert_array_equal(F.hardswish(tl.tensor(x)).numpy(),
                                  TF.hardswish(torch.tensor(x)).numpy())
    assert tl.REGISTRY["hardswish"].name == "hardswish"


@pytest.mark.parametrize("opset", [13, 17])
def test_hardswish_onnx(opset, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(2, 12)
    fn = tl.function(lambda a: F.hardswish(a) * 2.0)
    path = tmp_path / "m.onnx"
    tl.onnx.export(fn, (tl.tensor(x),), str(path), opset=opset)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, F.hardswish(tl.tensor(x)).numpy() * 2.0, rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("exponent", [0, 0.0])
def test_pow_zero_exponent_second_derivative_at_zero(exponent):
    """d2/dx2 of 3 x**0 + x**3 at x = 0 is 0 (PyTorch), not 0 * inf = NaN."""
    x = np.array([0.0, 1.0, -2.0])
    t = tl.tensor(x, requires_grad=True)
    (d,) = tl.autograd.grad((3 * t ** exponent + t ** 3).sum(), t, create_graph=True)
    (dd,) = tl.autograd.grad(d.sum(), t)
    np.testing.assert_array_equal(d.detach().numpy(), 3 * x ** 2)
    np.testing.assert_array_equal(dd.numpy(), 6 * x)
    # a tensor exponent holding a zero, through the masked branch
    e = tl.tensor([0.0, 2.0, 3.0])
    (d,) = tl.autograd.grad((t ** e).sum(), t, create_graph=True)
    (dd,) = tl.autograd.grad(d.sum(), t)
    np.testing.assert_array_equal(dd.numpy(), [0.0, 2.0, -12.0])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_tanh_float32_backward_kernels(name):
    """tanh_grad / sigmoid_grad's one-pass float32 kernels (also with a broadcast g)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 1000)) * 4).astype(np.float32)
    g = rng.standard_normal((3, 1000)).astype(np.float32)
    t = tl.tensor(x, requires_grad=True)
    getattr(tl, name)(t).backward(tl.tensor(g))
    tt = torch.tensor(x, requires_grad=True)
    getattr(torch, name)(tt).backward(torch.tensor(g))
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-5, atol=1e-6)
    t.grad = None
    getattr(tl, name)(t).sum().backward()
    tt.grad = None
    getattr(torch, name)(tt).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-5, atol=1e-6)
