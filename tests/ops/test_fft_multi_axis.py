"""Multi-axis tl.fft (one pocketfft call per rfftn/irfftn/fftn) against PyTorch: values and
gradients for s/dim/norm, odd/even sizes, float32/64 and complex64/128, grad of grad; and an
FNO spectral layer captured with dynamic=True replaying one graph over grid sizes."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")

NORMS = [None, "backward", "ortho", "forward"]
R2C = ["rfft2", "rfftn", "ihfft2", "ihfftn"]
C2R = ["irfft2", "irfftn", "hfft2", "hfftn"]
C2C = ["fft2", "ifft2", "fftn", "ifftn"]


def _arr(shape, dt, seed=0):
    r = np.random.default_rng(seed)
    a = r.standard_normal(shape)
    if np.dtype(dt).kind == "c":
        a = a + 1j * r.standard_normal(shape)
    return a.astype(dt)


def _check(name, a, kw, tol):
    x = tl.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    y = getattr(tl.fft, name)(x, **kw)
    yt = getattr(torch.fft, name)(xt, **kw)
    want = yt.detach().resolve_conj().numpy()
    assert y.numpy().dtype == want.dtype
    np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)
    gw = _arr(tuple(yt.shape), want.dtype, 7)
    (y * tl.tensor(gw).conj()).real.sum().backward() if gw.dtype.kind == "c" else \
        (y * tl.tensor(gw)).sum().backward()
    lt = (yt * torch.tensor(gw).conj()).real.sum() if gw.dtype.kind == "c" else \
        (yt * torch.tensor(gw)).sum()
    lt.backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.resolve_conj().numpy(), rtol=tol,
                               atol=tol)


CASES = [((3, 6, 8), {}), ((2, 5, 7), {}), ((3, 6, 8), {"s": (4, 9)}),
         ((2, 5, 7), {"s": (7, 5), "dim": (0, 2)}), ((2, 4, 5, 6), {"dim": (1, 3)}),
         ((2, 4, 5, 6), {"dim": (-1, 1)}), ((4, 6), {"s": (-1, 5)})]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape,kw", CASES)
@pytest.mark.parametrize("name", R2C + C2C + C2R)
@pytest.mark.parametrize("dt", ["float64", "float32", "complex128", "complex64"])
def test_values_and_grads_vs_torch(name, shape, kw, norm, dt):
    if name in R2C and dt.startswith("complex"):
        pytest.skip("real-input transforms")
    if name.endswith("2") and "dim" in kw and len(kw["dim"]) != 2:
        pytest.skip("2-d")
    kw = dict(kw, norm=norm)
    if name.endswith("2") and "dim" not in kw and len(kw.get("s", (0, 0))) != 2:
        pytest.skip("2-d")
    tol = 1e-9 if dt in ("float64", "complex128") else 2e-3
    _check(name, _arr(shape, dt), kw, tol)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), st.sampled_from(NORMS),
       st.sampled_from(["rfftn", "irfftn", "fftn", "ifftn", "hfftn", "ihfftn"]), st.data())
def test_random_shapes_vs_torch(shape, norm, name, data):
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    dims = tuple(data.draw(st.permutations(range(nd)))[:k])
    s = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 8), min_size=k, max_size=k)))
    if name in ("irfftn", "hfftn") and s is None and shape[dims[-1]] == 1:
        s = [shape[d] for d in dims[:-1]] + [2]
    dt = "float64" if name in ("rfftn", "ihfftn") else "complex128"
    _check(name, _arr(tuple(shape), dt), dict(s=s, dim=dims, norm=norm), 1e-9)


@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
@pytest.mark.parametrize("name,dt,shape,s", [
    ("rfft2", "float64", (3, 4, 5), None), ("irfft2", "complex128", (3, 4, 3), (4, 5)),
    ("irfftn", "complex128", (2, 3, 4), None), ("rfftn", "float64", (2, 3, 4), (3, 2, 5)),
    ("ihfft2", "float64", (3, 5), None), ("hfft2", "complex128", (3, 4), None)])
def test_gradgradcheck(name, dt, shape, s, norm):
    a = _arr(shape, dt, 3)
    f = getattr(tl.fft, name)
    assert tl.autograd.gradcheck(lambda x: f(x, s=s, norm=norm),
                                 (tl.tensor(a, requires_grad=True),))
    assert tl.autograd.gradgradcheck(lambda x: f(x, s=s, norm=norm),
                                     (tl.tensor(a, requires_grad=True),))


def test_second_order_vs_torch():
    a = _arr((3, 4, 6), "float64", 5)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)

    def loss(m, v):
        y = m.fft.irfft2(m.fft.rfft2(v * v) * 1.5, s=(4, 6))
        return (y * y).sum()
    g, = tl.grad(loss(tl, x), [x], create_graph=True)
    gt, = torch.autograd.grad(loss(torch, xt), [xt], create_graph=True)
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-9)
    gg, = tl.grad(g.sum(), [x])
    ggt, = torch.autograd.grad(gt.sum(), [xt])
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=1e-9, atol=1e-9)


def test_single_precision_end_to_end():
    x = tl.tensor(_arr((2, 8, 6), "float32"))
    assert tl.fft.rfft2(x).dtype == tl.complex64
    assert tl.fft.irfft2(tl.fft.rfft2(x)).dtype == tl.float32
    assert tl.fft.fftn(tl.fft.rfft2(x)).dtype == tl.complex64


def test_one_node_per_multi_axis_transform():
    x = tl.tensor(_arr((2, 8, 6), "float64"))
    with tl.capture(x) as g:
        y = tl.fft.irfft2(tl.fft.rfft2(x), s=(8, 6))
    g.set_outputs(y)
    ops = [n.op for n in g.nodes if n.op.startswith("fft")]
    assert ops == ["fft_r2c", "fft_c2r"], ops


def test_errors():
    x = tl.tensor(_arr((4, 6), "float64"))
    with pytest.raises(RuntimeError, match="Invalid number of data points"):
        tl.fft.rfft2(x, s=(0, 3))
    with pytest.raises(RuntimeError, match="real input"):
        tl.fft.rfft2(tl.tensor(_arr((4, 6), "complex128")))
    with pytest.raises(RuntimeError, match="dims must be unique"):
        tl.fft.irfftn(x, dim=(1, 1))
    with pytest.raises(RuntimeError, match="Invalid normalization"):
        tl.fft.fft2(x, norm="bad")
    with pytest.raises(IndexError):
        tl.fft.rfftn(x, dim=(0, 3))


# --- dynamic capture: a Fourier neural operator layer -------------------------------------
class Spectral(nn.Module):
    def __init__(self, c=3, m1=5, m2=4):
        super().__init__()
        self.m1, self.m2 = m1, m2
        w = _arr((c, c, m1, m2), "complex64", 11) * 0.2
        self.w = nn.Parameter(tl.tensor(w))

    def forward(self, x):
        b, c, h, w = x.shape
        x_ft = tl.fft.rfft2(x)
        out_ft = tl.zeros(b, c, h, w // 2 + 1, dtype=tl.complex64)
        out_ft[..., :self.m1, :self.m2] = tl.einsum(
            "bixy,ioxy->boxy", x_ft[..., :self.m1, :self.m2], self.w)
        return tl.fft.irfft2(out_ft, s=(h, w))


def test_fno_layer_dynamic_capture_one_trace():
    model = Spectral()
    f = tl.compile(model, dynamic=True)
    with tl.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")      # a size escaping into Python warns
        for h, w in [(32, 32), (48, 48), (64, 64), (48, 32)]:
            x = tl.tensor(_arr((2, 3, h, w), "float32", h + w))
            got = f(x)
            want = model(x)
            assert got.shape == (2, 3, h, w)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    assert f._compiled.trace_count == 1, f._compiled.retrace_reasons


def test_dynamic_capture_padding_sizes():
    # s read from the input's dims, and a pad to a traced size: each follows run time
    @tl.function(dynamic=True)
    def g(x):
        n = x.shape[-1]
        return tl.fft.irfft(tl.fft.rfft(x, n=2 * n), n=2 * n), tl.fft.fft2(x, s=(n, n + 1))

    for n in (4, 6, 9):
        a = _arr((2, 3, n), "float64", n)
        got = g(tl.tensor(a))
        at = torch.tensor(a)
        np.testing.assert_allclose(got[0].numpy(),
                                   torch.fft.irfft(torch.fft.rfft(at, n=2 * n), n=2 * n).numpy(),
                                   atol=1e-10)
        np.testing.assert_allclose(got[1].numpy(), torch.fft.fft2(at, s=(n, n + 1)).numpy(),
                                   atol=1e-10)
    assert g.trace_count == 1, g.retrace_reasons


def test_onnx_export_refuses_multi_axis_rfft_pairs(tmp_path):
    # one-axis view_as_real(rfft) exports as DFT; a multi-axis r2c must not pass for one
    pytest.importorskip("onnx")
    f = tl.function(lambda x: tl.view_as_real(tl.fft.rfft2(x)))
    x = tl.randn(2, 8, 8)
    f(x)
    with pytest.raises(tl.onnx.UnsupportedOpError, match="fft_r2c"):
        tl.onnx.export(f, (x,), str(tmp_path / "r2.onnx"))
