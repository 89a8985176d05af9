/* float64 exp, exp2, log, log2, expm1, log1p, tanh, sigmoid, sin, cos, tan, the hyperbolic
 * functions, their inverses, atan, asin, acos, sign, erf, erfc, erfcx and the exact GELU as
 * branch-free inline functions gcc vectorises (4 lanes on AVX2).
 *
 * NumPy's float64 exp and log run vector code only with AVX-512; elsewhere they and the rest
 * are a libm call per element (5-30 ns on an AVX2 Zen 3 core, PyTorch's 2-10; glibc's sin
 * reduces every argument exactly), and sigmoid was several NumPy passes (11x PyTorch's time).
 * These are Cody-Waite and fdlibm-style reductions with Taylor polynomials carried so far
 * that truncation is below 1e-17 (erf's, below 2e-18, interpolate at Chebyshev nodes); IEEE
 * special values and subnormals kept.
 */
#ifndef TENSORLIB_SIMD_F64_H
#define TENSORLIB_SIMD_F64_H

#include <float.h>
#include "_simd_math.h"     /* TL_CLONES, TL_MAP_T */

/* GCC's reassociation under -ffast-math cost log a whole ulp (1.66 against 0.79 ulp at
 * worst, 91% against 97% correctly rounded), and it folds log1p's correction for the rounding
 * of 1 + x, x - ((1 + x) - 1), to 0: this header keeps the arithmetic written, and signed
 * zeros (for the whole header: functions of differing options do not inline into each other,
 * and the maps would not vectorise). Code elsewhere that calls these functions in its loops
 * goes between TL_F64_BEGIN and TL_F64_END likewise. */
#if defined(__GNUC__) && !defined(__clang__)
#define TL_F64_BEGIN _Pragma("GCC push_options")                                             \
    _Pragma("GCC optimize(\"no-associative-math\", \"no-reciprocal-math\", \"signed-zeros\")")
#define TL_F64_END _Pragma("GCC pop_options")
#else
#define TL_F64_BEGIN
#define TL_F64_END
#endif
TL_F64_BEGIN

#define TL_MAP_F64(name, f) TL_MAP_T(double, name, f)

/* ln 2 in two parts: the first has 21 trailing zero bits, so k times it is exact for the
 * |k| <= 1100 met here (fdlibm's split) */
#define TL_LN2_HI 6.93147180369123816490e-01
#define TL_LN2_LO 1.90821492927058770002e-10
/* ln 2 and 1 / ln 2 as the nearest double and the rest */
#define TL_LN2 0.6931471805599453
#define TL_LN2_TAIL 2.3190468138462996e-17
#define TL_INV_LN2 1.4426950408889634
#define TL_INV_LN2_TAIL 2.0355273740931033e-17

/* 2^k for an integral double k in [-1022, 1023], through the exponent field */
static inline double tl_pow2i(double k) {
    int64_t bits = ((int64_t)(int32_t)k + 1023) << 52;
    double s;
    memcpy(&s, &bits, sizeof s);
    return s;
}

/* k = round(x / ln 2) for x clamped to [-lim, lim], *xc (k = 0 for NaN, which *xc carries) */
static inline double tl_round_ln2(double x, double lim, double *xc) {
    double c = x < -lim ? -lim : x;
    c = c > lim ? lim : c;
    double k = nearbyint(c * 1.44269504088896341);
    *xc = c;
    return x == x ? k : 0.0;                            /* (NaN: no int conversion) */
}

/* k = tl_round_ln2's, and r = x - k ln 2, |r| <= ln 2 / 2 */
static inline double tl_reduce_ln2(double x, double lim, double *r) {
    double xc, k = tl_round_ln2(x, lim, &xc);
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

/* e 2^k for an integral double k up to 1083 (2^1024 e is finite for e < 1) and down to the
 * subnormals: 2^k in two factors, rounded once by the second product */
static inline double tl_scale_pow2(double e, double k) {
    double k1 = floor(k * 0.5);
    return e * tl_pow2i(k1) * tl_pow2i(k - k1);
}

/* e^x 2^m for an integral m in [-2, 0] (no overflow on the way: sinh and cosh take e^x / 2) */
static inline double tl_exp_shift(double x, double m) {
    /* beyond +-750 exp is inf or 0 whatever the rest; the clamp keeps k's halves in range */
    double r, k = tl_reduce_ln2(x, 750.0, &r);
    double e = 1.0 + tl_expm1_poly(r);                  /* one rounding for the big term */
    return tl_scale_pow2(e, k + m);
}

static inline double tl_exp_d(double x) {
    return tl_exp_shift(x, 0.0);
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

/* R = 2 z/3 + 2 z^2/5 + ... + 2 z^10/21: log((1 + s) / (1 - s)) = 2 s + s R, z = s^2 */
static inline double tl_log_series(double z) {
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
    return R * z;
}

/* x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt 2), for finite x > 0; returns f (exact) */
static inline double tl_log_reduce(double x, double *e_out) {
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
    *e_out = sub ? e - 52.0 : e;
    return m - 1.0;
}

/* log's and log2's values at 0, below, at +inf and NaN; r elsewhere */
static inline double tl_log_specials(double x, double r) {
    r = x == 0.0 ? -INFINITY : r;
    r = x < 0.0 ? NAN : r;
    r = x == INFINITY ? x : r;
    return x != x ? x : r;
}

static inline double tl_log_d(double x) {
    double e, f = tl_log_reduce(x, &e);
    /* log(1 + f) = f - (f^2/2 - s (f^2/2 + R)), s = f / (2 + f), R = 2 s^2/3 + 2 s^4/5 + ...
     * (fdlibm's arrangement; s^2 <= 0.0295, so R to s^20 leaves below 1e-18) */
    double s = f / (2.0 + f), z = s * s;
    double R = tl_log_series(z);
    double hfsq = 0.5 * f * f;
    return tl_log_specials(x, fma(e, TL_LN2_HI,
                                  f - (hfsq - fma(s, hfsq + R, e * TL_LN2_LO))));
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

/* 2^x: x = k + f, k = round(x), |f| <= 1/2 exact, 2^f = e^(f ln 2) with f ln 2 carried in two
 * parts (its rounding alone would be worth up to 0.35 ulp), then tl_exp_d's scaling */
static inline double tl_exp2_d(double x) {
    double xc = x < -1100.0 ? -1100.0 : x;     /* (beyond, inf or 0 whatever the rest) */
    xc = xc > 1100.0 ? 1100.0 : xc;
    double k = nearbyint(xc);
    k = x == x ? k : 0.0;
    double f = xc - k;
    double r = f * TL_LN2, rlo = fma(f, TL_LN2, -r) + f * TL_LN2_TAIL;
    double p = tl_expm1_poly(r);
    return tl_scale_pow2(1.0 + fma(rlo, 1.0 + p, p), k);
}

/* log2(x) = e + log(1 + f) / ln 2 with log(1 + f) = hi + lo as two doubles (tl_log_d's
 * reduction and series), and the product by 1 / ln 2 carried in two parts: exact at the
 * powers of two */
static inline double tl_log2_d(double x) {
    double e, f = tl_log_reduce(x, &e);
    double s = f / (2.0 + f), z = s * s;
    double R = tl_log_series(z);
    /* log(1 + f) = f - hfsq + s (hfsq + R), hfsq = f^2 / 2 exactly as two doubles */
    double hfsq = 0.5 * f * f, hfsq_lo = fma(0.5 * f, f, -hfsq);
    double hi = f - hfsq;
    double lo = ((f - hi) - hfsq) - hfsq_lo + s * (hfsq + R);  /* (f - hi - hfsq: exact) */
    double ph = hi * TL_INV_LN2;
    double pl = fma(hi, TL_INV_LN2, -ph) + fma(hi, TL_INV_LN2_TAIL, lo * TL_INV_LN2);
    double w = e + ph;
    return tl_log_specials(x, w + (((e - w) + ph) + pl));
}

/* sign(x): -1, 0 or 1, and 0 for NaN (PyTorch's; NumPy's sign keeps NaN) */
static inline double tl_sign_d(double x) {
    return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0);
}

/* --- sin, cos and tan --------------------------------------------------------------------
 * x = k pi/2 + r, |r| <= pi/4 (a hair more where x 2/pi rounds across a half), as hi + lo.
 * pi/2 in four parts, the first three of 33 bits or fewer, so k times each is exact for
 * |k| <= 2^20 (|x| <= TL_TRIG_LIM): x - k C1 is exact (Sterbenz), the next two subtractions
 * keep their rounding errors (two-sum), and the sum is within 2^-140 k of r: a relative
 * 1e-20 even where x is a double nearest a multiple of pi/2. Beyond the limit, libm. */
#define TL_TRIG_LIM 1.0e6
#define TL_PIO2_1 0x1.921fb544p+0
#define TL_PIO2_2 0x1.0b4611a6p-34
#define TL_PIO2_3 0x1.3198a2ep-69
#define TL_PIO2_4 0x1.b839a252049c1p-104

static inline double tl_two_sum_err(double a, double b, double s) {
    double bb = s - a;
    return (a - (s - bb)) + (b - bb);
}

/* r = hi + *lo and the quadrant k mod 4 of x, for |x| <= TL_TRIG_LIM (else of 0) */
static inline double tl_reduce_pio2(double x, double *lo, int *q) {
    double xc = fabs(x) <= TL_TRIG_LIM ? x : 0.0;
    double k = nearbyint(xc * 0.6366197723675814);
    double t1 = fma(-k, TL_PIO2_1, xc);
    double p2 = -k * TL_PIO2_2, s2 = t1 + p2, e2 = tl_two_sum_err(t1, p2, s2);
    double p3 = -k * TL_PIO2_3, s3 = s2 + p3, e3 = tl_two_sum_err(s2, p3, s3);
    double l = fma(-k, TL_PIO2_4, e2 + e3);
    double hi = s3 + l;
    *lo = (s3 - hi) + l;
    *q = (int32_t)k & 3;
    return hi;
}

/* sin(hi + lo), |hi| <= pi/4 + 1e-6: hi + hi^3 (-1/3! + z/5! - ... + z^7/17!), z = hi^2,
 * plus lo cos(hi) to first order; the first term left out is below 1e-19 of the result */
static inline double tl_sin_kernel(double hi, double lo, double z) {
    double p = 1.0 / 355687428096000.0;
    p = p * z - 1.0 / 1307674368000.0;
    p = p * z + 1.0 / 6227020800.0;
    p = p * z - 1.0 / 39916800.0;
    p = p * z + 1.0 / 362880.0;
    p = p * z - 1.0 / 5040.0;
    p = p * z + 1.0 / 120.0;
    p = p * z - 1.0 / 6.0;
    return hi + fma(hi * z, p, lo * (1.0 - 0.5 * z));
}

/* cos(hi + lo): 1 - z/2 + z^2 (1/4! - z/6! + ... - z^7/18!) - hi lo, with z/2 exact as two
 * doubles and the rounding of 1 - z/2 added back (its error would be up to half an ulp) */
static inline double tl_cos_kernel(double hi, double lo, double z) {
    double p = -1.0 / 6402373705728000.0;
    p = p * z + 1.0 / 20922789888000.0;
    p = p * z - 1.0 / 87178291200.0;
    p = p * z + 1.0 / 479001600.0;
    p = p * z - 1.0 / 3628800.0;
    p = p * z + 1.0 / 40320.0;
    p = p * z - 1.0 / 720.0;
    p = p * z + 1.0 / 24.0;
    double hz = 0.5 * z, hz_lo = 0.5 * fma(hi, hi, -z);
    double w = 1.0 - hz;
    return w + ((((1.0 - w) - hz) - hz_lo) + fma(z * z, p, -hi * lo));
}

static inline double tl_sin_d(double x) {
    double lo, z;
    int q;
    double hi = tl_reduce_pio2(x, &lo, &q);
    z = hi * hi;
    double s = tl_sin_kernel(hi, lo, z), c = tl_cos_kernel(hi, lo, z);
    double v = (q & 1) ? c : s;
    v = (q & 2) ? -v : v;
    return x == 0.0 ? x : v;                 /* -0 stays -0 */
}

static inline double tl_cos_d(double x) {
    double lo, z;
    int q;
    double hi = tl_reduce_pio2(x, &lo, &q);
    z = hi * hi;
    double s = tl_sin_kernel(hi, lo, z), c = tl_cos_kernel(hi, lo, z);
    double v = (q & 1) ? s : c;
    return ((q + 1) & 2) ? -v : v;
}

static inline double tl_tan_d(double x) {
    double lo, z;
    int q;
    double hi = tl_reduce_pio2(x, &lo, &q);
    z = hi * hi;
    double s = tl_sin_kernel(hi, lo, z), c = tl_cos_kernel(hi, lo, z);
    double v = (q & 1) ? -c / s : s / c;
    return x == 0.0 ? x : v;
}

/* --- the hyperbolic functions and their inverses --------------------------------------
 * One exp or log1p each (the maps compute every branch in every lane) */

/* sinh: a + a^3 (1/3! + a^2/5! + ... + a^16/19!) below 1 (the rest below 1e-19), h - 1/(4h)
 * from 1, h = e^a / 2 (finite as long as sinh is) */
static inline double tl_sinh_d(double x) {
    double a = fabs(x), z = a * a;
    double p = 1.0 / 121645100408832000.0;
    p = p * z + 1.0 / 355687428096000.0;
    p = p * z + 1.0 / 1307674368000.0;
    p = p * z + 1.0 / 6227020800.0;
    p = p * z + 1.0 / 39916800.0;
    p = p * z + 1.0 / 362880.0;
    p = p * z + 1.0 / 5040.0;
    p = p * z + 1.0 / 120.0;
    p = p * z + 1.0 / 6.0;
    double h = tl_exp_shift(a, -1.0);
    double y = a < 1.0 ? fma(a * z, p, a) : h - 0.25 / h;
    return copysign(y, x);
}

/* cosh = h + 1/(4h), h = e^|x| / 2 */
static inline double tl_cosh_d(double x) {
    double h = tl_exp_shift(fabs(x), -1.0);
    return h + 0.25 / h;
}

/* asinh(a) = log1p(a + a^2 / (1 + sqrt(1 + a^2))) to 2^28; beyond, log(a) + ln 2 as
 * log1p(a - 1) + ln 2 (a - 1 exact below 2^53, and log1p(a) is log(a) above) */
static inline double tl_asinh_d(double x) {
    double a = fabs(x), s = sqrt(fma(a, a, 1.0));
    int big = a > 268435456.0;
    double u = big ? (a < 9007199254740992.0 ? a - 1.0 : a) : a + a * (a / (1.0 + s));
    return copysign(tl_log1p_d(u) + (big ? TL_LN2 : 0.0), x);
}

/* acosh(x) = log1p(t + sqrt(2t + t^2)), t = x - 1 (exact below 2), to 2^28; then as asinh */
static inline double tl_acosh_d(double x) {
    double t = x - 1.0;
    int big = x > 268435456.0;
    double u = big ? (x < 9007199254740992.0 ? t : x) : t + sqrt(fma(t, t, 2.0 * t));
    double y = tl_log1p_d(u) + (big ? TL_LN2 : 0.0);
    return x < 1.0 ? NAN : y;                /* (NaN passes through log1p) */
}

/* atanh: log1p(2a + 2a^2 / (1 - a)) / 2 below 1/2, log1p(2a / (1 - a)) / 2 above (1 - a
 * exact there) */
static inline double tl_atanh_d(double x) {
    double a = fabs(x), d = 1.0 - a;
    double y = 0.5 * tl_log1p_d(a < 0.5 ? 2.0 * a + 2.0 * a * a / d : 2.0 * a / d);
    y = a > 1.0 ? NAN : y;
    return copysign(y, x);                   /* (-0 stays -0; +-inf at +-1) */
}

/* atan(n / d) for n, d >= 0 (not both 0), in [0, pi/2]: the quotient q below 1 (d / n past
 * 1, then pi/2 - it), reduced by atan(q) = atan(c) + atan(t), t = (q - c) / (1 + q c) in
 * [0, tan(pi/16)), c = tan(k pi/16) as a double at or below q, with atan(c) in two parts
 * (no cancellation: both terms >= 0); atan(t) by its series to t^23 (the first term left out
 * is below 1e-18 of t), plus what the division for t rounded off */
static inline double tl_atan_core(double n, double d) {
    int inv = n > d;
    double q = inv ? d / n : n / d;
    /* c = tan(k pi/16) as doubles, and atan of each in two parts */
    static const double C[4] = {0.198912367379658, 0.41421356237309503, 0.6681786379192989,
                                1.0};
    static const double AHI[4] = {0.19634954084936207, 0.39269908169872414,
                                  0.5890486225480862, 0.7853981633974483};
    static const double ALO[4] = {6.846802412842648e-18, 3.060132146563891e-18,
                                  -5.412106055318847e-18, 3.061616997868383e-17};
    double c = 0.0, ahi = 0.0, alo = 0.0;
    for (int j = 0; j < 4; j++) {            /* (selects in turn, unrolled: an index into the
                                                tables would be a gather) */
        int m = q >= C[j];
        c = m ? C[j] : c;
        ahi = m ? AHI[j] : ahi;
        alo = m ? ALO[j] : alo;
    }
    double num = q - c, den = fma(q, c, 1.0);
    double t = num / den, z = t * t;
    double tlo = fma(-t, den, num) / den;      /* (what the division rounded off) */
    double p = -1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z - 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z - 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z - 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z - 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z - 1.0 / 3.0;
    double at = t + fma(t * z, p, tlo);
    return inv ? (1.5707963267948966 - ahi) + ((6.123233995736766e-17 - alo) - at)
               : ahi + (alo + at);
}

static inline double tl_atan_d(double x) {
    return copysign(tl_atan_core(fabs(x), 1.0), x);
}

/* asin(a) = atan(a / sqrt(1 - a^2)), 1 - a^2 in one rounding below 1/2 and as (1 - a)(1 + a)
 * above (1 - a exact) */
static inline double tl_asin_d(double x) {
    double a = fabs(x);
    double y = tl_atan_core(a, sqrt(a < 0.5 ? fma(-a, a, 1.0) : (1.0 - a) * (1.0 + a)));
    y = a > 1.0 ? NAN : y;
    return copysign(y, x);
}

/* acos(x) = 2 atan(sqrt((1 - x) / (1 + x))), the quotient turned over below 0 (one rounding
 * to the quotient atan takes) */
static inline double tl_acos_d(double x) {
    int neg = x < 0.0;
    double w = sqrt(neg ? (1.0 + x) / (1.0 - x) : (1.0 - x) / (1.0 + x));
    double y = 2.0 * tl_atan_core(neg ? 1.0 : w, neg ? w : 1.0);
    return fabs(x) > 1.0 ? NAN : y;
}

/* atan2(y, x), C99's values on the axes and at the infinities, signed zeros included: the
 * first-quadrant angle atan(|y| / |x|), then pi minus it where x is negative (or -0), signed
 * as y */
static inline double tl_atan2_d(double y, double x) {
    double ay = fabs(y), ax = fabs(x);
    double base = tl_atan_core(ay, ax);
    /* (& and copysign, not && and signbit: those do not vectorise) */
    base = ((ay == 0.0) & (ax == 0.0)) ? 0.0 : base;                /* (0/0 in the quotient) */
    base = ((ay == INFINITY) & (ax == INFINITY)) ? 0.7853981633974483 : base;
    double r = copysign(1.0, x) < 0.0 ? (3.141592653589793 - base) + 1.2246467991473532e-16
                                      : base;
    return copysign(r, y);
}

/* hypot(a, b) = sqrt(a^2 + b^2) in one rounding inside (fma), scaled by a power of two when
 * the larger is beyond 2^+-500 (no overflow or underflow on the way); inf if either is
 * infinite, even with a NaN */
static inline double tl_hypot_d(double a, double b) {
    double x = fabs(a), y = fabs(b);
    double big = x > y ? x : y;               /* (fmax does not vectorise) */
    double s = big > 0x1p500 ? 0x1p-600 : (big < 0x1p-500 ? 0x1p600 : 1.0);
    double xs = x * s, ys = y * s;
    double h = sqrt(fma(xs, xs, ys * ys)) / s;
    return ((x == INFINITY) | (y == INFINITY)) ? INFINITY : h;
}

/* fmod(a, b) exactly for |a / b| < 2^52 and finite nonzero b (else NaN, which
 * TL_FMOD_MAPS's scan redoes with libm): the rounded |a / b| is at least the integer below the
 * true quotient and at most one above it, so q = trunc of it is right or one too large; then
 * |a| - q |b| is exactly a double (fma: one rounding of the exact value) and, when negative,
 * adding |b| back is exact too. */
static inline double tl_fmod_lanes_d(double a, double b) {
    double ax = fabs(a), bx = fabs(b);
    double q = trunc(ax / bx);
    double r = fma(-q, bx, ax);
    r = r < 0.0 ? r + bx : r;
    r = q < 4503599627370496.0 ? r : NAN;         /* (NaN: also bx = 0 or inf, ax = inf) */
    return copysign(r, a);                        /* a zero has a's sign */
}

TL_FMOD_MAPS(double, uint64_t, f64, tl_fmod_lanes_d, fmod)

/* log(e^a + e^b) = max + log1p(exp(-|a - b|)), NumPy's formula; equal arguments give a + ln 2
 * (equal infinities included: inf - inf would be NaN); NaN propagates */
static inline double tl_logaddexp_d(double a, double b) {
    double m = a > b ? a : b;
    double r = m + tl_log1p_d(tl_exp_d(-fabs(a - b)));
    return a == b ? a + 0.6931471805599453 : r;
}

/* 1 / sqrt(x), one pass (two roundings, as NumPy's 1.0 / sqrt(x)) */
static inline double tl_rsqrt_d(double x) {
    return 1.0 / sqrt(x);
}

/* --- erf, erfc, erfcx and the exact GELU ----------------------------------------------- */
/* (the polynomials' coefficients: scripts/fit_erf_f64.py, with mpmath) */

/* erf(x) = x (C0 + z Q(z)), z = x^2, for |x| <= 1: C0 = 2 / sqrt(pi) in two parts, Q of
 * degree 11 interpolating at Chebyshev nodes of z in [0, 1] (0.1 ulp; the rest is rounding:
 * within 1.25 ulp), z's own rounding carried */
#define TL_ERF_C0 1.1283791670955126
#define TL_ERF_C0_LO 1.533545961316588e-17
static inline double tl_erf_small(double x) {
    double z = x * x;
    double q = 6.175907631430082e-11;
    q = q * z - 1.1501353588177746e-09;
    q = q * z + 1.4692721695624695e-08;
    q = q * z - 1.6355150424420964e-07;
    q = q * z + 1.6461449310631618e-06;
    q = q * z - 1.4925622646696348e-05;
    q = q * z + 0.00012055332219610691;
    q = q * z - 0.0008548327010138358;
    q = q * z + 0.0052239776253048325;
    q = q * z - 0.026866170645123925;
    q = q * z + 0.11283791670955111;
    q = q * z - 0.37612638903183754;
    double zlo = fma(x, x, -z);
    return fma(x, TL_ERF_C0, x * fma(z, q, fma(zlo, q, TL_ERF_C0_LO)));
}

/* h(u) = erfcx(a) (a + 2), u = 1 / (a + 2), for a >= 1/2 (u in [0, 0.4]): degree 24 in
 * w = u - 0.2, interpolating h at Chebyshev nodes (below 2e-18 relative), lowest first; the
 * two lowest coefficients in two parts below, and 0 in the table. erfcx(a) = e^(a^2) erfc(a)
 * falls as 1 / (a sqrt(pi)); h stays within [0.56, 1.54] */
#define TL_ERFCX_C0 0.8950057559069498
#define TL_ERFCX_C0_LO 2.5669399127621207e-17
#define TL_ERFCX_C1 2.321503721361861
#define TL_ERFCX_C1_LO -1.4430614558148974e-16
static const double TL_ERFCX_FIT[25] = {
    0.0,
    0.0,
    4.048478763305587,
    3.239868270264457,
    -3.451488850480444,
    -9.427814514860897,
    5.123312654784289,
    27.84040592424179,
    -20.955592691143153,
    -89.79342655870101,
    134.30462926061654,
    255.96726321647733,
    -830.1517157575963,
    -196.69853247740934,
    4192.915848530517,
    -5190.554540212498,
    -13329.271550427218,
    51879.674597720266,
    -18263.411755094134,
    -288588.9843485496,
    588182.8465293758,
    936550.2680260118,
    -3857173.569914207,
    -1279690.5792827255,
    10532288.760211047,
};

/* h(u) = *hi + *lo: the terms from w^2 on by Estrin's scheme (Horner's chain of 24 latencies
 * made erf ~10% slower), c0 + c1 w in two parts (their roundings were worth ~1.5 ulp) */
static inline double tl_erfcx_fit(double w, double *lo) {
    const double *c = TL_ERFCX_FIT;
    double w2 = w * w, w4 = w2 * w2, w8 = w4 * w4, p[12];
    for (int i = 0; i < 12; i++) p[i] = fma(c[2 * i + 1], w, c[2 * i]);
    for (int i = 0; i < 6; i++) p[i] = fma(p[2 * i + 1], w2, p[2 * i]);
    for (int i = 0; i < 3; i++) p[i] = fma(p[2 * i + 1], w4, p[2 * i]);
    double rest = fma(fma(c[24], w8 * w8, fma(p[2], w8, p[1])), w8, p[0]);
    double m = TL_ERFCX_C1 * w, ml = fma(TL_ERFCX_C1, w, -m) + TL_ERFCX_C1_LO * w;
    double s = TL_ERFCX_C0 + m, sl = (TL_ERFCX_C0 - s) + m;      /* (|m| < c0) */
    double t = rest + (sl + ml + TL_ERFCX_C0_LO);
    double h = s + t;
    *lo = tl_two_sum_err(s, t, h);
    return h;
}

/* erfcx(a + alo) = ph + *pl for a >= 1/2 (alo: a's own rounding, if any): u = 1 / (a + 2)
 * with its rounding ur carried into w and into the product (they were worth 2 ulp of erfc) */
static inline double tl_erfcx_pos(double a, double alo, double *pl) {
    double d = a + 2.0, dl = tl_two_sum_err(a, 2.0, d) + alo;
    double u = 1.0 / d;
    double ur = u * (fma(-u, d, 1.0) - u * dl);
    double hl, h = tl_erfcx_fit((u - 0.2) + ur, &hl);
    double ph = u * h;
    *pl = fma(u, h, -ph) + fma(ur, h, u * hl);
    return ph;
}

/* (ph + pl) e^(hi + lo) for |lo| <= ulp(hi), scaled as tl_exp_d's (inf or 0 beyond): hi - k
 * ln 2_hi is exact, and the rounding of r = that + the rest is carried (worth ~0.5 ulp) */
static inline double tl_exp_dd_mul(double hi, double lo, double ph, double pl) {
    double hc, k = tl_round_ln2(hi, 750.0, &hc);
    double r1 = fma(-k, TL_LN2_HI, hc), t = fma(-k, TL_LN2_LO, lo);
    double r = r1 + t, rl = (r1 - r) + t;
    double p = tl_expm1_poly(r);
    return tl_scale_pow2(ph + fma(ph, p, fma(ph, rl, pl)), k);
}

/* erf: the series below 1, else 1 - erfc(|x|) signed (1 from 6 on); within 1.25 ulp */
static inline double tl_erf_d(double x) {
    double a = fabs(x), ac = a > 6.0 ? 6.0 : a;
    double hi = ac * ac, lo = fma(ac, ac, -hi), pl;
    double ph = tl_erfcx_pos(ac, 0.0, &pl);
    double big = 1.0 - tl_exp_dd_mul(-hi, -lo, ph, pl);
    double s = tl_erf_small(a < 1.0 ? x : 0.0);
    return a < 1.0 ? s : copysign(big, x);
}

/* erfc: 1 - erf(x) below 1/2, erfcx(|x|) e^(-x^2) from there with x^2 exact in two parts (2
 * minus it below -1/2; 0 from ~27.3, the subnormals rounded once); within 2.1 ulp */
static inline double tl_erfc_d(double x) {
    double a = fabs(x), ac = a > 28.0 ? 28.0 : a;
    double hi = ac * ac, lo = fma(ac, ac, -hi), pl;
    double ph = tl_erfcx_pos(ac, 0.0, &pl);
    double t = tl_exp_dd_mul(-hi, -lo, ph, pl);
    t = x < 0.0 ? 2.0 - t : t;
    double s = 1.0 - tl_erf_small(a < 0.5 ? x : 0.0);
    return a < 0.5 ? s : t;
}

/* erfcx(x) = e^(x^2) erfc(x): the fit from 1/2 on (0 at inf), 2 e^(x^2) minus erfcx(|x|)
 * below -1/2 (inf from ~-26.6), e^(x^2) (1 - erf(x)) between; within 2.3 ulp */
static inline double tl_erfcx_d(double x) {
    double a = fabs(x), ac = a > DBL_MAX ? DBL_MAX : a;     /* (inf: NaN in the two-sum) */
    double pl, ph = tl_erfcx_pos(ac, 0.0, &pl);
    double t = ph + pl;
    double ae = a > 28.0 ? 28.0 : a;
    double hi = ae * ae, lo = fma(ae, ae, -hi);
    double s = a < 0.5 ? 1.0 - tl_erf_small(a < 0.5 ? x : 0.0) : 2.0;
    double e = tl_exp_dd_mul(hi, lo, s, 0.0);
    double r = x < 0.0 ? e - t : t;
    r = a < 0.5 ? e : r;
    return x == INFINITY ? 0.0 : r;
}

/* 1 / sqrt 2 in two parts, 1 / sqrt(2 pi) */
#define TL_SQRT1_2 0.7071067811865476
#define TL_SQRT1_2_LO -4.833646656726457e-17
#define TL_INV_SQRT_2PI 0.3989422804014327

/* Phi(x) = erfc(-x / sqrt 2) / 2, and *e = exp(-x^2 / 2): |x| / sqrt 2 carried in two parts
 * and x^2 / 2 exact (their roundings cost up to ~1300 ulp in the far tail); the forward
 * leaves *e unused, and gcc drops its exp */
static inline double tl_normal_cdf(double x, double *e) {
    double a = fabs(x), ac = a > 40.0 ? 40.0 : a;
    double y = ac * TL_SQRT1_2, ylo = fma(ac, TL_SQRT1_2, -y) + ac * TL_SQRT1_2_LO;
    double hi = -0.5 * (ac * ac), lo = -0.5 * fma(ac, ac, -2.0 * -hi);
    double pl, ph = tl_erfcx_pos(y, ylo, &pl);
    double t = tl_exp_dd_mul(hi, lo, 0.5 * ph, 0.5 * pl);        /* erfc(y) / 2 */
    double big = x < 0.0 ? t : 1.0 - t;
    double s = 0.5 + 0.5 * tl_erf_small(y < 0.5 ? x * TL_SQRT1_2 : 0.0);
    *e = tl_exp_dd_mul(hi, lo, 1.0, 0.0);
    return y < 0.5 ? s : big;
}

/* GELU x Phi(x) and its backward g (Phi(x) + x phi(x)) (NaN at -inf and at +-inf in the
 * backward, as PyTorch's) */
static inline double tl_gelu_d(double x) {
    double e;
    return x * tl_normal_cdf(x, &e);
}

static inline double tl_gelu_grad_d(double g, double x) {
    double e, p = tl_normal_cdf(x, &e);
    return g * fma(x * TL_INV_SQRT_2PI, e, p);
}

/* GELU's tanh form x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3), and its backward,
 * as the float32 ones (_simd_math.h) */
static inline double tl_gelu_tanh_d(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + tl_exp_d(-2.0 * u));
}

static inline double tl_gelu_tanh_grad_d(double g, double x) {
    double x2 = x * x;
    double u = 0.7978845608028654 * (x + 0.044715 * x2 * x);
    double du = 0.7978845608028654 * (1.0 + 0.134145 * x2);
    double e = tl_exp_d(-2.0 * fabs(u)), q = 1.0 / (1.0 + e);
    double s = u < 0.0 ? e * q : q;
    return g * (s + 2.0 * x * du * e * q * q);
}

/* SiLU x sigmoid(x) and its backward g s (1 + x (1 - s)) */
static inline double tl_silu_d(double x) {
    return x * tl_sigmoid_d(x);
}

static inline double tl_silu_grad_d(double g, double x) {
    double s = tl_sigmoid_d(x);
    return g * (s * (1.0 + x * (1.0 - s)));
}

/* name(x, out, n) for a trig function: the lanes, then libm where |x| > TL_TRIG_LIM or x is
 * not finite (rare: a vectorised scan first) */
#define TL_TRIG_F64(name, f, libm)                                                           \
TL_MAP_F64(name##_lanes, f)                                                                  \
static void name(const double *x, double *out, ptrdiff_t n) {                                \
    name##_lanes(x, out, n);                                                                 \
    int any = 0;                                                                             \
    for (ptrdiff_t i = 0; i < n; i++)                                                        \
        any |= !(fabs(x[i]) <= TL_TRIG_LIM);                                                 \
    if (!any)                                                                                \
        return;                                                                              \
    for (ptrdiff_t i = 0; i < n; i++)                                                        \
        if (!(fabs(x[i]) <= TL_TRIG_LIM))                                                    \
            out[i] = libm(x[i]);                                                             \
}

TL_TRIG_F64(tl_sin_f64, tl_sin_d, sin)
TL_TRIG_F64(tl_cos_f64, tl_cos_d, cos)
TL_TRIG_F64(tl_tan_f64, tl_tan_d, tan)
TL_MAP_F64(tl_exp2_f64, tl_exp2_d)
TL_MAP_F64(tl_log2_f64, tl_log2_d)
TL_MAP_F64(tl_sign_f64, tl_sign_d)
TL_MAP_F64(tl_sinh_f64, tl_sinh_d)
TL_MAP_F64(tl_cosh_f64, tl_cosh_d)
TL_MAP_F64(tl_asinh_f64, tl_asinh_d)
TL_MAP_F64(tl_acosh_f64, tl_acosh_d)
TL_MAP_F64(tl_atanh_f64, tl_atanh_d)
TL_MAP_F64(tl_atan_f64, tl_atan_d)
TL_MAP_F64(tl_asin_f64, tl_asin_d)
TL_MAP_F64(tl_acos_f64, tl_acos_d)
TL_MAP_F64(tl_exp_f64, tl_exp_d)
TL_MAP2_T(double, tl_atan2_f64, tl_atan2_d)
TL_MAP2_T(double, tl_hypot_f64, tl_hypot_d)
TL_MAP2_T(double, tl_logaddexp_f64, tl_logaddexp_d)
TL_MAP_F64(tl_rsqrt_f64, tl_rsqrt_d)
TL_MAP_F64(tl_log_f64, tl_log_d)
TL_MAP_F64(tl_expm1_f64, tl_expm1_d)
TL_MAP_F64(tl_log1p_f64, tl_log1p_d)
TL_MAP_F64(tl_tanh_f64, tl_tanh_d)
TL_MAP_F64(tl_sigmoid_f64, tl_sigmoid_d)
TL_MAP_F64(tl_erf_f64, tl_erf_d)
TL_MAP_F64(tl_erfc_f64, tl_erfc_d)
TL_MAP_F64(tl_erfcx_f64, tl_erfcx_d)
TL_MAP_F64(tl_gelu_f64, tl_gelu_d)
TL_MAP2_T(double, tl_gelu_grad_f64, tl_gelu_grad_d)
TL_MAP_F64(tl_gelu_tanh_f64, tl_gelu_tanh_d)
TL_MAP2_T(double, tl_gelu_tanh_grad_f64, tl_gelu_tanh_grad_d)
TL_MAP_F64(tl_silu_f64, tl_silu_d)
TL_MAP2_T(double, tl_silu_grad_f64, tl_silu_grad_d)

/* --- activations and their backward, as the float32 ones of _fused_pointwise.h ---------- */

/* ELU: x above 0, else alpha expm1(x) (NaN gives NaN) */
TL_CLONES
static void tl_elu_f64(const double *x, double *out, ptrdiff_t n, double alpha) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = v > 0.0 ? v : alpha * tl_expm1_d(v);
    }
}

/* ELU's backward: g alpha exp(x) at and below 0, else g (NaN x gives g, as PyTorch's) */
TL_CLONES
static void tl_elu_grad_f64(const double *g, const double *x, double *out, ptrdiff_t n,
                            double alpha) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = g[i] * (v <= 0.0 ? alpha * tl_exp_d(v) : 1.0);
    }
}

/* softplus, PyTorch's: x where beta x > threshold, else (max(bx, 0) + log1p(exp(-|bx|))) /
 * beta (no overflow; NaN gives NaN) */
TL_CLONES
static void tl_softplus_f64(const double *x, double *out, ptrdiff_t n, double beta,
                            double threshold) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = x[i], b = v * beta;
        double r = ((b > 0.0 ? b : 0.0) + tl_log1p_d(tl_exp_d(-fabs(b)))) / beta;
        out[i] = b > threshold ? v : r;
    }
}

/* softplus' backward: g where beta x > threshold, else g sigmoid(beta x) (NaN gives NaN) */
TL_CLONES
static void tl_softplus_grad_f64(const double *g, const double *x, double *out, ptrdiff_t n,
                                 double beta, double threshold) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double b = x[i] * beta;
        out[i] = g[i] * (b > threshold ? 1.0 : tl_sigmoid_d(b));
    }
}

/* log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), and its backward g (1 - sigmoid(x)) =
 * g / (1 + e) below 0, g e / (1 + e) above, e = exp(-|x|) */
static inline double tl_logsigmoid_d(double v) {
    return (v < 0.0 ? v : 0.0) - tl_log1p_d(tl_exp_d(-fabs(v)));
}

static inline double tl_logsigmoid_grad_d(double g, double v) {
    double z = tl_exp_d(-fabs(v)), r = 1.0 / (1.0 + z);
    return g * (v < 0.0 ? r : z * r);
}

TL_MAP_F64(tl_logsigmoid_f64, tl_logsigmoid_d)

TL_CLONES
static void tl_logsigmoid_grad_f64(const double *g, const double *x, double *out,
                                   ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_logsigmoid_grad_d(g[i], x[i]);
}

TL_F64_END

#endif
