"""_ops.math_f64 (_simd_f64.h): float64 exp, log, sin and the rest in vector lanes, against
NumPy's on extended precision (x86's 80-bit long double) over doubles from every binade, the
subnormal results and the IEEE special values (erf, erfc, erfcx and the exact GELU against
mpmath); and the ops, whose float64 arrays of MAP_MIN elements or more take them where NumPy
has no AVX-512 (erf, erfc, erfcx and GELU on every CPU)."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops import elementwise as ew

pytestmark = pytest.mark.skipif(not hasattr(_ops, "math_f64"),
                                reason="_ops built without _simd_f64.h")
EXTENDED = np.finfo(np.longdouble).nmant >= 63     # (80-bit long double: x86)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, 5e-324,
                    2.2250738585072014e-308, 1.7976931348623157e308, 709.782712893384,
                    709.7827128933841, -745.1332191019411, -745.1332191019412, -708.4,
                    710.47, 710.48, 2.0 ** 28, 2.0 ** 28 + 1, 2.0 ** 53, 2.0 ** 53 + 2,
                    1 + 2.0 ** -52, 1 - 2.0 ** -53])


def _all_doubles(n, seed):
    bits = np.random.default_rng(seed).integers(0, 2 ** 64, n, dtype=np.uint64)
    x = bits.view(np.float64)
    return x[np.isfinite(x)]


def _ulps(got, ref):
    """|got - ref| in units of the double spacing at ref (ref in long double)"""
    spacing = np.maximum(np.spacing(np.abs(ref.astype(np.float64))), 5e-324)
    return (np.abs(got.astype(np.longdouble) - ref) / spacing).astype(np.float64)


def _same(got, want):
    return (np.isnan(got) & np.isnan(want)) | ((got == want)
                                               & (np.signbit(got) == np.signbit(want)))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _sign(x):
    return np.where(np.isnan(x), 0, np.sign(x))      # (PyTorch's: 0 at NaN)


def _trig_inputs(d, rng):
    # the doubles nearest multiples of pi/2 (and their neighbours) are where the reduction
    # cancels most; beyond 1e6 libm takes over
    mult = np.arange(-650_000, 650_000, 13) * (np.pi / 2)
    return [d[np.abs(d) < 1e8], rng.uniform(-10, 10, 300_000), rng.uniform(-1e6, 1e6, 100_000),
            mult, np.nextafter(mult, np.inf), rng.uniform(-1e-8, 1e-8, 10_000),
            np.array([1e6, np.nextafter(1e6, 2e6), 1e300, np.pi, np.pi / 2, 3 * np.pi / 4])]


# name: (the long double reference, the ulp bound, the inputs besides SPECIAL)
_CASES = {
    "exp": (np.exp, 1.0, lambda d, rng: [d[np.abs(d) < 800], np.linspace(-750, 720, 1_000_001),
                                          rng.uniform(-1, 1, 200_000)]),
    "log": (np.log, 1.0, lambda d, rng: [np.abs(d), rng.uniform(0.5, 2, 500_000),
                                          1 + rng.uniform(-1e-6, 1e-6, 50_000), -d[:1000]]),
    "expm1": (np.expm1, 1.2, lambda d, rng: [d[np.abs(d) < 800], np.linspace(-50, 720, 500_001),
                                              rng.uniform(-1, 1, 300_000),
                                              rng.uniform(-1e-5, 1e-5, 100_000)]),
    "log1p": (np.log1p, 1.5, lambda d, rng: [np.abs(d), -np.abs(d[np.abs(d) < 1]),
                                              rng.uniform(-0.5, 1, 300_000),
                                              rng.uniform(-1e-5, 1e-5, 100_000)]),
    "tanh": (np.tanh, 3.1, lambda d, rng: [d[np.abs(d) < 40], rng.uniform(-3, 3, 300_000),
                                            rng.uniform(-1e-5, 1e-5, 100_000)]),
    "sigmoid": (_sigmoid, 2.4, lambda d, rng: [d[np.abs(d) < 800], rng.uniform(-40, 40, 300_000),
                                                np.linspace(-746, 40, 300_001)]),
    "exp2": (np.exp2, 1.1, lambda d, rng: [d[np.abs(d) < 1200], rng.uniform(-1, 1, 200_000),
                                            np.linspace(-1080, 1030, 500_001),
                                            np.arange(-1074, 1024.0)]),
    "log2": (np.log2, 0.75, lambda d, rng: [np.abs(d), rng.uniform(0.5, 2, 300_000),
                                             2.0 ** np.arange(-1074, 1024), -d[:1000],
                                             np.nextafter(2.0 ** np.arange(-1000, 1000), 0)]),
    "sin": (np.sin, 0.75, _trig_inputs),
    "cos": (np.cos, 0.75, _trig_inputs),
    "tan": (np.tan, 2.2, _trig_inputs),
    "sinh": (np.sinh, 1.8, lambda d, rng: [d[np.abs(d) < 800], rng.uniform(-3, 3, 300_000),
                                            np.linspace(-712, 712, 300_001),
                                            rng.uniform(-1e-5, 1e-5, 50_000)]),
    "cosh": (np.cosh, 1.5, lambda d, rng: [d[np.abs(d) < 800], rng.uniform(-3, 3, 300_000),
                                            np.linspace(-712, 712, 300_001)]),
    "asinh": (np.arcsinh, 2.0, lambda d, rng: [d, rng.uniform(-3, 3, 300_000),
                                                rng.uniform(-1e-5, 1e-5, 50_000),
                                                rng.uniform(1e8, 1e17, 100_000)]),
    "acosh": (np.arccosh, 2.5, lambda d, rng: [1 + np.abs(d), 1 + rng.uniform(0, 3, 300_000),
                                                1 + rng.uniform(0, 1e-6, 100_000),
                                                rng.uniform(1e8, 1e17, 100_000), d[:1000]]),
    "atanh": (np.arctanh, 2.0, lambda d, rng: [d[np.abs(d) <= 1], rng.uniform(-1, 1, 300_000),
                                                1 - rng.uniform(0, 1e-6, 100_000),
                                                rng.uniform(-1e-5, 1e-5, 50_000), d[:1000]]),
    "atan": (np.arctan, 1.3, lambda d, rng: [d, rng.uniform(-3, 3, 300_000),
                                              rng.uniform(-1e-5, 1e-5, 50_000)]),
    "asin": (np.arcsin, 2.3, lambda d, rng: [d[np.abs(d) <= 1], rng.uniform(-1, 1, 300_000),
                                              1 - rng.uniform(0, 1e-6, 100_000), d[:1000]]),
    "acos": (np.arccos, 2.0, lambda d, rng: [d[np.abs(d) <= 1], rng.uniform(-1, 1, 300_000),
                                              1 - rng.uniform(0, 1e-6, 100_000),
                                              -1 + rng.uniform(0, 1e-6, 100_000), d[:1000]]),
    "sign": (_sign, 0.0, lambda d, rng: [d, -d[:1000]]),
    "rsqrt": (lambda x: 1 / np.sqrt(x), 1.5, lambda d, rng: [np.abs(d), -d[:1000],
                                                            rng.uniform(0, 4, 200_000)]),
}


@pytest.mark.skipif(not EXTENDED, reason="needs an 80-bit long double reference")
@pytest.mark.parametrize("name", list(_CASES))
def test_math_f64_accuracy_and_special_values(name):
    """Each map against NumPy on long double: within its ulp bound over doubles from every
    binade and dense ranges; zeros (signed), infinities, NaN, overflow and underflow exactly;
    subnormal results rounded, not flushed."""
    ref_f, bound, parts = _CASES[name]
    rng = np.random.default_rng(0)
    x = np.concatenate(parts(_all_doubles(1_500_000, 1), rng) + [SPECIAL, -SPECIAL])
    out = np.empty_like(x)
    _ops.math_f64(name, x, out)
    with np.errstate(all="ignore"):
        ref = ref_f(x.astype(np.longdouble))
        ref64 = ref.astype(np.float64)
    finite = np.isfinite(ref64) & (ref64 != 0)
    assert _same(out[~finite], ref64[~finite]).all()
    assert _ulps(out[finite], ref[finite]).max() <= bound
    if name == "rsqrt":                       # defined as NumPy's 1.0 / sqrt(x), two roundings
        with np.errstate(all="ignore"):
            assert _same(out, 1.0 / np.sqrt(x)).all()
    else:
        assert (out[finite] == ref64[finite]).mean() > 0.75      # mostly correctly rounded
    if name in ("exp", "sigmoid", "exp2"):    # subnormal results there, rounded, not flushed
        sub = finite & (ref64 < 2.2250738585072014e-308)
        assert sub.sum() > 1000 and (out[sub] > 0).all()
    if name == "log2":                        # exact at the powers of two
        p = 2.0 ** np.arange(-1074, 1024)
        _ops.math_f64(name, p, got := np.empty_like(p))
        np.testing.assert_array_equal(got, np.arange(-1074, 1024.0))
    assert set(_ops.MATH_F64) == set(_CASES) | set(_MP_CASES)


def test_math_f64_checks_and_the_ops():
    x = np.linspace(-5, 5, 1000)
    with pytest.raises(ValueError, match="name must be one of"):
        _ops.math_f64("lgamma", x, np.empty_like(x))
    with pytest.raises(ValueError, match="differ in length"):
        _ops.math_f64("exp", x, np.empty(3))
    empty = np.empty(0)
    _ops.math_f64("log", empty, empty)
    out = np.empty_like(x)
    _ops.math_f64("exp", x, out)
    got = tl.exp(tl.tensor(x)).numpy()
    if not ew._numpy_has_svml():
        np.testing.assert_array_equal(got, out)                # the map, from MAP_MIN on
    np.testing.assert_allclose(got, np.exp(x), rtol=4e-16, atol=0)
    small = x[:ew.MAP_MIN - 1]                                  # NumPy's own loop below
    np.testing.assert_array_equal(tl.exp(tl.tensor(small)).numpy(), np.exp(small))
    m = np.abs(x).reshape(20, 50)                               # strided: NumPy's
    np.testing.assert_array_equal(tl.log(tl.tensor(m).T).numpy(), np.log(m.T))
    for name in ("tanh", "sigmoid", "expm1", "sin", "cos", "tan", "exp2", "log2", "sign",
                 "sinh", "cosh", "asinh", "atan"):
        _ops.math_f64(name, x, out)
        want = out if (name in ("sigmoid", "sign") or not ew._numpy_has_svml()) else \
            getattr(np, name)(x)
        f = getattr(tl, name)
        np.testing.assert_array_equal(f(tl.tensor(x)).numpy(), want)
    xg = tl.tensor(np.abs(x) + 0.5, requires_grad=True)
    (tl.log(xg).sum() + tl.exp(xg).sum()).backward()
    np.testing.assert_allclose(xg.grad.numpy(), 1 / (np.abs(x) + 0.5) + np.exp(np.abs(x) + 0.5),
                               rtol=1e-15)
    # graph fusion's in-place form takes it too
    from tensorlib.ops.registry import cpu_map
    f = cpu_map(ew.EXP)
    buf = x.copy()
    assert f(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, got)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_activation_backward_kernels_float64(name):
    """tanh's and sigmoid's one-pass backward at the output, float64 as float32: NumPy's
    composite's values (rounded in another order), every size, and through autograd."""
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 70_000):
        y = np.tanh(rng.standard_normal(n)) if name == "tanh" else rng.uniform(0, 1, n)
        g = rng.standard_normal(n)
        out = np.empty_like(y)
        getattr(_ops, f"{name}_grad_into")(g, y, out)
        want = g * (1 - y * y) if name == "tanh" else g * (y * (1 - y))
        # (1 - y^2 may be one fused multiply-add there: apart by an ulp of 1, times g)
        assert (np.abs(out - want) <= 4.5e-16 * np.abs(g)).all()
        out32 = np.empty(n, np.float32)
        getattr(_ops, f"{name}_grad_into")(g.astype(np.float32), y.astype(np.float32), out32)
        np.testing.assert_allclose(out32, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="differ in length"):
        getattr(_ops, f"{name}_grad_into")(g, y[:3], out)
    x = tl.tensor(rng.standard_normal(5000), requires_grad=True)
    f = getattr(tl, name)
    f(x).backward(tl.ones(5000, dtype=tl.float64))
    xv = x.detach().numpy()
    s = np.tanh(xv) if name == "tanh" else 1 / (1 + np.exp(-xv))
    # (1 - y^2 cancels where tanh saturates: a few ulps of y there are ~1e-15 absolute)
    np.testing.assert_allclose(x.grad.numpy(), 1 - s * s if name == "tanh" else s * (1 - s),
                               rtol=1e-14, atol=2e-15)
    tl.autograd.gradgradcheck(f, [tl.tensor(rng.standard_normal(6), requires_grad=True)])


def _act_ref(name, x, g, a, b):
    """long double references of the float64 activation kernels (beta x rounded to double
    first, as the kernels and PyTorch's float64 kernels do)"""
    X, G = x.astype(np.longdouble), g.astype(np.longdouble)
    bx = (x * a).astype(np.longdouble)
    if name == "elu":
        return np.where(X > 0, X, a * np.expm1(X))
    if name == "elu_grad":
        return np.where(np.isnan(X), G, G * np.where(X <= 0, a * np.exp(X), 1))
    if name == "softplus":
        return np.where(bx > b, X, (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / a)
    if name == "softplus_grad":
        return G * np.where(bx > b, 1, 1 / (1 + np.exp(-bx)))
    if name == "logsigmoid":
        return np.minimum(X, 0) - np.log1p(np.exp(-np.abs(X)))
    return G / (1 + np.exp(X))                              # logsigmoid_grad


@pytest.mark.skipif(not EXTENDED, reason="needs an 80-bit long double reference")
@pytest.mark.parametrize("name,a,b,bound", [
    ("elu", 1.0, 0, 1.5), ("elu", 0.3, 0, 1.5), ("elu_grad", 2.5, 0, 2.5),
    ("softplus", 1.0, 20.0, 3.0), ("softplus", 2.0, 3.0, 3.0), ("softplus", -1.5, 20.0, 3.0),
    ("softplus_grad", 1.0, 20.0, 3.5), ("softplus_grad", 0.5, -1.0, 3.5),
    ("logsigmoid", 0, 0, 2.5), ("logsigmoid_grad", 0, 0, 3.5)])
def test_activation_kernels_float64(name, a, b, bound):
    """ELU, softplus and log-sigmoid and their backward in float64 lanes: within a few ulp of
    long double away from the subnormal results, NaN and infinities as the float32 kernels."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(200_000) * 10, rng.uniform(-800, 800, 50_000),
                        SPECIAL, -SPECIAL])
    g = rng.standard_normal(x.size)
    out = np.empty_like(x)
    args = {"elu": (a,), "elu_grad": (a,), "softplus": (a, b), "softplus_grad": (a, b)}.get(
        name, ())
    kernel = getattr(_ops, f"{name}_into")
    kernel(*((g, x) if name.endswith("grad") else (x,)), out, *args)
    with np.errstate(all="ignore"):
        ref = _act_ref(name, x, g, a, b)
    _assert_normal_ulps_and_the_rest(out, ref, bound)


def _assert_normal_ulps_and_the_rest(out, ref, bound):
    """normal results within ``bound`` ulp of the long double ``ref``; subnormal ones and
    zeros within 2e-322 (40 subnormal steps: a g times a subnormal exp rounds coarsely);
    infinities and NaN exactly"""
    with np.errstate(over="ignore"):        # (beyond the double range: inf, as it should)
        ref64 = ref.astype(np.float64)
        normal = np.isfinite(ref64) & (np.abs(ref64) >= 2.2250738585072014e-308)
        assert _ulps(out[normal], ref[normal]).max() <= bound
    small = ~normal & np.isfinite(ref64)
    assert (np.abs(out[small] - ref64[small]) <= 2e-322).all()
    assert _same(out[~np.isfinite(ref64)], ref64[~np.isfinite(ref64)]).all()


def test_activation_ops_float64_take_the_kernels():
    import tensorlib.nn.functional as F
    rng = np.random.default_rng(8)
    x = rng.standard_normal(3000) * 4
    for f, kernel, args in ((lambda t: F.elu(t, 0.7), _ops.elu_into, (0.7,)),
                            (lambda t: F.softplus(t, 2.0, 5.0), _ops.softplus_into, (2.0, 5.0)),
                            (F.logsigmoid, _ops.logsigmoid_into, ())):
        want = np.empty_like(x)
        kernel(x, want, *args)
        np.testing.assert_array_equal(f(tl.tensor(x)).numpy(), want)
        tl.autograd.gradcheck(f, [tl.tensor(rng.standard_normal(7), requires_grad=True)])
        tl.autograd.gradgradcheck(f, [tl.tensor(rng.standard_normal(7), requires_grad=True)])
    xt = tl.tensor(x, requires_grad=True)
    F.softplus(xt, 2.0, 5.0).sum().backward()
    want = np.empty_like(x)
    _ops.softplus_grad_into(np.ones_like(x), x, want, 2.0, 5.0)
    np.testing.assert_array_equal(xt.grad.numpy(), want)


@pytest.mark.skipif(not EXTENDED, reason="needs an 80-bit long double reference")
@pytest.mark.parametrize("name,bound", [("atan2", 1.6), ("hypot", 1.2)])
def test_math2_f64_accuracy_and_special_values(name, bound):
    """atan2 and hypot in float64 lanes: within their bound of long double over pairs of
    doubles from every binade and of far-apart magnitudes; every pair of special values
    (signed zeros, infinities, NaN, the extremes) as C99's, which NumPy's are."""
    rng = np.random.default_rng(4)
    d = _all_doubles(1_200_000, 5)
    half = d.size // 2
    pa, pb = np.meshgrid(SPECIAL, SPECIAL)
    a = np.concatenate([d[:half], rng.standard_normal(200_000),
                        rng.standard_normal(50_000) * 1e-160, pa.ravel(), -pa.ravel()])
    b = np.concatenate([d[half:2 * half], rng.standard_normal(200_000),
                        rng.standard_normal(50_000) * 1e160, pb.ravel(), pb.ravel()])
    out = np.empty_like(a)
    _ops.math2_f64(name, a, b, out)
    ref_f = np.arctan2 if name == "atan2" else np.hypot
    with np.errstate(all="ignore"):
        ref = ref_f(a.astype(np.longdouble), b.astype(np.longdouble))
        ref64 = ref.astype(np.float64)
        np.testing.assert_array_equal(ref_f(a, b)[~np.isfinite(ref64)],
                                      ref64[~np.isfinite(ref64)])
    _assert_normal_ulps_and_the_rest(out, ref, bound)
    assert _same(out[ref64 == 0], ref64[ref64 == 0]).all()          # signed zeros
    with pytest.raises(ValueError, match="name must be one of"):
        _ops.math2_f64("pow", a, b, out)
    with pytest.raises(ValueError, match="differ in length"):
        _ops.math2_f64(name, a, b[:3], out)
    x, y = rng.standard_normal((2, 40, 50))
    got = getattr(tl, name)(tl.tensor(x), tl.tensor(y)).numpy()
    if not ew._numpy_has_svml():
        want = np.empty(x.size)
        _ops.math2_f64(name, x.ravel(), y.ravel(), want)
        np.testing.assert_array_equal(got.ravel(), want)          # the map, from MAP_MIN on
    np.testing.assert_allclose(got, ref_f(x, y), rtol=4e-16, atol=0)
    tl.autograd.gradcheck(getattr(tl, name), [tl.tensor(x[:2, :3], requires_grad=True),
                                             tl.tensor(y[:2, :3], requires_grad=True)])


def test_logaddexp_float64_is_numpys_formula_on_lanes():
    """float64 logaddexp: NumPy's special values (equal infinities, NaN) exactly; within 3
    ulp of the larger argument's scale of long double (near the result's zero the formula
    cancels, NumPy's too); the op takes it from MAP_MIN elements."""
    rng = np.random.default_rng(9)
    d = _all_doubles(1_000_000, 10)
    half = d.size // 2
    pa, pb = np.meshgrid(SPECIAL, SPECIAL)
    a = np.concatenate([d[:half], rng.standard_normal(200_000) * 5, pa.ravel(), -pa.ravel()])
    b = np.concatenate([d[half:2 * half], rng.standard_normal(200_000) * 5, pb.ravel(),
                        pb.ravel()])
    out = np.empty_like(a)
    _ops.math2_f64("logaddexp", a, b, out)
    with np.errstate(all="ignore"):
        ref = np.logaddexp(a.astype(np.longdouble), b.astype(np.longdouble))
        ref64 = ref.astype(np.float64)
        fin = np.isfinite(ref64)
        assert _same(out[~fin], np.logaddexp(a, b)[~fin]).all()
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.abs(ref64))[fin]
        err = np.abs(out[fin].astype(np.longdouble) - ref[fin]).astype(np.float64)
    assert (err <= 3 * np.spacing(np.where(np.isfinite(scale), scale, 1.0))).all()
    x, y = rng.standard_normal((2, 30, 40)) * 3
    want = np.empty(x.size)
    _ops.math2_f64("logaddexp", x.ravel(), y.ravel(), want)
    np.testing.assert_array_equal(tl.logaddexp(tl.tensor(x), tl.tensor(y)).numpy().ravel(), want)
    tl.autograd.gradcheck(tl.logaddexp, [tl.tensor(x[:2, :3], requires_grad=True),
                                         tl.tensor(y[:2, :3], requires_grad=True)])


def _mp_values(f, x, big):
    """mpmath's ``f`` (40 digits) at each double as long doubles; ``big(v)`` where |v| > 1e8
    (the limits, where mpmath's own series give out)"""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        vals = [mp.nan if v != v else big(v) if abs(v) > 1e8 else f(mp.mpf(v))
                for v in x.tolist()]
        with warnings.catch_warnings():      # (beyond long double's range: 0 or inf)
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.array([np.longdouble(mp.nstr(v, 30)) if mp.isfinite(v) else float(v)
                             for v in vals], dtype=np.longdouble)


def _mp_erfcx(v):
    import mpmath as mp
    return mp.exp(v * v) * mp.erfc(v)


def _erfcx_big(v):
    return np.inf if v < 0 else 1 / v / np.sqrt(np.pi) * (1 - 0.5 / v / v)     # (no overflow)


# erf, erfc and erfcx (no long double erf in NumPy): name -> (mpmath's function, its value
# beyond |x| = 1e8, the ulp bound, the inputs besides SPECIAL)
_MP_CASES = {
    "erf": ("erf", np.sign, 1.25, lambda rng: [
        rng.uniform(-1, 1, 3000), rng.uniform(-6.5, 6.5, 4000), 1 + rng.uniform(-1e-3, 1e-3, 500),
        -1 - rng.uniform(-1e-3, 1e-3, 500), np.exp(rng.uniform(-700, 0, 500))]),
    "erfc": ("erfc", lambda v: 0.0 if v > 0 else 2.0, 2.1, lambda rng: [
        rng.uniform(-0.6, 0.6, 2000), rng.uniform(-6, 28, 5000), rng.uniform(26.5, 27.3, 1000),
        0.5 + rng.uniform(-1e-3, 1e-3, 500), -np.exp(rng.uniform(-700, 0, 300))]),
    "erfcx": (_mp_erfcx, _erfcx_big, 2.3, lambda rng: [
        rng.uniform(-0.6, 0.6, 2000), rng.uniform(-27, 30, 5000), np.exp(rng.uniform(3, 25, 500)),
        -0.5 + rng.uniform(-1e-3, 1e-3, 500)]),
}


@pytest.mark.parametrize("name", list(_MP_CASES))
def test_math_f64_erf_family_against_mpmath(name):
    """erf, erfc and erfcx in float64 lanes: within their ulp bound of mpmath over the
    ranges of each piece and the joins (1/2 and 1), erfc's subnormal results within a few
    subnormal steps; signed zeros, the limits, overflow and NaN exactly (PyTorch's values)."""
    import mpmath
    f, big, bound, parts = _MP_CASES[name]
    f = getattr(mpmath, f) if isinstance(f, str) else f
    rng = np.random.default_rng(11)
    x = np.concatenate(parts(rng) + [SPECIAL, -SPECIAL])
    out = np.empty_like(x)
    _ops.math_f64(name, x, out)
    ref = _mp_values(f, x, big)
    _assert_normal_ulps_and_the_rest(out, ref, bound)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    _ops.math_f64(name, special, got := np.empty(5))
    want = {"erf": [0.0, -0.0, 1.0, -1.0, np.nan], "erfc": [1.0, 1.0, 0.0, 2.0, np.nan],
            "erfcx": [1.0, 1.0, 0.0, np.inf, np.nan]}[name]
    assert _same(got, np.array(want)).all()


def test_erf_family_ops_float64_and_float32():
    """tl.erf, tl.special.erfc and erfcx take the lanes: float64 as the map, float32 erfcx
    the float64 value rounded; their gradients by finite differences."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal(3000) * 3
    for name, f in (("erf", tl.erf), ("erfc", tl.special.erfc), ("erfcx", tl.special.erfcx)):
        want = np.empty_like(x)
        _ops.math_f64(name, x, want)
        np.testing.assert_array_equal(f(tl.tensor(x)).numpy(), want)
        tl.autograd.gradcheck(f, [tl.tensor(rng.standard_normal(7), requires_grad=True)])
        tl.autograd.gradgradcheck(f, [tl.tensor(rng.standard_normal(5), requires_grad=True)])
    x32 = x.astype(np.float32)
    want = np.empty(x.size)
    _ops.math_f64("erfcx", x32.astype(np.float64), want)
    with np.errstate(over="ignore"):        # (beyond float32 below ~-9.3: inf, as PyTorch's)
        np.testing.assert_array_equal(tl.special.erfcx(tl.tensor(x32)).numpy(),
                                      want.astype(np.float32))


def _gelu_ref(x, g=None):
    """mpmath's x Phi(x), or g (Phi(x) + x phi(x)) with the scale |Phi| + |x phi| of its
    terms (where they cancel, near x = -0.75, the error is relative to that)"""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        vals, scale = [], []
        for v in x.tolist():
            X = mp.mpf(v)
            cdf = mp.erfc(-X / mp.sqrt(2)) / 2 if abs(v) < 60 else mp.mpf(v > 0)
            if g is None:
                vals.append(X * cdf)
            else:
                xpdf = X * mp.exp(-X * X / 2) / mp.sqrt(2 * mp.pi)
                vals.append(cdf + xpdf)
                scale.append(float(abs(cdf) + abs(xpdf)))
        ref = np.array([np.longdouble(mp.nstr(v, 30)) for v in vals], dtype=np.longdouble)
    if g is None:
        return ref
    return ref * g.astype(np.longdouble), np.array(scale) * np.abs(g)


def test_gelu_float64_kernels():
    """The exact GELU's float64 lanes: within 3 ulp of mpmath wherever the result is normal
    (the left tail too, where PyTorch's 1 + erf cancels); the backward within 3 ulp of the
    scale of its two terms; PyTorch's NaN at -inf (and at +-inf in the backward); the ops take
    them, and their gradients check."""
    import tensorlib.nn.functional as F
    rng = np.random.default_rng(13)
    x = np.concatenate([rng.standard_normal(3000) * 3, rng.uniform(-38, -5, 1000),
                        rng.uniform(5, 40, 200), np.exp(rng.uniform(-700, 0, 200))])
    out = np.empty_like(x)
    _ops.gelu_into(x, out)
    _assert_normal_ulps_and_the_rest(out, _gelu_ref(x), 3.0)
    g = rng.standard_normal(x.size)
    _ops.gelu_grad_into(g, x, out)
    ref, scale = _gelu_ref(x, g)
    assert (np.abs(out - ref.astype(np.float64)) <= 6 * 2.0 ** -53 * scale + 1e-320).all()
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -40.0, 50.0])
    _ops.gelu_into(special, got := np.empty(7))
    assert _same(got, np.array([0.0, -0.0, np.inf, np.nan, np.nan, -0.0, 50.0])).all()
    _ops.gelu_grad_into(np.ones(7), special, got)
    assert _same(got, np.array([0.5, 0.5, np.nan, np.nan, np.nan, 0.0, 1.0])).all()
    with pytest.raises(ValueError, match="differ in length"):
        _ops.gelu_grad_into(g, x[:3], out)
    xt = tl.tensor(x[:3000], requires_grad=True)
    y = F.gelu(xt)
    _ops.gelu_into(x[:3000], want := np.empty(3000))
    np.testing.assert_array_equal(y.numpy(), want)
    y.backward(tl.tensor(g[:3000]))
    _ops.gelu_grad_into(g[:3000], x[:3000], want)
    np.testing.assert_array_equal(xt.grad.numpy(), want)
    tl.autograd.gradcheck(F.gelu, [tl.tensor(rng.standard_normal(7), requires_grad=True)])
    tl.autograd.gradgradcheck(F.gelu, [tl.tensor(rng.standard_normal(5), requires_grad=True)])


def test_erf_coefficients_are_what_the_fit_script_gives(capsys):
    """_simd_f64.h's erf and erfcx constants come from scripts/fit_erf_f64.py (mpmath):
    every number it prints is in the header."""
    import pathlib
    import re
    import runpy
    pytest.importorskip("mpmath")
    root = pathlib.Path(__file__).resolve().parents[2]
    script = root / "scripts" / "fit_erf_f64.py"
    if not script.exists():
        pytest.skip("no scripts/ in this checkout")
    runpy.run_path(str(script), run_name="__main__")
    printed = re.findall(r"\d+\.\d+(?:e[+-]?\d+)?", capsys.readouterr().out)
    header = (root / "tensorlib" / "_simd_f64.h").read_text()
    assert len(printed) == 44 and all(v in header for v in printed)


def _tanh_form_ref(x, g):
    """long double GELU (tanh form) and SiLU with their backward, and the scale of each
    backward's terms"""
    X, G = x.astype(np.longdouble), g.astype(np.longdouble)
    c = np.sqrt(np.longdouble(2) / np.pi)
    u = c * (X + np.longdouble("0.044715") * X ** 3)
    du = c * (1 + 3 * np.longdouble("0.044715") * X * X)
    half = 1 / (1 + np.exp(-2 * u))        # (1 + tanh u) / 2, no cancellation in the tail
    e = np.exp(-2 * np.abs(u))
    sech2 = 4 * e / (1 + e) ** 2
    s = 1 / (1 + np.exp(-X))
    gelu_d = [half, 0.5 * X * sech2 * du]
    silu_d = [s, s * X * (1 - s)]
    # the slack in ulps: in GELU's left tail the result is ~e^(2u), and u's own roundings in
    # double (x^3, the sum, the product: up to ~3 ulp of u; the kernel's and PyTorch's alike)
    # move it by 2 |u| times that (measured: up to 5.2 |u| ulps)
    slack = (6 * np.abs(u)).astype(np.float64)
    return {"gelu_tanh": (X * half, G * sum(gelu_d),
                          np.abs(G) * sum(np.abs(v) for v in gelu_d), slack),
            "silu": (X * s, G * sum(silu_d), np.abs(G) * sum(np.abs(v) for v in silu_d),
                     np.abs(x))}      # (SiLU's backward: 1 - s is within an ulp of 1, times x)


@pytest.mark.skipif(not EXTENDED, reason="needs an 80-bit long double reference")
@pytest.mark.parametrize("name", ["gelu_tanh", "silu"])
def test_gelu_tanh_and_silu_kernels(name):
    """GELU's tanh form and SiLU, forward and backward, in one pass each: float64 within a
    few ulp of long double (the backward, of its terms' scale), float32 within float32's
    rounding of it; NaN and inf as PyTorch's; the ops take them, gradients check."""
    import tensorlib.nn.functional as F
    rng = np.random.default_rng(17)
    x = np.concatenate([rng.standard_normal(20_000) * 4, rng.uniform(-60, 60, 2000),
                        np.exp(rng.uniform(-700, 3, 500))])
    g = rng.standard_normal(x.size)
    with np.errstate(all="ignore"):
        ref, gref, scale, slack = _tanh_form_ref(x, g)[name]
    fwd, bwd = getattr(_ops, f"{name}_into"), getattr(_ops, f"{name}_grad_into")
    out = np.empty_like(x)
    fwd(x, out)
    with np.errstate(over="ignore"):
        ref64 = ref.astype(np.float64)
    normal = np.abs(ref64) >= 2.2250738585072014e-308
    assert (_ulps(out[normal], ref[normal]) <= 4 + (slack * np.ones(x.size))[normal]).all()
    assert (np.abs(out[~normal] - ref64[~normal]) <= 1e-300).all()
    bwd(g, x, out)
    scale = scale.astype(np.float64) * (1 + slack)
    assert (np.abs(out - gref.astype(np.float64)) <= 4 * 2.0 ** -52 * scale + 1e-300).all()
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    out32 = np.empty_like(x32)
    fwd(x32, out32)
    with np.errstate(all="ignore"):
        ref32, gref32, scale32, slack32 = _tanh_form_ref(x32.astype(np.float64),
                                                         g32.astype(np.float64))[name]
    ref32 = ref32.astype(np.float64)
    big = np.abs(ref32) > 1e-30
    # (float32's exp flushes below e^-88, where GELU's backward is below ~1e-33)
    rtol = 2.0 ** -23 * (4 + slack32)
    assert (np.abs(out32 - ref32)[big] <= (rtol * np.abs(ref32))[big]).all()
    bwd(g32, x32, out32)
    assert (np.abs(out32 - gref32.astype(np.float64))
            <= rtol * scale32.astype(np.float64) + 1e-32).all()
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    for dt in (np.float64, np.float32):
        sp = special.astype(dt)
        fwd(sp, o := np.empty_like(sp))
        want = np.array([np.nan, np.inf, np.nan, 0.0, -0.0], dt)
        assert _same(o, want).all(), (name, dt, o)
        bwd(np.ones_like(sp), sp, o)                # (PyTorch's: NaN at +-inf, inf times 0)
        assert np.isnan(o[:3]).all() and o[3] == 0.5 and o[4] == 0.5
    f = (lambda t: F.gelu(t, approximate="tanh")) if name == "gelu_tanh" else F.silu
    xt = tl.tensor(x[:3000], requires_grad=True)
    y = f(xt)
    fwd(x[:3000], want := np.empty(3000))
    np.testing.assert_array_equal(y.numpy(), want)
    y.backward(tl.tensor(g[:3000]))
    bwd(g[:3000], x[:3000], want)
    np.testing.assert_array_equal(xt.grad.numpy(), want)
    tl.autograd.gradcheck(f, [tl.tensor(rng.standard_normal(7), requires_grad=True)])
    tl.autograd.gradgradcheck(f, [tl.tensor(rng.standard_normal(5), requires_grad=True)])


def test_logsumexp_float64_takes_the_exp_lanes():
    """logsumexp's exp runs exp's CPU kernel in place: the float64 lanes where NumPy has no
    AVX-512 (bit for bit that formula), NumPy's exp elsewhere; inf, -inf rows and 0-d alike."""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((300, 70)) * 5
    m = x.max(axis=1, keepdims=True)
    e = x - m
    if not ew._numpy_has_svml():
        _ops.math_f64("exp", e.reshape(-1), e.reshape(-1))
    else:
        e = np.exp(e)
    want = (np.log(e.sum(axis=1, keepdims=True)) + m)[:, 0]
    np.testing.assert_array_equal(tl.logsumexp(tl.tensor(x), dim=1).numpy(), want)
    np.testing.assert_allclose(want, np.log(np.exp(x).sum(axis=1)), rtol=1e-15)
    edge = tl.tensor([[-np.inf, -np.inf], [1.0, np.inf], [2.0, 3.0]], dtype=tl.float64)
    np.testing.assert_array_equal(tl.logsumexp(edge, dim=1).numpy(),
                                  [-np.inf, np.inf, np.logaddexp(2.0, 3.0)])
    assert tl.logsumexp(tl.tensor(3.0), dim=0).item() == 3.0
