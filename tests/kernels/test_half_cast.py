"""float16 <-> float32 casts through the CPU's F16C instructions (ops.shape.half_cast) give
NumPy's values bit for bit: every float16 bit pattern, and float32 values at the rounding
boundaries, NaN, inf, overflow and subnormals."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops.shape import half_cast


def test_every_float16_converts_as_numpy():
    bits = np.arange(1 << 16, dtype=np.uint16)
    h = bits.view(np.float16)
    got = half_cast(h, np.float32)
    if got is None:
        pytest.skip("this CPU has no F16C")
    want = h.astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)],
                                  want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(got[np.isnan(want)]).all()
    np.testing.assert_array_equal(half_cast(h, np.float64), h.astype(np.float64))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(256, 2000))
def test_float32_to_float16_rounds_as_numpy(seed, n):
    rng = np.random.default_rng(seed)
    # float32 bit patterns near float16's range, its subnormals and halfway points
    f = rng.integers(0x30000000, 0x47ffffff, n, dtype=np.uint32).view(np.float32)
    f = np.concatenate([f, -f, np.array([np.nan, np.inf, -np.inf, 65519.0, 65520.0, 1e-8,
                                         2.98e-8, 5.96e-8, 0.0, -0.0], np.float32)])
    got = half_cast(f, np.float16)
    if got is None:
        pytest.skip("this CPU has no F16C")
    with np.errstate(over="ignore"):
        want = f.astype(np.float16)
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint16)[ok], want.view(np.uint16)[ok])
    assert np.isnan(got[~ok]).all()


def test_casts_use_it_and_keep_shapes_and_gradients():
    x = tl.randn(8, 64, requires_grad=True)
    y = x.half()
    assert y.dtype == np.float16 and y.shape == (8, 64)
    np.testing.assert_array_equal(y.numpy(), x.detach().numpy().astype(np.float16))
    y.float().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((8, 64), np.float32))
    t = tl.randn(4, 128).half()[:, ::2]           # not contiguous: NumPy's path
    np.testing.assert_array_equal(t.float().numpy(), t.numpy().astype(np.float32))


def test_kernel_checks_lengths():
    with pytest.raises(ValueError, match="half_to_float: the arrays differ in length"):
        _ops.half_to_float(np.zeros(3, np.uint16), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="float_to_half: the arrays differ in length"):
        _ops.float_to_half(np.zeros(3, np.float32), np.zeros(2, np.uint16))


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "elu",
                                  "hardswish", "hardsigmoid", "mish", "leaky_relu", "relu6",
                                  "selu", "celu", "hardtanh"])
def test_float16_activations_compute_in_float32_as_pytorch(name):
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(0).standard_normal(1000) * 3).astype(np.float16)
    got = getattr(tl.nn.functional, name)(tl.tensor(x))
    want = getattr(torch.nn.functional, name)(torch.tensor(x))
    assert got.dtype == np.float16
    if name == "gelu":      # float32 erf polynomials differ in the last bit: one float16 ulp
        np.testing.assert_allclose(got.numpy().astype(np.float32),
                                   want.numpy().astype(np.float32), rtol=1e-3, atol=1e-7)
    else:
        np.testing.assert_array_equal(got.numpy(), want.numpy())   # one rounding, as PyTorch


def test_float16_activation_gradient_and_in_place_form():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal(512).astype(np.float16)
    a = tl.tensor(x, requires_grad=True)
    tl.nn.functional.gelu(a).sum().backward()
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(t).sum().backward()
    assert a.grad.dtype == np.float16
    np.testing.assert_allclose(a.grad.numpy().astype(np.float32),
                               t.grad.numpy().astype(np.float32), atol=2e-3)
    y = tl.tensor(x)
    out = tl.nn.functional.relu(y, inplace=True)
    assert out is y and y.dtype == np.float16
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, np.float16(0)))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv"])
def test_float16_tensor_arithmetic_matches_numpy_and_pytorch(op):
    import operator
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 32)).astype(np.float16)
    b = (rng.standard_normal((64, 32)) + 3).astype(np.float16)
    f = getattr(operator, op)
    got = f(tl.tensor(a), tl.tensor(b))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.numpy(), f(a, b))
    np.testing.assert_array_equal(got.numpy(), f(torch.tensor(a), torch.tensor(b)).numpy())
    x = tl.tensor(a, requires_grad=True)            # gradients flow back in float16
    f(x, tl.tensor(b)).sum().backward()
    assert x.grad.dtype == np.float16
