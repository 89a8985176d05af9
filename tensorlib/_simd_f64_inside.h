/* float32 functions computed in float64 lanes: pow, erfc, fmod and PyTorch's remainder.
 *
 * NumPy's float32 pow, erfc (SciPy's), fmod and remainder are a libm call per element on
 * CPUs without AVX-512 (pow, 10 ns an element on an AVX2 Zen 3 core; fmod and remainder,
 * 20). Here each is a branch-free inline function gcc vectorises, working in double where
 * float32 would lose the result's last bits: 2^(y log2 x) with the logarithm and the
 * exponential to ~1e-14, so the one rounding to float32 is nearly always the correct one;
 * erfc's exp(-x^2) with x^2 exact; fmod's quotient and product exact.
 */
#ifndef TENSORLIB_SIMD_F64_INSIDE_H
#define TENSORLIB_SIMD_F64_INSIDE_H

#include "_simd_math.h"     /* TL_CLONES, TL_MAP_F32 */

/* 2^t in double, relative error < 1e-14, for t clamped to [-200, 200] (2^t then stays a
 * normal double, and converts to float32's 0 or inf beyond its range); NaN gives NaN. */
static inline double tl_exp2_for_f32(double t) {
    t = t < -200.0 ? -200.0 : t;
    t = t > 200.0 ? 200.0 : t;
    double n = nearbyint(t);
    n = t == t ? n : 0.0;          /* (no int conversion of NaN; f carries the NaN) */
    double f = (t - n) * 0.693147180559945309;          /* |f| <= ln 2 / 2 */
    /* e^f, Taylor to f^10: the remainder is below 0.347^11 / 11! < 2.2e-13 */
    double p = 2.7557319223985893e-7;
    p = p * f + 2.7557319223985888e-6;
    p = p * f + 2.4801587301587302e-5;
    p = p * f + 1.9841269841269841e-4;
    p = p * f + 1.3888888888888889e-3;
    p = p * f + 8.3333333333333333e-3;
    p = p * f + 4.1666666666666667e-2;
    p = p * f + 1.6666666666666667e-1;
    p = p * f + 0.5;
    p = p * f + 1.0;
    p = p * f + 1.0;
    int64_t bits = ((int64_t)(int32_t)n + 1023) << 52;   /* 2^n through the exponent field */
    double s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

/* log2(a) of a positive finite float32 (subnormals included), in double, relative error
 * ~1e-16: a = m 2^e with m in [sqrt(1/2), sqrt 2), ln m = 2 atanh(s), s = (m - 1) / (m + 1),
 * |s| < 0.172, by its series to s^15 (the rest is below 6e-15 |s|). */
static inline double tl_log2_of_f32(float a) {
    int sub = a < 1.17549435e-38f;
    float as = sub ? a * 16777216.0f : a;               /* subnormals: scaled by 2^24 */
    int32_t ix;
    memcpy(&ix, &as, sizeof ix);
    int32_t e = (ix - 0x3f3504f3) >> 23;                /* 0x3f3504f3: sqrt(1/2) */
    int32_t mi = ix - (int32_t)((uint32_t)e << 23);
    float m;
    memcpy(&m, &mi, sizeof m);
    double md = (double)m;
    double s = (md - 1.0) / (md + 1.0), z = s * s;
    double p = 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    double ln_m = fma(s * z, p, s) * 2.0;
    return (double)(e - (sub ? 24 : 0)) + ln_m * 1.44269504088896341;
}

/* pow(x, y), float32, as C99's powf (every special case: signed zeros, infinities, NaN,
 * negative bases with integral exponents), within ~0.5 ulp of the exact value. */
static inline float tl_powf(float x, float y) {
    /* (one select per condition: gcc does not vectorise selects on && or || of compares) */
    float a = fabsf(x);
    float r = (float)tl_exp2_for_f32((double)y * tl_log2_of_f32(a));
    r = a == 0.0f ? (y > 0.0f ? 0.0f : INFINITY) : r;
    r = a == INFINITY ? (y > 0.0f ? INFINITY : 0.0f) : r;
    r = a == 1.0f ? (fabsf(y) == INFINITY ? 1.0f : r) : r;   /* (y log2 1 = inf 0 = NaN) */
    /* a negative base: odd integral y negates, non-integral y gives NaN (not for -0, -inf) */
    float h = 0.5f * y;
    int integral = nearbyintf(y) == y;
    float odd_sign = nearbyintf(h) != h ? -1.0f : 1.0f;
    float sgn = integral ? odd_sign : 1.0f;
    float neg = copysignf(1.0f, x) < 0.0f ? r * sgn : r;     /* (the sign bit: -0 counts) */
    float neg_nan = integral ? neg : NAN;
    neg_nan = x == -INFINITY ? neg : neg_nan;
    r = copysignf(1.0f, x) < 0.0f ? neg : r;
    r = x < 0.0f ? neg_nan : r;
    r = x != x ? x : r;
    r = y != y ? y : r;
    r = x == 1.0f ? 1.0f : r;     /* 1^y = 1 and x^0 = 1, even for NaN */
    return y == 0.0f ? 1.0f : r;
}

/* erfc(x), float32, within ~2 ulp, all in double: 1 - erf(x) by erf's series for |x| < 1/2,
 * else Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7), whose exp(-x^2) takes
 * x^2 exactly (in float32 its rounding alone cost ~50 ulp at x = 9), and 2 - erfc(-x) below
 * -1/2. Subnormal results in the tail are rounded once. */
static inline float tl_erfcf(float x) {
    double a = fabs((double)x);
    double t = 1.0 / (1.0 + 0.5 * a);
    double e = t * tl_exp2_for_f32((TL_ERFC_FIT(double, t) - a * a) * 1.44269504088896341);
    /* erf's Maclaurin series to x^15 (the rest is below 1e-11 for |x| < 1/2) */
    double xd = (double)x, z = xd * xd;
    double s = 1.0 / 75600.0;
    s = s * z - 1.0 / 9360.0;
    s = s * z + 1.0 / 1320.0;
    s = s * z - 1.0 / 216.0;
    s = s * z + 1.0 / 42.0;
    s = s * z - 1.0 / 10.0;
    s = s * z + 1.0 / 3.0;
    s = s * z - 1.0;
    /* 1 - erf(x) = 1 + (2 / sqrt(pi)) x (-1 + z / 3 - ...) */
    double mid = fma(xd * 1.12837916709551257, s, 1.0);
    double r = x < 0.0f ? 2.0 - e : e;
    r = fabs(xd) < 0.5 ? mid : r;
    return x != x ? x : (float)r;
}

/* fmod(a, b), float32, exactly, for |a / b| < 2^26 and finite b (else NaN, which the maps
 * below redo with libm's fmodf): float64's a / b is off by at most |a / b| 2^-53, while a
 * float32 a - k b that is not 0 puts a / b at least 2^-24 from the integer k, so the
 * truncated quotient is right; q b (26 + 24 bits) and a - q b are exact in float64. */
static inline float tl_fmodf_lanes(float a, float b) {
    double ad = (double)a, bd = (double)b;
    double q = trunc(ad / bd);
    float r = (float)(ad - q * bd);
    r = copysignf(r, a);             /* a zero has a's sign */
    r = fabs(q) < 67108864.0 ? r : NAN;
    return fabsf(b) == INFINITY ? NAN : r;
}

/* fmod and PyTorch's remainder of float32 arrays (TL_FMOD_MAPS, _simd_math.h) */
TL_FMOD_MAPS(float, uint32_t, f32, tl_fmodf_lanes, fmodf)

/* pow(a, b) elementwise or (bstride 0) by the one exponent b[0] */
TL_CLONES
static void tl_pow_f32(const float *a, const float *b, ptrdiff_t bstride, float *out,
                       ptrdiff_t n) {
    if (bstride) {
        for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_powf(a[i], b[i]);
    } else if (b[0] == 0.5f) {     /* (x ** 0.5: sqrt, as NumPy's and PyTorch's: -0 and
                                        NaN at -0 and -inf, where C99's powf has +0, +inf) */
        for (ptrdiff_t i = 0; i < n; i++) out[i] = sqrtf(a[i]);
    } else {
        float y = b[0];
        for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_powf(a[i], y);
    }
}

TL_MAP_F32(tl_erfc_f32, tl_erfcf)

/* erfinv(y) in double, within ~3 ulp: a first guess within ~2e-3 (erf's series inverted to
 * a^3 near 0, Winitzki's closed form with a = 0.147 elsewhere), then Halley steps on
 * erf(x) = |y| (cubic: 2e-3 -> ~1e-8 -> below double's ulp; a third in the far tail), on
 * erfc(x) = 1 - |y| (exact from 1/2 up) for |y| >= 1/2, where erf(x) - |y| would cancel. A
 * double's 1 - |y| is at least 2^-53, so x <= 5.9 and exp(-x^2) stays normal. libm calls:
 * ~0.1 us an element. */
static double tl_erfinv_d(double y) {
    double a = fabs(y);
    if (!(a < 1.0))
        return a == 1.0 ? copysign(INFINITY, y) : NAN;
    double q = 1.0 - a, x;
    if (a < 0.02) {
        x = 0.8862269254527579 * a * (1.0 + 0.2617993877991494 * a * a);   /* pi / 12 */
    } else {
        double l = log(q) + log1p(a);                       /* log(1 - a^2) */
        double t = 4.330746750799873 + 0.5 * l;             /* 2 / (0.147 pi) */
        x = sqrt(sqrt(t * t - l / 0.147) - t);
    }
    for (int k = 0; k < 4; k++) {
        double f = a < 0.5 ? erf(x) - a : q - erfc(x);
        double r = f / (1.1283791670955126 * exp(-x * x));   /* f / f' */
        x -= r / (1.0 + x * r);                              /* f'' = -2 x f' */
        if (fabs(r) < 1e-7 * x)      /* the error left: ~C (r / x)^3, C <= ~30 */
            break;
    }
    return copysign(x, y);
}

static void tl_erfinv_f64(const double *x, double *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_erfinv_d(x[i]);
}

static void tl_erfinv_f32(const float *x, float *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) out[i] = (float)tl_erfinv_d((double)x[i]);
}

#endif
