"""Complex gaps at the tensor level, against PyTorch: cov/corrcoef, logdet, in-place ops on
.real/.imag views with history, any/all, linspace/logspace, autograd.functional,
logcumsumexp, uniform_/normal_ on complex tensors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
TF = tl.autograd.functional


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _np(t) -> np.ndarray:
    t = t.detach()
    return np.asarray((t.resolve_conj() if hasattr(t, "resolve_conj") else t).numpy())


def _both(fn, *arrays, weight=None):
    """fn(lib, *leaves) in tensorlib and torch; returns (values, grads) of each, the grads of
    the real loss Re(sum(out * conj(weight)))."""
    res = []
    for lib in (tl, torch):
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = fn(lib, *leaves)
        w = np.ones(tuple(out.shape)) if weight is None else weight
        (out * lib.tensor(w).conj()).real.sum().backward()
        res.append((_np(out), [_np(x.grad) for x in leaves], str(out.dtype)))
    return res


def _check(res, tol=1e-10):
    (v1, g1, d1), (v2, g2, d2) = res
    np.testing.assert_allclose(v1, v2, rtol=tol, atol=tol)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert d1.split(".")[-1] == d2.split(".")[-1]


# --- cov / corrcoef -------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 3), cols=st.integers(2, 6),
       weights=st.sampled_from(["none", "f", "a", "fa"]), correction=st.sampled_from([0, 1]))
def test_cov_complex_matches_torch(seed, rows, cols, weights, correction):
    rng = np.random.default_rng(seed)
    z = _c(rng, rows, cols)
    fw = rng.integers(1, 4, cols) if "f" in weights else None
    aw = rng.random(cols) + 0.1 if "a" in weights else None
    w = _c(rng, rows, rows)

    def fn(lib, x):
        kw = {"correction": correction}
        if fw is not None:
            kw["fweights"] = lib.tensor(fw)
        if aw is not None:
            kw["aweights"] = lib.tensor(aw)
        return lib.cov(x, **kw)
    _check(_both(fn, z, weight=w), 1e-9)


def test_cov_complex_is_hermitian_1d_and_complex64():
    rng = np.random.default_rng(14)
    z = _c(rng, 3, 6)
    c = tl.cov(tl.tensor(z)).numpy()
    np.testing.assert_allclose(c, np.cov(z), rtol=1e-12)
    np.testing.assert_allclose(c, c.conj().T, rtol=1e-12)
    v = tl.cov(tl.tensor(z[0]))
    assert v.shape == () and abs(v.item() - tl.tensor(z[0]).var().item()) < 1e-12
    c64 = tl.cov(tl.tensor(z.astype(np.complex64)))
    t64 = torch.cov(torch.tensor(z.astype(np.complex64)))
    assert c64.dtype == tl.complex64
    np.testing.assert_allclose(c64.numpy(), t64.numpy(), rtol=1e-5, atol=1e-5)


def test_corrcoef_complex_matches_torch():
    rng = np.random.default_rng(3)
    z = _c(rng, 3, 7)
    _check(_both(lambda lib, x: lib.corrcoef(x), z, weight=_c(rng, 3, 3)), 1e-9)
    r = tl.corrcoef(tl.tensor(z)).numpy()
    np.testing.assert_allclose(np.diag(r), 1.0, atol=1e-12)


def test_cov_real_unchanged():
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(tl.cov(tl.tensor(x)).numpy(), np.cov(x), rtol=1e-12)


# --- logdet ---------------------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 4), batch=st.sampled_from([(), (2,)]))
def test_logdet_complex_matches_torch(seed, n, batch):
    rng = np.random.default_rng(seed)
    a = _c(rng, *batch, n, n) + 2 * np.eye(n)
    _check(_both(lambda lib, x: lib.logdet(x), a, weight=_c(rng, *batch)), 1e-8)


def test_logdet_complex_values_dtype_and_second_order():
    a = tl.tensor([[2 + 1j, 1], [0, 1 + 1j]])
    assert a.dtype == tl.complex64 and tl.logdet(a).dtype == tl.complex64
    np.testing.assert_allclose(tl.logdet(a).item(), 1.1513 + 1.2490j, atol=1e-4)
    # a negative real determinant: i*pi on the principal branch (real input: NaN)
    assert abs(tl.logdet(tl.tensor([[-1 + 0j, 0], [0, 1]])).item() - np.pi * 1j) < 1e-6
    assert np.isnan(tl.logdet(tl.tensor([[-1.0, 0], [0, 1]])).item())
    rng = np.random.default_rng(5)
    m = _c(rng, 3, 3) + 3 * np.eye(3)
    out = []
    for lib in (tl, torch):
        x = lib.tensor(m, requires_grad=True)
        g, = lib.autograd.grad(lib.logdet(x).abs(), x, create_graph=True)
        gg, = lib.autograd.grad((g * g.conj()).real.sum(), x)
        out.append((_np(g), _np(gg)))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-9, atol=1e-10)


def test_logdet_complex_error_names_logdet():
    with pytest.raises((TypeError, ValueError), match="slogdet|logdet"):
        tl.logdet(tl.tensor([1 + 1j, 2j]))


# --- in-place ops on .real / .imag views with history ----------------------------------------
_VIEW_EDITS = {
    "imag.mul_": lambda b: b.imag.mul_(3),
    "real.zero_": lambda b: b.real.zero_(),
    "real.setitem": lambda b: b.real.__setitem__(0, 0),
    "imag.setitem": lambda b: b.imag.__setitem__(slice(1, None), 5.0),
    "imag.add_real": lambda b: b.imag.add_(b.real),
    "real.add_": lambda b: b.real.add_(2.5),
    "imag.zero_": lambda b: b.imag.zero_(),
    "real[0].mul_": lambda b: b.real[0].mul_(-2),
}


@pytest.mark.parametrize("edit", list(_VIEW_EDITS))
@pytest.mark.parametrize("loss", ["abs2", "weighted"])
def test_inplace_on_part_views_with_history(edit, loss):
    z = np.array([1 + 2j, 3 - 1j, -0.5 + 0.25j])
    w = np.array([0.3 - 1j, 2 + 0.5j, -1 + 1j])
    res = []
    for lib in (tl, torch):
        a = lib.tensor(z, requires_grad=True)
        b = a * (1.5 - 0.5j)
        _VIEW_EDITS[edit](b)
        out = (b.abs() ** 2).sum() if loss == "abs2" else (b * lib.tensor(w).conj()).real.sum()
        out.backward()
        res.append((_np(b), _np(a.grad)))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-12)   # the base sees the change
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-12)


def test_inplace_on_part_views_trial_example():
    a = tl.tensor([1 + 2j, 3 - 1j], requires_grad=True)
    b = a * 1
    b.imag.mul_(3)
    (b.abs() ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [2 + 36j, 6 - 18j])


def test_inplace_on_view_as_real_with_history():
    z = np.array([1 + 2j, 3 - 1j])
    res = []
    for lib in (tl, torch):
        a = lib.tensor(z, requires_grad=True)
        b = a * 2
        lib.view_as_real(b)[:, 1].mul_(-3)
        (b.abs() ** 2).sum().backward()
        res.append((_np(b), _np(a.grad)))
    np.testing.assert_allclose(res[0][0], res[1][0])
    np.testing.assert_allclose(res[0][1], res[1][1])


def test_inplace_on_part_view_of_leaf_still_refused():
    a = tl.tensor([1 + 2j], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        a.imag.mul_(2)


# --- any / all ------------------------------------------------------------------------------
@pytest.mark.parametrize("vals", [[0j, 1j], [1 + 0j, 1j], [0j, 0j], [1e-300j, 2 + 0j]])
def test_any_all_complex(vals):
    for dt in ("complex64", "complex128"):
        z = tl.tensor(vals, dtype=getattr(tl, dt))
        t = torch.tensor(vals, dtype=getattr(torch, dt))
        assert bool(z.any()) == bool(t.any()) and bool(z.all()) == bool(t.all())
    m = np.array([vals, vals[::-1]])
    np.testing.assert_array_equal(tl.all(tl.tensor(m, dtype=tl.complex128), dim=1).numpy(),
                                  torch.all(torch.tensor(m), dim=1).numpy())


def test_any_complex_has_no_gradient():
    z = tl.tensor([0j, 1j], requires_grad=True)
    assert z.any().requires_grad is False


# --- linspace / logspace --------------------------------------------------------------------
@pytest.mark.parametrize("args", [(0, 1 + 1j, 3), (0.1 + 0.3j, 1.7 - 2.9j, 37), (1j, 2, 1),
                                  (1j, 2, 0), (0, 1, 4), (-2j, 3 + 1j, 10)])
@pytest.mark.parametrize("dtype", [None, "complex64", "complex128"])
def test_linspace_logspace_complex(args, dtype):
    if dtype is None and not any(isinstance(a, complex) for a in args[:2]):
        return
    kw_t = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    kw_l = {} if dtype is None else {"dtype": getattr(tl, dtype)}
    a, b = tl.linspace(*args, **kw_l), torch.linspace(*args, **kw_t)
    assert str(a.dtype) == str(b.dtype).split(".")[-1]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    a, b = tl.logspace(*args, **kw_l), torch.logspace(*args, **kw_t)
    assert str(a.dtype) == str(b.dtype).split(".")[-1]
    tol = 1e-12 if dtype == "complex128" else 1e-5
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


def test_linspace_complex_real_dtype_raises():
    with pytest.raises(TypeError, match="linspace"):
        tl.linspace(0, 1 + 1j, 3, dtype=tl.float32)
    with pytest.raises(TypeError, match="logspace"):
        tl.logspace(0, 1 + 1j, 3, dtype=tl.float64)


# --- autograd.functional --------------------------------------------------------------------
_X = np.array([1 + 1j, 2j, -0.5 + 0.3j])
_V = np.array([1 + 0j, 1j, 0.5 - 2j])
_FUNCS = {
    "abs": lambda x: x.abs(),
    "square": lambda x: x * x,
    "mixed": lambda x: (x * x.conj()).exp() + x.exp() * x.abs(),
}
_SCALARS = {
    "abs3": lambda x: (x ** 3).abs().sum(),
    "mixed": lambda x: (x * x.exp()).real.sum() + (x ** 2).imag.sum() * x.abs().sum(),
}


def _cmp(a, b, tol=1e-10):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        if isinstance(p, tuple):
            _cmp(p, q, tol)
            continue
        assert str(p.dtype) == str(q.dtype).split(".")[-1]
        np.testing.assert_allclose(_np(p), _np(q), rtol=tol, atol=tol)


@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("name", list(_FUNCS))
def test_jacobian_complex(name, vectorize):
    f = _FUNCS[name]
    # PyTorch's loop form refuses complex outputs; its vectorized form seeds them with 1
    _cmp(TF.jacobian(f, tl.tensor(_X), vectorize=vectorize),
         torch.autograd.functional.jacobian(f, torch.tensor(_X), vectorize=True))


def test_jacobian_complex_and_real_inputs():
    def f(x, y):
        return (x * y).abs() + y
    ins = (_X, np.array([0.5, -1.0, 2.0]))
    _cmp(TF.jacobian(f, tuple(tl.tensor(a) for a in ins)),
         torch.autograd.functional.jacobian(f, tuple(torch.tensor(a) for a in ins)))


@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("name", list(_SCALARS))
def test_hessian_complex(name, vectorize):
    f = _SCALARS[name]
    _cmp(TF.hessian(f, tl.tensor(_X), vectorize=vectorize),
         torch.autograd.functional.hessian(f, torch.tensor(_X), vectorize=True))


@pytest.mark.parametrize("name", list(_FUNCS))
def test_vjp_jvp_complex(name):
    f = _FUNCS[name]
    TAF = torch.autograd.functional
    u = _V.real if name == "abs" else _V       # a cotangent of the output's dtype
    _cmp(TF.vjp(f, tl.tensor(_X), tl.tensor(u)), TAF.vjp(f, torch.tensor(_X), torch.tensor(u)))
    _cmp(TF.jvp(f, tl.tensor(_X), tl.tensor(_V)), TAF.jvp(f, torch.tensor(_X), torch.tensor(_V)))


@pytest.mark.parametrize("name", list(_SCALARS))
def test_hvp_vhp_complex(name):
    f = _SCALARS[name]
    TAF = torch.autograd.functional
    _cmp(TF.hvp(f, tl.tensor(_X), tl.tensor(_V)), TAF.hvp(f, torch.tensor(_X), torch.tensor(_V)))
    _cmp(TF.vhp(f, tl.tensor(_X), tl.tensor(_V)), TAF.vhp(f, torch.tensor(_X), torch.tensor(_V)))
    _cmp(TF.vjp(f, tl.tensor(_X)), TAF.vjp(f, torch.tensor(_X)))


def test_functional_integer_inputs_still_refused():
    with pytest.raises(TypeError, match="floating point or complex"):
        TF.jacobian(lambda x: x * 2, tl.tensor([1, 2]))


# --- logcumsumexp ---------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7), dim=st.sampled_from([0, 1, -1]),
       shift=st.sampled_from([0.0, 700.0]))
def test_logcumsumexp_complex(seed, n, dim, shift):
    rng = np.random.default_rng(seed)
    z = _c(rng, 2, n) + shift
    _check(_both(lambda lib, x: lib.logcumsumexp(x, dim), z, weight=_c(rng, 2, n)), 1e-8)


def test_logcumsumexp_complex64_and_second_order():
    z = np.array([1 + 2j, 3 - 1j, -1 + 3j, 0.5 + 0.5j])
    a = tl.logcumsumexp(tl.tensor(z, dtype=tl.complex64), 0)
    assert a.dtype == tl.complex64
    np.testing.assert_allclose(a.numpy(), torch.logcumsumexp(
        torch.tensor(z, dtype=torch.complex64), 0).numpy(), rtol=1e-5)
    out = []
    for lib in (tl, torch):
        x = lib.tensor(z, requires_grad=True)
        g, = lib.autograd.grad(lib.logcumsumexp(x, 0).abs().sum(), x, create_graph=True)
        gg, = lib.autograd.grad((g * g.conj()).real.sum(), x)
        out.append((_np(g), _np(gg)))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-9)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-9)


# --- uniform_ / normal_ ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_uniform_normal_fill_complex(dtype):
    n = 200_000
    z = tl.zeros(n, dtype=getattr(tl, dtype)).uniform_(-1.0, 3.0)
    assert z.dtype == getattr(tl, dtype)
    for part in (z.real.numpy(), z.imag.numpy()):
        assert part.min() >= -1.0 and part.max() < 3.0 and abs(part.mean() - 1.0) < 0.02
    assert np.corrcoef(z.real.numpy(), z.imag.numpy())[0, 1] < 0.02
    z = tl.zeros(n, dtype=getattr(tl, dtype)).normal_(1.0, 2.0)
    t = torch.zeros(n, dtype=getattr(torch, dtype)).normal_(1.0, 2.0)
    for p, q in ((z.real, t.real), (z.imag, t.imag)):
        assert abs(p.numpy().mean() - q.numpy().mean()) < 0.03
        assert abs(p.numpy().std() - q.numpy().std()) < 0.03      # both 2 / sqrt(2)


def test_complex_fills_are_seeded():
    tl.manual_seed(7)
    a = tl.zeros(5, dtype=tl.complex128).normal_()
    tl.manual_seed(7)
    b = tl.zeros(5, dtype=tl.complex128).normal_()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.all(a.imag.numpy() != 0)
