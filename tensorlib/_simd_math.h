/* Vectorisable float32 exp, sigmoid and tanh, and the float32 row kernels built on them (LSTM
 * cell forward/backward, softmax + cross-entropy, layer norm forward/backward).
 *
 * libm's expf/tanhf are scalar calls, which made a plain Cython LSTM cell 3-10x slower than
 * NumPy's SIMD ufuncs. These are branch-free inline functions (Cody-Waite range reduction and
 * Cephes-style minimax polynomials; selects instead of branches), so gcc vectorises the loops
 * that call them. Accuracy: exp ~2 ulp, sigmoid ~3 ulp, tanh ~3 ulp over the float32 range.
 *
 * The kernels are compiled for several instruction sets (target_clones: AVX-512, AVX2+FMA,
 * baseline) where gcc/clang on Linux x86-64 support it; the loader picks the best one the CPU
 * has, so a wheel built anywhere runs everywhere.
 */
#ifndef TENSORLIB_SIMD_MATH_H
#define TENSORLIB_SIMD_MATH_H

#include <stdint.h>
#include <string.h>
#include <stddef.h>
#include <math.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) \
    && !defined(__clang__)   /* ifunc dispatch: GNU toolchain and glibc (not musl) */
#define TL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TL_CLONES
#endif

/* name(x, out, n): out[i] = f(x[i]) over a flat array of T, a loop gcc vectorises */
#define TL_MAP_T(T, name, f)                                                                 \
TL_CLONES                                                                                    \
static void name(const T *x, T *out, ptrdiff_t n) {                                          \
    for (ptrdiff_t i = 0; i < n; i++) out[i] = f(x[i]);                                      \
}
#define TL_MAP_F32(name, f) TL_MAP_T(float, name, f)
/* name(a, b, out, n): out[i] = f(a[i], b[i]), likewise */
#define TL_MAP2_T(T, name, f)                                                                \
TL_CLONES                                                                                    \
static void name(const T *a, const T *b, T *out, ptrdiff_t n) {                              \
    for (ptrdiff_t i = 0; i < n; i++) out[i] = f(a[i], b[i]);                                \
}

/* fmod and PyTorch's remainder of arrays of T (UT: the unsigned integer of T's size), b of
 * a's length (bstride 1) or one element (bstride 0): tl_fmod_<sfx>(a, b, bstride, out, n) and
 * tl_remainder_<sfx>, from lanes(a, b), an exact fmod or NaN where it cannot be (a quotient
 * too large, an infinite or zero b, NaN operands), which a scan then sends to libm's libm(a,
 * b). The remainder is r + b where the nonzero r = fmod(a, b) and b differ in sign (rounded
 * once), else r: a zero keeps a's sign (r's bits are tested, not r != 0: under
 * -fno-signed-zeros gcc returned the constant 0 for a zero r, and -0 lost its sign). */
#define TL_FMOD_MAPS(T, UT, sfx, lanes, libm)                                                \
static inline T tl_remainder_adjust_##sfx(T r, T b) {                                        \
    T moved = (r < (T)0) != (b < (T)0) ? r + b : r;                                          \
    UT bits;                                                                                 \
    memcpy(&bits, &r, sizeof bits);                                                          \
    return (UT)(bits << 1) ? moved : r;                                                      \
}                                                                                            \
static void tl_fmod_fixup_##sfx(const T *a, const T *b, ptrdiff_t bstride, T *out,           \
                                ptrdiff_t n) {                                               \
    int any = 0;                                                                             \
    for (ptrdiff_t i = 0; i < n; i++)                                                        \
        any |= out[i] != out[i];                                                             \
    if (!any)                                                                                \
        return;                                                                              \
    for (ptrdiff_t i = 0; i < n; i++)                                                        \
        if (out[i] != out[i])                                                                \
            out[i] = libm(a[i], b[i * bstride]);                                             \
}                                                                                            \
TL_CLONES                                                                                    \
static void tl_fmod_lanes_##sfx(const T *a, const T *b, ptrdiff_t bstride, T *out,           \
                                ptrdiff_t n) {                                               \
    if (bstride) {                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = lanes(a[i], b[i]);                        \
    } else {                                                                                 \
        T d = b[0];                                                                          \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = lanes(a[i], d);                           \
    }                                                                                        \
}                                                                                            \
TL_CLONES                                                                                    \
static void tl_remainder_adjust_map_##sfx(const T *b, ptrdiff_t bstride, T *out,             \
                                          ptrdiff_t n) {                                     \
    if (bstride) {                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_remainder_adjust_##sfx(out[i], b[i]);  \
    } else {                                                                                 \
        T d = b[0];                                                                          \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = tl_remainder_adjust_##sfx(out[i], d);     \
    }                                                                                        \
}                                                                                            \
static void tl_fmod_##sfx(const T *a, const T *b, ptrdiff_t bstride, T *out, ptrdiff_t n) {  \
    tl_fmod_lanes_##sfx(a, b, bstride, out, n);                                              \
    tl_fmod_fixup_##sfx(a, b, bstride, out, n);                                              \
}                                                                                            \
static void tl_remainder_##sfx(const T *a, const T *b, ptrdiff_t bstride, T *out,            \
                               ptrdiff_t n) {                                                \
    tl_fmod_##sfx(a, b, bstride, out, n);                                                    \
    tl_remainder_adjust_map_##sfx(b, bstride, out, n);                                       \
}

/* exp(r) for |r| <= ln 2 / 2: Cephes' minimax polynomial, 1 + r + r^2 P(r) */
static inline float tl_exp_poly(float r) {
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * z + r + 1.0f;
}

/* x - n ln 2 for integral n, ln 2 in two parts (Cody-Waite; the first, 0.693359375, has 9
 * bits, so n times it is exact for |n| < 2^15). Explicit fmaf keeps -ffast-math from
 * reassociating the split back into one rounded product. */
static inline float tl_sub_n_ln2(float x, float n) {
    return fmaf(n, 2.12194440e-4f, fmaf(n, -0.693359375f, x));
}

static inline float tl_expf(float x) {
    /* n = round(x / ln 2), clamped so 2^n stays a normal float: exp then overflows to a huge
     * value or inf above ~88.7 and goes to ~0 below ~-87.3, which is all sigmoid and tanh need.
     * (Clamping x itself, or rounding by an int conversion, stops gcc from vectorising.) */
    float n = nearbyintf(x * 1.44269504088896341f);
    n = n < -126.0f ? -126.0f : n;
    n = n > 127.0f ? 127.0f : n;
    float p = tl_exp_poly(tl_sub_n_ln2(x, n));
    /* 2^n from its exponent bits */
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    /* outside the clamp (and for +-inf) the polynomial is meaningless: 0 or inf */
    float y = p * s;
    y = x < -88.0f ? 0.0f : y;
    return x > 88.7f ? INFINITY : y;
}

static inline float tl_sigmoidf(float x) {
    return 1.0f / (1.0f + tl_expf(-x));
}

static inline float tl_tanhf(float x) {
    /* |x| < 0.625: odd polynomial (no cancellation near 0); else 1 - 2 / (exp(2|x|) + 1) */
    float a = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                    + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (tl_expf(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

/* log1p(z) for z in [-1/2, 1]: 2 atanh(s), s = z / (2 + z) in [-1/3, 1/3], by its odd series
 * to s^15 (the next term is below 3e-9 relative): plain arithmetic that vectorises, where
 * libm's log1pf is a call per element. NaN in gives NaN. */
static inline float tl_log1p01f(float z) {
    float s = z / (2.0f + z), s2 = s * s;
    float p = 2.0f / 15.0f;
    p = p * s2 + 2.0f / 13.0f;
    p = p * s2 + 2.0f / 11.0f;
    p = p * s2 + 2.0f / 9.0f;
    p = p * s2 + 2.0f / 7.0f;
    p = p * s2 + 2.0f / 5.0f;
    p = p * s2 + 2.0f / 3.0f;
    p = p * s2 + 2.0f;
    return p * s;
}

/* u = 2^(ef - eoff) m, m in [sqrt(1/2), sqrt(2)), for a positive normal finite u: returns
 * m - 1 (exact, in [-0.293, 0.415)) and sets *ef */
static inline float tl_log_split(float u, int32_t eoff, float *ef) {
    int32_t b;
    memcpy(&b, &u, sizeof b);
    int32_t e = ((b >> 23) & 0xff) - 127;
    int32_t mb = (b & 0x7fffff) | 0x3f800000;
    float m;
    memcpy(&m, &mb, sizeof m);
    int32_t up = m > 1.41421356f;
    m = up ? 0.5f * m : m;
    *ef = (float)(e + up + eoff);
    return m - 1.0f;
}

/* log(u) of a positive normal finite float: u = 2^e m with m in [sqrt(1/2), sqrt(2)) from
 * the bits, log(m) = log1p(m - 1) by the series above (|s| < 0.18), plus e ln 2 in two parts
 * (Cody-Waite, as tl_expf). The caller selects its own value for 0, negatives, inf and NaN. */
static inline float tl_logf_pos(float u) {
    float ef, l = tl_log1p01f(tl_log_split(u, 0, &ef));
    return fmaf(ef, 0.693359375f, fmaf(ef, -2.12194440e-4f, l));
}

/* log1p(x), float32, ~2 ulp: the series directly for x in [-1/2, 1] (no rounding of 1 + x),
 * else log(1 + x), where 1 + x is exact (x < -1/2) or its rounding costs under an ulp of a log
 * above ln 2. -inf at -1, NaN below it, inf at inf, NaN at NaN. */
static inline float tl_log1pf(float x) {
    float u = 1.0f + x;
    float r = (x >= -0.5f && x <= 1.0f) ? tl_log1p01f(x) : tl_logf_pos(u);
    r = u == 0.0f ? -INFINITY : r;
    r = u < 0.0f ? NAN : r;
    r = x == INFINITY ? INFINITY : r;
    return x != x ? x : r;
}

/* expm1(x), float32, ~2 ulp below 1 and ~4 above: for |x| < 1, where exp(x) - 1 would cancel,
 * x + x^2 p(x) with p its Taylor series to x^12 / 12! (the next term is below 2e-10 relative);
 * else exp(x) - 1 (-1 below -88, inf above 88.7). NaN gives NaN. */
static inline float tl_expm1f(float x) {
    float p = 1.0f / 479001600.0f;
    p = p * x + 1.0f / 39916800.0f;
    p = p * x + 1.0f / 3628800.0f;
    p = p * x + 1.0f / 362880.0f;
    p = p * x + 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    float small = fmaf(x * x, p, x);
    float big = tl_expf(x) - 1.0f;
    float a = x < 0.0f ? -x : x;
    return a < 1.0f ? small : big;
}

/* p 2^n for p in [0.5, 2) and integral n in [-151, 128], rounded once as libm's exp: 2^n is
 * added to p's exponent bits (exact, and not a float product that -ffast-math could
 * reassociate), then one product by 2 (n = 128: may overflow to inf) or 2^-100 (n < -100:
 * rounds into the subnormals) */
static inline float tl_ldexp_pos(float p, float n) {
    float k = n > 127.0f ? n - 1.0f : n;
    k = n < -100.0f ? n + 100.0f : k;
    float scale = n > 127.0f ? 2.0f : 1.0f;
    scale = n < -100.0f ? 7.88860905e-31f : scale;      /* 2^-100 */
    int32_t b;
    memcpy(&b, &p, sizeof b);
    b += (int32_t)k << 23;
    float t;
    memcpy(&t, &b, sizeof t);
    return t * scale;
}

/* exp(n ln 2 + r) for |r| <= ln 2 / 2 */
static inline float tl_exp_reduced(float n, float r) {
    return tl_ldexp_pos(tl_exp_poly(r), n);
}

/* exp(x) over the whole float32 range, ~1 ulp, for tl.exp (tl_expf stops at the normal
 * floats, all that sigmoid and tanh need): subnormal results below ~-87.34, 0 below ~-103.97,
 * inf above 88.7228394 (ln FLT_MAX), NaN for NaN. */
static inline float tl_exp_fullf(float x) {
    float n = nearbyintf(x * 1.44269504088896341f);
    n = n < -151.0f ? -151.0f : n;
    n = n > 128.0f ? 128.0f : n;
    float y = tl_exp_reduced(n, tl_sub_n_ln2(x, n));
    y = x < -104.0f ? 0.0f : y;
    y = x > 89.0f ? INFINITY : y;
    return x != x ? x : y;
}

/* 2^x, float32, ~1 ulp: n = round(x), r = (x - n) ln 2 (x - n is exact) */
static inline float tl_exp2_fullf(float x) {
    float n = nearbyintf(x);
    n = n < -151.0f ? -151.0f : n;
    n = n > 128.0f ? 128.0f : n;
    float y = tl_exp_reduced(n, (x - n) * 0.693147180559945309f);
    y = x < -152.0f ? 0.0f : y;
    y = x > 129.0f ? INFINITY : y;
    return x != x ? x : y;
}

/* log(x) and log2(x), float32, ~1 and ~2 ulp, IEEE special values: -inf at +-0, NaN below 0
 * and at NaN, inf at inf. x = 2^e (1 + t) (subnormal x scaled by 2^23 first), then log(1 + t)
 * = t - t^2 / 2 + t^3 P(t), Cephes' minimax P, with the small terms summed before t. */
static inline float tl_log_in(float x, float *ef, float *t) {
    int32_t sub = x < 1.17549435e-38f;
    *t = tl_log_split(sub ? x * 8388608.0f : x, sub ? -23 : 0, ef);
    float u = *t, p = 7.0376836292e-2f;
    p = p * u - 1.1514610310e-1f;
    p = p * u + 1.1676998740e-1f;
    p = p * u - 1.2420140846e-1f;
    p = p * u + 1.4249322787e-1f;
    p = p * u - 1.6668057665e-1f;
    p = p * u + 2.0000714765e-1f;
    p = p * u - 2.4999993993e-1f;
    p = p * u + 3.3333331174e-1f;
    float z = u * u;
    return fmaf(-0.5f, z, p * u * z);     /* log(1 + t) - t */
}

static inline float tl_log_special(float x, float r) {
    r = x == 0.0f ? -INFINITY : r;
    r = x < 0.0f ? NAN : r;
    r = x == INFINITY ? INFINITY : r;
    return x != x ? x : r;
}

static inline float tl_log_fullf(float x) {
    float ef, t, y = tl_log_in(x, &ef, &t);
    y = fmaf(ef, -2.12194440e-4f, y);
    return tl_log_special(x, fmaf(ef, 0.693359375f, t + y));
}

static inline float tl_log2_fullf(float x) {
    /* (t + y) log2(e), log2(e) in two parts (1.44269502f + 1.92596303e-8f), summed small
     * terms first */
    float ef, t, y = tl_log_in(x, &ef, &t);
    float lo = fmaf(t + y, 1.92596303e-8f, y * 1.44269502f);
    return tl_log_special(x, fmaf(t, 1.44269502f, lo) + ef);
}

/* exp(a) / 2 for a >= 0, finite up to ~89.4 (where exp(a) alone overflows from ~88.7) */
static inline float tl_exp_halff(float a) {
    float n = nearbyintf(a * 1.44269504088896341f);
    n = n > 129.0f ? 129.0f : n;
    float y = tl_exp_reduced(n - 1.0f, tl_sub_n_ln2(a, n));
    return a > 90.0f ? INFINITY : y;
}

/* The hyperbolic functions and their inverses, float32, branch-free (~1-3 ulp; NaN gives
 * NaN, infinities and the domain edges as libm's). */
static inline float tl_sinhf(float x) {
    /* below 1: from expm1, e = expm1(a), sinh a = (e + e / (e + 1)) / 2 (no cancellation);
     * above: h - 1/(4h) with h = exp(a) / 2 */
    float a = fabsf(x);
    float e = tl_expm1f(a < 1.0f ? a : 0.0f);
    float small = 0.5f * (e + e / (e + 1.0f));
    float h = tl_exp_halff(a < 1.0f ? 1.0f : a);
    float y = a < 1.0f ? small : h - 0.25f / h;
    y = copysignf(y, x);
    return x != x ? x : y;
}

static inline float tl_coshf(float x) {
    float h = tl_exp_halff(fabsf(x));
    float y = h + 0.25f / h;
    return x != x ? x : y;
}

static inline float tl_atanhf(float x) {
    /* atanh a = log1p(2a / (1 - a)) / 2: inf at 1, NaN beyond */
    float a = fabsf(x);
    float y = 0.5f * tl_log1pf((a + a) / (1.0f - a));
    y = a > 1.0f ? NAN : y;
    y = copysignf(y, x);
    return x != x ? x : y;
}

static inline float tl_asinhf(float x) {
    /* log1p(a + a^2 / (1 + sqrt(1 + a^2))), exact in form near 0; from 2^12, log(a) + ln 2
     * (a^2 would overflow) */
    float a = fabsf(x);
    float b = a < 4096.0f ? a : 0.0f;
    float q = b * b;
    float small = tl_log1pf(b + q / (1.0f + sqrtf(1.0f + q)));
    float big = tl_log_fullf(a) + 0.693147180559945309f;
    float y = copysignf(a < 4096.0f ? small : big, x);
    return x != x ? x : y;
}

static inline float tl_acoshf(float x) {
    /* t = x - 1 (exact below 2): log1p(t + sqrt(2t + t^2)); from 2^12, log(x) + ln 2; NaN
     * below 1 */
    float t = x < 4096.0f ? x - 1.0f : 0.0f;
    float small = tl_log1pf(t + sqrtf(t + t + t * t));
    float big = tl_log_fullf(x) + 0.693147180559945309f;
    float y = x < 4096.0f ? small : big;
    y = x < 1.0f ? NAN : y;
    return x != x ? x : y;
}

/* sin, cos and tan, float32 (~1-2 ulp): x = q pi/2 + r with the reduction in double (pi/2
 * in two parts, the first of 33 bits, so q pi/2 is exact below 2^20 and r keeps its relative
 * accuracy next to the zeros), then Cephes' sinf/cosf/tanf polynomials on |r| <= pi/4. The
 * maps redo |x| >= 2^20 with libm (tl_trig_fixup). */
#define TL_TRIG_MAX 1048576.0f
static inline float tl_trig_reduce(float x, int32_t *q) {
    double xd = (double)x;
    double j = nearbyint(xd * 0.636619772367581343);
    double r = fma(-j, 1.57079632673412561417, xd);
    r = fma(-j, 6.07710050650619224932e-11, r);
    *q = (int32_t)(fabs(j) < 2097152.0 ? j : 0.0);
    return (float)r;
}

static inline float tl_sin_poly(float r, float z) {
    float p = (-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f;
    return fmaf(p * z, r, r);
}

static inline float tl_cos_poly(float z) {
    float p = (2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f;
    return fmaf(p, z * z, fmaf(-0.5f, z, 1.0f));
}

static inline float tl_sinf(float x) {
    int32_t q;
    float r = tl_trig_reduce(x, &q), z = r * r;
    float s = tl_sin_poly(r, z), c = tl_cos_poly(z);
    float y = (q & 1) ? c : s;
    return (q & 2) ? -y : y;
}

static inline float tl_cosf(float x) {
    int32_t q;
    float r = tl_trig_reduce(x, &q), z = r * r;
    float s = tl_sin_poly(r, z), c = tl_cos_poly(z);
    float y = (q & 1) ? s : c;
    return ((q + 1) & 2) ? -y : y;
}

static inline float tl_tanf(float x) {
    int32_t q;
    float r = tl_trig_reduce(x, &q), z = r * r;
    float p = ((((9.38540185543e-3f * z + 3.11992232697e-3f) * z + 2.44301354525e-2f) * z
                + 5.34112807005e-2f) * z + 1.33387994085e-1f) * z + 3.33331568548e-1f;
    float t = fmaf(p * z, r, r);
    return (q & 1) ? -1.0f / t : t;
}

/* libm for the arguments past the double reduction's range (inf and NaN included), a call
 * the vectoriser leaves alone */
__attribute__((noinline)) static void tl_trig_libm(const float *x, float *out, ptrdiff_t n,
                                                    float (*f)(float)) {
    for (ptrdiff_t i = 0; i < n; i++)
        if (!(fabsf(x[i]) < TL_TRIG_MAX)) out[i] = f(x[i]);
}

TL_CLONES
static void tl_trig_fixup(const float *x, float *out, ptrdiff_t n, float (*f)(float)) {
    int any = 0;    /* a vectorised scan first: such arguments are rare */
    for (ptrdiff_t i = 0; i < n; i++)
        any |= !(fabsf(x[i]) < TL_TRIG_MAX);
    if (any)
        tl_trig_libm(x, out, n, f);
}

/* atan, asin and acos, float32: Cephes' atanf/asinf reductions and minimax polynomials
 * (~1-2 ulp), branch-free. */
static inline float tl_atanf(float x) {
    float a = fabsf(x);
    int big = a > 2.414213562373095f, mid = a > 0.4142135623730950f;
    float t = big ? -1.0f / a : (mid ? (a - 1.0f) / (a + 1.0f) : a);
    float y0 = big ? 1.57079632679489662f : (mid ? 0.785398163397448310f : 0.0f);
    float z = t * t;
    float p = ((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z
              - 3.33329491539e-1f;
    float y = copysignf(y0 + fmaf(p * z, t, t), x);
    return x != x ? x : y;
}

/* asin(t) for |t| <= 0.5 with z = t^2 */
static inline float tl_asin_small(float t, float z) {
    float p = (((4.2163199048e-2f * z + 2.4181311049e-2f) * z + 4.5470025998e-2f) * z
               + 7.4953002686e-2f) * z + 1.6666752422e-1f;
    return fmaf(p * z, t, t);
}

/* flag == 0: asin(v) for |v| <= 1/2; flag: asin(sqrt((1 - a) / 2)), a = |v| > 1/2, the
 * reduction asin and acos share */
static inline float tl_asin_reduced(float v, float a, int flag) {
    float z = flag ? 0.5f * (1.0f - a) : v * v;
    return tl_asin_small(flag ? sqrtf(z) : v, z);
}

static inline float tl_asinf(float x) {
    /* above 1/2: asin a = pi/2 - 2 asin(sqrt((1 - a) / 2)) */
    float a = fabsf(x);
    int flag = a > 0.5f;
    float s = tl_asin_reduced(a, a, flag);
    float y = flag ? 1.57079632679489662f - (s + s) : s;
    y = a > 1.0f ? NAN : copysignf(y, x);
    return x != x ? x : y;
}

static inline float tl_acosf(float x) {
    /* |x| > 1/2: 2 asin(sqrt((1 - |x|) / 2)), from pi below 0; else pi/2 - asin x */
    float a = fabsf(x);
    int flag = a > 0.5f;
    float s = tl_asin_reduced(x, a, flag);
    float y = flag ? (x < 0.0f ? 3.14159265358979324f - (s + s) : s + s)
                   : 1.57079632679489662f - s;
    y = a > 1.0f ? NAN : y;
    return x != x ? x : y;
}

/* name(a, b, out, n): out[i] = f(a[i], b[i]) over flat float32 arrays */
#define TL_MAP2_F32(name, f) TL_MAP2_T(float, name, f)

/* atan2(y, x), float32 (~3 ulp): atan(y / x) moved by pi into the left half plane, with C99's
 * values on the axes and at the infinities, signed zeros included */
static inline float tl_atan2f(float y, float x) {
    /* (one select per condition, each on its own: gcc does not vectorise selects on && or ||
     * of float compares) */
    const float pi = 3.14159265358979324f;
    float t = tl_atanf(y / x);
    /* the signs as +-1 (copysignf reads the bit: signed zeros count) */
    float sx = copysignf(1.0f, x), sy = copysignf(1.0f, y);
    float r = sx < 0.0f ? t + sy * pi : t;
    /* both infinite (and 0 / 0, overridden below): pi/4 or 3pi/4 */
    r = r != r ? (sx < 0.0f ? 2.35619449019234492f : 0.785398163397448310f) : r;
    r = x == 0.0f ? 1.57079632679489662f : r;       /* on the y axis */
    r = y == 0.0f ? (sx < 0.0f ? pi : 0.0f) : r;    /* on the x axis, the origin included */
    r = copysignf(r, sy);                           /* atan2 has the sign of y, always */
    r = x != x ? x : r;
    return y != y ? y : r;
}

/* hypot(a, b), float32: the sum of squares and its root in double (no overflow, one final
 * rounding), inf when either is infinite (even with NaN) */
static inline float tl_hypotf(float a, float b) {
    double ad = (double)a, bd = (double)b;
    float h = (float)sqrt(ad * ad + bd * bd);
    return (fabsf(a) == INFINITY || fabsf(b) == INFINITY) ? INFINITY : h;
}

/* One row of the forward; every gate segment is its own restrict pointer so the loop over
 * j vectorises. */
static inline void tl_lstm_fwd_row(const float *restrict gi, const float *restrict gf,
                                   const float *restrict gg, const float *restrict go,
                                   const float *restrict c, float *restrict ai,
                                   float *restrict af, float *restrict ag, float *restrict ao,
                                   float *restrict hn, float *restrict cn, ptrdiff_t h) {
    for (ptrdiff_t j = 0; j < h; j++) {
        float i = tl_sigmoidf(gi[j]), f = tl_sigmoidf(gf[j]);
        float g = tl_tanhf(gg[j]), o = tl_sigmoidf(go[j]);
        float cc = f * c[j] + i * g;
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        cn[j] = cc;
        hn[j] = o * tl_tanhf(cc);
    }
}

/* Forward of one LSTM cell step (gate order i, f, g, o as in PyTorch), row-major:
 * gates (n, 4h), c (n, h) -> h_new (n, h), c_new (n, h), acts (n, 4h) = activated gates. */
TL_CLONES
static void tl_lstm_cell_fwd_f32(const float *gates, const float *c, float *h_new, float *c_new,
                                 float *acts, ptrdiff_t n, ptrdiff_t h) {
    for (ptrdiff_t r = 0; r < n; r++) {
        const float *g = gates + r * 4 * h;
        float *a = acts + r * 4 * h;
        tl_lstm_fwd_row(g, g + h, g + 2 * h, g + 3 * h, c + r * h, a, a + h, a + 2 * h,
                        a + 3 * h, h_new + r * h, c_new + r * h, h);
    }
}

/* One row of the backward. ``ga*`` may all be NULL (no gradient flows into acts): the
 * branch is outside the loops, each of which vectorises. */
static inline void tl_lstm_bwd_row(const float *restrict i_, const float *restrict f_,
                                   const float *restrict g_, const float *restrict o_,
                                   const float *restrict c, const float *restrict cn,
                                   const float *restrict gh, const float *restrict gc,
                                   const float *restrict gai, const float *restrict gaf,
                                   const float *restrict gag, const float *restrict gao,
                                   float *restrict di, float *restrict df,
                                   float *restrict dg, float *restrict d_o,
                                   float *restrict dc, ptrdiff_t h) {
    for (ptrdiff_t j = 0; j < h; j++) {
        float i = i_[j], f = f_[j], g = g_[j], o = o_[j];
        float tc = tl_tanhf(cn[j]);
        float dcn = gc[j] + gh[j] * o * (1.0f - tc * tc);
        di[j] = dcn * g * i * (1.0f - i);
        df[j] = dcn * c[j] * f * (1.0f - f);
        dg[j] = dcn * i * (1.0f - g * g);
        d_o[j] = gh[j] * tc * o * (1.0f - o);
        dc[j] = dcn * f;
    }
    if (gai) {
        for (ptrdiff_t j = 0; j < h; j++) {
            float i = i_[j], f = f_[j], g = g_[j], o = o_[j];
            di[j] += gai[j] * i * (1.0f - i);
            df[j] += gaf[j] * f * (1.0f - f);
            dg[j] += gag[j] * (1.0f - g * g);
            d_o[j] += gao[j] * o * (1.0f - o);
        }
    }
}

/* Its first-order backward: from acts, c, c_new and the output gradients gh, gc, gacts
 * (gacts may be NULL: no gradient on acts) -> dgates (n, 4h), dc (n, h). */
TL_CLONES
static void tl_lstm_cell_bwd_f32(const float *acts, const float *c, const float *c_new,
                                 const float *gh, const float *gc, const float *gacts,
                                 float *dgates, float *dc, ptrdiff_t n, ptrdiff_t h) {
    for (ptrdiff_t r = 0; r < n; r++) {
        const float *a = acts + r * 4 * h;
        const float *ga = gacts ? gacts + r * 4 * h : NULL;
        float *d = dgates + r * 4 * h;
        tl_lstm_bwd_row(a, a + h, a + 2 * h, a + 3 * h, c + r * h, c_new + r * h, gh + r * h,
                        gc + r * h, ga, ga ? ga + h : NULL, ga ? ga + 2 * h : NULL,
                        ga ? ga + 3 * h : NULL, d, d + h, d + 2 * h, d + 3 * h, dc + r * h, h);
    }
}

/* Softmax of one row of c float32 logits into prob, and -log softmax[t] into *loss (t in
 * [0, c), checked by the caller). Sums in double; NaN and inf behave as the plain formula
 * (a NaN or +inf logit makes the row NaN). */
TL_CLONES
static void tl_softmax_xent_row_f32(const float *restrict x, int64_t t, float *restrict prob,
                                    float *loss, ptrdiff_t c) {
    float m = x[0];
    /* a vectorised max that may skip NaN: exp(NaN) carries it into s (see _softmax.h) */
#pragma omp simd reduction(max:m)
    for (ptrdiff_t k = 1; k < c; k++)
        m = x[k] > m ? x[k] : m;
    double s = 0.0;
    for (ptrdiff_t k = 0; k < c; k++) {
        float e = tl_expf(x[k] - m);
        prob[k] = e;
        s += e;
    }
    float inv = (float)(1.0 / s);
    for (ptrdiff_t k = 0; k < c; k++)
        prob[k] *= inv;
    *loss = (float)(log(s) + (double)m - (double)x[t]);
}

/* Layer norm of one row of d float32 or float64 values (w, b may be NULL): y = (x - mean) *
 * rstd * w + b, statistics summed in double. Its backward for one row: dx from gy (and the
 * statistics' own gradients gm, gr), and gy * xhat into gyx (summed over rows by the caller
 * for the weight gradient). */
#define TL_LAYER_NORM_ROWS(T, S)                                                             \
TL_CLONES                                                                                    \
static void tl_layer_norm_row_##S(const T *restrict x, const T *restrict w,                  \
                                  const T *restrict b, T *restrict y, T *mean, T *rstd,      \
                                  ptrdiff_t d, double eps) {                                 \
    double s = 0.0, ss = 0.0;                                                                \
    for (ptrdiff_t k = 0; k < d; k++)                                                        \
        s += x[k];                                                                           \
    T m = (T)(d ? s / (double)d : 0.0);                                                      \
    for (ptrdiff_t k = 0; k < d; k++) {                                                      \
        T c = x[k] - m;                                                                      \
        ss += (double)c * c;                                                                 \
    }                                                                                        \
    T r = (T)(1.0 / sqrt((d ? ss / (double)d : 0.0) + eps));                                 \
    for (ptrdiff_t k = 0; k < d; k++)                                                        \
        y[k] = (x[k] - m) * r;                                                               \
    if (w)                                                                                   \
        for (ptrdiff_t k = 0; k < d; k++)                                                    \
            y[k] *= w[k];                                                                    \
    if (b)                                                                                   \
        for (ptrdiff_t k = 0; k < d; k++)                                                    \
            y[k] += b[k];                                                                    \
    *mean = m;                                                                               \
    *rstd = r;                                                                               \
}                                                                                            \
                                                                                             \
TL_CLONES                                                                                    \
static void tl_layer_norm_bwd_row_##S(const T *restrict x, T m, T r, const T *restrict gy,   \
                                      T gm, T gr, const T *restrict w, T *restrict dx,       \
                                      T *restrict gyx, ptrdiff_t d) {                        \
    double s1 = 0.0, s2 = 0.0;                                                               \
    for (ptrdiff_t k = 0; k < d; k++) {                                                      \
        T xh = (x[k] - m) * r;                                                               \
        T g = w ? gy[k] * w[k] : gy[k];                                                      \
        s1 += g;                                                                             \
        s2 += (double)g * xh;                                                                \
        gyx[k] = gy[k] * xh;                                                                 \
    }                                                                                        \
    T inv_d = d ? (T)1 / (T)d : (T)0;                                                        \
    T a = (T)s1 * inv_d, c = (T)s2 * inv_d;                                                  \
    for (ptrdiff_t k = 0; k < d; k++) {                                                      \
        T xh = (x[k] - m) * r;                                                               \
        T g = w ? gy[k] * w[k] : gy[k];                                                      \
        dx[k] = r * (g - a - xh * c) + (gm - gr * r * r * xh) * inv_d;                       \
    }                                                                                        \
}

TL_LAYER_NORM_ROWS(float, f32)
TL_LAYER_NORM_ROWS(double, f64)

/* Batch norm over x laid out (N, C, S), one channel at a time: its N rows of S values lie
 * cs = C * S apart. The statistics accumulate in double per row of S (float partial sums
 * would lose digits on large batches). */
TL_CLONES
static void tl_bn_stats_f32(const float *restrict x, ptrdiff_t n, ptrdiff_t cs, ptrdiff_t s,
                            double *mean, double *var) {
    double sum = 0.0, ss = 0.0, cnt = (double)n * (double)s;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float *p = x + i * cs;
        for (ptrdiff_t k = 0; k < s; k++)
            sum += p[k];
    }
    float m = (float)(sum / cnt);
    for (ptrdiff_t i = 0; i < n; i++) {
        const float *p = x + i * cs;
        for (ptrdiff_t k = 0; k < s; k++) {
            float c = p[k] - m;
            ss += (double)c * c;
        }
    }
    *mean = sum / cnt;
    *var = ss / cnt;
}

/* m - (float)m: what a float32 copy of a mean loses, for the shift to give back. The
 * volatile keeps -ffast-math from folding it to 0. */
static inline double tl_f32_residual(double m) {
    volatile float t = (float)m;
    return m - (double)t;
}

/* y = (x - m) * scale + shift over one channel; centring first keeps the digits of a
 * channel whose mean is large against its spread. */
TL_CLONES
static void tl_bn_apply_f32(const float *restrict x, float *restrict y, ptrdiff_t n,
                            ptrdiff_t cs, ptrdiff_t s, float m, float scale, float shift) {
    for (ptrdiff_t i = 0; i < n; i++) {
        const float *p = x + i * cs;
        float *q = y + i * cs;
        for (ptrdiff_t k = 0; k < s; k++)
            q[k] = (p[k] - m) * scale + shift;
    }
}

/* The backward's two sums over one channel: sum gy and sum gy * (x - m). */
TL_CLONES
static void tl_bn_bwd_sums_f32(const float *restrict x, const float *restrict gy, ptrdiff_t n,
                               ptrdiff_t cs, ptrdiff_t s, float m, double *sg, double *sgx) {
    double a = 0.0, b = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float *p = x + i * cs, *g = gy + i * cs;
        for (ptrdiff_t k = 0; k < s; k++) {
            a += g[k];
            b += (double)g[k] * (p[k] - m);
        }
    }
    *sg = a;
    *sgx = b;
}

/* dx = a * gy + b * (x - m) + d over one channel (the coefficients fold the statistics'
 * gradients and the weight in; tensorlib/ops/nn_norm.py derives them). */
TL_CLONES
static void tl_bn_bwd_dx_f32(const float *restrict x, const float *restrict gy,
                             float *restrict dx, ptrdiff_t n, ptrdiff_t cs, ptrdiff_t s,
                             float m, float a, float b, float d) {
    for (ptrdiff_t i = 0; i < n; i++) {
        const float *p = x + i * cs, *g = gy + i * cs;
        float *q = dx + i * cs;
        for (ptrdiff_t k = 0; k < s; k++)
            q[k] = a * g[k] + b * (p[k] - m) + d;
    }
}

/* y += a * x and the dot product over n elements, float32 and float64: the depthwise
 * convolution's taps (compiled per instruction set, unlike the Cython loops). */
TL_CLONES
static void tl_axpy_f32(float *restrict y, const float *restrict x, float a, ptrdiff_t n) {
    for (ptrdiff_t k = 0; k < n; k++)
        y[k] += a * x[k];
}

TL_CLONES
static void tl_axpy_f64(double *restrict y, const double *restrict x, double a, ptrdiff_t n) {
    for (ptrdiff_t k = 0; k < n; k++)
        y[k] += a * x[k];
}

TL_CLONES
static double tl_dot_f32(const float *restrict a, const float *restrict b, ptrdiff_t n) {
    float s = 0.0f;
    for (ptrdiff_t k = 0; k < n; k++)
        s += a[k] * b[k];
    return s;
}

TL_CLONES
static double tl_dot_f64(const double *restrict a, const double *restrict b, ptrdiff_t n) {
    double s = 0.0;
    for (ptrdiff_t k = 0; k < n; k++)
        s += a[k] * b[k];
    return s;
}

/* ReLU of a flat float32 array: x where x is not negative (NaN passes through), else 0. */
TL_CLONES
static void tl_relu_f32(const float *restrict x, float *restrict out, ptrdiff_t n) {
    for (ptrdiff_t k = 0; k < n; k++)
        out[k] = x[k] < 0.0f ? 0.0f : x[k];
}

/* sign(x): -1, 0 or 1, and 0 for NaN (PyTorch's; NumPy's sign keeps NaN) */
static inline float tl_signf(float x) {
    float s = x > 0.0f ? 1.0f : 0.0f;
    return x < 0.0f ? -1.0f : s;
}
TL_MAP_F32(tl_sign_f32, tl_signf)

/* 1 / sqrt(x), rounded twice as NumPy's 1.0 / np.sqrt(x) */
static inline float tl_rsqrtf(float x) {
    return 1.0f / sqrtf(x);
}
TL_MAP_F32(tl_rsqrt_f32, tl_rsqrtf)

/* Numerical Recipes' Chebyshev fit of erfc for a >= 0 (fractional error < 1.2e-7):
 * erfc(a) = t exp(TL_ERFC_FIT(T, t) - a^2), t = 1 / (1 + a / 2), in the floating type T */
#define TL_ERFC_FIT(T, t)                                                                   \
    ((((((((((T)0.17087277 * (t) - (T)0.82215223) * (t) + (T)1.48851587) * (t)             \
    - (T)1.13520398) * (t) + (T)0.27886807) * (t) - (T)0.18628806) * (t) + (T)0.09678418)  \
    * (t) + (T)0.37409196) * (t) + (T)1.00002368) * (t) - (T)1.26551223)

/* erfc(a) for a >= 0, float32, on tl_expf */
static inline float tl_erfcf_pos(float a) {
    float t = 1.0f / (1.0f + 0.5f * a);
    return t * tl_expf(TL_ERFC_FIT(float, t) - a * a);
}

static inline float tl_erff(float x) {
    /* |x| < 0.5: the Maclaurin series to x^13 (relative error < 2e-8; no cancellation near
     * 0); else 1 - erfc. Branch-free selects, so gcc vectorises the loop. */
    float a = fabsf(x), z = x * x;
    float s = -1.0f / 75600.0f;
    s = s * z + 1.0f / 9360.0f;
    s = s * z - 1.0f / 1320.0f;
    s = s * z + 1.0f / 216.0f;
    s = s * z - 1.0f / 42.0f;
    s = s * z + 1.0f / 10.0f;
    s = s * z - 1.0f / 3.0f;
    s = (s * z + 1.0f) * x * 1.12837916709551257f;
    float l = copysignf(1.0f - tl_erfcf_pos(a), x);
    return a < 0.5f ? s : l;
}

/* The normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 from erfc alone: below zero Phi is erfc/2
 * itself, so GELU's left tail keeps its relative accuracy, where 1 + erf(x / sqrt 2)
 * cancels. One exp and no series branch: less work than tl_erff. */
static inline float tl_normcdff(float x) {
    float h = 0.5f * tl_erfcf_pos(fabsf(x) * 0.70710678118654752f);
    return x < 0.0f ? h : 1.0f - h;
}

/* GELU (exact form) and its gradient, one pass each: x * Phi(x), and g * (Phi(x) + x phi(x))
 * with Phi the normal CDF and phi its density. */
TL_CLONES
static void tl_gelu_f32(const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++)
        out[k] = x[k] * tl_normcdff(x[k]);
}

TL_CLONES
static void tl_gelu_grad_f32(const float *g, const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float v = x[k];
        float pdf = 0.39894228040143268f * tl_expf(-0.5f * v * v);
        out[k] = g[k] * (tl_normcdff(v) + v * pdf);
    }
}

/* GELU's tanh form, 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), as
 * x / (1 + exp(-2u)) (the same function: 1 + tanh(u) = 2 / (1 + exp(-2u))): one exp and one
 * division in one pass, where NumPy's composite took seven passes and their temporaries
 * (1.7x PyTorch at 4M). The left tail keeps its relative accuracy (no 1 + tanh to cancel);
 * -inf gives NaN (-inf / inf) and +-inf's neighbours overflow to x and -0, as PyTorch's. */
TL_CLONES
static void tl_gelu_tanh_f32(const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float v = x[k];
        float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
        out[k] = v / (1.0f + tl_expf(-2.0f * u));
    }
}

/* GELU's tanh form's backward, g (sigma(2u) + 2 x u' e / (1 + e)^2) with e = exp(-2|u|) (the
 * derivative 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u' written without overflow: sigma(2u)
 * is 1 / (1 + e) from 0 up, e / (1 + e) below; e / (1 + e)^2 is even in u), in one pass
 * where the composite took a dozen; u' = sqrt(2/pi) (1 + 3 0.044715 x^2). */
TL_CLONES
static void tl_gelu_tanh_grad_f32(const float *g, const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float v = x[k], v2 = v * v;
        float u = 0.79788456080286536f * (v + 0.044715f * v2 * v);
        float du = 0.79788456080286536f * (1.0f + 0.134145f * v2);
        float e = tl_expf(-2.0f * (u < 0.0f ? -u : u)), q = 1.0f / (1.0f + e);
        float s = u < 0.0f ? e * q : q;
        out[k] = g[k] * (s + 2.0f * v * du * e * q * q);
    }
}

/* SiLU, x sigmoid(x), one pass */
TL_CLONES
static void tl_silu_f32(const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) out[k] = x[k] * tl_sigmoidf(x[k]);
}

/* SiLU's backward, g * s (1 + x (1 - s)) with s = sigmoid(x), in one pass (six ops as a
 * composite). */
TL_CLONES
static void tl_silu_grad_f32(const float *g, const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float s = tl_sigmoidf(x[k]);
        out[k] = g[k] * (s * (1.0f + x[k] * (1.0f - s)));
    }
}

/* Hardswish, x * relu6(x + 3) / 6, and its backward as PyTorch 2.13's: 0 at and below -3, g
 * at and above 3 (and at NaN), g (x / 3 + 1/2) between. */
TL_CLONES
static void tl_hardswish_f32(const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float v = x[k], r = v + 3.0f;
        r = r < 0.0f ? 0.0f : r;
        r = r > 6.0f ? 6.0f : r;
        out[k] = v * r * (1.0f / 6.0f);
    }
}

TL_CLONES
static void tl_hardswish_grad_f32(const float *g, const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) {
        float v = x[k];
        float d = v < 3.0f ? v * (1.0f / 3.0f) + 0.5f : 1.0f;
        out[k] = v <= -3.0f ? 0.0f : g[k] * d;
    }
}

/* tanh's and sigmoid's backward at their outputs y, one pass each: g (1 - y^2), g y (1 - y)
 * (three NumPy passes and two temporaries as composites), float32 and float64 */
#define TL_ACT_GRADS(T, sfx)                                                                 \
TL_CLONES                                                                                    \
static void tl_tanh_grad_##sfx(const T *g, const T *y, T *out, ptrdiff_t m) {                \
    for (ptrdiff_t k = 0; k < m; k++)                                                        \
        out[k] = g[k] * ((T)1 - y[k] * y[k]);                                                \
}                                                                                            \
TL_CLONES                                                                                    \
static void tl_sigmoid_grad_##sfx(const T *g, const T *y, T *out, ptrdiff_t m) {             \
    for (ptrdiff_t k = 0; k < m; k++)                                                        \
        out[k] = g[k] * (y[k] * ((T)1 - y[k]));                                              \
}
TL_ACT_GRADS(float, f32)
TL_ACT_GRADS(double, f64)

/* Elementwise erf, sigmoid and tanh over a flat array (float32) */
TL_MAP_F32(tl_erf_f32, tl_erff)
TL_MAP_F32(tl_sigmoid_f32, tl_sigmoidf)
TL_MAP_F32(tl_tanh_f32, tl_tanhf)

/* The recurrent half of a step's gates, accumulated: out (n, g) += h (n, k) w^T with w (g, k)
 * row-major. Each output is a dot product of two contiguous rows: for the small k of a
 * recurrent layer this beats packing for a GEMM (the caller sends large layers to BLAS). */
TL_CLONES
static void tl_rec_gemm_f32(const float *h, const float *w, float *out, ptrdiff_t n,
                            ptrdiff_t g, ptrdiff_t k) {
    for (ptrdiff_t r = 0; r < n; r++) {
        const float *restrict hr = h + r * k;
        float *restrict o = out + r * g;
        for (ptrdiff_t j = 0; j < g; j++) {
            const float *restrict wj = w + j * k;
            float s = 0.0f;
            for (ptrdiff_t i = 0; i < k; i++) s += hr[i] * wj[i];
            o[j] += s;
        }
    }
}

/* One GRU step (gate order r, z, n as in PyTorch), row-major: gi (n, 3h) the input side (with
 * b_ih, and b_hh's r and z rows), gh (n, 3h) = h W_hh^T, b_hn (h), h (n, h) -> ws (n, 4h) =
 * r, z, n and W_hn h + b_hn (what the backward reads), out (n, h) = n + z (h - n). */
TL_CLONES
static void tl_gru_cell_fwd_f32(const float *gi, const float *gh, const float *b_hn,
                                const float *h, float *ws, float *out, ptrdiff_t n,
                                ptrdiff_t hd) {
    for (ptrdiff_t r = 0; r < n; r++) {
        const float *restrict a = gi + r * 3 * hd;
        const float *restrict b = gh + r * 3 * hd;
        const float *restrict hr = h + r * hd;
        float *restrict w = ws + r * 4 * hd;
        float *restrict o = out + r * hd;
        for (ptrdiff_t j = 0; j < hd; j++) {
            float rr = tl_sigmoidf(a[j] + b[j]);
            float z = tl_sigmoidf(a[hd + j] + b[hd + j]);
            float ghn = b[2 * hd + j] + b_hn[j];
            float nn = tl_tanhf(a[2 * hd + j] + rr * ghn);
            w[j] = rr;
            w[hd + j] = z;
            w[2 * hd + j] = nn;
            w[3 * hd + j] = ghn;
            o[j] = nn + z * (hr[j] - nn);
        }
    }
}

#endif
