"""Image ops over dynamic H/W (trial 22, F4): unfold/fold, median/nanmedian/quantile,
fftshift/ifftshift, histc, affine_grid and roll keep the sizes they read from a None dim as
graph values, so one captured graph serves every size, and they export to ONNX with dynamic
axes (checked in onnxruntime); values and gradients against PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SIZES = ((8, 8), (9, 12), (12, 9))


def _img(n, h, w, seed=0, nan=False):
    x = np.random.default_rng(seed).standard_normal((n, 3, h, w))
    if nan:
        x[0, 0, 1, ::3] = np.nan
        x[-1, -1, 0, :] = np.nan        # an all-NaN row
    return x


def _unfold(x):
    return F.unfold(x, 3, padding=1)


def _fold(x):
    return F.fold(F.unfold(x, (2, 3), dilation=(1, 2), padding=(1, 2), stride=(2, 1)),
                  x.shape[-2:], (2, 3), dilation=(1, 2), padding=(1, 2), stride=(2, 1))


def _affine(x):
    theta = tl.tensor([[0.8, 0.2, 0.1], [-0.3, 1.1, 0.0]], dtype=x.dtype).expand(
        x.shape[0], 2, 3)
    return F.affine_grid(theta, x.shape, align_corners=False)


CASES = {
    "unfold": (_unfold, lambda t: TF.unfold(t, 3, padding=1)),
    "fold": (_fold, lambda t: TF.fold(TF.unfold(t, (2, 3), dilation=(1, 2), padding=(1, 2),
                                                stride=(2, 1)), t.shape[-2:], (2, 3),
                                      dilation=(1, 2), padding=(1, 2), stride=(2, 1))),
    "median": (lambda x: x.median(dim=-1).values, lambda t: t.median(dim=-1).values),
    "median_idx": (lambda x: x.median(dim=2).indices, lambda t: t.median(dim=2).indices),
    "nanmedian": (lambda x: x.nanmedian(dim=-1).values, lambda t: t.nanmedian(dim=-1).values),
    "nanmedian_idx": (lambda x: x.nanmedian(dim=-1).indices,
                      lambda t: t.nanmedian(dim=-1).indices),
    "quantile": (lambda x: tl.quantile(x, 0.3, dim=-1),
                 lambda t: torch.quantile(t, 0.3, dim=-1)),
    "quantile_q": (lambda x: tl.quantile(x, tl.tensor([0.25, 0.5, 1.0], dtype=x.dtype), dim=2,
                                         keepdim=True),
                   lambda t: torch.quantile(t, torch.tensor([0.25, 0.5, 1.0], dtype=t.dtype),
                                            dim=2, keepdim=True)),
    "fftshift": (lambda x: tl.fft.fftshift(x, dim=(-2, -1)),
                 lambda t: torch.fft.fftshift(t, dim=(-2, -1))),
    "ifftshift": (lambda x: tl.fft.ifftshift(x), lambda t: torch.fft.ifftshift(t)),
    "histc": (lambda x: tl.histc(x, bins=4, min=-1, max=1),
              lambda t: torch.histc(t, bins=4, min=-1, max=1)),
    "histc_range": (lambda x: tl.histc(x, bins=5), lambda t: torch.histc(t, bins=5)),
    "roll": (lambda x: tl.roll(x, (1, -2), (2, 3)), lambda t: torch.roll(t, (1, -2), (2, 3))),
    "affine_grid": (_affine, lambda t: TF.affine_grid(
        torch.tensor([[0.8, 0.2, 0.1], [-0.3, 1.1, 0.0]], dtype=t.dtype).expand(
            t.shape[0], 2, 3), t.shape, align_corners=False)),
}
QUANTILE_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _check(got, want):
    got = np.asarray(got.numpy() if isinstance(got, tl.Tensor) else got)
    want = want.detach().numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_graph_serves_every_size(name):
    fn, tfn = CASES[name]
    nan = name.startswith(("nanmedian", "median"))
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 3, None, None), tl.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "traced again at other sizes"
        with tl.no_grad():
            for i, (h, w) in enumerate(SIZES):
                x = _img(1 + i, h, w, seed=i, nan=nan and i > 0)
                got = f(tl.tensor(x))
                _check(got, tfn(torch.tensor(x)))
                np.testing.assert_array_equal(got.numpy(), fn(tl.tensor(x)).numpy())
    assert f.trace_count == 1


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_quantile_methods_one_graph(method):
    f = tl.function(lambda x: tl.quantile(x, [0.0, 0.37, 0.5, 0.9], dim=-1, method=method),
                    input_signature=[tl.TensorSpec((2, None), tl.float64)])
    x0 = np.array([[1.0, np.inf, 3.0, -np.inf, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (5, 2, 7, 1):
            x = np.random.default_rng(n).standard_normal((2, n))
            if n == 5:      # +-inf: PyTorch's lerp gives NaN at a pick of -inf; vs eager
                x = x0
                _check(f(tl.tensor(x)), torch.tensor(tl.quantile(
                    tl.tensor(x), [0.0, 0.37, 0.5, 0.9], dim=-1, method=method).numpy()))
                continue
            want = torch.quantile(torch.tensor(x), torch.tensor([0.0, 0.37, 0.5, 0.9],
                                  dtype=torch.float64), dim=-1, interpolation=method)
            _check(f(tl.tensor(x)), want)
    assert f.trace_count == 1


@pytest.mark.parametrize("name", ["unfold", "fold", "median", "quantile", "quantile_q",
                                  "fftshift", "ifftshift", "affine_grid", "nanmedian"])
def test_gradients_equal_torch(name):
    # (a training step is traced once per shape, so gradients are checked eagerly)
    fn, tfn = CASES[name]
    if name == "affine_grid":       # the gradient reaches theta
        def fn(x):
            return F.affine_grid(x[:, :2, 0, :3] * 0.1 + 1.0, x.shape, align_corners=True)

        def tfn(t):
            return TF.affine_grid(t[:, :2, 0, :3] * 0.1 + 1.0, t.shape, align_corners=True)
    for i, (h, w) in enumerate(SIZES):
        x = _img(1 + i, h, w, seed=10 + i, nan=name == "nanmedian" and i > 0)
        a = tl.tensor(x, requires_grad=True)
        y = fn(a)
        wt = np.cos(np.arange(y.numel())).reshape(y.shape)
        (g,) = tl.grad((y * tl.tensor(wt)).sum(), [a])
        t = torch.tensor(x, requires_grad=True)
        (gt,) = torch.autograd.grad((tfn(t) * torch.tensor(wt)).sum(), [t])
        _check(g, gt)


def test_affine_grid_gradient_through_a_dynamic_size_graph():
    # the graph gradient rule used when the size is a run-time value (grid of the identity)
    for h, w in SIZES:
        th = np.random.default_rng(h).standard_normal((2, 2, 3))
        a = tl.tensor(th, requires_grad=True)
        from tensorlib.ops.nn_grid import AFFINE_GRID
        from tensorlib._apply import apply
        x = tl.zeros(2, 3, h, w, dtype=tl.float64)
        y = apply(AFFINE_GRID, a, x, size=(3, 0, 0), align_corners=False,
                  sizes=((1, ("dim", 1, 2)), (2, ("dim", 1, 3))))
        wt = np.sin(np.arange(y.numel())).reshape(y.shape)
        (g,) = tl.grad((y * tl.tensor(wt)).sum(), [a], create_graph=True)
        t = torch.tensor(th, requires_grad=True)
        yt = TF.affine_grid(t, (2, 3, h, w), align_corners=False)
        _check(y, yt)
        (gt,) = torch.autograd.grad((yt * torch.tensor(wt)).sum(), [t])
        _check(g, gt)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 3), kw=st.integers(1, 3),
       d=st.integers(1, 2), p=st.integers(0, 2), s=st.integers(1, 3))
def test_unfold_fold_values_and_gradients_match_torch(h, w, kh, kw, d, p, s):
    x = np.random.default_rng(h * 7 + w).standard_normal((2, 2, h, w))
    kw_ = dict(kernel_size=(kh, kw), dilation=(d, 1), padding=(p, p // 2), stride=(s, 1))
    t = torch.tensor(x, requires_grad=True)
    try:
        ut = TF.unfold(t, **kw_)
    except RuntimeError:
        with pytest.raises(ValueError, match="unfold: a"):
            F.unfold(tl.tensor(x), **kw_)
        return
    a = tl.tensor(x, requires_grad=True)
    u = F.unfold(a, **kw_)
    _check(u, ut)
    wt = np.random.default_rng(1).standard_normal(ut.shape)
    (u * tl.tensor(wt)).sum().backward()
    (ut * torch.tensor(wt)).sum().backward()
    _check(a.grad, t.grad)
    c = tl.tensor(wt, requires_grad=True)
    ct = torch.tensor(wt, requires_grad=True)
    fo, fot = F.fold(c, (h, w), **kw_), TF.fold(ct, (h, w), **kw_)
    _check(fo, fot)
    (fo * tl.tensor(x)).sum().backward()
    (fot * torch.tensor(x)).sum().backward()
    _check(c.grad, ct.grad)


def test_unfold_fold_double_backward_matches_torch():
    x = _img(1, 5, 6)
    a, t = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (g,) = tl.grad((F.unfold(a, 2, padding=1) ** 2).sum(), [a], create_graph=True)
    (gt,) = torch.autograd.grad((TF.unfold(t, 2, padding=1) ** 2).sum(), [t],
                                create_graph=True)
    (gg,) = tl.grad((g ** 2).sum(), [a])
    (ggt,) = torch.autograd.grad((gt ** 2).sum(), [t])
    _check(gg, ggt)


def test_captured_unfold_and_fold_check_sizes_at_replay():
    f = tl.function(lambda x: F.unfold(x, 5),
                    input_signature=[tl.TensorSpec((1, 1, None, None))])
    g = tl.function(lambda x: F.fold(x, (4, 4), 3),
                    input_signature=[tl.TensorSpec((1, 9, None))])
    with tl.no_grad():
        for n in (8, 9):
            f(tl.ones(1, 1, n, n))
        with pytest.raises(ValueError, match="unfold: a 5x5 kernel .* does not fit"):
            f(tl.ones(1, 1, 3, 3))
        g(tl.ones(1, 9, 4))
        with pytest.raises(ValueError, match="fold: input .* needs C \\* 9 rows and 4 blocks"):
            g(tl.ones(1, 9, 5))
    assert f.trace_count == 1 and g.trace_count == 1
    with pytest.raises(ValueError, match="unfold: a 5x5 kernel"):
        F.unfold(tl.ones(1, 1, 3, 3), 5)
    with pytest.raises(ValueError, match="fold: output_size must be >= 1"):
        F.fold(tl.ones(1, 9, 4), (0, 4), 3)
    with pytest.raises(ValueError, match="fold: output_size must be an int or a tuple of 2"):
        F.fold(tl.ones(1, 9, 4), (4, 4, 4), 3)
    with pytest.raises(ValueError, match="unfold: input must be"):
        F.unfold(tl.ones(2, 2), 1)


def test_nanmedian_all_nan_index_follows_the_length():
    f = tl.function(lambda x: x.nanmedian(dim=-1).indices,
                    input_signature=[tl.TensorSpec((1, None), tl.float64)])
    for n in (1, 4, 7, 13, 49, 100):
        x = np.full((1, n), np.nan)
        _check(f(tl.tensor(x)), torch.tensor(x).nanmedian(dim=-1).indices)
    assert f.trace_count == 1


class _Mod(tl.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


ONNX_CASES = ["unfold", "fold", "median", "median_idx", "nanmedian", "quantile",
              "quantile_q", "fftshift", "ifftshift", "roll", "histc", "affine_grid"]


@pytest.mark.parametrize("name", ONNX_CASES)
def test_exports_with_dynamic_hw(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fn, tfn = CASES[name]
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.onnx.export(_Mod(fn), (tl.tensor(_img(2, 8, 10).astype(np.float32)),), path,
                       dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for i, (h, w) in enumerate(((9, 12), (6, 7))):
        x = _img(1 + 2 * i, h, w, seed=i, nan=name == "nanmedian").astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        want = tfn(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_roll_exports_over_a_dynamic_axis_any_shift(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "r.onnx"
    tl.onnx.export(_Mod(lambda x: tl.roll(x, (13, -7, 0), (0, 1, 2))),
                   (tl.rand(3, 4, 5),), path, dynamic_axes={0: [0, 1, 2]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((3, 4, 5), (5, 2, 1), (1, 7, 3), (0, 2, 2)):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_array_equal(got, np.roll(x, (13, -7, 0), (0, 1, 2)))


def test_affine_grid_dynamic_export_needs_opset_20(tmp_path):
    with pytest.raises(tl.onnx.UnsupportedOpError, match="affine_grid.*opset >= 20"):
        tl.onnx.export(_Mod(_affine), (tl.rand(2, 3, 8, 10),), tmp_path / "a.onnx",
                       dynamic_axes={0: [0, 2, 3]}, opset=17)


def test_a_size_that_cannot_follow_names_the_library_function():
    f = tl.function(lambda x: F.unfold(x, x.shape[-1] // 4),
                    input_signature=[tl.TensorSpec((1, 1, None, None))])
    with pytest.warns(UserWarning, match=r"F\.unfold: kernel_size sets the block layout.*"
                                         r"test_dynamic_image_ops\.py"):
        with tl.no_grad():
            for n in (8, 12, 16, 20):
                f(tl.ones(1, 1, n, n))
    g = tl.function(lambda x: tl.histc(x, bins=x.shape[0]),
                    input_signature=[tl.TensorSpec((None,))])
    with pytest.warns(UserWarning, match=r"histc: bins is the output's length"):
        with tl.no_grad():
            for n in (3, 4, 5, 6):
                assert g(tl.rand(n)).shape == (n,)
