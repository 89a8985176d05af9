"""Complex tensors in the NN functional layer (convolutions, unfold/fold, normalize, l1_loss,
dropout, pairwise_distance, recurrent layers, stft) against PyTorch: values and gradients."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional

TL_DT = {np.complex128: tl.complex128, np.complex64: tl.complex64}
T_DT = {np.complex128: torch.complex128, np.complex64: torch.complex64}
TOL = {np.complex128: 1e-9, np.complex64: 2e-4}


def crand(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def both(a, dt=np.complex128):
    """(tensorlib, torch) leaf tensors holding ``a`` that require grad."""
    return (tl.tensor(a.astype(dt), requires_grad=True),
            torch.tensor(a.astype(dt), requires_grad=True))


def close(a, b, tol):
    a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def check(tl_fn, t_fn, arrays, dt=np.complex128, seed=0):
    """Values, result dtype and the gradients of a real loss of a complex result."""
    tol = TOL[dt]
    pairs = [both(a, dt) for a in arrays]
    out = tl_fn(*[p[0] for p in pairs])
    ref = t_fn(*[p[1] for p in pairs])
    assert str(ref.dtype).split(".")[-1] == np.dtype(out.dtype).name
    close(out.detach(), ref, tol)
    w = crand(np.random.default_rng(seed), *ref.shape).astype(ref.detach().numpy().dtype
                                                              if ref.is_complex() else float)
    loss = (out * tl.tensor(w).conj()).real.sum() if ref.is_complex() else \
        (out * tl.tensor(w.real)).sum()
    tloss = (ref * torch.tensor(w).conj()).real.sum() if ref.is_complex() else \
        (ref * torch.tensor(w.real)).sum()
    loss.backward()
    tloss.backward()
    for a, b in pairs:
        close(a.grad, b.grad, tol * 10)


# --- convolutions -------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d(dt, bias):
    rng = np.random.default_rng(1)
    arrs = [crand(rng, 2, 4, 7, 6), crand(rng, 6, 2, 3, 2)] + ([crand(rng, 6)] if bias else [])
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    check(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrs, dt)


@pytest.mark.parametrize("name,xs,ws,kw", [
    ("conv1d", (2, 3, 9), (4, 3, 3), dict(padding=2, stride=2)),
    ("conv1d", (3, 9), (4, 3, 3), dict(padding="same")),                 # unbatched
    ("conv3d", (1, 2, 4, 5, 5), (3, 2, 2, 3, 2), dict(padding=1, stride=(1, 2, 1))),
    ("conv_transpose1d", (2, 3, 6), (3, 2, 3), dict(stride=2, output_padding=1)),
    ("conv_transpose2d", (2, 4, 4, 5), (4, 3, 3, 2), dict(stride=2, padding=1, groups=2)),
    ("conv_transpose3d", (1, 2, 3, 3, 4), (2, 2, 2, 2, 3), dict(stride=(2, 1, 2))),
])
def test_conv_family(name, xs, ws, kw):
    rng = np.random.default_rng(2)
    cout = ws[0] if not name.startswith("conv_t") else ws[1] * kw.get("groups", 1)
    arrs = [crand(rng, *xs), crand(rng, *ws), crand(rng, cout)]
    check(lambda *a: getattr(F, name)(*a, **kw), lambda *a: getattr(TF, name)(*a, **kw), arrs)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(3, 7), st.integers(1, 3),
       st.integers(1, 2), st.integers(0, 2), st.integers(0, 10**6))
def test_conv2d_hypothesis(cin, cout, hw, k, stride, pad, seed):
    rng = np.random.default_rng(seed)
    arrs = [crand(rng, 2, cin, hw, hw + 1), crand(rng, cout, cin, k, k)]
    kw = dict(stride=stride, padding=pad)
    check(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrs, seed=seed)


def test_conv2d_second_order():
    rng = np.random.default_rng(3)
    (x, tx), (w, tw) = both(crand(rng, 1, 2, 5, 5)), both(crand(rng, 3, 2, 3, 3))
    v = crand(rng, 1, 3, 3, 3)
    outs = []
    for xx, ww, lib, f in ((x, w, tl, F.conv2d), (tx, tw, torch, TF.conv2d)):
        y = f(xx, ww)
        loss = (y * lib.tensor(v).conj()).real.sum() + (y.abs() ** 2).sum()
        if lib is tl:
            (gx,) = tl.grad(loss, [xx], create_graph=True)
        else:
            (gx,) = torch.autograd.grad(loss, [xx], create_graph=True)
        (gx.abs() ** 2).sum().backward()
        outs.append((gx, ww.grad, xx.grad))
    for a, b in zip(*outs):
        close(a.detach(), b, 1e-8)


def test_conv_mixed_dtypes_refused_as_pytorch():
    rng = np.random.default_rng(4)
    x, w = crand(rng, 1, 2, 5, 5), crand(rng, 3, 2, 3, 3)
    with pytest.raises(TypeError, match="conv2d"):
        F.conv2d(tl.tensor(x.real), tl.tensor(w))
    with pytest.raises(TypeError, match="conv2d"):
        F.conv2d(tl.tensor(x), tl.tensor(w.real))
    with pytest.raises(TypeError, match="conv2d.*bias"):
        F.conv2d(tl.tensor(x), tl.tensor(w), tl.tensor(np.ones(3)))
    with pytest.raises(TypeError, match="conv1d"):
        F.conv1d(tl.tensor(x[0]), tl.tensor(w[:, :, 0].astype(np.complex64)))
    with pytest.raises(ValueError, match="conv2d: bias"):
        F.conv2d(tl.tensor(x), tl.tensor(w), tl.tensor(np.ones(4) + 0j))


def test_unfold_fold():
    rng = np.random.default_rng(5)
    kw = dict(kernel_size=(2, 3), padding=1, stride=(1, 2), dilation=(2, 1))
    check(lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw), [crand(rng, 2, 3, 6, 7)])
    L = TF.unfold(torch.zeros(1, 1, 6, 7), **kw).shape[-1]
    for dt in (np.complex128, np.complex64):
        check(lambda x: F.fold(x, (6, 7), **kw), lambda x: TF.fold(x, (6, 7), **kw),
              [crand(rng, 2, 18, L)], dt)


@pytest.mark.parametrize("cls,shape", [("Conv1d", (2, 3, 8)), ("Conv2d", (2, 3, 6, 6)),
                                       ("ConvTranspose2d", (2, 3, 4, 4))])
def test_conv_module_complex64(cls, shape):
    rng = np.random.default_rng(6)
    m = getattr(tl.nn, cls)(3, 4, 3, padding=1, dtype=tl.complex64)
    tm = getattr(torch.nn, cls)(3, 4, 3, padding=1, dtype=torch.complex64)
    assert m.weight.dtype == np.complex64 and m.bias.dtype == np.complex64
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.numpy()))
        tm.bias.copy_(torch.tensor(m.bias.numpy()))
    x = crand(rng, *shape).astype(np.complex64)
    y, ty = m(tl.tensor(x)), tm(torch.tensor(x))
    assert y.dtype == np.complex64
    close(y.detach(), ty, 1e-4)
    y.abs().sum().backward()
    ty.abs().sum().backward()
    close(m.weight.grad, tm.weight.grad, 1e-3)
    close(m.bias.grad, tm.bias.grad, 1e-3)


# --- small functional ops -------------------------------------------------------------------
@pytest.mark.parametrize("p", [2.0, 1.0, float("inf")])
def test_normalize(p):
    rng = np.random.default_rng(7)
    a = crand(rng, 3, 4)
    a[1] = 0
    check(lambda x: F.normalize(x, p=p, dim=1), lambda x: TF.normalize(x, p=p, dim=1), [a])
    y = F.normalize(tl.tensor(a.astype(np.complex64)), dim=1)
    assert y.dtype == np.complex64


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_l1_loss(reduction):
    rng = np.random.default_rng(8)
    check(lambda a, b: F.l1_loss(a, b, reduction=reduction),
          lambda a, b: TF.l1_loss(a, b, reduction=reduction), [crand(rng, 3, 4), crand(rng, 4)])
    # real and complex mixed, complex64 with complex128: promoted, a real loss
    out = F.l1_loss(tl.tensor(crand(rng, 5).astype(np.complex64)), tl.tensor(rng.random(5)))
    assert out.dtype == np.float64
    assert float(F.l1_loss(tl.tensor([3 + 4j, 0j]), tl.tensor([0j, 1j]))) == pytest.approx(3.0)


def test_mse_loss_refused_as_pytorch():
    z = tl.tensor([1 + 1j, 2j])
    with pytest.raises(NotImplementedError):
        TF.mse_loss(torch.tensor([1 + 1j, 2j]), torch.tensor([0j, 1j]))
    with pytest.raises(TypeError, match="mse_loss: complex"):
        F.mse_loss(z, z)
    with pytest.raises(TypeError, match="mse_loss: complex"):
        F.mse_loss(tl.tensor([1.0, 2.0]), z)


@pytest.mark.parametrize("fn,shape", [("dropout", (2, 3)), ("dropout1d", (2, 3, 4)),
                                      ("dropout2d", (2, 3, 4, 4)),
                                      ("dropout3d", (2, 3, 2, 2, 2))])
def test_dropout(fn, shape):
    rng = np.random.default_rng(9)
    x = tl.tensor(crand(rng, *shape).astype(np.complex64))
    y = getattr(F, fn)(x, 0.5, training=False)
    assert y.dtype == np.complex64
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert getattr(F, fn)(x, 0.0, training=True).dtype == np.complex64
    np.testing.assert_array_equal(getattr(F, fn)(x, 1.0, training=True).numpy(), 0)
    with pytest.raises(NotImplementedError, match=f"{fn}: complex"):
        getattr(F, fn)(x, 0.5, training=True)
    with pytest.raises(NotImplementedError):
        getattr(TF, fn)(torch.tensor(x.numpy()), 0.5, training=True)
    d = tl.nn.Dropout(0.3)
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_pairwise_distance(p):
    rng = np.random.default_rng(10)
    check(lambda a, b: F.pairwise_distance(a, b, p=p),
          lambda a, b: TF.pairwise_distance(a, b, p=p), [crand(rng, 4, 5), crand(rng, 4, 5)])
    out = F.pairwise_distance(tl.tensor(crand(rng, 2, 3).astype(np.complex64)),
                              tl.tensor(crand(rng, 2, 3).astype(np.complex64)))
    assert out.dtype == np.float32


def test_cosine_similarity_refused_as_pytorch():
    z = crand(np.random.default_rng(0), 2, 3)
    with pytest.raises(RuntimeError):
        TF.cosine_similarity(torch.tensor(z), torch.tensor(z))
    with pytest.raises(TypeError, match="cosine_similarity"):
        F.cosine_similarity(tl.tensor(z), tl.tensor(z))


# --- recurrent layers -----------------------------------------------------------------------
def _copy_params(m, tm):
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(m.named_parameters(), tm.named_parameters()):
            assert name == tname
            tp.copy_(torch.tensor(p.numpy()))


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("dt", [np.complex128, np.complex64])
def test_rnn_layers(mode, dt):
    rng = np.random.default_rng(11)
    tdt = T_DT[dt]
    m = getattr(tl.nn, mode)(3, 4, num_layers=2, bidirectional=True, dtype=TL_DT[dt])
    tm = getattr(torch.nn, mode)(3, 4, num_layers=2, bidirectional=True, dtype=tdt)
    _copy_params(m, tm)
    x = crand(rng, 5, 2, 3).astype(dt) * 0.5
    h = crand(rng, 4, 2, 4).astype(dt) * 0.5
    hx, thx = (tl.tensor(h), torch.tensor(h))
    if mode == "LSTM":
        hx, thx = (hx, tl.tensor(h[::-1].copy())), (thx, torch.tensor(h[::-1].copy()))
    xt, txt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, _ = m(xt, hx)
    ty, _ = tm(txt, thx)
    assert y.dtype == dt
    # complex tanh has poles: float32 rounding grows through the steps (complex128 is exact)
    tol = 1e-8 if dt == np.complex128 else 1e-2
    close(y.detach(), ty, tol)
    w = crand(rng, *ty.shape).astype(dt)
    (y * tl.tensor(w).conj()).real.sum().backward()
    (ty * torch.tensor(w).conj()).real.sum().backward()
    close(xt.grad, txt.grad, tol)
    for p, tp in zip(m.parameters(), tm.parameters()):
        close(p.grad, tp.grad, tol)


@pytest.mark.parametrize("mode", ["RNNCell", "GRUCell", "LSTMCell"])
def test_rnn_cells_second_order(mode):
    rng = np.random.default_rng(12)
    m = getattr(tl.nn, mode)(3, 4, dtype=tl.complex128)
    tm = getattr(torch.nn, mode)(3, 4, dtype=torch.complex128)
    _copy_params(m, tm)
    x, h = crand(rng, 2, 3) * 0.5, crand(rng, 2, 4) * 0.5
    res = []
    for mod, lib in ((m, tl), (tm, torch)):
        xt = lib.tensor(x, requires_grad=True)
        hh = lib.tensor(h)
        out = mod(xt, (hh, hh * 0.5) if mode == "LSTMCell" else hh)
        out = out[0] if isinstance(out, tuple) else out
        loss = (out.abs() ** 2).sum()
        if lib is tl:
            (g,) = tl.grad(loss, [xt], create_graph=True)
        else:
            (g,) = torch.autograd.grad(loss, [xt], create_graph=True)
        (g * lib.tensor(x).conj()).real.sum().backward()
        res.append((out, g, xt.grad))
    for a, b in zip(*res):
        close(a.detach(), b, 1e-9)


def test_rnn_relu_complex_refused():
    m = tl.nn.RNN(3, 4, nonlinearity="relu", dtype=tl.complex64)
    with pytest.raises(NotImplementedError, match="relu"):
        m(tl.tensor(np.ones((2, 1, 3), np.complex64)), tl.tensor(np.zeros((1, 1, 4),
                                                                          np.complex64)))


# --- stft ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(center=False), dict(pad_mode="constant"),
                                dict(normalized=True, win_length=20),
                                dict(pad_mode="replicate", onesided=False)])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_stft_complex_signal(kw, batch):
    rng = np.random.default_rng(13)
    wl = kw.get("win_length", 32)
    win = np.hanning(wl + 1)[:-1]
    check(lambda z: tl.stft(z, 32, 8, window=tl.tensor(win), return_complex=True, **kw),
          lambda z: torch.stft(z, 32, 8, window=torch.tensor(win), return_complex=True, **kw),
          [crand(rng, *batch, 100)])


def test_stft_complex_dtypes_and_layouts():
    rng = np.random.default_rng(14)
    z = crand(rng, 64)
    for zd, wd in ((np.complex64, np.float32), (np.complex64, np.float64),
                   (np.complex128, np.float32)):
        win = np.hanning(16).astype(wd)
        a = tl.stft(tl.tensor(z.astype(zd)), 16, 4, window=tl.tensor(win))  # default complex
        b = torch.stft(torch.tensor(z.astype(zd)), 16, 4, window=torch.tensor(win),
                       return_complex=True)
        assert np.dtype(a.dtype).name == str(b.dtype).split(".")[-1]
        close(a, b, 1e-4)
    # return_complex=False: the parts in a last dim of 2; a complex window on a real signal
    a = tl.stft(tl.tensor(z), 16, 4, return_complex=False)
    close(a, torch.stft(torch.tensor(z), 16, 4, return_complex=False), 1e-9)
    cw = crand(rng, 16)
    check(lambda x, w: tl.stft(x, 16, 4, window=w, return_complex=True),
          lambda x, w: torch.stft(x, 16, 4, window=w, return_complex=True), [z, cw])
    a = tl.stft(tl.tensor(z.real), 16, 4, window=tl.tensor(cw), return_complex=True)
    b = torch.stft(torch.tensor(z.real), 16, 4, window=torch.tensor(cw), return_complex=True)
    close(a, b, 1e-9)
    with pytest.raises(ValueError, match="stft: onesided"):
        tl.stft(tl.tensor(z), 16, 4, onesided=True, return_complex=True)
    with pytest.raises(RuntimeError):
        torch.stft(torch.tensor(z), 16, 4, onesided=True, return_complex=True)


def test_stft_istft_roundtrip_complex():
    rng = np.random.default_rng(15)
    z = tl.tensor(crand(rng, 80))
    w = tl.hann_window(16, dtype=tl.float64)
    s = tl.stft(z, 16, 4, window=w)
    back = tl.istft(s, 16, 4, window=w, onesided=False, return_complex=True, length=80)
    close(back, z.numpy(), 1e-9)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_complex_recurrent_layers_without_an_initial_state(kind):
    """The zero initial state (a fill of the input's dtype) is made for complex inputs too."""
    r = np.random.default_rng(5)
    x = r.standard_normal((5, 3, 4)) + 1j * r.standard_normal((5, 3, 4))
    torch.manual_seed(0)
    mt = getattr(torch.nn, kind)(4, 6, dtype=torch.complex128)
    m = getattr(tl.nn, kind)(4, 6, dtype=tl.complex128)
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in mt.state_dict().items()})
    np.testing.assert_allclose(m(tl.tensor(x))[0].detach().numpy(),
                               mt(torch.tensor(x))[0].detach().numpy(), atol=1e-12)
