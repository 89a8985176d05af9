"""Complex tensors through the user-facing infrastructure, against PyTorch: printing,
creation, conversions, dtype promotion, checkpoints, assert_close, collate, optimizers,
Module.to and gradient clipping."""
import io
import itertools
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.data.collate import default_collate

torch = pytest.importorskip("torch")

CDTYPES = ["complex64", "complex128"]


def _norm_repr(s: str) -> str:
    # tensorlib names dtypes without "torch." (so a suffix may fit where PyTorch's wraps)
    return re.sub(r",\n *dtype=", ", dtype=", s.replace("torch.", ""))


@pytest.fixture(autouse=True)
def _reset_print():
    yield
    torch.set_printoptions(profile="default", sci_mode=None)
    tl.set_printoptions(profile="default", sci_mode=None)
    torch.set_default_dtype(torch.float32)
    tl.set_default_dtype(tl.float32)


def _same_repr(a: np.ndarray, **opts):
    if opts:
        torch.set_printoptions(**opts)
        tl.set_printoptions(**opts)
    assert _norm_repr(repr(tl.tensor(a))) == _norm_repr(repr(torch.from_numpy(a.copy())))


# --- printing ---------------------------------------------------------------------------
@pytest.mark.parametrize("dt", CDTYPES)
@pytest.mark.parametrize("vals", [
    [1 + 2j, 3 - 1j], 1 + 2j, [], [0j, 0j], [1 + 1e-7j],
    [1.5 + 2.25j, complex(np.nan, 1), complex(1, np.inf), complex(-np.inf, np.nan)],
    [1e-5 + 2j, 1e9 - 1j], [[1 + 1j, -2.5 - 0.5j], [3e3 + 0j, 0 - 4j]]])
def test_print_values(vals, dt):
    _same_repr(np.array(vals, dtype=dt))


def test_print_large_and_nd():
    _same_repr(np.arange(2000).reshape(40, 50) * (1 + 0.5j))
    _same_repr((np.arange(24).reshape(2, 3, 4) * (0.1 + 0.5j)).astype(np.complex64))
    _same_repr((np.arange(3000) * (1 - 1j)).astype(np.complex128))


def test_print_exact_strings():
    assert repr(tl.tensor([1 + 2j, 3 - 1j])) == "tensor([1.+2.j, 3.-1.j])"
    assert repr(tl.tensor([1j], dtype=tl.complex128)) == "tensor([0.+1.j], dtype=complex128)"
    assert repr(tl.zeros(0, dtype=tl.complex64)) == "tensor([], dtype=complex64)"
    tl.set_default_dtype(tl.float64)
    assert repr(tl.tensor([1j])) == "tensor([0.+1.j])"        # complex128 is the default
    assert repr(tl.tensor([1j], dtype=tl.complex64)) == "tensor([0.+1.j], dtype=complex64)"


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=3), data=st.data(),
       dt=st.sampled_from(CDTYPES), precision=st.one_of(st.none(), st.integers(0, 7)),
       sci=st.sampled_from([None, True, False]),
       linewidth=st.one_of(st.none(), st.integers(20, 120)))
def test_print_matches_torch(shape, data, dt, precision, sci, linewidth):
    n = int(np.prod(shape))
    part = st.one_of(st.floats(-1e12, 1e12, allow_nan=False),
                     st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-9, 123.0]))
    re_ = data.draw(st.lists(part, min_size=n, max_size=n))
    im_ = data.draw(st.lists(part, min_size=n, max_size=n))
    a = (np.array(re_, dtype=np.float64) + 0j).astype(dt)
    a.imag = im_
    opts = {k: v for k, v in (("precision", precision), ("linewidth", linewidth)) if v is not None}
    torch.set_printoptions(sci_mode=sci, **opts)
    tl.set_printoptions(sci_mode=sci, **opts)
    _same_repr(a.reshape(shape))


# --- creation -------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", CDTYPES)
def test_creation_dtypes(dt):
    td, d = getattr(torch, dt), getattr(tl, dt)
    pairs = [(tl.zeros(2, 3, dtype=d), torch.zeros(2, 3, dtype=td)),
             (tl.ones(2, dtype=d), torch.ones(2, dtype=td)),
             (tl.full((2,), 1 + 2j, dtype=d), torch.full((2,), 1 + 2j, dtype=td)),
             (tl.eye(3, dtype=d), torch.eye(3, dtype=td)),
             (tl.zeros_like(tl.ones(2, dtype=d)), torch.zeros_like(torch.ones(2, dtype=td))),
             (tl.ones_like(tl.ones(2), dtype=d), torch.ones_like(torch.ones(2), dtype=td)),
             (tl.full_like(tl.ones(2, dtype=d), 1 - 1j),
              torch.full_like(torch.ones(2, dtype=td), 1 - 1j)),
             (tl.linspace(0, 1, 5, dtype=d), torch.linspace(0, 1, 5, dtype=td)),
             (tl.linspace(0, 1 + 1j, 5, dtype=d), torch.linspace(0, 1 + 1j, 5, dtype=td))]
    for got, want in pairs:
        assert got.dtype.name == str(want.dtype).split(".")[1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert tl.empty(2, dtype=d).dtype == d


@pytest.mark.parametrize("dt", CDTYPES)
def test_random_complex(dt):
    d = getattr(tl, dt)
    tl.manual_seed(0)
    z = tl.randn(200, 200, dtype=d)
    assert z.dtype == d and z.shape == (200, 200)
    a = z.numpy()
    # PyTorch's complex randn: each part N(0, 1/2), so E|z|^2 = 1
    assert abs(a.real.var() - 0.5) < 0.03 and abs(a.imag.var() - 0.5) < 0.03
    assert abs(np.corrcoef(a.real.ravel(), a.imag.ravel())[0, 1]) < 0.03
    u = tl.rand(200, 200, dtype=d).numpy()
    for part in (u.real, u.imag):
        assert part.min() >= 0 and part.max() < 1 and abs(part.mean() - 0.5) < 0.02
    for f in (tl.randn_like, tl.rand_like):
        assert f(tl.ones(3, dtype=d)).dtype == d
        assert f(tl.ones(3), dtype=d).dtype == d
        assert np.any(f(tl.ones(50, dtype=d)).numpy().imag != 0)
    assert tl.randn(2, dtype=d, requires_grad=True).requires_grad
    w = tl.uniform(2.0, 3.0, size=(400,), dtype=d).numpy()     # each part in [2, 3)
    for part in (w.real, w.imag):
        assert part.min() >= 2 and part.max() < 3 and part.std() > 0.2


def test_fill_and_literal_dtypes():
    assert tl.full((2,), 1j).dtype == torch.full((2,), 1j).numpy().dtype == np.complex64
    tl.set_default_dtype(tl.float64)
    torch.set_default_dtype(torch.float64)
    assert tl.full((2,), 1j).dtype == tl.complex128 == torch.full((2,), 1j).numpy().dtype
    assert tl.tensor([1j]).dtype == tl.complex128


def test_from_numpy_and_back():
    for dt in CDTYPES:
        a = np.array([1 + 2j, -3j], dtype=dt)
        for t in (tl.tensor(a), tl.as_tensor(a), tl.from_numpy(a)):
            assert t.dtype == a.dtype
            np.testing.assert_array_equal(np.asarray(t), a)
            np.testing.assert_array_equal(t.numpy(), a)
    assert tl.tensor(torch.tensor([1 + 1j])).dtype == tl.complex64
    assert tl.tensor([1, 2.5, 1j]).dtype == tl.complex64


def test_scalar_conversions():
    z, tz = tl.tensor([1 + 2j]), torch.tensor([1 + 2j])
    assert z.item() == tz.item() == 1 + 2j and isinstance(z.item(), complex)
    assert tl.tensor([[1 + 2j, 3j]]).tolist() == torch.tensor([[1 + 2j, 3j]]).tolist()
    assert complex(z) == complex(tz)
    assert complex(tl.tensor([2.5])) == complex(torch.tensor([2.5])) == 2.5 + 0j
    assert complex(tl.tensor(2)) == complex(torch.tensor(2))
    for conv in (float, int):
        with pytest.raises(RuntimeError):
            conv(tz)
        with pytest.raises(RuntimeError, match=rf"{conv.__name__}\(\): cannot convert"):
            conv(z)
        assert conv(tl.tensor([3 + 0j])) == conv(torch.tensor([3 + 0j]))
    with pytest.raises(ValueError, match="one-element"):
        complex(tl.tensor([1j, 2]))


def test_casts_and_predicates():
    x = tl.tensor([1.5, -2.0])
    for target in (tl.complex64, "complex128", torch.complex64):
        y = x.to(target)
        assert y.dtype.kind == "c"
        np.testing.assert_array_equal(y.numpy(), x.numpy().astype(y.dtype))
    assert x.type(tl.complex128).dtype == tl.complex128
    z = tl.tensor([1j])
    assert tl.is_complex(z) and z.is_complex() and not tl.is_complex(x)
    assert not z.is_floating_point() and not tl.is_floating_point(z)


DTS = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
       "complex64", "complex128"]


def _tname(d) -> str:
    return str(d).split(".")[1]


def test_promote_types_and_can_cast():
    for a, b in itertools.product(DTS, DTS):
        ta, tb = getattr(torch, a), getattr(torch, b)
        assert tl.promote_types(a, b).name == _tname(torch.promote_types(ta, tb)), (a, b)
        assert tl.can_cast(a, b) == torch.can_cast(ta, tb), (a, b)


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_result_type(default):
    torch.set_default_dtype(getattr(torch, default))
    tl.set_default_dtype(getattr(tl, default))
    for a, b in itertools.product(DTS, DTS):
        for na, nb in [(1, 1), (0, 1), (1, 0), (0, 0)]:
            want = _tname(torch.result_type(torch.ones((2,) * na, dtype=getattr(torch, a)),
                                             torch.ones((2,) * nb, dtype=getattr(torch, b))))
            if want == "complex32":         # tensorlib has no complex half
                continue
            got = tl.result_type(tl.ones((2,) * na, dtype=a), tl.ones((2,) * nb, dtype=b))
            assert got.name == want, (a, na, b, nb)
    for a in DTS:
        for s in (True, 2, 2.5, 1j):
            for n in (0, 1):
                want = _tname(torch.result_type(torch.ones((2,) * n, dtype=getattr(torch, a)),
                                                s))
                if want == "complex32":
                    continue
                x = tl.ones((2,) * n, dtype=a)
                assert tl.result_type(x, s).name == want == tl.result_type(s, x).name
    for s1, s2 in itertools.product((True, 2, 2.5, 1j), repeat=2):
        assert tl.result_type(s1, s2).name == _tname(torch.result_type(s1, s2))
    with pytest.raises(TypeError, match="result_type"):
        tl.result_type("a", 1)


# --- checkpoints, assert_close, collate -------------------------------------------------------
def test_save_load_complex(tmp_path):
    obj = {"a": tl.tensor([1 + 2j, complex(np.nan, np.inf)]),
           "b": tl.tensor([[1 - 2j]], dtype=tl.complex128), "c": 1j,
           "d": complex(np.inf, -1.5), "e": np.complex64(1 - 2j),
           "f": np.complex128(complex(3, np.inf)), "g": np.array([1j, 2]), "h": [1 + 1j, (2j,)]}
    path = tmp_path / "ck.safetensors"
    tl.save(obj, path)
    for out in (tl.load(path), tl.load(path, weights_only=True)):
        for k in ("a", "b"):
            assert out[k].dtype == obj[k].dtype
            np.testing.assert_array_equal(out[k].numpy(), obj[k].numpy())
        assert out["c"] == 1j and isinstance(out["c"], complex)
        assert out["d"] == obj["d"]
        for k in ("e", "f"):
            assert type(out[k]) is type(obj[k]) and out[k] == obj[k]
        np.testing.assert_array_equal(out["g"], obj["g"])
        assert out["h"] == [1 + 1j, (2j,)]
    assert b"pickle" not in path.read_bytes()
    buf = io.BytesIO()
    m = tl.nn.Linear(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.to(tl.cfloat)
    tl.save(m.state_dict(), buf)
    buf.seek(0)
    sd = tl.load(buf)
    assert sd["weight"].dtype == tl.complex64
    m2 = tl.nn.Linear(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2.to(tl.cfloat)
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(m2.weight.detach().numpy(), m.weight.detach().numpy())


def test_assert_close_complex():
    z = tl.tensor([1 + 2j, 3 - 1j])
    tl.testing.assert_close(z, z.clone())
    tl.testing.assert_close(z, z + 1e-7j)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(torch.tensor([1 + 2j]), torch.tensor([1 + 2j]) + 1e-3j)
    with pytest.raises(AssertionError, match="not close"):
        tl.testing.assert_close(z, z + 1e-3j)
    with pytest.raises(AssertionError, match="dtype"):
        tl.testing.assert_close(z, z.to(tl.complex128))
    n = tl.tensor([complex(np.nan, 1)])
    tl.testing.assert_close(n, tl.tensor([complex(1, np.nan)]), equal_nan=True)   # as torch
    with pytest.raises(AssertionError):
        tl.testing.assert_close(n, n)
    inf = tl.tensor([complex(np.inf, 1)])
    tl.testing.assert_close(inf, inf)
    with pytest.raises(AssertionError):
        tl.testing.assert_close(inf, tl.tensor([complex(np.inf, 1.5)]))
    tl.testing.assert_close(1 + 1j, 1 + 1j + 1e-9j)
    with pytest.raises(AssertionError):
        tl.testing.assert_close(1 + 1j, 1 + 1.001j)
    t = tl.testing.make_tensor(50, dtype=tl.complex128)
    assert t.dtype == tl.complex128 and np.any(t.numpy().imag != 0)


def test_collate_complex():
    z = tl.tensor([1 + 2j, 3 - 1j])
    out = default_collate([z, z * 2])
    want = torch.utils.data.default_collate([torch.tensor([1 + 2j, 3 - 1j])] * 2)
    assert out.dtype == tl.complex64 and out.shape == tuple(want.shape)
    for batch in ([np.complex64(1j), np.complex64(2)], [np.array([1j]), np.array([2j])]):
        got = default_collate(batch)
        want = torch.utils.data.default_collate(batch)
        assert got.dtype.name == _tname(want.dtype)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # Python complex numbers: PyTorch's default_collate refuses them, and so does tensorlib
    with pytest.raises(TypeError):
        torch.utils.data.default_collate([1j, 2j])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([1j, 2j])


# --- optimizers, Module.to, clipping --------------------------------------------------------
OPTIMS = [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
          ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1, dampening=0.1)),
          ("SGD", dict(lr=0.1, momentum=0.9, foreach=True)),
          ("Adam", dict(lr=0.1)), ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.1)),
          ("Adam", dict(lr=0.1, maximize=True)), ("Adam", dict(lr=0.1, foreach=True)),
          ("AdamW", dict(lr=0.1)), ("AdamW", dict(lr=0.1, amsgrad=True)),
          ("RMSprop", dict(lr=0.01)),
          ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
          ("Adagrad", dict(lr=0.1)), ("Adagrad", dict(lr=0.1, weight_decay=0.1, lr_decay=0.01,
                                                      initial_accumulator_value=0.1)),
          ("Adadelta", dict(lr=1.0)), ("Adadelta", dict(lr=1.0, weight_decay=0.1)),
          ("Adamax", dict(lr=0.1)), ("Adamax", dict(lr=0.1, weight_decay=0.1)),
          ("NAdam", dict(lr=0.1)),
          ("NAdam", dict(lr=0.1, decoupled_weight_decay=True, weight_decay=0.1)),
          ("RAdam", dict(lr=0.1)),
          ("RAdam", dict(lr=0.1, weight_decay=0.1, decoupled_weight_decay=True)),
          ("ASGD", dict(lr=0.1)), ("ASGD", dict(lr=0.1, t0=2, weight_decay=0.1)),
          ("Rprop", dict(lr=0.1))]


@pytest.mark.parametrize("dt", CDTYPES)
@pytest.mark.parametrize("name,kw", OPTIMS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMS)])
def test_optimizer_complex_matches_torch(name, kw, dt):
    rng = np.random.default_rng(len(name))
    shapes = [(3, 4), (5,)]
    p0 = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dt) for s in shapes]
    real0 = rng.standard_normal((2,))          # a real parameter in the same group
    grads = [[(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dt)
              for s in shapes] + [rng.standard_normal((2,))] for _ in range(6)]
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in p0] + [
        torch.tensor(real0.copy(), requires_grad=True)]
    ps = [tl.tensor(a.copy(), requires_grad=True) for a in p0] + [
        tl.tensor(real0.copy(), requires_grad=True)]
    topt = getattr(torch.optim, name)(tps, **kw)
    opt = getattr(tl.optim, name)(ps, **kw)
    for gs in grads:
        for tp, p, g in zip(tps, ps, gs):
            tp.grad = torch.tensor(g.copy())
            p.grad = tl.tensor(g.copy())
        topt.step()
        opt.step()
    # NAdam: PyTorch keeps mu_product in float32 (as for real float64 parameters)
    tol = 1e-4 if dt == "complex64" else 1e-8 if name == "NAdam" else 1e-11
    for tp, p in zip(tps, ps):
        assert p.dtype.name == _tname(tp.dtype)
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=tol, atol=tol)
    # the state of a complex parameter stays complex, as PyTorch's
    for tp, p in zip(tps[:1], ps[:1]):
        for k, v in topt.state[tp].items():
            if isinstance(v, torch.Tensor) and v.dim():
                assert opt.state[p][k].dtype.name == _tname(v.dtype), k
                np.testing.assert_allclose(opt.state[p][k].numpy(), v.numpy(), rtol=tol,
                                           atol=tol)


def test_optimizer_complex_state_dict_round_trip():
    p = tl.tensor([1 + 1j, 2 - 1j], requires_grad=True)
    opt = tl.optim.Adam([p], lr=0.1)
    p.grad = tl.tensor([0.5 + 0.5j, -1j])
    opt.step()
    sd = opt.state_dict()
    q = tl.tensor([1 + 1j, 2 - 1j], requires_grad=True)
    opt2 = tl.optim.Adam([q], lr=0.1)
    opt2.load_state_dict(sd)
    with tl.no_grad():
        q.copy_(p)
    for o, t in ((opt, p), (opt2, q)):
        t.grad = tl.tensor([0.1 + 0.2j, 0.3j])
        o.step()
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_optimizer_refuses_integer_params():
    with pytest.raises(TypeError, match="floating-point and complex"):
        tl.optim.SGD([tl.tensor([1, 2])], lr=0.1)


def test_module_to_complex():
    m, tm = tl.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    with pytest.warns(UserWarning):
        tm.to(torch.cfloat)
    with pytest.warns(UserWarning, match="Complex modules"):
        out = m.to(tl.cfloat)
    assert out is m and m.weight.dtype == tl.complex64 == tm.weight.detach().numpy().dtype
    w = m.weight
    with pytest.warns(UserWarning):
        m.to(dtype=tl.complex128)
    assert m.weight is w and m.weight.dtype == tl.complex128
    assert m(tl.randn(4, 2, dtype=tl.complex128)).dtype == tl.complex128
    with pytest.raises(TypeError, match="Module.to: only floating-point and complex"):
        m.to(tl.int32)


def test_clip_grad_norm_complex():
    g = np.array([1 + 1j, 3 - 4j, 0j, 0.5j])
    for norm_type in (2.0, 1.0, float("inf")):
        for dt in CDTYPES:
            p = tl.zeros(4, dtype=dt, requires_grad=True)
            p.grad = tl.tensor(g.astype(dt))
            tp = torch.zeros(4, dtype=getattr(torch, dt), requires_grad=True)
            tp.grad = torch.tensor(g.astype(dt))
            total = tl.nn.utils.clip_grad_norm_([p], 1.0, norm_type=norm_type)
            ttotal = torch.nn.utils.clip_grad_norm_([tp], 1.0, norm_type=norm_type)
            assert total.dtype.kind == "f"
            np.testing.assert_allclose(float(total), float(ttotal), rtol=1e-6)
            assert p.grad.dtype == p.dtype
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-6)
    p = tl.zeros(2, dtype=tl.complex64, requires_grad=True)
    p.grad = tl.tensor([1j, 2j])
    with pytest.raises(TypeError, match="clamp"):      # PyTorch: clamp has no complex form
        tl.nn.utils.clip_grad_value_([p], 1.0)
