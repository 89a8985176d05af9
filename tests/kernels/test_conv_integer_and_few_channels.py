"""Integer convolutions, the few-output-channel shifted conv path and the float32
fmod/remainder fast path, each against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.errors import DTypeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

INTS = [np.uint8, np.int8, np.int16, np.int32, np.int64]


def _same(a, b):
    a, b = np.asarray(a), b if isinstance(b, np.ndarray) else b.detach().numpy()
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2), dict(dilation=2, padding=2),
                                dict(groups=2, padding=1), dict(padding="same")])
def test_conv2d_int_matches_torch(dt, kw):
    rng = np.random.default_rng(0)
    info = np.iinfo(dt)
    # full-range values: the sums overflow and must wrap as PyTorch's
    x = rng.integers(info.min, info.max, (2, 4, 9, 8), endpoint=True).astype(dt)
    w = rng.integers(info.min, info.max, (6, 4 // kw.get("groups", 1), 3, 3),
                     endpoint=True).astype(dt)
    b = rng.integers(info.min, info.max, 6, endpoint=True).astype(dt)
    for bias in (None, b):
        got = F.conv2d(tl.tensor(x), tl.tensor(w), None if bias is None else tl.tensor(bias),
                       **kw)
        # PyTorch refuses dilated convolutions below int64 ("slow_conv_dilated<>");
        # tensorlib computes them: compare with its int64 result wrapped to the dtype
        wide = "dilation" in kw and dt != np.int64
        cast = (lambda a: torch.tensor(a.astype(np.int64))) if wide else torch.tensor
        want = TF.conv2d(cast(x), cast(w), None if bias is None else cast(bias), **kw)
        _same(got, want.numpy().astype(dt) if wide else want)


def test_uint8_neighbour_count_wraps():
    m = np.ones((1, 1, 4, 4), np.uint8)
    k = np.full((1, 1, 3, 3), 30, np.uint8)          # 9 * 30 = 270 wraps to 14
    got = F.conv2d(tl.tensor(m), tl.tensor(k), padding=1)
    _same(got, TF.conv2d(torch.tensor(m), torch.tensor(k), padding=1))
    assert np.asarray(got)[0, 0, 1, 1] == 270 % 256


def test_int64_wraps_mod_2_64():
    x = np.full((1, 1, 3, 3), 2 ** 40, np.int64)
    w = np.full((1, 1, 3, 3), 2 ** 30 + 7, np.int64)
    _same(F.conv2d(tl.tensor(x), tl.tensor(w)), TF.conv2d(torch.tensor(x), torch.tensor(w)))


@pytest.mark.parametrize("dt", INTS)
def test_conv1d_conv3d_int(dt):
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 100, (2, 3, 5, 6, 7)).astype(dt)
    w = rng.integers(-50, 100, (4, 3, 2, 3, 2)).astype(dt)
    _same(F.conv3d(tl.tensor(x), tl.tensor(w), padding=1),
          TF.conv3d(torch.tensor(x), torch.tensor(w), padding=1))
    x1, w1 = x[:, :, 0, 0], w[:, :, 0, 0]
    _same(F.conv1d(tl.tensor(x1), tl.tensor(w1), stride=2, padding=1),
          TF.conv1d(torch.tensor(x1), torch.tensor(w1), stride=2, padding=1))


def test_conv_transpose_int64():
    rng = np.random.default_rng(2)
    x = rng.integers(-2 ** 40, 2 ** 40, (2, 4, 5, 6))
    w = rng.integers(-2 ** 30, 2 ** 30, (4, 3, 3, 2))
    b = rng.integers(-9, 9, 3)
    _same(F.conv_transpose2d(tl.tensor(x), tl.tensor(w), tl.tensor(b), stride=2, padding=1,
                             output_padding=1),
          TF.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2,
                              padding=1, output_padding=1))
    _same(F.conv_transpose1d(tl.tensor(x[:, :, 0]), tl.tensor(w[:, :, 0]), stride=2),
          TF.conv_transpose1d(torch.tensor(x[:, :, 0]), torch.tensor(w[:, :, 0]), stride=2))
    x3, w3 = x[:, :, None], w[:, :, None]
    _same(F.conv_transpose3d(tl.tensor(x3), tl.tensor(w3), stride=(1, 2, 1)),
          TF.conv_transpose3d(torch.tensor(x3), torch.tensor(w3), stride=(1, 2, 1)))


@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.int16, np.int32])
def test_conv_transpose_small_ints_refused_as_torch(dt):
    x, w = np.ones((1, 2, 3, 3), dt), np.ones((2, 1, 2, 2), dt)
    with pytest.raises(NotImplementedError):
        TF.conv_transpose2d(torch.tensor(x), torch.tensor(w))
    with pytest.raises(DTypeError, match="conv_transpose2d.*int64"):
        F.conv_transpose2d(tl.tensor(x), tl.tensor(w))


def test_int_errors():
    u8 = np.ones((1, 1, 3, 3), np.uint8)
    with pytest.raises(DTypeError, match="conv2d: input must be one of"):
        F.conv2d(tl.tensor(u8.astype(bool)), tl.tensor(u8.astype(bool)))
    with pytest.raises(TypeError, match="conv2d: weight"):
        F.conv2d(tl.tensor(u8), tl.tensor(u8.astype(np.float32)))
    with pytest.raises(TypeError, match="conv2d: bias"):
        F.conv2d(tl.tensor(u8), tl.tensor(u8), tl.tensor(np.ones(1, np.float32)))
    with pytest.raises(RuntimeError):       # no gradients for integer tensors, as PyTorch
        tl.tensor(u8.astype(np.int64), requires_grad=True)


# --- few output channels: the shifted path at any map size ---------------------------------
@pytest.mark.parametrize("C,O,S,N", [(16, 1, 64, 2), (16, 2, 40, 1), (3, 1, 33, 3),
                                     (1, 1, 50, 2), (5, 3, 30, 2), (16, 4, 32, 1)])
@pytest.mark.parametrize("kw", [dict(padding=1), dict(padding=(2, 0), dilation=(2, 1)),
                                dict(padding="same")])
def test_few_output_channels_values_and_grads(C, O, S, N, kw):
    rng = np.random.default_rng(C * O + S)
    x = rng.standard_normal((N, C, S, S + 3))
    w = rng.standard_normal((O, C, 3, 3))
    b = rng.standard_normal(O)
    g = rng.standard_normal(TF.conv2d(torch.tensor(x), torch.tensor(w), **kw).shape)
    for dt, tol in ((np.float32, 1e-5), (np.float64, 1e-10)):
        ts = [tl.tensor(a.astype(dt), requires_grad=True) for a in (x, w, b)]
        ps = [torch.tensor(a.astype(dt), requires_grad=True) for a in (x, w, b)]
        out = F.conv2d(*ts, **kw)
        ref = TF.conv2d(*ps, **kw)
        scale = max(1.0, float(ref.abs().max()))
        np.testing.assert_allclose(np.asarray(out.detach()), ref.detach().numpy(),
                                   atol=tol * scale, rtol=tol)
        out.backward(tl.tensor(g.astype(dt)))
        ref.backward(torch.tensor(g.astype(dt)))
        for t, p in zip(ts, ps):
            gs = max(1.0, float(p.grad.abs().max()))
            np.testing.assert_allclose(np.asarray(t.grad), p.grad.numpy(), atol=tol * gs,
                                       rtol=tol)


# --- remainder: PyTorch's values bit for bit ------------------------------------------------
def _bits_equal(a, b):
    a, b = np.asarray(a), b.numpy()
    same = (a.view(np.int32) == b.view(np.int32)) | (np.isnan(a) & np.isnan(b))
    assert same.all(), (a[~same][:5], b[~same][:5])


@pytest.mark.parametrize("d", [6.0, -6.0, 0.1, -0.7, 3.0, 1.5, 1e-3, -2.5e-20, 1e30,
                               float("inf"), float("-inf"), float("nan"), 0.0])
def test_remainder_fmod_float32_scalar_bits(d):
    rng = np.random.default_rng(3)
    x = np.concatenate([(rng.random(50000, np.float32) - 0.5) * 2 ** 20,
                        (rng.random(50000, np.float32) - 0.5) * 14,
                        np.array([0.0, -0.0, 6.0, -6.0, 12.0, -3.0, 1e-30, -1e-30], np.float32)])
    # PyTorch's vectorised fmod gives NaN where a / d overflows float32 (C's fmod does not):
    # keep to finite quotients there
    if np.isfinite(d) and d != 0:
        x = x[np.abs(x.astype(np.float64) / d) < 3e38]
    x = x.astype(np.float32)
    for fn in ("remainder", "fmod"):
        _bits_equal(getattr(tl, fn)(tl.tensor(x), d), getattr(torch, fn)(torch.tensor(x), d))


def test_remainder_nonfinite_and_large_quotients():
    # (not |a / d| past float32's range: PyTorch's vectorised fmod gives NaN there)
    x = np.array([np.inf, -np.inf, np.nan, 2e38, -2e38, 2.0 ** 27 + 8, -5.5] * 1000, np.float32)
    for d in (6.0, -0.75):
        for fn in ("remainder", "fmod"):
            _bits_equal(getattr(tl, fn)(tl.tensor(x), d), getattr(torch, fn)(torch.tensor(x), d))


@settings(max_examples=30, deadline=None)
@given(st.floats(-1e6, 1e6, width=32).filter(lambda v: v != 0),
       st.integers(0, 2 ** 31 - 1))
def test_remainder_hypothesis(d, seed):
    rng = np.random.default_rng(seed)
    x = ((rng.random(5000) - 0.5) * 10.0 ** rng.integers(-3, 9)).astype(np.float32)
    x = x[np.abs(x.astype(np.float64) / d) < 3e38]
    for fn in ("remainder", "fmod"):
        _bits_equal(getattr(tl, fn)(tl.tensor(x), d), getattr(torch, fn)(torch.tensor(x), d))


def test_remainder_grad_and_tensor_divisor():
    rng = np.random.default_rng(4)
    x = (rng.random(5000) - 0.5) * 40
    y = rng.random(5000) + 0.5
    t, p = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    tl.remainder(t, 3.5).sum().backward()
    torch.remainder(p, 3.5).sum().backward()
    np.testing.assert_array_equal(np.asarray(t.grad), p.grad.numpy())
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    _bits_equal(tl.remainder(tl.tensor(x32), tl.tensor(y32)),
                torch.remainder(torch.tensor(x32), torch.tensor(y32)))
    _bits_equal(tl.remainder(tl.tensor(np.float32(-6.0)), 3.0),
                torch.remainder(torch.tensor(np.float32(-6.0)), 3.0))
