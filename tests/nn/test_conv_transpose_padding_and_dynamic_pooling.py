"""Audio trial 19 fixes: '...' slices with bounds from None dims under capture, adaptive max
pooling of a dynamic length, ConvTranspose with stride <= output_padding < dilation, int64
average pooling and the max-pool index of NaN windows, all against PyTorch."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _spec(shape):
    return tl.TensorSpec(shape, tl.float64)


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t if isinstance(t, np.ndarray) else t.numpy()


def _close(a, b, tol=1e-12):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# --- finding 2: x[..., :n] under tl.function with n from a None dim ----------------------------
SLICES = {
    "half": lambda x: x[..., :x.shape[-1] // 2],
    "from_n": lambda x: x[..., x.shape[-1] // 3:],
    "inner": lambda x: x[..., 1:x.shape[-1] - 1],
    "mid_dim": lambda x: x.unsqueeze(-1)[..., :x.shape[-1] // 2, :],
    "lead_colon": lambda x: x[:, ..., :x.shape[-1] // 2],
    "centre": lambda x: x[..., (x.shape[-1] - 4) // 2:(x.shape[-1] - 4) // 2 + 4],
    "int_and_dots": lambda x: x[0, ..., :x.shape[-1] - 2],
}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_ellipsis_slice_captured_follows_length(name):
    fn = SLICES[name]
    f = tl.function(fn, input_signature=[_spec((2, 3, None))])
    rng = np.random.default_rng(0)
    for L in (10, 7, 31, 4):
        a = rng.standard_normal((2, 3, L))
        _close(f(tl.tensor(a)), fn(torch.tensor(a)))
    assert f.trace_count == 1


# a captured step that takes gradients is traced once per input shape (a documented limit of
# tl.function, with its warning): these check the gradient graph, not the single trace
@pytest.mark.filterwarnings("ignore:tl.function step")
@pytest.mark.parametrize("name", ["half", "inner", "mid_dim", "int_and_dots"])
def test_ellipsis_slice_captured_gradient(name):
    fn = SLICES[name]

    def step(x, g):         # the backward captured too: slice_sized_grad in the graph
        return tl.grad((fn(x) * g).sum(), [x])[0]

    rng = np.random.default_rng(1)
    f = None
    for L in (9, 14, 5):
        a = rng.standard_normal((2, 3, L))
        xt = torch.tensor(a, requires_grad=True)
        yt = fn(xt)
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        f = f or tl.function(step, input_signature=[_spec((2, 3, None)), _spec((None,) * g.ndim)])
        _close(f(tl.tensor(a, requires_grad=True), tl.tensor(g)), xt.grad)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(2, 40), lo=st.integers(0, 5), cut=st.integers(1, 4))
def test_ellipsis_slice_bounds_hypothesis(L, lo, cut):
    def fn(x):
        n = x.shape[-1]
        return x[..., lo:n // cut]
    f = tl.function(fn, input_signature=[_spec((None, 2, None))])
    a = np.arange(3 * 2 * L, dtype=np.float64).reshape(3, 2, L)
    _close(f(tl.tensor(a)), fn(torch.tensor(a)))


def test_ellipsis_slice_onnx_dynamic_length():
    ort = pytest.importorskip("onnxruntime")

    class Crop(tl.nn.Module):
        def forward(self, x):
            n = x.shape[-1]
            return x[..., :n // 2] * x[..., n - n // 2:]

    def ref(x):
        n = x.shape[-1]
        return x[..., :n // 2] * x[..., n - n // 2:]

    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "crop.onnx")
    tl.onnx.export(Crop(), (tl.randn(2, 3, 10),), path, dynamic_axes={0: {0: "b", 2: "t"}})
    sess = ort.InferenceSession(path)
    for shape in ((2, 3, 10), (1, 3, 7), (4, 3, 33)):
        a = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        out = sess.run(None, {sess.get_inputs()[0].name: a})[0]
        _close(out, ref(torch.tensor(a)), 1e-6)


# --- finding 3: adaptive max pooling of a dynamic length ---------------------------------------
@pytest.mark.parametrize("trace_len", [20, 32, 5])
def test_adaptive_max_pool1d_captured_one_graph(trace_len):
    f = tl.function(lambda x: F.adaptive_max_pool1d(x, 16),
                    input_signature=[_spec((None, 3, None))])
    rng = np.random.default_rng(trace_len)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a retrace per length would warn
        for L in (trace_len, 20, 17, 48, 33, 3, 16):
            a = rng.standard_normal((2, 3, L))
            _close(f(tl.tensor(a)), TF.adaptive_max_pool1d(torch.tensor(a), 16))
    assert f.trace_count == 1


@pytest.mark.filterwarnings("ignore:tl.function step")
def test_adaptive_max_pool2d_captured_values_and_grads():
    def step(x, g):
        y = F.adaptive_max_pool2d(x, (4, 5))
        return y, tl.grad((y * g).sum(), [x])[0]

    f = tl.function(step, input_signature=[_spec((None, 3, None, None)),
                                           _spec((None, 3, 4, 5))])
    rng = np.random.default_rng(3)
    for hw in ((8, 10), (9, 13), (3, 2), (17, 5)):
        a = rng.standard_normal((2, 3) + hw)
        xt = torch.tensor(a, requires_grad=True)
        yt = TF.adaptive_max_pool2d(xt, (4, 5))
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        y, gx = f(tl.tensor(a, requires_grad=True), tl.tensor(g))
        _close(y, yt)
        _close(gx, xt.grad)


def test_adaptive_max_pool_none_side_and_module():
    m = tl.nn.AdaptiveMaxPool1d(6)
    f = tl.function(lambda x: m(x), input_signature=[_spec((None, 4, None))])
    g = tl.function(lambda x: F.adaptive_max_pool2d(x, (None, 3)),
                    input_signature=[_spec((1, 2, None, None))])
    rng = np.random.default_rng(4)
    for L in (6, 13, 40):
        a = rng.standard_normal((3, 4, L))
        _close(f(tl.tensor(a)), TF.adaptive_max_pool1d(torch.tensor(a), 6))
        b = rng.standard_normal((1, 2, L // 2 + 1, L))
        _close(g(tl.tensor(b)), TF.adaptive_max_pool2d(torch.tensor(b), (None, 3)))
    assert f.trace_count == 1 and g.trace_count == 1


@settings(max_examples=20, deadline=None)
@given(L=st.integers(1, 50), out=st.integers(1, 12))
def test_adaptive_max_pool1d_captured_hypothesis(L, out):
    f = tl.function(lambda x: F.adaptive_max_pool1d(x, out),
                    input_signature=[_spec((1, 2, None))])
    a = np.random.default_rng(L * 13 + out).standard_normal((1, 2, L))
    _close(f(tl.tensor(a)), TF.adaptive_max_pool1d(torch.tensor(a), out))


def test_adaptive_max_pool1d_onnx_dynamic_length():
    ort = pytest.importorskip("onnxruntime")
    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "amp.onnx")
    tl.onnx.export(tl.nn.AdaptiveMaxPool1d(16), (tl.randn(2, 3, 20),), path,
                   dynamic_axes={0: {0: "b", 2: "t"}})
    sess = ort.InferenceSession(path)
    for shape in ((2, 3, 20), (1, 3, 32), (3, 3, 7), (2, 3, 101)):
        a = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
        out = sess.run(None, {sess.get_inputs()[0].name: a})[0]
        _close(out, TF.adaptive_max_pool1d(torch.tensor(a), 16), 0)


# --- finding 5: ConvTranspose with stride <= output_padding < dilation --------------------------
CT_CASES = [(3, 1, 0, 1, 2), (3, 1, 1, 1, 2), (3, 2, 0, 2, 3), (2, 1, 0, 2, 3), (4, 1, 2, 1, 2),
            (3, 1, 3, 1, 2), (3, 2, 1, 1, 1), (5, 2, 4, 3, 4)]


def _pair(m_tl, m_t):
    m_tl.load_state_dict({k: tl.tensor(_np(v)) for k, v in m_t.state_dict().items()})


@pytest.mark.parametrize("k,s,p,op,d", CT_CASES)
def test_conv_transpose1d_output_padding_vs_torch(k, s, p, op, d):
    torch.manual_seed(0)
    mt = torch.nn.ConvTranspose1d(4, 6, k, stride=s, padding=p, output_padding=op, dilation=d,
                                  groups=2).double()
    m = tl.nn.ConvTranspose1d(4, 6, k, stride=s, padding=p, output_padding=op, dilation=d,
                              groups=2, dtype=tl.float64)
    _pair(m, mt)
    a = np.random.default_rng(6).standard_normal((2, 4, 10))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, yt = m(x), mt(xt)
    _close(y, yt)
    g = np.random.default_rng(7).standard_normal(tuple(yt.shape))
    y.backward(tl.tensor(g))
    yt.backward(torch.tensor(g))
    _close(x.grad, xt.grad)
    _close(m.weight.grad, mt.weight.grad)
    _close(m.bias.grad, mt.bias.grad)


def test_conv_transpose2d_output_padding_below_dilation():
    torch.manual_seed(1)
    mt = torch.nn.ConvTranspose2d(4, 3, 3, stride=(1, 2), padding=(0, 1), output_padding=(1, 1),
                                  dilation=(2, 1)).double()
    m = tl.nn.ConvTranspose2d(4, 3, 3, stride=(1, 2), padding=(0, 1), output_padding=(1, 1),
                              dilation=(2, 1), dtype=tl.float64)
    _pair(m, mt)
    a = np.random.default_rng(8).standard_normal((2, 4, 5, 6))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, yt = m(x), mt(xt)
    _close(y, yt)
    y.sum().backward()
    yt.sum().backward()
    _close(x.grad, xt.grad)
    _close(m.weight.grad, mt.weight.grad)


def test_conv_transpose1d_output_padding_grad_of_grad():
    a = np.random.default_rng(9).standard_normal((1, 2, 6))
    w = np.random.default_rng(10).standard_normal((2, 3, 3))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    wl, wt = tl.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = F.conv_transpose1d(x, wl, stride=1, output_padding=1, dilation=2)
    yt = TF.conv_transpose1d(xt, wt, stride=1, output_padding=1, dilation=2)
    (gx,) = tl.grad((y ** 2).sum(), [x], create_graph=True)
    (gxt,) = torch.autograd.grad((yt ** 2).sum(), [xt], create_graph=True)
    _close(gx, gxt)
    (gx ** 2).sum().backward()
    (gxt ** 2).sum().backward()
    _close(wl.grad, wt.grad)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 4), s=st.integers(1, 3), d=st.integers(1, 4), p=st.integers(0, 3),
       op=st.integers(0, 3), L=st.integers(1, 8))
def test_conv_transpose1d_geometry_hypothesis(k, s, d, p, op, L):
    a = np.random.default_rng(k * 7 + L).standard_normal((1, 2, L))
    w = np.random.default_rng(s * 5 + d).standard_normal((2, 2, k))
    try:
        yt = TF.conv_transpose1d(torch.tensor(a), torch.tensor(w), stride=s, padding=p,
                                 output_padding=op, dilation=d)
    except RuntimeError:
        with pytest.raises(ValueError, match="conv_transpose1d"):
            F.conv_transpose1d(tl.tensor(a), tl.tensor(w), stride=s, padding=p,
                               output_padding=op, dilation=d)
        return
    _close(F.conv_transpose1d(tl.tensor(a), tl.tensor(w), stride=s, padding=p,
                              output_padding=op, dilation=d), yt)


def test_conv_transpose1d_output_padding_errors_name_the_function():
    x = tl.randn(2, 4, 10)
    with pytest.raises(ValueError, match=r"conv_transpose1d: output_padding 2 must be smaller "
                                         r"than stride 1 or dilation 2"):
        tl.nn.ConvTranspose1d(4, 3, 3, stride=1, output_padding=2, dilation=2)(x)
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding"):
        tl.nn.ConvTranspose2d(4, 3, 3, stride=2, output_padding=2)(tl.randn(1, 4, 5, 5))
    with pytest.raises(RuntimeError):
        torch.nn.ConvTranspose1d(4, 3, 3, stride=1, output_padding=2, dilation=2)(
            torch.randn(2, 4, 10))


def test_conv_transpose1d_output_padding_captured_and_onnx():
    torch.manual_seed(2)
    mt = torch.nn.ConvTranspose1d(4, 3, 3, stride=1, padding=0, output_padding=1, dilation=2)
    m = tl.nn.ConvTranspose1d(4, 3, 3, stride=1, padding=0, output_padding=1, dilation=2)
    _pair(m, mt)
    f = tl.function(lambda x: m(x), input_signature=[tl.TensorSpec((None, 4, None), tl.float32)])
    rng = np.random.default_rng(11)
    with torch.no_grad(), tl.no_grad():
        for shape in ((2, 4, 10), (1, 4, 3), (3, 4, 25)):
            a = rng.standard_normal(shape).astype(np.float32)
            _close(f(tl.tensor(a)), mt(torch.tensor(a)), 1e-5)
        assert f.trace_count == 1
        ort = pytest.importorskip("onnxruntime")
        import os
        import tempfile
        path = os.path.join(tempfile.mkdtemp(), "ct.onnx")
        tl.onnx.export(m, (tl.randn(2, 4, 10),), path, dynamic_axes={0: {0: "b", 2: "t"}})
        sess = ort.InferenceSession(path)
        for shape in ((2, 4, 10), (1, 4, 6), (2, 4, 31)):
            a = rng.standard_normal(shape).astype(np.float32)
            out = sess.run(None, {sess.get_inputs()[0].name: a})[0]
            _close(out, mt(torch.tensor(a)), 1e-5)


# --- finding 9: int64 average pooling, NaN windows of max pooling -------------------------------
AVG_KW = [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1),
          dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
          dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
          dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)]


@pytest.mark.parametrize("kw", AVG_KW)
def test_avg_pool_int64_vs_torch(kw):
    a = np.random.default_rng(12).integers(-60, 60, (2, 3, 7, 8, 11))
    r = F.avg_pool1d(tl.tensor(a[:, 0, 0]), **kw)
    assert r.dtype == np.int64
    np.testing.assert_array_equal(r.numpy(), TF.avg_pool1d(torch.tensor(a[:, 0, 0]), **kw))
    for div in (None, 5):
        r = F.avg_pool2d(tl.tensor(a[:, 0]), divisor_override=div, **kw)
        np.testing.assert_array_equal(
            r.numpy(), TF.avg_pool2d(torch.tensor(a[:, 0]), divisor_override=div, **kw))
        r = F.avg_pool3d(tl.tensor(a), divisor_override=div, **kw)
        assert r.dtype == np.int64
        np.testing.assert_array_equal(
            r.numpy(), TF.avg_pool3d(torch.tensor(a), divisor_override=div, **kw))
    np.testing.assert_array_equal(tl.nn.AvgPool1d(3)(tl.arange(10).reshape(1, 1, 10)).numpy(),
                                  [[[1, 4, 7]]])


@pytest.mark.parametrize("dt", ["int32", "uint8", "bool"])
def test_avg_pool_other_ints_refused_as_torch(dt):
    x = tl.arange(10).reshape(1, 1, 10).astype(dt)
    with pytest.raises(TypeError, match="avg_pool1d: input must be float32, float64 or int64"):
        F.avg_pool1d(x, 3)
    with pytest.raises(TypeError, match="avg_pool3d"):
        F.avg_pool3d(x.reshape(1, 1, 1, 2, 5), 1)
    with pytest.raises(NotImplementedError):
        TF.avg_pool1d(torch.arange(10).reshape(1, 1, 10).to(getattr(torch, dt)), 3)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2),
                                dict(kernel_size=3, stride=1, dilation=2)])
def test_max_pool_nan_windows_index_last_nan(kw):
    rng = np.random.default_rng(13)
    a = rng.standard_normal((2, 3, 6, 12))
    a[rng.random(a.shape) < 0.4] = np.nan
    a[0, 0] = np.nan
    for fn, tfn, arr in ((F.max_pool1d, TF.max_pool1d, a[:, :, 0]),
                         (F.max_pool2d, TF.max_pool2d, a)):
        x, xt = tl.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)
        (y, i), (yt, it) = fn(x, return_indices=True, **kw), tfn(xt, return_indices=True, **kw)
        np.testing.assert_array_equal(i.numpy(), it.numpy())
        np.testing.assert_array_equal(np.isnan(_np(y)), np.isnan(_np(yt)))
        y.sum().backward()
        yt.sum().backward()
        np.testing.assert_array_equal(_np(x.grad) != 0, _np(xt.grad) != 0)
    x3 = np.where(rng.random((1, 2, 5, 6, 7)) < 0.3, np.nan, rng.standard_normal((1, 2, 5, 6, 7)))
    k3 = {k: v for k, v in kw.items() if k != "dilation"}
    np.testing.assert_array_equal(
        F.max_pool3d(tl.tensor(x3), return_indices=True, **k3)[1].numpy(),
        TF.max_pool3d(torch.tensor(x3), return_indices=True, **k3)[1].numpy())
