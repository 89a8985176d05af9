"""The float32 maps computed in float64 lanes (_simd_f64_inside.h: pow, fmod, PyTorch's
remainder, erfc) and the one-pass sign and rsqrt maps: each against float64 NumPy (or libm)
over floats from every binade and every pair of IEEE special values, then through the ops,
whose float32 arrays of MAP_MIN elements or more take them."""
import itertools
import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops import elementwise as ew

pytestmark = pytest.mark.skipif(not hasattr(_ops, "pow_f32"),
                                reason="_ops built without _simd_f64_inside.h")

SPECIAL = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0,
                      3.0, -3.0, 1e-45, -1e-45, 3e38, -3e38, 1.5, -2.5, 7.0, -7.0])


def _all_floats(n, seed, dtype=np.float32):
    """n finite float32 (or float64) values drawn uniformly over bit patterns (every binade,
    subnormals, both signs)"""
    bits = np.random.default_rng(seed).integers(0, 2 ** 64, n, dtype=np.uint64)
    x = bits.view(np.float64) if dtype == np.float64 else bits.astype(np.uint32).view(np.float32)
    return x[np.isfinite(x)]


def _ulps(got, ref):
    """|got - ref| in units of float32's spacing at ref (2^-149 below the normals)"""
    spacing = np.maximum(np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64),
                         2.0 ** -149)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _same_bits(got, want):
    """equal values with equal signs (zeros included), NaN where NaN"""
    both_nan = np.isnan(got) & np.isnan(want)
    return both_nan | ((got == want) & (np.signbit(got) == np.signbit(want)))


def _pairs(values, dtype=np.float32):
    a, b = np.array(list(itertools.product(values, values)), dtype).T
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def _check_against(got, ref64, bound):
    """finite nonzero results within ``bound`` ulps of the float64 ones; zeros, infinities
    and NaN exactly (signs included)"""
    with np.errstate(over="ignore"):
        ref32 = ref64.astype(np.float32)
    finite = np.isfinite(ref32) & (ref32 != 0)
    assert _same_bits(got[~finite], ref32[~finite]).all()
    assert _ulps(got[finite], ref64[finite]).max() <= bound


# --- pow ------------------------------------------------------------------------------------
@pytest.mark.parametrize("y", [1.7, -1.7, -0.5, 3.0, 5.0, -1.0, -3.0, 1 / 3, 0.1, 123.456,
                               -77.0, 1e7, 1e-30, 2.5, np.inf, -np.inf, np.nan, 0.0, -0.0,
                               1.0])
def test_pow_by_one_exponent_is_c99_powf_within_half_an_ulp(y):
    rng = np.random.default_rng(0)
    x = np.concatenate([_all_floats(400_000, 1), SPECIAL,
                        rng.uniform(0, 10, 200_000).astype(np.float32),
                        -rng.uniform(0, 10, 50_000).astype(np.float32)])
    y = np.float32(y)
    out = np.empty_like(x)
    _ops.pow_f32(x, np.float32([y]), out)
    with np.errstate(all="ignore"):     # an array exponent: libm's pow, no NumPy shortcut
        ref = np.power(x.astype(np.float64), np.full(x.shape, y, np.float64))
    _check_against(out, ref, 0.501)


def test_pow_by_one_half_is_sqrt():
    x = np.concatenate([_all_floats(200_000, 2), SPECIAL])
    out = np.empty_like(x)
    _ops.pow_f32(x, np.float32([0.5]), out)
    with np.errstate(invalid="ignore"):
        assert _same_bits(out, np.sqrt(x)).all()   # (-0 and NaN at -0, -inf: as NumPy)


def test_pow_elementwise_every_special_pair_and_random_pairs():
    a, b = _pairs(SPECIAL)
    x = np.concatenate([a, _all_floats(600_000, 3)[:500_000]])
    y = np.concatenate([b, np.random.default_rng(4).uniform(-6, 6, 500_000).astype(np.float32)])
    out = np.empty_like(x)
    _ops.pow_f32(x, y, out)
    with np.errstate(all="ignore"):
        ref = np.power(x.astype(np.float64), y.astype(np.float64))
    _check_against(out, ref, 0.501)


def test_pow_kernel_checks():
    a = np.ones(5, np.float32)
    with pytest.raises(ValueError, match="must have one length"):
        _ops.pow_f32(a, np.ones(3, np.float32), np.empty_like(a))
    with pytest.raises(ValueError, match="must have one length"):
        _ops.pow_f32(a, a, np.empty(4, np.float32))
    empty = np.empty(0, np.float32)
    _ops.pow_f32(empty, np.ones(1, np.float32), empty)


# --- fmod and remainder -----------------------------------------------------------------------
def _torch_remainder(a, b):
    """PyTorch's float remainder: r = fmod(a, b), r + b (rounded in float32) where r is
    nonzero and its sign differs from b's"""
    with np.errstate(all="ignore"):
        r = np.fmod(a, b)
        return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


# float64 extremes besides SPECIAL's: the quotient's limit 2^52 and the double range's ends
SPECIAL64 = np.concatenate([SPECIAL.astype(np.float64),
                            [2.0 ** 52, 2.0 ** 52 - 1, 5e-324, 1e-300, 1.7e308, 0.1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("remainder", [False, True])
def test_fmod_is_exact_over_every_binade_and_special_pair(remainder, dtype):
    """The lanes' quotient is right below 2^26 (float32, in float64) or 2^52 (float64, by
    fma); larger quotients (an all-float draw has plenty) and the special values take libm's
    fmod: every result equals NumPy's fmod bit for bit, and remainder its PyTorch
    adjustment."""
    rng = np.random.default_rng(5)
    a, b = _pairs(SPECIAL if dtype == np.float32 else SPECIAL64, dtype)
    x = np.concatenate([a, _all_floats(400_000, 6, dtype)[:300_000],
                        (rng.standard_normal(300_000) * 100).astype(dtype)])
    y = np.concatenate([b, _all_floats(400_000, 7, dtype)[:300_000],
                        (rng.uniform(0.01, 3, 300_000)
                         * rng.choice([-1.0, 1.0], 300_000)).astype(dtype)])
    out = np.empty_like(x)
    _ops.fmod_into(x, y, out, remainder)
    with np.errstate(all="ignore"):
        want = _torch_remainder(x, y) if remainder else np.fmod(x, y)
    assert _same_bits(out, want).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [0.7, -0.7, 3.0, 1e-30, 1e30, 0.0, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("remainder", [False, True])
def test_fmod_by_one_divisor(d, remainder, dtype):
    x = np.concatenate([_all_floats(100_000, 8, dtype), SPECIAL.astype(dtype),
                        np.random.default_rng(9).standard_normal(100_000).astype(dtype)])
    out = np.empty_like(x)
    _ops.fmod_into(x, np.array([d], dtype), out, remainder)
    b = np.full_like(x, d)
    with np.errstate(all="ignore"):
        want = _torch_remainder(x, b) if remainder else np.fmod(x, b)
    assert _same_bits(out, want).all()


# --- erfc -------------------------------------------------------------------------------------
def test_erfc_float32_within_2_3_ulp_and_subnormal_tail_rounded_once():
    x = np.concatenate([_all_floats(1_000_000, 10), np.linspace(-5, 11, 800_001, dtype=np.float32),
                        SPECIAL])
    x = x[np.abs(x) < 12]
    out = np.empty_like(x)
    _ops.erfc_into(x, out)
    ref = np.empty(x.shape, np.float64)
    _ops.erfc_into(x.astype(np.float64), ref)      # float64: its lanes, within 2.1 ulp
    assert abs(ref[x == 1.0][0] - math.erfc(1.0)) <= 2 * math.ulp(math.erfc(1.0))
    _check_against(out, ref, 2.3)
    tail = (ref < 1.17549435e-38) & (ref > 2.0 ** -150)     # subnormal results, not flushed
    assert tail.sum() > 1000 and (out[tail] > 0).all()


def test_erfc_special_values_and_dtypes():
    sp = np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 30.0, -30.0])
    out = np.empty_like(sp)
    _ops.erfc_into(sp, out)
    np.testing.assert_array_equal(out, np.float32([0, 2, np.nan, 1, 1, 0, 2]))
    x = np.linspace(-4, 4, 1001)
    got = tl.special.erfc(tl.tensor(x.astype(np.float16))).numpy()
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), [math.erfc(v) for v in
                                                         x.astype(np.float16)], rtol=1e-3,
                               atol=1e-7)
    np.testing.assert_allclose(tl.special.erfc(tl.tensor(x)).numpy(),
                               [math.erfc(v) for v in x], rtol=8e-16, atol=0)


# --- erfinv (without SciPy) -------------------------------------------------------------------
def test_erfinv_kernel_inverts_libm_erf_within_3_ulp():
    """float64: erf(erfinv(y)) is y again (to erf's own rounding) over (-1, 1), down to
    1 - 2^-53 and to subnormal y; SciPy's erfinv, where installed, agrees within 3 ulp (it is
    itself ~2 ulp off in places); float32 is the float64 value rounded once."""
    rng = np.random.default_rng(12)
    y = np.concatenate([rng.uniform(-1, 1, 100_000), 1 - 10.0 ** -rng.uniform(0, 16, 20_000),
                        -(10.0 ** -rng.uniform(0, 320, 20_000)), [1 - 2 ** -53, 0.5, 0.02]])
    x = np.empty_like(y)
    _ops.erfinv_into(y, x)
    back = np.empty_like(x)
    _ops.erfc_into(np.abs(x), back)
    far = np.abs(y) >= 0.5     # 1 - |y| is exact there, and erfc(|x|) should give it back
    # (x ~3 ulp off moves erfc by 2 x^2 times that, relatively: ~3e-14 at x = 5.9)
    np.testing.assert_allclose(back[far], 1 - np.abs(y[far]), rtol=1e-13, atol=0)
    near = ~far
    np.testing.assert_allclose([math.erf(v) for v in x[near]], y[near], rtol=2e-15,
                               atol=1e-322)    # (subnormal y: a few of their steps)
    assert (np.sign(x) == np.sign(y)).all()
    sp = np.array([0.0, -0.0, 1.0, -1.0, np.nan, 1.5, -2.0, np.inf])
    out = np.empty_like(sp)
    _ops.erfinv_into(sp, out)
    assert _same_bits(out, np.array([0.0, -0.0, np.inf, -np.inf, np.nan, np.nan, np.nan,
                                     np.nan])).all()
    try:
        import scipy.special as sc
    except ImportError:
        sc = None
    if sc is not None:
        ref = sc.erfinv(y)
        ok = ref != 0
        assert (np.abs(x[ok] - ref[ok]) <= 3 * np.spacing(np.abs(ref[ok]))).all()
    y32 = rng.uniform(-1, 1, 100_000).astype(np.float32)
    x32 = np.empty_like(y32)
    _ops.erfinv_into(y32, x32)
    x64 = np.empty(y32.shape)
    _ops.erfinv_into(y32.astype(np.float64), x64)
    np.testing.assert_array_equal(x32, x64.astype(np.float32))


def test_erfinv_op_and_trunc_normal_without_scipy(monkeypatch):
    from tensorlib.ops import special_fns
    y = np.linspace(-0.999, 0.999, 2001)
    with_scipy = tl.special.erfinv(tl.tensor(y)).numpy()
    monkeypatch.setattr(special_fns, "_sc", None)
    got = tl.special.erfinv(tl.tensor(y)).numpy()
    np.testing.assert_allclose(got, with_scipy, rtol=1e-15, atol=1e-300)
    y16 = y.astype(np.float16)
    half = tl.special.erfinv(tl.tensor(y16)).numpy()
    assert half.dtype == np.float16
    want = tl.special.erfinv(tl.tensor(y16.astype(np.float64))).numpy()
    np.testing.assert_allclose(half, want, rtol=1e-3, atol=0)
    w = tl.empty(300, 200)
    tl.nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04, generator=tl.Generator().manual_seed(0))
    v = w.numpy()
    assert v.min() >= -0.04 and v.max() <= 0.04 and abs(v.std() - 0.0176) < 5e-4


# --- sign and rsqrt -------------------------------------------------------------------------
def test_sign_and_rsqrt_maps_bit_for_bit():
    x = np.concatenate([_all_floats(500_000, 11), SPECIAL])
    out = np.empty_like(x)
    _ops.math_f32("sign", x, out)
    want = np.sign(x)
    want[np.isnan(want)] = 0       # PyTorch's sign of NaN
    assert _same_bits(out, np.where(x == 0, np.float32(0), want)).all()
    _ops.math_f32("rsqrt", x, out)
    with np.errstate(all="ignore"):
        assert _same_bits(out, np.float32(1) / np.sqrt(x)).all()


# --- the ops ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [7, 255, 256, 70_000])
def test_ops_take_the_maps_for_large_float32_and_agree_with_numpy(n):
    """Every size, shape and layout gives NumPy's (or PyTorch's) values: the maps from
    MAP_MIN elements, NumPy below, for broadcasts and for strided operands."""
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 4).astype(np.float32)
    b = rng.uniform(0.3, 3, n).astype(np.float32) * rng.choice(np.float32([-1, 1]), n)
    pos = np.abs(a) + np.float32(0.1)
    A, B, P = tl.tensor(a), tl.tensor(b), tl.tensor(pos)
    # the map within 0.5 ulp; NumPy's powf (small arrays) within 1, its SVML one (AVX-512) 4
    bound = (0.501 if n >= ew.MAP_MIN else 1.0) if not ew._numpy_has_svml() else 4.0
    e = float(np.float32(1.7))      # (the exponent rounded to the tensor's float32)
    with np.errstate(all="ignore"):
        for got, ref64 in [((P ** 1.7).numpy(), pos.astype(np.float64) ** e),
                           ((A ** 5.0).numpy(), a.astype(np.float64) ** 5.0),
                           ((A ** -3.0).numpy(), a.astype(np.float64) ** -3.0),
                           (tl.pow(P, tl.tensor(np.abs(b))).numpy(),
                            pos.astype(np.float64) ** np.abs(b).astype(np.float64))]:
            _check_against(got, ref64, bound)
        assert _same_bits((A ** 0.5).numpy(), np.sqrt(a)).all()
        assert _same_bits(tl.fmod(A, B).numpy(), np.fmod(a, b)).all()
        assert _same_bits((A % B).numpy(), _torch_remainder(a, b)).all()
        assert _same_bits((A % 0.75).numpy(), _torch_remainder(a, np.float32(0.75))).all()
        assert _same_bits(tl.fmod(A, -2.5).numpy(), np.fmod(a, np.float32(-2.5))).all()
        sign = np.sign(a)
        assert _same_bits(tl.sign(A).numpy(), np.where(a == 0, np.float32(0), sign)).all()
        assert _same_bits(tl.rsqrt(P).numpy(), np.float32(1) / np.sqrt(pos)).all()
    e = tl.special.erfc(A).numpy()
    np.testing.assert_allclose(e, [math.erfc(v) for v in a.astype(np.float64)], rtol=3e-7,
                               atol=1e-38)
    # broadcasts and strided operands: NumPy's loops, the same values
    m = (a[: n // 2 * 2].reshape(-1, 2) if n > 1 else a.reshape(1, 1))
    mb = np.float32([0.7, -1.3])[: m.shape[1]]
    with np.errstate(all="ignore"):
        assert _same_bits(tl.fmod(tl.tensor(m), tl.tensor(mb)).numpy(), np.fmod(m, mb)).all()
        assert _same_bits((tl.tensor(m).T % 1.5).numpy(),
                          _torch_remainder(m.T, np.float32(1.5))).all()


@pytest.mark.parametrize("n", [7, 256, 70_000])
def test_float64_fmod_and_remainder_ops(n):
    """float64 fmod and % take fmod_into from MAP_MIN elements (NumPy's loop below and for
    broadcasts): NumPy's fmod and PyTorch's remainder bit for bit, and the gradients."""
    rng = np.random.default_rng(n + 1)
    a = rng.standard_normal(n) * 40
    b = rng.uniform(0.3, 3, n) * rng.choice([-1.0, 1.0], n)
    A, B = tl.tensor(a), tl.tensor(b)
    assert _same_bits(tl.fmod(A, B).numpy(), np.fmod(a, b)).all()
    assert _same_bits((A % B).numpy(), _torch_remainder(a, b)).all()
    assert _same_bits((A % 0.7).numpy(), _torch_remainder(a, np.full(n, 0.7))).all()
    assert _same_bits((A % -2.5).numpy(), _torch_remainder(a, np.full(n, -2.5))).all()
    x = tl.tensor(a, requires_grad=True)
    d = tl.tensor(b, requires_grad=True)
    (x % d).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(n))
    np.testing.assert_array_equal(d.grad.numpy(), -np.floor(a / b))


def test_op_gradients_still_follow_the_kernels():
    x = tl.tensor(np.linspace(0.2, 3, 600, dtype=np.float32), requires_grad=True)
    y = (x ** 1.7).sum() + (x % 0.7).sum() + tl.special.erfc(x).sum()
    y.backward()
    xv = x.detach().numpy().astype(np.float64)
    want = 1.7 * xv ** 0.7 + 1 - 2 / math.sqrt(math.pi) * np.exp(-xv * xv)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=2e-5, atol=1e-6)
