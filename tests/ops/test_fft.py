"""tl.fft against torch.fft: values, dtypes, gradients (first and second order), capture,
errors; tl.stft/tl.istft with complex spectra."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

NORMS = [None, "backward", "ortho", "forward"]
C2C = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn"]
R_IN = ["rfft", "ihfft", "rfft2", "rfftn", "ihfft2", "ihfftn"]       # real input only
R_OUT = ["irfft", "hfft", "irfft2", "irfftn", "hfft2", "hfftn"]      # real output
ONE_D = {"fft", "ifft", "rfft", "irfft", "hfft", "ihfft"}
ALL = C2C + R_IN + R_OUT


def _rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    if np.dtype(dtype).kind in "iu":
        a = rng.integers(-5, 5, shape)
    return a.astype(dtype)


def _np(t):
    t = t.detach()
    if t.is_complex():
        t = t.resolve_conj()
    return t.numpy()


def _call(lib, name, x, kw):
    return getattr(lib.fft, name)(x, **kw)


def _check(name, a, kw, rtol=1e-6, atol=1e-8):
    want = _call(torch, name, torch.tensor(a), kw)
    got = _call(tl, name, tl.tensor(a), kw)
    assert got.shape == tuple(want.shape), (got.shape, want.shape)
    assert str(got.dtype) == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
    np.testing.assert_allclose(got.numpy(), _np(want), rtol=rtol, atol=atol)


def _variants(name):
    """(shape, kwargs) cases: default, n/s padding and truncation, negative dims, s=-1."""
    if name in ONE_D:
        return [((6,), {}), ((3, 7), {"n": 4}), ((3, 5), {"n": 9, "dim": 0}),
                ((2, 5, 4), {"dim": -2}), ((2, 5), {"n": 5, "dim": 1})]
    if name.endswith("2"):
        return [((4, 6), {}), ((2, 4, 5), {"s": (3, 8)}),
                ((3, 4, 5), {"dim": (0, -1)}), ((3, 4, 5), {"s": (5, -1), "dim": (2, 0)})]
    return [((3, 4), {}), ((2, 3, 4), {"dim": (0, 2)}), ((2, 3, 4), {"s": (5, 3)}),
            ((2, 3, 6), {"s": (-1, 4), "dim": (-1, 1)}), ((5, 4), {"dim": (1,)})]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("norm", NORMS)
def test_values_against_torch(name, norm):
    dts = ["float32", "float64", "int64"] if name in R_IN else \
        ["complex64", "complex128", "float32", "float64", "int64"]
    for dt in dts:
        for shape, kw in _variants(name):
            kw = dict(kw, norm=norm) if norm is not None else kw
            tol = (1e-4, 1e-4) if dt in ("complex64", "float32", "int64") else (1e-7, 1e-9)
            _check(name, _rand(shape, dt), kw, *tol)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(ALL), rows=st.integers(1, 3), cols=st.integers(1, 9),
       n=st.one_of(st.none(), st.integers(1, 12)), norm=st.sampled_from(NORMS))
def test_values_hypothesis(name, rows, cols, n, norm):
    real = name in R_IN
    a = _rand((rows, cols), "float64" if real else "complex128", seed=rows * 31 + cols)
    kw = {"norm": norm}
    if n is not None:
        kw["n" if name in ONE_D else "s"] = n if name in ONE_D else (n, -1)
    if name in R_OUT and n is None and cols == 1 and name in ONE_D | {"irfftn", "hfftn"}:
        with pytest.raises(RuntimeError, match="Invalid number of data points"):
            _call(tl, name, tl.tensor(a), kw)
        return
    try:
        want = _call(torch, name, torch.tensor(a), kw)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            _call(tl, name, tl.tensor(a), kw)
        return
    got = _call(tl, name, tl.tensor(a), kw)
    np.testing.assert_allclose(got.numpy(), _np(want), rtol=1e-7, atol=1e-9)


def _loss(lib, y, w, square=False):
    if square:      # a nonlinear loss, for second-order gradients
        y = (y * y.conj()).real if y.is_complex() else y * y
        return (y * w.real).sum() if w.is_complex() else (y * w).sum()
    if y.is_complex():
        return (y * w.conj()).real.sum()
    return (y * w).sum()


def _grads(name, a, kw, square=False, second=False):
    out = []
    for lib in (torch, tl):
        z = lib.tensor(a, requires_grad=True)
        y = _call(lib, name, z, kw)
        w = lib.tensor(_rand(tuple(y.shape), "complex128" if y.is_complex() else "float64",
                             seed=7))
        loss = _loss(lib, y, w, square)
        if not second:
            (g,) = lib.autograd.grad(loss, z)
            out.append(_np(g))
            continue
        (g,) = lib.autograd.grad(loss, z, create_graph=True)
        v = lib.tensor(_rand(tuple(g.shape), str(a.dtype), seed=11))
        loss2 = (g * v.conj()).real.sum() if g.is_complex() else (g * v).sum()
        (g2,) = lib.autograd.grad(loss2, z)
        out.append(_np(g2))
    return out


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_gradients_against_torch(name, norm):
    dts = ["float64"] if name in R_IN else ["complex128", "float64"]
    for dt in dts:
        for shape, kw in _variants(name):
            want, got = _grads(name, _rand(shape, dt), dict(kw, norm=norm))
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["fft", "ifft2", "rfft", "irfft", "hfft", "ihfft", "rfftn",
                                  "irfftn", "hfftn"])
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_second_order_against_torch(name, norm):
    dt = "float64" if name in R_IN else "complex128"
    shape, kw = _variants(name)[1]
    want, got = _grads(name, _rand(shape, dt), dict(kw, norm=norm), square=True, second=True)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_irfft_ignores_imaginary_dc_and_nyquist():
    a = _rand((5,), "complex128")
    z = tl.tensor(a, requires_grad=True)
    tl.fft.irfft(z).sum().backward()
    g = z.grad.numpy()
    assert g[0].imag == 0 and g[-1].imag == 0
    zt = torch.tensor(a, requires_grad=True)
    torch.fft.irfft(zt).sum().backward()
    np.testing.assert_allclose(g, zt.grad.numpy(), atol=1e-12)


def test_float32_stays_single_precision():
    x = tl.tensor(_rand((8,), "float32"))
    assert tl.fft.fft(x).dtype == tl.complex64
    assert tl.fft.rfft(x).dtype == tl.complex64
    assert tl.fft.irfft(tl.fft.rfft(x)).dtype == tl.float32
    assert tl.fft.fft(tl.tensor([1, 2, 3])).dtype == tl.complex64
    assert tl.fft.fft(tl.tensor([True, False])).dtype == tl.complex64


def test_roundtrip_and_zero_dim():
    x = tl.tensor(_rand((3, 10), "complex128"))
    np.testing.assert_allclose(tl.fft.ifftn(tl.fft.fftn(x)).numpy(), x.numpy(), atol=1e-12)
    r = tl.tensor(_rand((3, 10), "float64"))
    np.testing.assert_allclose(tl.fft.irfft(tl.fft.rfft(r), n=10).numpy(), r.numpy(),
                               atol=1e-12)
    _check("fftn", np.array(2.0), {})
    _check("fftn", _rand((4,), "float64"), {"dim": ()})


def test_freqs_and_shifts():
    for n in (0, 1, 4, 5):
        for d in (1.0, 0.5):
            for f in ("fftfreq", "rfftfreq"):
                got = getattr(tl.fft, f)(n, d)
                want = getattr(torch.fft, f)(n, d)
                assert got.dtype == tl.float32
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert tl.fft.fftfreq(4, dtype=tl.float64).dtype == tl.float64
    a = _rand((4, 5), "complex128")
    for dim in (None, 0, -1, (0, 1), (1,)):
        for f in ("fftshift", "ifftshift"):
            got = getattr(tl.fft, f)(tl.tensor(a), dim=dim)
            want = getattr(torch.fft, f)(torch.tensor(a), dim=dim)
            np.testing.assert_allclose(got.numpy(), want.numpy())
    np.testing.assert_array_equal(tl.fft.ifftshift(tl.fft.fftshift(tl.arange(7))).numpy(),
                                  np.arange(7))
    with pytest.raises(RuntimeError, match="negative dimension"):
        tl.fft.fftfreq(-1)


@pytest.mark.parametrize("call, err, match", [
    (lambda m: m.fft.fft(m.ones(4), norm="foo"), RuntimeError, "Invalid normalization mode"),
    (lambda m: m.fft.fft(m.ones(4), n=0), RuntimeError, "Invalid number of data points"),
    (lambda m: m.fft.fft(m.ones(4), dim=1), IndexError, "Dimension out of range"),
    (lambda m: m.fft.fft2(m.ones(4)), IndexError, "Dimension out of range"),
    (lambda m: m.fft.rfft(m.ones(4, dtype=m.complex64)), RuntimeError,
     "rfft expects a real input tensor, but got ComplexFloat"),
    (lambda m: m.fft.ihfft(m.ones(4, dtype=m.complex128)), RuntimeError,
     "ihfft expects a real input tensor, but got ComplexDouble"),
    (lambda m: m.fft.irfft(m.ones(1, dtype=m.complex64)), RuntimeError,
     "Invalid number of data points"),
    (lambda m: m.fft.fftn(m.ones(4), s=(4, 4), dim=(0,)), RuntimeError,
     "dim and shape arguments must have the same length"),
    (lambda m: m.fft.fftn(m.ones((2, 2)), dim=(0, 0)), RuntimeError, "FFT dims must be unique"),
    (lambda m: m.fft.fftn(m.ones(4), s=(4, 4)), RuntimeError, "Got shape with 2 values"),
    (lambda m: m.fft.fft(m.ones(0)), RuntimeError, "Invalid number of data points"),
    (lambda m: m.fft.fft(m.ones(4, dtype=m.float16)), RuntimeError, "Unsupported dtype Half"),
    (lambda m: m.fft.rfftn(m.ones(4), dim=()), RuntimeError, "must transform at least one"),
    (lambda m: m.fft.fftn(m.ones(4), s=(-2,)), RuntimeError, "Invalid number of data points"),
])
def test_errors_as_torch(call, err, match):
    with pytest.raises(err, match=match):
        call(torch)
    with pytest.raises(err, match=match):
        call(tl)


def test_capture_replays():
    @tl.function
    def f(z, x):
        a = tl.fft.fft(z, n=8, norm="ortho")
        b = tl.fft.irfft(tl.fft.rfft(x, n=6) * 2.0, n=6)
        return (a * a.conj()).real.sum() + b.sum(), tl.fft.fftshift(tl.fft.ifft2(z))

    for seed in (0, 1, 2):
        z = tl.tensor(_rand((3, 5), "complex128", seed))
        x = tl.tensor(_rand((3, 5), "float64", seed + 5))
        got = f(z, x)
        a = tl.fft.fft(z, n=8, norm="ortho")
        want0 = (a * a.conj()).real.sum() + tl.fft.irfft(tl.fft.rfft(x, n=6) * 2.0, n=6).sum()
        np.testing.assert_allclose(got[0].numpy(), want0.numpy(), rtol=1e-12)
        np.testing.assert_allclose(got[1].numpy(),
                                   tl.fft.fftshift(tl.fft.ifft2(z)).numpy(), atol=1e-12)


def test_onnx_export_refuses_complex_fft(tmp_path):
    pytest.importorskip("onnx")
    x = tl.randn(4, 8)
    with tl.capture(x) as g:
        y = tl.fft.irfft(tl.fft.rfft(x) * 2.0, n=8)
    g.set_outputs(y)
    with pytest.raises(tl.onnx.UnsupportedOpError, match="fft_r2c"):
        g.to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# --- stft / istft with complex spectra -----------------------------------------------
@pytest.mark.parametrize("onesided", [None, True, False])
@pytest.mark.parametrize("normalized", [False, True])
def test_stft_return_complex(onesided, normalized):
    x = _rand((2, 50), "float64")
    w = np.hanning(16)
    kw = dict(n_fft=16, hop_length=4, normalized=normalized, onesided=onesided,
              return_complex=True)
    want = torch.stft(torch.tensor(x), window=torch.tensor(w), **kw)
    got = tl.stft(tl.tensor(x), window=tl.tensor(w), **kw)
    assert got.dtype == tl.complex128 and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-12)
    got1 = tl.stft(tl.tensor(x[0].astype(np.float32)), window=tl.tensor(w.astype(np.float32)),
                   **kw)
    assert got1.dtype == tl.complex64 and got1.shape == tuple(want.shape[1:])
    # gradient vs PyTorch
    wt = _rand(tuple(want.shape), "complex128", 3)
    xs = [lib.tensor(x, requires_grad=True) for lib in (torch, tl)]
    for lib, xx in zip((torch, tl), xs):
        s = lib.stft(xx, window=lib.tensor(w), **kw)
        (s * lib.tensor(wt).conj()).real.sum().backward()
    np.testing.assert_allclose(xs[1].grad.numpy(), xs[0].grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("onesided", [True, False])
@pytest.mark.parametrize("return_complex", [False, True])
def test_istft_complex_spectrum(onesided, return_complex):
    if onesided and return_complex:
        with pytest.raises(ValueError, match="two-sided"):
            tl.istft(tl.ones((9, 5), dtype=tl.complex128), 16, 4, return_complex=True)
        return
    w = np.hanning(16)
    spec = torch.stft(torch.tensor(_rand((2, 60), "float64")), 16, 4,
                      window=torch.tensor(w), onesided=onesided, return_complex=True)
    spec = spec + 0.05 * torch.tensor(_rand(tuple(spec.shape), "complex128", 4))
    kw = dict(n_fft=16, hop_length=4, onesided=onesided, length=58,
              return_complex=return_complex)
    st_ = spec.clone().requires_grad_(True)
    want = torch.istft(st_, window=torch.tensor(w), **kw)
    sl = tl.tensor(spec.numpy(), requires_grad=True)
    got = tl.istft(sl, window=tl.tensor(w), **kw)
    assert got.shape == tuple(want.shape) and str(got.dtype) == str(want.dtype)[6:]
    np.testing.assert_allclose(got.numpy(), _np(want), atol=1e-12)
    v = _rand(tuple(want.shape), "complex128" if return_complex else "float64", 5)
    _loss(torch, want, torch.tensor(v)).backward()
    _loss(tl, got, tl.tensor(v)).backward()
    np.testing.assert_allclose(sl.grad.numpy(), st_.grad.numpy(), atol=1e-10)


def test_stft_old_layout_still_works():
    x = _rand((40,), "float64")
    old = tl.stft(tl.tensor(x), 8, 2, return_complex=False)
    new = tl.stft(tl.tensor(x), 8, 2, return_complex=True)
    np.testing.assert_allclose(tl.view_as_real(new).numpy(), old.numpy(), atol=1e-12)
    y = tl.istft(new, 8, 2, window=tl.hann_window(8, dtype=tl.float64) ** 0, length=40)
    np.testing.assert_allclose(y.numpy(), x, atol=1e-10)
    with pytest.raises(ValueError, match="return_complex"):
        tl.stft(tl.tensor(x), 8, 2)
    z = x.astype(np.complex128) * (1 - 0.5j)    # a complex signal: the two-sided spectrum
    np.testing.assert_allclose(
        tl.stft(tl.tensor(z), 8, 2, return_complex=True).numpy(),
        torch.stft(torch.tensor(z), 8, 2, return_complex=True).numpy(), atol=1e-12)
