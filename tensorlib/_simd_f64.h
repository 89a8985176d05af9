/* float64 exp, log, expm1, log1p, tanh and sigmoid as branch-free inline functions gcc
 * vectorises (4 lanes on AVX2).
 *
 * NumPy's float64 exp and log run vector code only with AVX-512; elsewhere they and expm1,
 * log1p and tanh are a libm call per element (5-18 ns on an AVX2 Zen 3 core, PyTorch's
 * 2-4.5), and sigmoid was several NumPy passes (11x PyTorch's time). These are fdlibm's
 * reductions with Taylor polynomials carried far enough that truncation is below 1e-17;
 * IEEE special values and subnormals kept.
 */
#ifndef TENSORLIB_SIMD_F64_H
#define TENSORLIB_SIMD_F64_H

#include "_simd_math.h"     /* TL_CLONES, TL_MAP_T */

/* GCC's reassociation under -ffast-math cost log a whole ulp (1.66 against 0.79 ulp at
 * worst, 91% against 97% correctly rounded), and it folds log1p's correction for the rounding
 * of 1 + x, x - ((1 + x) - 1), to 0: this header keeps the arithmetic written, and signed
 * zeros (for the whole header: functions of differing options do not inline into each other,
 * and the maps would not vectorise) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-associative-math", "no-reciprocal-math", "signed-zeros")
#define TL_F64_POP
#endif

#define TL_MAP_F64(name, f) TL_MAP_T(double, name, f)

/* ln 2 in two parts: the first has 21 trailing zero bits, so k times it is exact for the
 * |k| <= 1100 met here (fdlibm's split) */
#define TL_LN2_HI 6.93147180369123816490e-01
#define TL_LN2_LO 1.90821492927058770002e-10

/* 2^k for an integral double k in [-1022, 1023], through the exponent field */
static inline double tl_pow2i(double k) {
    int64_t bits = ((int64_t)(int32_t)k + 1023) << 52;
    double s;
    memcpy(&s, &bits, sizeof s);
    return s;
}

/* k = round(x / ln 2) for x clamped to [-lim, lim] (k = 0 for NaN, which r carries), and
 * r = x - k ln 2, |r| <= ln 2 / 2 */
static inline double tl_reduce_ln2(double x, double lim, double *r) {
    double xc = x < -lim ? -lim : x;
    xc = xc > lim ? lim : xc;
    double k = nearbyint(xc * 1.44269504088896341);
    k = x == x ? k : 0.0;                               /* (NaN: no int conversion) */
    *r = fma(-k, TL_LN2_LO, fma(-k, TL_LN2_HI, xc));
    return k;
}

/* e^r - 1 for |r| <= 1: r + r^2 (1/2! + r/3! + ... + r^16/18!), the rest below 1e-17 */
static inline double tl_expm1_poly(double r) {
    double p = 1.0 / 6402373705728000.0;
    p = p * r + 1.0 / 355687428096000.0;
    p = p * r + 1.0 / 20922789888000.0;
    p = p * r + 1.0 / 1307674368000.0;
    p = p * r + 1.0 / 87178291200.0;
    p = p * r + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return fma(r * r, p, r);
}

static inline double tl_exp_d(double x) {
    /* beyond +-750 exp is inf or 0 whatever the rest; the clamp keeps k's halves in range */
    double r, k = tl_reduce_ln2(x, 750.0, &r);
    double e = 1.0 + tl_expm1_poly(r);                  /* one rounding for the big term */
    /* 2^k in two factors: k up to 1083 (2^1024 times e < 1 is finite) and down to the
     * subnormals, rounded once by the second product */
    double k1 = floor(k * 0.5);
    return e * tl_pow2i(k1) * tl_pow2i(k - k1);
}

/* expm1(x): the series itself for |x| < 1 (k = 1 would cancel: 2 expm1(r) + 1 lost an
 * ulp), else 2^k expm1(r) + (2^k - 1), one rounding (2^k - 1 is exact for 0 <= k <= 53, and
 * for k < 0 the result is near -1 anyway); exp(x) from 700 (the -1 is below its ulp), -1
 * below -40 (e^-40 is below half of -1's ulp) */
static inline double tl_expm1_d(double x) {
    double r, k = tl_reduce_ln2(x, 700.0, &r);
    int small = fabs(x) < 1.0;
    r = small ? x : r;
    k = small ? 0.0 : k;
    double s = tl_pow2i(k);
    double y = fma(s, tl_expm1_poly(r), s - 1.0);
    y = x > 700.0 ? tl_exp_d(x) : y;
    y = x < -40.0 ? -1.0 : y;
    return x == 0.0 ? x : y;                 /* -0 stays -0 */
}

/* tanh(x) = -expm1(-2|x|) / (expm1(-2|x|) + 2), signed (no cancellation near 0: expm1 keeps
 * its relative accuracy; +-1 from |x| ~ 19) */
static inline double tl_tanh_d(double x) {
    double em = tl_expm1_d(-2.0 * fabs(x));
    return copysign(-em / (em + 2.0), x);
}

/* with e = exp(-|x|): 1 / (1 + e) from 0, e / (1 + e) below (exp(-x) would overflow below
 * -709.78, where sigmoid is e^x, subnormal, not 0) */
static inline double tl_sigmoid_d(double x) {
    double e = tl_exp_d(-fabs(x));
    return (x < 0.0 ? e : 1.0) / (1.0 + e);
}

static inline double tl_log_d(double x) {
    int sub = x < 2.2250738585072014e-308;
    double xs = sub ? x * 4503599627370496.0 : x;       /* subnormals: scaled by 2^52 */
    uint64_t ix;
    memcpy(&ix, &xs, sizeof ix);
    /* x = m 2^e, m in [1, 2), then into [sqrt(1/2), sqrt 2) */
    uint64_t mbits = (ix & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    memcpy(&m, &mbits, sizeof m);
    /* the biased exponent as a double without an int64 conversion (AVX2 has none): its bits
     * under 2^52's are 2^52 + e exactly */
    uint64_t ebits = (ix >> 52) | 0x4330000000000000ULL;
    double e;
    memcpy(&e, &ebits, sizeof e);
    e = e - (4503599627370496.0 + 1023.0);
    int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    e = sub ? e - 52.0 : e;
    /* log(1 + f) = f - (f^2/2 - s (f^2/2 + R)), s = f / (2 + f), R = 2 s^2/3 + 2 s^4/5 + ...
     * (fdlibm's arrangement; s^2 <= 0.0295, so R to s^20 leaves below 1e-18) */
    double f = m - 1.0;
    double s = f / (2.0 + f), z = s * s;
    double R = 2.0 / 21.0;
    R = R * z + 2.0 / 19.0;
    R = R * z + 2.0 / 17.0;
    R = R * z + 2.0 / 15.0;
    R = R * z + 2.0 / 13.0;
    R = R * z + 2.0 / 11.0;
    R = R * z + 2.0 / 9.0;
    R = R * z + 2.0 / 7.0;
    R = R * z + 2.0 / 5.0;
    R = R * z + 2.0 / 3.0;
    R = R * z;
    double hfsq = 0.5 * f * f;
    double r = fma(e, TL_LN2_HI, f - (hfsq - fma(s, hfsq + R, e * TL_LN2_LO)));
    r = x == 0.0 ? -INFINITY : r;
    r = x < 0.0 ? NAN : r;
    r = x == INFINITY ? x : r;
    return x != x ? x : r;
}

/* log1p(x) = log(u) + (x - (u - 1)) / u for u = 1 + x rounded: the second term is what the
 * rounding of u lost (which reassociation would cancel away) */
static inline double tl_log1p_d(double x) {
    double u = 1.0 + x;
    double r = tl_log_d(u) + (x - (u - 1.0)) / u;
    r = x == -1.0 ? -INFINITY : r;           /* (0 / 0 in the correction) */
    r = x == INFINITY ? x : r;
    return x == 0.0 ? x : r;                 /* -0 stays -0 */
}

TL_MAP_F64(tl_exp_f64, tl_exp_d)
TL_MAP_F64(tl_log_f64, tl_log_d)
TL_MAP_F64(tl_expm1_f64, tl_expm1_d)
TL_MAP_F64(tl_log1p_f64, tl_log1p_d)
TL_MAP_F64(tl_tanh_f64, tl_tanh_d)
TL_MAP_F64(tl_sigmoid_f64, tl_sigmoid_d)

#ifdef TL_F64_POP
#pragma GCC pop_options
#endif

#endif
