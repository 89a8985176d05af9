"""The fast stft/istft (frames as blocks of hop samples joined once, overlap-add as shifted
block sums, the real FFT by SciPy's pocketfft in the input's precision with its pairs viewed,
not stacked): values and gradients against PyTorch and finite differences over the
parameter space (hop above, at and below n_fft, win_length < n_fft, every pad mode, short
signals), the NumPy/CuPy kernels without SciPy, capture and ONNX export over a dynamic
length, and PyTorch's RuntimeError for a window that fails NOLA."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops import fourier

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _close(a, b, tol):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max(
        initial=0.0))))


@st.composite
def stft_args(draw):
    n_fft = draw(st.integers(1, 24))
    # hop below, at and above n_fft (frames then skip samples)
    hop = draw(st.integers(1, 2 * n_fft + 3))
    win = draw(st.one_of(st.none(), st.integers(1, n_fft)))
    center = draw(st.booleans())
    mode = draw(st.sampled_from(["reflect", "constant", "replicate"]))
    p = n_fft // 2 if center else 0
    lo = max(1, n_fft - 2 * p, p + 1 if center and mode == "reflect" else 1)
    length = draw(st.integers(lo, lo + 60))
    batch = draw(st.one_of(st.none(), st.integers(1, 3)))
    return dict(n_fft=n_fft, hop_length=hop, win_length=win, center=center,
                normalized=draw(st.booleans()),
                onesided=draw(st.sampled_from([None, True, False]))), mode, length, batch


def _signal(rng, length, batch):
    return rng.standard_normal(length if batch is None else (batch, length))


@SETTINGS
@given(stft_args(), st.integers(0, 2**16))
def test_stft_values_and_grads_match_torch(args, seed):
    kw, mode, length, batch = args
    rng = np.random.default_rng(seed)
    x = _signal(rng, length, batch)
    w = rng.uniform(0.5, 1.5, kw["win_length"] or kw["n_fft"])
    xa, wa = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ours = tl.stft(xa, window=wa, pad_mode=mode, return_complex=False, **kw)
    theirs = torch.view_as_real(torch.stft(xt, window=wt, pad_mode=mode, return_complex=True,
                                           **kw))
    _close(ours, theirs, 1e-10)
    g = rng.standard_normal(tuple(theirs.shape))
    ours.backward(tl.tensor(g))
    theirs.backward(torch.tensor(g))
    _close(xa.grad, xt.grad, 1e-10)
    _close(wa.grad, wt.grad, 1e-10)


@SETTINGS
@given(stft_args(), st.integers(0, 2**16), st.one_of(st.none(), st.integers(1, 80)))
def test_istft_values_and_grads_match_torch(args, seed, length):
    kw, mode, sig_len, batch = args
    kw = dict(kw, onesided=True if kw["onesided"] is None else kw["onesided"])
    assume(kw["onesided"])      # (PyTorch's istft wants a Hermitian two-sided input)
    assume(kw["n_fft"] > 1)     # (PyTorch's center trim of n_fft // 2 = 0 cuts everything)
    rng = np.random.default_rng(seed)
    x = torch.tensor(_signal(rng, sig_len, batch))
    w = rng.uniform(0.5, 1.5, kw["win_length"] or kw["n_fft"])
    spec = torch.view_as_real(torch.stft(x, window=torch.tensor(w), pad_mode=mode,
                                         return_complex=True, **kw)).numpy()
    st_ = torch.tensor(spec, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    try:
        theirs = torch.istft(torch.view_as_complex(st_), window=wt, length=length, **kw)
    except RuntimeError as e:
        if "numel() == 0" in str(e):    # PyTorch fails on an empty result; ours is empty
            out = tl.istft(tl.tensor(spec), window=tl.tensor(w), length=length, **kw)
            assert out.numel() == 0
            return
        # PyTorch's NOLA check is a RuntimeError here too; its argument checks ValueErrors
        nola = "window overlap" in str(e)
        with pytest.raises(RuntimeError if nola else ValueError,
                           match="window overlap fails the NOLA" if nola else "hop_length"):
            tl.istft(tl.tensor(spec), window=tl.tensor(w), length=length, **kw)
        return
    sa, wa = tl.tensor(spec, requires_grad=True), tl.tensor(w, requires_grad=True)
    ours = tl.istft(sa, window=wa, length=length, **kw)
    _close(ours, theirs, 1e-9)
    g = rng.standard_normal(tuple(theirs.shape))
    ours.backward(tl.tensor(g))
    theirs.backward(torch.tensor(g))
    _close(sa.grad, st_.grad, 1e-9)
    _close(wa.grad, wt.grad, 1e-9)


@pytest.mark.parametrize("n_fft", [400, 512, 1024])
def test_float32_audio_sizes_match_torch(n_fft):
    # the trial's shapes (hop 160, a Hann window), fewer clips: float32 throughout
    x = np.random.default_rng(n_fft).standard_normal((3, 16000)).astype(np.float32)
    wt = torch.hann_window(n_fft)
    ref = torch.stft(torch.tensor(x), n_fft, 160, window=wt, return_complex=True)
    ours = tl.stft(tl.tensor(x), n_fft, 160, window=tl.hann_window(n_fft),
                   return_complex=False)
    assert ours.dtype == tl.float32
    _close(ours, torch.view_as_real(ref), 2e-6)
    back = tl.istft(ours, n_fft, 160, window=tl.hann_window(n_fft))
    assert back.dtype == tl.float32
    _close(back, torch.istft(ref, n_fft, 160, window=wt), 2e-6)
    _close(back, x, 2e-6)


def test_gradcheck_and_gradgradcheck_float64():
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((2, 21)), requires_grad=True)
    w = tl.tensor(rng.uniform(0.5, 1.5, 6), requires_grad=True)
    f = lambda a, b: tl.stft(a, 8, 3, win_length=6, window=b, return_complex=False)  # noqa: E731
    assert tl.autograd.gradcheck(f, [x, w])
    assert tl.autograd.gradgradcheck(f, [x, w])
    spec = tl.tensor(_np(f(x, w)), requires_grad=True)
    w8 = tl.tensor(rng.uniform(0.5, 1.5, 8), requires_grad=True)
    g = lambda s, b: tl.istft(s, 8, 3, window=b, length=21)  # noqa: E731
    assert tl.autograd.gradcheck(g, [spec, w8])
    assert tl.autograd.gradgradcheck(g, [spec, w8])


@pytest.mark.parametrize("n", [1, 2, 7, 8, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scipy_fft", [True, False])
def test_rdft_kernels_match_torch(monkeypatch, n, dtype, scipy_fft):
    if not scipy_fft:           # NumPy's FFT (the path without SciPy, and CuPy's code)
        monkeypatch.setattr(fourier, "_cpu_fft", lambda: None)
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, 5, n)).astype(dtype)[:, ::2]        # non-contiguous rows
    g = rng.standard_normal((3, 3, n // 2 + 1, 2)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    ref = torch.view_as_real(torch.fft.rfft(xt))
    ref.backward(torch.tensor(g))
    for fwd, adj in ((fourier._rdft_cpu, fourier._adjoint_cpu),
                     (lambda a: fourier._rdft_fwd(np, a),
                      lambda a, m: fourier._adjoint_fwd(np, a, m))):
        out = fwd(x)
        assert out.dtype == dtype and out.shape == (3, 3, n // 2 + 1, 2)
        _close(out, ref, tol)
        # the adjoint of a non-contiguous spectrum too (the gradient of a transposed one)
        gt = np.ascontiguousarray(np.swapaxes(g, 0, 1))
        a = adj(np.swapaxes(gt, 0, 1), n)
        assert a.dtype == dtype
        _close(a, xt.grad, tol)
    irdft = fourier.irdft(tl.tensor(g), n)
    _close(irdft, torch.fft.irfft(torch.view_as_complex(torch.tensor(g)), n), tol)


def test_rdft_output_views_the_complex_result():
    # real and imaginary parts are the complex array's own memory: no stack, no copy
    c = np.fft.rfft(np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32))
    pairs = fourier._pairs(np, c, np.dtype(np.float32))
    assert pairs.shape == (4, 9, 2) and np.shares_memory(pairs, c)
    np.testing.assert_array_equal(pairs[..., 0], c.real)
    np.testing.assert_array_equal(pairs[..., 1], c.imag)


def test_nola_failure_is_a_runtime_error_as_torch():
    w = np.hanning(8)                 # zero at both ends: hop = n_fft leaves zero gaps
    spec = torch.stft(torch.randn(64, dtype=torch.float64), 8, 8, window=torch.tensor(w),
                      return_complex=True)
    with pytest.raises(RuntimeError):
        torch.istft(spec, 8, 8, window=torch.tensor(w))
    with pytest.raises(RuntimeError, match="NOLA"):
        tl.istft(tl.tensor(torch.view_as_real(spec).numpy()), 8, 8, window=tl.tensor(w))


def test_captured_stft_istft_match_eager():
    w = tl.hann_window(64)
    f = tl.function(lambda a: tl.istft(tl.stft(a, 64, 16, window=w, return_complex=False),
                                       64, 16, window=w, length=a.shape[1]))
    x = tl.randn(2, 300)
    for _ in range(2):          # the trace, then the replayed graph
        _close(f(x), tl.istft(tl.stft(x, 64, 16, window=w, return_complex=False), 64, 16,
                              window=w, length=300), 1e-6)
        _close(f(x), x, 1e-5)


def test_onnx_export_over_a_dynamic_length(tmp_path):
    # a length read from a dynamic axis frames by a gather that follows it at run time
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    w = tl.hann_window(64)

    class M(tl.nn.Module):
        def forward(self, x):
            return tl.stft(x, 64, 16, window=w, return_complex=False)

    path = str(tmp_path / "stft.onnx")
    tl.onnx.export(M(), (tl.randn(2, 400),), path, dynamic_axes={0: {0: "B", 1: "T"}})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for shape in ((2, 400), (3, 517)):
        x = np.random.default_rng(shape[1]).standard_normal(shape).astype(np.float32)
        (out,) = sess.run(None, {sess.get_inputs()[0].name: x})
        ref = torch.stft(torch.tensor(x), 64, 16, window=torch.hann_window(64),
                         return_complex=True)
        _close(out, torch.view_as_real(ref), 1e-5)


@pytest.mark.skipif(not tl.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu():
    x = np.random.default_rng(0).standard_normal((2, 4000)).astype(np.float32)
    w = tl.hann_window(400)
    cpu = tl.stft(tl.tensor(x), 400, 160, window=w, return_complex=False)
    gpu = tl.stft(tl.tensor(x, device="cuda"), 400, 160, window=w.to("cuda"),
                  return_complex=False)
    _close(gpu.cpu(), cpu, 1e-5)
    back = tl.istft(gpu, 400, 160, window=w.to("cuda"))
    _close(back.cpu(), tl.istft(cpu, 400, 160, window=w), 1e-5)
