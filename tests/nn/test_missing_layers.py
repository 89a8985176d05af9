"""The torch.nn / torch.nn.functional names a differential trial found missing (round 14):
values and gradients against PyTorch (float32 and float64), finite differences in float64,
module reprs, graph capture replay and ONNX export of the 3-d pools."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _both(a, dtype):
    a = np.asarray(a, dtype)
    return tl.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


def _check(tl_fn, torch_fn, arrays, dtype, seed=1, grad=True):
    """Forward values of every output, and the input gradients of a random weighting of the
    first output, against PyTorch."""
    pairs = [_both(a, dtype) for a in arrays]
    out = tl_fn(*[p[0] for p in pairs])
    want = torch_fn(*[p[1] for p in pairs])
    outs = out if isinstance(out, tuple) else (out,)
    wants = want if isinstance(want, tuple) else (want,)
    assert len(outs) == len(wants)
    for o, w in zip(outs, wants):
        w = w.detach().numpy()
        assert tuple(o.shape) == w.shape
        if w.dtype.kind in "iu":
            np.testing.assert_array_equal(o.numpy(), w)
        else:
            assert o.dtype == np.dtype(dtype)
            np.testing.assert_allclose(o.numpy(), w, **TOL[dtype])
    if not grad:
        return
    g = np.random.default_rng(seed).standard_normal(wants[0].shape).astype(dtype)
    (outs[0] * tl.tensor(g)).sum().backward()
    (wants[0] * torch.tensor(g)).sum().backward()
    for (t, r) in pairs:
        np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), **TOL[dtype])


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(*shape, seed=0):
    """Values with no ties (max pooling's gradient goes to one element, as PyTorch's)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) / n - 0.5


# --- elementwise activations ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args", [
    ("hardshrink", ()), ("hardshrink", (0.3,)), ("softshrink", ()), ("softshrink", (1.2,)),
    ("softshrink", (0.0,)), ("tanhshrink", ()), ("threshold", (0.1, -2.0)),
    ("rrelu", (0.1, 0.3, False)), ("local_response_norm", (3,)),
    ("local_response_norm", (4, 1e-2, 0.5, 2.0)),
])
def test_functional_matches_torch(name, args, dtype):
    x = _rand(2, 5, 3, 4) * 2
    _check(lambda a: getattr(F, name)(a, *args), lambda a: getattr(TF, name)(a, *args), [x],
           dtype)


@pytest.mark.parametrize("shape", [(2, 6, 5), (1, 7, 3, 4, 2)])
def test_local_response_norm_3d_and_5d(shape):
    _check(lambda a: F.local_response_norm(a, 5, 0.1, 0.6, 1.5),
           lambda a: TF.local_response_norm(a, 5, 0.1, 0.6, 1.5), [_rand(*shape)], np.float64)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=1, max_size=20),
       st.floats(0, 2, width=32))
def test_shrinks_random(values, lambd):
    x = np.asarray(values, np.float64)
    for name in ("hardshrink", "softshrink"):
        _check(lambda a: getattr(F, name)(a, lambd), lambda a: getattr(TF, name)(a, lambd),
               [x], np.float64)


def test_activation_modules_match_torch():
    x = _rand(3, 4) * 2
    for mod, ref in [(nn.Hardshrink(0.7), torch.nn.Hardshrink(0.7)),
                     (nn.Softshrink(0.4), torch.nn.Softshrink(0.4)),
                     (nn.Tanhshrink(), torch.nn.Tanhshrink())]:
        _check(mod, ref, [x], np.float64)


def test_softshrink_rejects_negative_lambd():
    with pytest.raises(ValueError, match="softshrink: lambd"):
        F.softshrink(tl.randn(3), -0.1)
    with pytest.raises(ValueError, match="Softshrink"):
        nn.Softshrink(-1.0)


def test_threshold_inplace():
    x = tl.tensor([0.5, 2.0, -1.0])
    y = F.threshold(x, 1.0, 7.0, inplace=True)
    assert y is x
    np.testing.assert_array_equal(x.numpy(), [7.0, 2.0, 7.0])


def test_rrelu_training_slopes_lie_in_range_and_carry_the_gradient():
    tl.manual_seed(0)
    x = tl.tensor(-np.linspace(0.5, 3.0, 400), requires_grad=True)
    y = F.rrelu(x, 0.2, 0.4, training=True)
    slope = (y / x).detach().numpy()
    assert slope.min() >= 0.2 and slope.max() <= 0.4
    assert slope.std() > 0.03                 # per-element draws, not one slope
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slope, rtol=1e-6)
    pos = tl.tensor([1.0, 2.0])
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), [1.0, 2.0])


def test_rrelu_module_eval_is_the_mean_slope():
    x = _rand(10)
    m = nn.RReLU(0.1, 0.5).eval()
    _check(m, torch.nn.RReLU(0.1, 0.5).eval(), [x], np.float64)


# --- alpha dropout ----------------------------------------------------------------------------
_ALPHA = 1.7580993408473766


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.2, 0.6])
def test_alpha_dropout_training_is_torch_affine_map(feature, p):
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    tl.manual_seed(1)
    x = tl.tensor(_rand(8, 16, 5, 5), requires_grad=True)
    y = fn(x, p, training=True)
    a = 1.0 / np.sqrt((_ALPHA ** 2 * p + 1) * (1 - p))
    xv, yv = x.detach().numpy(), y.detach().numpy()
    kept = np.isclose(yv, xv * a + _ALPHA * a * p)
    dropped = np.isclose(yv, -_ALPHA * a + _ALPHA * a * p)
    assert (kept | dropped).all()
    assert abs(dropped.mean() - p) < 0.08
    if feature:       # whole channels share the mask
        assert (kept.reshape(8, 16, -1).all(-1) | dropped.reshape(8, 16, -1).all(-1)).all()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept & ~dropped, a, 0.0), rtol=1e-12)


def test_alpha_dropout_keeps_selu_statistics_and_eval_is_identity():
    tl.manual_seed(2)
    x = tl.randn(200000, dtype=tl.float64)
    y = F.alpha_dropout(x, 0.3, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1.0) < 0.02
    np.testing.assert_array_equal(F.alpha_dropout(x, 0.3).numpy(), x.numpy())
    m = nn.AlphaDropout(0.3).eval()
    np.testing.assert_array_equal(m(x).numpy(), x.numpy())
    fm = nn.FeatureAlphaDropout(0.3).eval()
    z = tl.randn(2, 3, 4)
    np.testing.assert_array_equal(fm(z).numpy(), z.numpy())
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.alpha_dropout(x, 1.5, training=True)


# --- lp pooling -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, shape, norm, k, s, ceil", [
    (1, (2, 3, 9), 2, 3, None, False), (1, (2, 3, 10), 3, 2, 3, True),
    (2, (2, 3, 7, 6), 2, (3, 2), None, False), (2, (1, 2, 7, 7), 1.5, 2, (2, 3), True),
    (3, (2, 2, 5, 6, 4), 2, 2, None, False), (3, (1, 2, 5, 5, 5), 3, (2, 3, 2), 2, True),
])
def test_lp_pool_matches_torch(nd, shape, norm, k, s, ceil, dtype):
    x = np.abs(_rand(*shape)) + 0.1          # PyTorch's x**p: positive input keeps it finite
    name = f"lp_pool{nd}d"
    _check(lambda a: getattr(F, name)(a, norm, k, s, ceil),
           lambda a: getattr(TF, name)(a, norm, k, s, ceil), [x], dtype)


def test_lppool3d_module():
    x = np.abs(_rand(1, 2, 4, 4, 4)) + 0.1
    _check(nn.LPPool3d(2, 2), torch.nn.LPPool3d(2, 2), [x], np.float64)


# --- 3-d pooling ------------------------------------------------------------------------------
MAX3D = [
    dict(kernel_size=2), dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0)),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=(2, 1, 2)),
    dict(kernel_size=(1, 3, 2), stride=(1, 2, 2), ceil_mode=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", MAX3D)
def test_max_pool3d_matches_torch(cfg, dtype):
    x = _distinct(2, 3, 7, 6, 8)
    _check(lambda a: F.max_pool3d(a, return_indices=True, **cfg),
           lambda a: TF.max_pool3d(a, return_indices=True, **cfg), [x], dtype)
    _check(lambda a: F.max_pool3d(a, **cfg), lambda a: TF.max_pool3d(a, **cfg), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [c for c in MAX3D if "dilation" not in c])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("div", [None, 5])
def test_avg_pool3d_matches_torch(cfg, cip, div, dtype):
    x = _rand(2, 3, 7, 6, 8)
    _check(lambda a: F.avg_pool3d(a, count_include_pad=cip, divisor_override=div, **cfg),
           lambda a: TF.avg_pool3d(a, count_include_pad=cip, divisor_override=div, **cfg),
           [x], dtype)


def test_3d_pools_unbatched_and_modules():
    x = _distinct(3, 5, 6, 7)
    _check(lambda a: F.max_pool3d(a, 2, return_indices=True),
           lambda a: TF.max_pool3d(a, 2, return_indices=True), [x], np.float64)
    _check(lambda a: F.avg_pool3d(a, 3, 2, 1), lambda a: TF.avg_pool3d(a, 3, 2, 1), [x],
           np.float64)
    xb = x[None]
    for mod, ref in [(nn.MaxPool3d(2, 1, 1), torch.nn.MaxPool3d(2, 1, 1)),
                     (nn.AvgPool3d(3, 2, 1, True, False), torch.nn.AvgPool3d(3, 2, 1, True, False)),
                     (nn.AdaptiveAvgPool3d((2, None, 3)), torch.nn.AdaptiveAvgPool3d((2, None, 3))),
                     (nn.AdaptiveMaxPool3d(2, True), torch.nn.AdaptiveMaxPool3d(2, True))]:
        _check(mod, ref, [xb], np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [2, (3, 2, 4), (1, None, 3), (5, 6, 7)])
def test_adaptive_3d_pools_match_torch(size, dtype):
    x = _distinct(2, 2, 5, 6, 7)
    _check(lambda a: F.adaptive_avg_pool3d(a, size), lambda a: TF.adaptive_avg_pool3d(a, size),
           [x], dtype)
    _check(lambda a: F.adaptive_max_pool3d(a, size, True),
           lambda a: TF.adaptive_max_pool3d(a, size, True), [x], dtype)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_with_indices_names_always_return_indices(nd):
    x = _distinct(2, 3, *(6,) * nd)
    name = f"max_pool{nd}d_with_indices"
    _check(lambda a: getattr(F, name)(a, 3, 2, 1), lambda a: getattr(TF, name)(a, 3, 2, 1),
           [x], np.float64)


def test_3d_pool_errors_name_the_op():
    with pytest.raises(ValueError, match="max_pool3d: input must be"):
        F.max_pool3d(tl.randn(2, 3, 4), 2)
    with pytest.raises(ValueError, match="avg_pool3d: padding"):
        F.avg_pool3d(tl.randn(1, 1, 4, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="max_pool3d: output size"):
        F.max_pool3d(tl.randn(1, 1, 2, 4, 4), 3)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool3d(tl.randn(1, 1, 4, 4, 4), 2, divisor_override=0)
    with pytest.raises(ValueError, match="adaptive_avg_pool3d: output_size"):
        F.adaptive_avg_pool3d(tl.randn(1, 1, 4, 4, 4), (2, 2))


@pytest.mark.parametrize("fn", [
    lambda a: F.max_pool3d(a, (2, 3, 2), (1, 2, 2), (1, 1, 0)),
    lambda a: F.avg_pool3d(a, 2, 1, 1, count_include_pad=False),
    lambda a: F.avg_pool3d(a, 3, 2, 1, ceil_mode=True, divisor_override=4),
    lambda a: F.adaptive_max_pool3d(a, (2, 3, 2)),
    lambda a: F.lp_pool3d(a * a + 0.5, 2, 2, 1),
    lambda a: F.local_response_norm(a, 3, 0.5, 0.75, 1.0),
])
def test_gradcheck_and_gradgradcheck(fn):
    x = tl.tensor(_distinct(1, 2, 4, 5, 4, seed=3) * 4, dtype=tl.float64, requires_grad=True)
    assert tl.autograd.gradcheck(fn, [x])
    assert tl.autograd.gradgradcheck(fn, [x])


# --- max unpooling ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, shape, k, s, p, out", [
    (1, (2, 3, 9), 3, 2, 1, None), (1, (2, 3, 8), 2, None, 0, (9,)),
    (2, (2, 3, 6, 7), 2, None, 0, (6, 7)), (2, (1, 2, 7, 7), 3, 2, 1, (1, 2, 8, 7)),
    (3, (2, 2, 4, 6, 5), 2, None, 0, (5, 6, 5)), (3, (1, 2, 5, 5, 5), 3, 2, 1, None),
])
def test_max_unpool_matches_torch(nd, shape, k, s, p, out, dtype):
    x = _distinct(*shape)
    pool, unpool = getattr(TF, f"max_pool{nd}d"), getattr(F, f"max_unpool{nd}d")
    _, ti = pool(torch.tensor(x), k, s, p, return_indices=True)
    y = pool(torch.tensor(x), k, s, p).numpy()
    idx = ti.numpy()
    _check(lambda a: unpool(a, tl.tensor(idx), k, s, p, out),
           lambda a: getattr(TF, f"max_unpool{nd}d")(a, ti, k, s, p, out), [y], dtype)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_modules_invert_max_pool(nd):
    x = tl.tensor(_distinct(2, 3, *(4,) * nd))
    pool = getattr(nn, f"MaxPool{nd}d")(2, return_indices=True)
    y, i = pool(x)
    back = getattr(nn, f"MaxUnpool{nd}d")(2)(y, i)
    want = getattr(torch.nn, f"MaxUnpool{nd}d")(2)(torch.tensor(y.numpy()),
                                                   torch.tensor(i.numpy()))
    np.testing.assert_array_equal(back.numpy(), want.numpy())
    # unbatched
    back1 = getattr(nn, f"MaxUnpool{nd}d")(2)(y[0], i[0])
    np.testing.assert_array_equal(back1.numpy(), want.numpy()[0])


def test_max_unpool_gradcheck_and_errors():
    x = tl.tensor(_distinct(1, 2, 3, 3), dtype=tl.float64, requires_grad=True)
    idx = tl.tensor(np.random.default_rng(0).permutation(36)[:9].reshape(1, 1, 3, 3).repeat(2, 1))
    fn = lambda a: F.max_unpool2d(a, idx, 2)  # noqa: E731
    assert tl.autograd.gradcheck(fn, [x]) and tl.autograd.gradgradcheck(fn, [x])
    with pytest.raises(IndexError):
        F.max_unpool2d(x, idx + 100, 2)
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool2d(x, idx, 2, output_size=(9, 9))
    with pytest.raises(ValueError, match="indices must be integers"):
        F.max_unpool2d(x, idx[..., :2], 2)


# --- padding, normalisation, upsampling layers ----------------------------------------------
@pytest.mark.parametrize("name, pad, shape", [
    ("ReflectionPad1d", 2, (2, 3, 6)), ("ReflectionPad1d", (1, 3), (3, 6)),
    ("ReflectionPad3d", 1, (1, 2, 3, 4, 5)), ("ReflectionPad3d", (1, 0, 2, 1, 0, 2), (2, 3, 4, 5)),
    ("ReplicationPad1d", (2, 1), (2, 3, 4)), ("ReplicationPad3d", (1, 2, 0, 1, 2, 0),
                                              (1, 2, 3, 4, 5)),
    ("ZeroPad1d", (1, 2), (2, 3, 4)), ("ZeroPad3d", 1, (1, 2, 3, 3, 3)),
    ("CircularPad1d", (1, 2), (2, 3, 4)), ("CircularPad2d", (1, 0, 2, 1), (1, 2, 3, 4)),
    ("CircularPad3d", 1, (1, 2, 3, 3, 3)), ("ConstantPad3d", (1, 0, 2, 1, 0, 1), (1, 2, 3, 3, 3)),
])
def test_padding_layers_match_torch(name, pad, shape):
    args = (pad, 2.5) if name.startswith("Constant") else (pad,)
    mod, ref = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(mod) == repr(ref)
    for dtype in DTYPES:
        _check(mod, ref, [_rand(*shape)], dtype)


def test_padding_layer_rejects_wrong_rank():
    with pytest.raises(ValueError, match="ReflectionPad3d: expects a 4-d or 5-d input"):
        nn.ReflectionPad3d(1)(tl.randn(3, 4, 5))


@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (True, True)])
def test_instance_norm3d_matches_torch(affine, track):
    x = _rand(2, 3, 4, 5, 3)
    mod, ref = nn.InstanceNorm3d(3, affine=affine, track_running_stats=track), \
        torch.nn.InstanceNorm3d(3, affine=affine, track_running_stats=track)
    if affine:
        w, b = _rand(3, seed=1), _rand(3, seed=2)
        mod.weight.data = tl.tensor(w.astype(np.float32))
        mod.bias.data = tl.tensor(b.astype(np.float32))
        with torch.no_grad():
            ref.weight.copy_(torch.tensor(w)), ref.bias.copy_(torch.tensor(b))
    _check(mod, ref, [x], np.float32)
    if track:
        np.testing.assert_allclose(mod.running_mean.numpy(), ref.running_mean.numpy(),
                                   rtol=1e-5, atol=1e-6)
        mod.eval(), ref.eval()
        _check(mod, ref, [x[0]], np.float32)
    assert repr(mod) == repr(ref)


def test_instance_norm3d_without_bias():
    mod = nn.InstanceNorm3d(2, affine=True, bias=False)
    assert mod.bias is None and repr(mod) == repr(torch.nn.InstanceNorm3d(2, affine=True,
                                                                          bias=False))
    assert tuple(mod(tl.randn(1, 2, 3, 3, 3)).shape) == (1, 2, 3, 3, 3)


@pytest.mark.parametrize("name, kw", [
    ("UpsamplingNearest2d", dict(scale_factor=2)), ("UpsamplingNearest2d", dict(size=(5, 7))),
    ("UpsamplingBilinear2d", dict(scale_factor=2)), ("UpsamplingBilinear2d", dict(size=(5, 9))),
    ("UpsamplingBilinear2d", dict(scale_factor=(1.5, 2.0))),
])
def test_upsampling_layers_match_torch(name, kw):
    mod, ref = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    assert repr(mod) == repr(ref)
    for dtype in DTYPES:
        _check(mod, ref, [_rand(2, 3, 4, 5)], dtype)


# --- reprs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, args, kw", [
    ("InstanceNorm3d", (3,), {}), ("MaxPool3d", (2,), {}),
    ("MaxPool3d", ((3, 2, 1),), dict(stride=1, padding=(1, 1, 0), dilation=2, ceil_mode=True)),
    ("AvgPool3d", (2,), {}), ("AvgPool3d", (3, 2, 1), {}), ("AdaptiveMaxPool3d", (2,), {}),
    ("AdaptiveAvgPool3d", ((1, None, 2),), {}), ("MaxUnpool1d", (3, 2, 1), {}),
    ("MaxUnpool2d", (2,), {}), ("MaxUnpool3d", ((2, 1, 2),), dict(padding=1)),
    ("Hardshrink", (), {}), ("Softshrink", (0.3,), {}), ("Tanhshrink", (), {}),
    ("AlphaDropout", (0.2,), {}), ("FeatureAlphaDropout", (), {}), ("LPPool3d", (2, 2), {}),
    ("RReLU", (), {}), ("Threshold", (0.1, 2.0), {}), ("ZeroPad1d", ((1, 2),), {}),
    ("UpsamplingNearest2d", (), dict(scale_factor=2)),
])
def test_module_reprs_match_torch(name, args, kw):
    assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


# --- capture and ONNX -------------------------------------------------------------------------
def test_captured_pools_replay_with_new_inputs():
    @tl.function
    def f(x):
        y, i = F.max_pool3d(x, 2, return_indices=True)
        z = F.max_unpool3d(y, i, 2)
        return z + F.avg_pool3d(x, 3, 1, 1, count_include_pad=False) \
            + F.adaptive_avg_pool3d(x, 4).mean() + F.lp_pool3d(x * x, 2, 2).sum()

    def ref(x):
        y, i = TF.max_pool3d(x, 2, return_indices=True)
        return TF.max_unpool3d(y, i, 2) + TF.avg_pool3d(x, 3, 1, 1, count_include_pad=False) \
            + TF.adaptive_avg_pool3d(x, 4).mean() + TF.lp_pool3d(x * x, 2, 2).sum()

    with tl.no_grad():
        for seed in range(3):
            x = _distinct(2, 3, 4, 6, 4, seed=seed)
            got = f(tl.tensor(x)).numpy()
            np.testing.assert_allclose(got, ref(torch.tensor(x)).numpy(), rtol=1e-10,
                                       atol=1e-12)
    assert len(f.graphs) == 1


@pytest.mark.parametrize("name, fn, tfn", [
    ("max_pool3d", lambda a: F.max_pool3d(a, (3, 2, 2), (2, 1, 2), (1, 1, 0)),
     lambda a: TF.max_pool3d(a, (3, 2, 2), (2, 1, 2), (1, 1, 0))),
    ("max_pool3d_ceil", lambda a: F.max_pool3d(a, 3, 2, 1, ceil_mode=True),
     lambda a: TF.max_pool3d(a, 3, 2, 1, ceil_mode=True)),
    ("avg_pool3d", lambda a: F.avg_pool3d(a, 3, 2, 1, count_include_pad=False),
     lambda a: TF.avg_pool3d(a, 3, 2, 1, count_include_pad=False)),
    ("avg_pool3d_incl", lambda a: F.avg_pool3d(a, (2, 3, 2), 1, (1, 1, 0)),
     lambda a: TF.avg_pool3d(a, (2, 3, 2), 1, (1, 1, 0))),
])
def test_3d_pools_export_to_onnx(name, fn, tfn):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = _rand(2, 3, 5, 6, 7).astype(np.float32)
    xt = tl.tensor(x)
    with tl.capture(xt) as g:
        y = fn(xt)
    g.set_outputs(y)
    ops = {n.op for n in g.nodes}
    assert ("max_pool2d" if name.startswith("max") else "avg_pool2d") in ops
    model = tl.onnx.to_model(g, opset=17)
    kinds = {n.op_type for n in model.graph.node}
    assert ("MaxPool" if name.startswith("max") else "AveragePool") in kinds
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {model.graph.input[0].name: x})[0]
    np.testing.assert_allclose(got, tfn(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_3d_pools_random_configs_match_torch(data):
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(3))
    s = tuple(data.draw(st.integers(1, 3)) for _ in range(3))
    p = tuple(data.draw(st.integers(0, ki // 2)) for ki in k)
    ceil = data.draw(st.booleans())
    shape = tuple(data.draw(st.integers(ki, ki + 4)) for ki in k)
    x = _distinct(1, 2, *shape, seed=data.draw(st.integers(0, 99)))
    _check(lambda a: F.max_pool3d(a, k, s, p, 1, ceil, True),
           lambda a: TF.max_pool3d(a, k, s, p, 1, ceil, True), [x], np.float64)
    cip = data.draw(st.booleans())
    _check(lambda a: F.avg_pool3d(a, k, s, p, ceil, cip),
           lambda a: TF.avg_pool3d(a, k, s, p, ceil, cip), [x], np.float64)


def test_3d_pools_and_unpool_under_vmap_match_a_loop():
    x = tl.tensor(_distinct(3, 2, 2, 4, 4, 4))

    def f(a):
        y, i = F.max_pool3d(a, 2, return_indices=True)
        return F.max_unpool3d(y, i, 2) + F.avg_pool3d(a, 3, 1, 1)

    got = tl.vmap(f)(x).numpy()
    want = np.stack([f(x[b]).numpy() for b in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_max_pool3d_takes_float16_as_torch():
    x = _distinct(1, 2, 4, 5, 4).astype(np.float16)
    t = tl.tensor(x, requires_grad=True)
    y, i = F.max_pool3d(t, 2, 1, return_indices=True)
    ty, ti = TF.max_pool3d(torch.tensor(x), 2, 1, return_indices=True)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    y.sum().backward()
    assert t.grad.dtype == np.float16


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("kw", [{}, {"affine": True}, {"affine": True, "bias": False}])
def test_instance_norms_take_bias_and_print_as_torch(k, kw):
    ours = getattr(tl.nn, f"InstanceNorm{k}d")(3, **kw)
    theirs = getattr(torch.nn, f"InstanceNorm{k}d")(3, **kw)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
