"""Complex support of the elementwise and reduction ops, and gradcheck on complex: values
against PyTorch (complex64 and complex128), gradients against PyTorch's convention
(``z.grad = dL/dRe z + i dL/dIm z``), second order, tl.autograd.gradcheck/gradgradcheck, and
the ops PyTorch refuses for complex."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

Z = np.array([[1 + 2j, -0.5 + 0.3j, 0.2 - 0.4j], [0.7 + 0.1j, -1.3 - 0.6j, 0.4 + 0.9j]])
W = np.array([[0.3 - 0.7j, 1.1 + 0.2j, -0.4 + 0.5j], [0.6 + 0.6j, -0.2 - 0.9j, 0.8 - 0.1j]])

# (name, tensorlib function, PyTorch function)
UNARY = [
    ("exp", tl.exp, torch.exp), ("exp2", tl.exp2, torch.exp2), ("log", tl.log, torch.log),
    ("log2", tl.log2, torch.log2), ("log10", tl.log10, torch.log10),
    ("log1p", tl.log1p, torch.log1p), ("expm1", tl.expm1, torch.expm1),
    ("sqrt", tl.sqrt, torch.sqrt), ("rsqrt", tl.rsqrt, torch.rsqrt),
    ("square", tl.square, torch.square), ("reciprocal", tl.reciprocal, torch.reciprocal),
    ("neg", tl.neg, torch.neg), ("sin", tl.sin, torch.sin), ("cos", tl.cos, torch.cos),
    ("tan", tl.tan, torch.tan), ("asin", tl.asin, torch.asin), ("acos", tl.acos, torch.acos),
    ("atan", tl.atan, torch.atan), ("sinh", tl.sinh, torch.sinh),
    ("cosh", tl.cosh, torch.cosh), ("tanh", tl.tanh, torch.tanh),
    ("asinh", tl.asinh, torch.asinh), ("acosh", tl.acosh, torch.acosh),
    ("atanh", tl.atanh, torch.atanh), ("sigmoid", tl.sigmoid, torch.sigmoid),
    ("abs", tl.abs, torch.abs), ("sgn", tl.sgn, torch.sgn),
    ("pow_scalar", lambda z: z ** 2.5, lambda z: z ** 2.5),
    ("pow_int", lambda z: z ** 3, lambda z: z ** 3),
    ("pow_complex_scalar", lambda z: z ** (0.5 - 1j), lambda z: z ** (0.5 - 1j)),
    ("rpow", lambda z: 2.0 ** z, lambda z: 2.0 ** z),
    ("rpow_complex", lambda z: (1 + 1j) ** z, lambda z: (1 + 1j) ** z),
    ("pow_self", lambda z: z ** z, lambda z: z ** z),
    ("float_power", lambda z: tl.float_power(z, 2), lambda z: torch.float_power(z, 2)),
    ("div_scalar", lambda z: z / (2 - 1j), lambda z: z / (2 - 1j)),
    ("rdiv", lambda z: 3 / z, lambda z: 3 / z),
    ("mul_complex_scalar", lambda z: z * 1j, lambda z: z * 1j),
    ("add_real", lambda z: z + 2.5, lambda z: z + 2.5),
    ("sub_self_real", lambda z: z - z.real, lambda z: z - z.real),
    ("mul_self_real", lambda z: z * z.imag, lambda z: z * z.imag),
    ("div_self", lambda z: z / (z + 3), lambda z: z / (z + 3)),
    ("where", lambda z: tl.where(z.real > 0, z * z, z + 1j),
     lambda z: torch.where(z.real > 0, z * z, z + 1j)),
    ("lerp", lambda z: tl.lerp(z, z * z, 0.3), lambda z: torch.lerp(z, z * z, 0.3)),
    ("addcmul", lambda z: tl.addcmul(z, z, z + 1, value=0.5),
     lambda z: torch.addcmul(z, z, z + 1, value=0.5)),
    ("addcdiv", lambda z: tl.addcdiv(z, z, z + 2, value=0.5),
     lambda z: torch.addcdiv(z, z, z + 2, value=0.5)),
]

REDUCTIONS = [
    ("sum", lambda z: z.sum(), lambda z: z.sum()),
    ("sum_dim", lambda z: z.sum(dim=1), lambda z: z.sum(dim=1)),
    ("mean", lambda z: z.mean(), lambda z: z.mean()),
    ("mean_dim", lambda z: z.mean(dim=0, keepdim=True), lambda z: z.mean(dim=0, keepdim=True)),
    ("prod", lambda z: z.prod(), lambda z: z.prod()),
    ("prod_dim", lambda z: tl.prod(z, dim=1), lambda z: torch.prod(z, dim=1)),
    ("cumsum", lambda z: tl.cumsum(z, dim=1), lambda z: torch.cumsum(z, dim=1)),
    ("cumprod", lambda z: tl.cumprod(z, dim=1), lambda z: torch.cumprod(z, dim=1)),
    ("cumprod0", lambda z: tl.cumprod(z, dim=0), lambda z: torch.cumprod(z, dim=0)),
    ("var", lambda z: tl.var(z), lambda z: torch.var(z)),
    ("var_dim", lambda z: tl.var(z, dim=1, correction=0), lambda z: torch.var(z, dim=1,
                                                                              correction=0)),
    ("std", lambda z: tl.std(z), lambda z: torch.std(z)),
    ("std_dim", lambda z: tl.std(z, dim=0), lambda z: torch.std(z, dim=0)),
    ("norm", lambda z: tl.norm(z), lambda z: torch.norm(z)),
    ("norm1", lambda z: tl.norm(z, 1), lambda z: torch.norm(z, 1)),
    ("norm3_dim", lambda z: tl.norm(z, 3, dim=1), lambda z: torch.norm(z, 3, dim=1)),
    ("norm_inf", lambda z: tl.norm(z, math.inf), lambda z: torch.norm(z, math.inf)),
    ("vector_norm", lambda z: tl.linalg.vector_norm(z, dim=1),
     lambda z: torch.linalg.vector_norm(z, dim=1)),
    ("logsumexp", lambda z: tl.logsumexp(z, dim=1), lambda z: torch.logsumexp(z, dim=1)),
    ("logsumexp_all", lambda z: tl.logsumexp(z, dim=(0, 1)),
     lambda z: torch.logsumexp(z, dim=(0, 1))),
]

ALL = UNARY + REDUCTIONS
IDS = [c[0] for c in ALL]

# ops whose values carry a branch cut or a pole close enough that float32 rounds further
_TOL32 = dict(rtol=2e-4, atol=2e-5)


def _weights(shape, cx: bool) -> np.ndarray:
    return np.resize(W.ravel() if cx else W.real.ravel(), tuple(shape))


def _real_loss_tl(y):
    """A real loss of ``y`` that weights each element differently (a plain sum of a
    holomorphic result would hide a conjugation error in the imaginary part)."""
    cx = y.dtype.kind == "c"
    w = tl.tensor(_weights(y.shape, cx), dtype=y.dtype)
    if cx:
        return (y * w.conj()).real.sum() + (y * y).abs().sum() * 0.1
    return (y * w).sum() + (y * y).sum() * 0.1


def _real_loss_torch(y):
    cx = y.is_complex()
    w = torch.tensor(_weights(y.shape, cx), dtype=y.dtype)
    if cx:
        return (y * w.conj()).real.sum() + (y * y).abs().sum() * 0.1
    return (y * w).sum() + (y * y).sum() * 0.1


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name,f,tf", ALL, ids=IDS)
def test_values_and_dtype_match_torch(name, f, tf, dtype):
    y = f(tl.tensor(Z, dtype=getattr(tl, dtype)))
    ty = tf(torch.tensor(Z, dtype=getattr(torch, dtype)))
    assert str(y.dtype) == str(ty.dtype).replace("torch.", ""), (y.dtype, ty.dtype)
    tol = _TOL32 if dtype == "complex64" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), **tol)


@pytest.mark.parametrize("name,f,tf", ALL, ids=IDS)
def test_gradients_match_torch(name, f, tf):
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    tz = torch.tensor(Z, requires_grad=True)
    _real_loss_tl(f(z)).backward()
    _real_loss_torch(tf(tz)).backward()
    assert z.grad.dtype == tl.complex128
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,f,tf", ALL, ids=IDS)
def test_gradcheck(name, f, tf):
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    assert gradcheck(f, (z,), eps=1e-6, atol=1e-6)


SECOND = ["exp", "log", "sqrt", "reciprocal", "tanh", "sigmoid", "asin", "acosh", "atanh",
          "pow_self", "pow_scalar", "rpow", "div_self", "where", "mul_self_real", "abs",
          "prod", "cumprod", "var", "std", "norm", "norm3_dim", "logsumexp", "mean_dim"]
_BY_NAME = {c[0]: c for c in ALL}


@pytest.mark.parametrize("name", SECOND)
def test_second_order_matches_torch(name):
    _, f, tf = _BY_NAME[name]
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    tz = torch.tensor(Z, requires_grad=True)
    (g,) = tl.autograd.grad(_real_loss_tl(f(z)), [z], create_graph=True)
    (tg,) = torch.autograd.grad(_real_loss_torch(tf(tz)), [tz], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-9, atol=1e-12)
    # a real function of the complex gradient, differentiated again
    (gg,) = tl.autograd.grad((g * g).real.sum() + g.abs().sum(), [z])
    (tgg,) = torch.autograd.grad((tg * tg).real.sum() + tg.abs().sum(), [tz])
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", SECOND)
def test_gradgradcheck(name):
    _, f, _ = _BY_NAME[name]
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    assert gradgradcheck(f, (z,), atol=1e-5)


BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
    ("where", lambda a, b: tl.where(a.real > 0, a, b) if isinstance(a, tl.Tensor)
     else torch.where(a.real > 0, a, b)),
]


@pytest.mark.parametrize("name,op", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("kinds", ["cc", "rc", "cr"])
def test_binary_mixed_real_complex(name, op, kinds):
    """Complex with complex, real with complex and complex with real: values, the result's
    dtype and each input's gradient (a real input's is real: the real part)."""
    vals = {"c": Z, "r": np.abs(Z.real) + 0.5}
    a_np, b_np = vals[kinds[0]], vals[kinds[1]][::-1]
    a = tl.tensor(a_np, requires_grad=True, dtype=tl.float64 if kinds[0] == "r" else None)
    b = tl.tensor(np.ascontiguousarray(b_np), requires_grad=True,
                  dtype=tl.float64 if kinds[1] == "r" else None)
    a = a.astype(tl.complex128) if kinds[0] == "c" else a
    a = a.detach().requires_grad_()
    b = b.astype(tl.complex128) if kinds[1] == "c" else b
    b = b.detach().requires_grad_()
    ta = torch.tensor(a.detach().numpy(), requires_grad=True)
    tb = torch.tensor(b.detach().numpy(), requires_grad=True)
    y, ty = op(a, b), op(ta, tb)
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "")
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    _real_loss_tl(y).backward()
    assert gradcheck(op, (a, b), atol=1e-6)
    if name == "where" and kinds != "cc":
        return      # PyTorch 2.13's where backward refuses mixed real/complex branches
    _real_loss_torch(ty).backward()
    for t, tt in ((a, ta), (b, tb)):
        assert t.grad.dtype == t.dtype
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_complex64_stays_complex64_with_python_and_real_operands():
    z = tl.tensor(Z, dtype=tl.complex64)
    assert (z * 2.5).dtype == tl.complex64
    assert (z / 3).dtype == tl.complex64
    assert (tl.tensor([1.0, 2.0, 3.0]) * 1j).dtype == tl.complex64
    assert (z + tl.tensor(Z.real, dtype=tl.float64)).dtype == tl.complex128     # as PyTorch
    assert tl.true_divide(tl.tensor([1, 2]), tl.tensor([1j, 2j])).dtype == tl.complex64
    assert tl.var(z).dtype == tl.float32 and tl.norm(z).dtype == tl.float32
    assert tl.float_power(z, 2).dtype == tl.complex128


def test_predicates_match_torch():
    v = np.array([1 + 2j, complex(np.nan, 1), complex(1, np.inf), complex(-np.inf, np.nan),
                  3 + 0j, 0j])
    for dt, tdt in ((tl.complex64, torch.complex64), (tl.complex128, torch.complex128)):
        z, tz = tl.tensor(v, dtype=dt), torch.tensor(v, dtype=tdt)
        for name in ("isfinite", "isnan", "isinf", "isreal"):
            got = getattr(tl, name)(z)
            assert got.dtype == tl.bool_
            np.testing.assert_array_equal(got.numpy(), getattr(torch, name)(tz).numpy())
        np.testing.assert_array_equal((z == z).numpy(), (tz == tz).numpy())
        np.testing.assert_array_equal((z != 3).numpy(), (tz != 3).numpy())
        np.testing.assert_array_equal(tl.eq(z, 1 + 2j).numpy(), torch.eq(tz, 1 + 2j).numpy())
        np.testing.assert_array_equal(tl.logical_not(z).numpy(),
                                      torch.logical_not(tz).numpy())


def test_nan_to_num_values_match_torch():
    v = np.array([complex(np.nan, 1), complex(np.inf, -np.inf), 1 + 2j])
    got = tl.nan_to_num(tl.tensor(v), nan=0.5, posinf=9.0, neginf=-9.0)
    want = torch.nan_to_num(torch.tensor(v), nan=0.5, posinf=9.0, neginf=-9.0)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


REFUSED = [
    ("lt", lambda z: z < z, "order"), ("le", lambda z: z <= 1, "order"),
    ("gt", lambda z: z > z, "order"), ("ge", lambda z: tl.ge(z, z), "order"),
    ("sign", tl.sign, "sgn"), ("clamp", lambda z: tl.clamp(z, 0, 1), "clamp"),
    ("clamp_real_by_complex", lambda z: tl.clamp(z.real, min=1j), "clamp"),
    ("clamp_tensor", lambda z: tl.clamp(z, min=z), "clamp"),
    ("amax", tl.amax, "complex"), ("amin", tl.amin, "complex"),
    ("max", lambda z: z.max(), "complex"), ("min_dim", lambda z: z.min(dim=0), "complex"),
    ("argmax", tl.argmax, "complex"), ("argmin", tl.argmin, "complex"),
    ("maximum", lambda z: tl.maximum(z, z), "complex"), ("floor", tl.floor, "complex"),
    ("ceil", tl.ceil, "complex"), ("trunc", tl.trunc, "complex"),
    ("round", tl.round, "complex"), ("relu", tl.relu, "complex"), ("erf", tl.erf, "complex"),
    ("atan2", lambda z: tl.atan2(z, z), "complex"), ("hypot", lambda z: tl.hypot(z, z),
                                                     "complex"),
    ("floor_divide", lambda z: z // 2, "complex"), ("remainder", lambda z: z % 2, "complex"),
]


@pytest.mark.parametrize("name,f,word", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_ops_raise_naming_the_op(name, f, word):
    """Ops PyTorch refuses for complex tensors raise TypeError naming the op (no silent
    cast to real, no comparison by NumPy's lexicographic order)."""
    z = tl.tensor(Z)
    with pytest.raises(TypeError, match=word):
        f(z)


def test_inplace_forms():
    z = tl.tensor(Z)
    w = z * 1
    w += tl.tensor(W)
    w.mul_(1j)
    w.div_(2 - 1j)
    w.sub_(0.5)
    w.pow_(2)
    want = ((((Z + W) * 1j) / (2 - 1j) - 0.5) ** 2)
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-6)
    x = tl.tensor(Z.real, dtype=tl.float64)
    for f in (lambda: x.mul_(z), lambda: x.__iadd__(1j), lambda: x.div_(z)):
        with pytest.raises(Exception, match="cannot be stored"):
            f()
    np.testing.assert_array_equal(x.numpy(), Z.real)


def test_inplace_gradient_matches_torch():
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    tz = torch.tensor(Z, requires_grad=True)
    y, ty = z * 1, tz * 1
    y.mul_(z)
    ty.mul_(tz)
    y.div_(z + 2)
    ty.div_(tz + 2)
    _real_loss_tl(y).backward()
    _real_loss_torch(ty).backward()
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-10)


def test_gradcheck_catches_a_missing_conjugate():
    """A backward rule that forgets the conjugate (g * f'(z) for g * conj(f'(z))) passes on
    real inputs but must fail the complex check, in both modes."""
    from tensorlib.ops.registry import OpDef
    # (not registered: the registry's own tests enumerate every registered op)
    op = OpDef("test_cx_square_no_conj", lambda xp, z: z * z, complex="rule",
               vjp=lambda n, g: (g * 2.0 * n.inputs[0],))

    def f(z):
        return tl.apply(op, z)

    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    x = tl.tensor(Z.real, dtype=tl.float64, requires_grad=True)
    assert gradcheck(f, (x,))
    assert not gradcheck(f, (z,), raise_exception=False)
    assert not gradcheck(f, (z,), raise_exception=False, fast_mode=True)
    with pytest.raises(gradcheck.GradcheckError, match="Jacobian mismatch"):
        gradcheck(f, (z,))
    # the same function through a correct rule passes
    assert gradcheck(lambda z: z * z, (z,)) and gradgradcheck(lambda z: z * z, (z,))


def test_gradcheck_complex_output_of_real_input_and_errors():
    x = tl.tensor([0.3, -1.2], dtype=tl.float64, requires_grad=True)
    assert gradcheck(lambda x: x * (1 + 2j), (x,))
    assert gradcheck(lambda x: tl.exp(x * 1j), (x,), fast_mode=True)
    assert gradgradcheck(lambda x: tl.exp(x * 1j) * x, (x,))
    with pytest.raises(TypeError, match="complex128"):
        gradcheck(tl.exp, (tl.tensor(Z, dtype=tl.complex64, requires_grad=True),))


def test_refused_gradient_through_forward_only_op():
    z = tl.tensor(Z, dtype=tl.complex128, requires_grad=True)
    # eq/isfinite have no gradient: their results do not require grad
    assert not tl.isfinite(z).requires_grad and not (z == z).requires_grad


_finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_finite, _finite), min_size=1, max_size=6),
       st.sampled_from(["exp", "sin", "tanh", "sqrt", "log", "sigmoid", "reciprocal"]))
def test_hypothesis_unary_values_and_grads(pairs, name):
    v = np.array([complex(a, b) for a, b in pairs])
    if name in ("log", "reciprocal", "sqrt"):
        v = v + 0.1 * (np.abs(v) < 0.05)        # away from the pole/branch point
    z = tl.tensor(v, dtype=tl.complex128, requires_grad=True)
    tz = torch.tensor(v, requires_grad=True)
    y, ty = getattr(tl, name)(z), getattr(torch, name)(tz)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9,
                               equal_nan=True)
    y.abs().sum().backward()
    ty.abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-7, atol=1e-7,
                               equal_nan=True)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(_finite, _finite), min_size=2, max_size=6),
       st.sampled_from(["var", "std", "norm", "prod", "cumprod", "logsumexp", "mean"]))
def test_hypothesis_reductions(pairs, name):
    v = np.array([complex(a, b) for a, b in pairs])
    z = tl.tensor(v, dtype=tl.complex128, requires_grad=True)
    tz = torch.tensor(v, requires_grad=True)
    if name in ("cumprod", "logsumexp"):
        y, ty = getattr(tl, name)(z, dim=0), getattr(torch, name)(tz, dim=0)
    else:
        y, ty = getattr(tl, name)(z), getattr(torch, name)(tz)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    _real_loss_tl(y.reshape(-1)[:1]).backward()
    _real_loss_torch(ty.reshape(-1)[:1]).backward()
    np.testing.assert_allclose(z.grad.numpy(), tz.grad.numpy(), rtol=1e-7, atol=1e-7,
                               equal_nan=True)
