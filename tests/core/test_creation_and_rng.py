"""Fixes from the fifteenth session's third fuzzing round against PyTorch: grad-mode
decorators, creation dtypes and ranges, functional autograd's strict=, RNG helpers."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def test_set_grad_enabled_as_a_decorator_leaves_the_mode_alone():
    for L in (torch, tl):
        @L.set_grad_enabled(False)
        def f(x):
            return x * 2

        x = L.ones(2, requires_grad=True)
        assert L.is_grad_enabled(), L.__name__      # decorating changed nothing
        assert not f(x).requires_grad and (x * 2).requires_grad
        L.set_grad_enabled(False)                    # a plain call sets it at once
        assert not L.is_grad_enabled()
        L.set_grad_enabled(True)
        with L.set_grad_enabled(False):
            assert not L.is_grad_enabled()
        assert L.is_grad_enabled()


@pytest.mark.parametrize("fn", [
    lambda M: M.arange(np.float32(2.5)), lambda M: M.arange(np.int32(3)),
    lambda M: M.arange(np.float64(0.5), 2),
    lambda M: M.linspace(-1, 1, 7, dtype=M.int64), lambda M: M.linspace(0, -5, 4, dtype=M.int64),
    lambda M: M.linspace(0.5, 9.5, 5, dtype=M.int32),
    lambda M: M.tensor([np.float32(1.5), 2]), lambda M: M.tensor([1, np.float64(2.0)]),
    lambda M: M.tensor([[1, 2], [3, np.float32(4.5)]]), lambda M: M.tensor([1.5, 2]),
    lambda M: M.tensor([2.7, -2.7], dtype=M.int64),
    lambda M: M.randperm(4, dtype=M.int32).sort()[0],
], ids=["arange-f32", "arange-i32", "arange-f64", "linspace-int", "linspace-neg",
        "linspace-i32", "list-f32", "list-f64", "nested-f32", "python-floats", "trunc",
        "randperm-dtype"])
def test_creation_values_and_dtypes_as_pytorch(fn):
    want, got = fn(torch), fn(tl)
    assert str(got.dtype) == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("fn", [
    lambda M: M.tensor([1e40], dtype=M.int32), lambda M: M.tensor([2 ** 40], dtype=M.int32),
    lambda M: M.tensor([float("nan")], dtype=M.int64),
    lambda M: M.full((2,), float("nan"), dtype=M.int64),
    lambda M: M.full_like(M.ones(2, dtype=M.int32), float("inf")),
    lambda M: M.randperm(-1),
], ids=["1e40", "2**40", "nan", "full-nan", "full_like-inf", "randperm-negative"])
def test_values_that_would_wrap_raise_as_pytorch(fn):
    with pytest.raises((RuntimeError, ValueError)):
        fn(torch)
    with pytest.raises((RuntimeError, ValueError)):
        fn(tl)


def test_random_like_refuses_an_integer_dtype():
    with pytest.raises(TypeError, match="floating dtype"):
        tl.rand_like(tl.ones(2), dtype=tl.int64)
    with pytest.raises(TypeError, match="floating dtype"):
        tl.randn_like(tl.ones(2), dtype=tl.int32)
    assert tl.rand_like(tl.ones(2), dtype=tl.float64).dtype == tl.float64


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp"])
def test_functional_products_take_strict(name):
    for L in (torch, tl):
        F = L.autograd.functional
        x = L.ones(3, dtype=L.float64)
        f = (lambda x: (x ** 3).sum()) if name in ("hvp", "vhp") else (lambda x: x.exp() * x[0])
        out = getattr(F, name)(f, x, x, strict=True)
        assert tuple(out[1].shape) == (3,)
        with pytest.raises(RuntimeError):
            if name in ("hvp", "vhp"):
                getattr(F, name)(lambda a, b: (a ** 3).sum(), (x, x), (x, x), strict=True)
            else:
                getattr(F, name)(lambda a, b: a * 2, (x, x), (x, x) if name == "jvp" else x,
                                 strict=True)


def test_fork_rng_and_the_default_generator():
    tl.manual_seed(0)
    a = tl.randn(2)
    tl.manual_seed(0)
    with tl.random.fork_rng():
        tl.randn(5)
    np.testing.assert_array_equal(tl.randn(2).numpy(), a.numpy())
    assert tl.default_generator is tl.random.default_generator


def test_detach_in_place_refuses_views_as_pytorch():
    for L in (torch, tl):
        x = L.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            x[1:].detach_()
        y = x * 2
        y.detach_()
        assert not y.requires_grad


def test_python_float_as_a_dtype_is_double_as_in_pytorch_and_numpy():
    for make in (lambda M: M.zeros(2, dtype=float), lambda M: M.ones(2).to(float),
                 lambda M: M.tensor([1], dtype=float)):
        assert str(make(tl).dtype) == "float64" == str(make(torch).dtype).split(".")[-1]
    assert tl.zeros(2, dtype=int).dtype == tl.int64 and tl.float is tl.float32


def test_inference_tensors_refuse_requires_grad_outside_the_mode_at_once():
    for L in (torch, tl):
        with L.inference_mode():
            t = L.ones(2)
            inside = L.ones(2).requires_grad_()
        assert inside.requires_grad
        with pytest.raises(RuntimeError, match="inference tensor outside InferenceMode"):
            t.requires_grad_()
        assert t.clone().requires_grad_().requires_grad


def test_generator_state_is_a_uint8_tensor_as_pytorch():
    g = tl.Generator().manual_seed(5)
    st = g.get_state()
    assert st.dtype == tl.uint8 and st.ndim == 1
    assert str(torch.Generator().get_state().dtype) == "torch.uint8"
    a = tl.randn(3, generator=g)
    g.set_state(st)
    np.testing.assert_array_equal(tl.randn(3, generator=g).numpy(), a.numpy())
    tl.set_rng_state(g.get_state())            # the global generator takes it too
