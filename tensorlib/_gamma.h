/* digamma over contiguous runs (float32 / float64) by PyTorch's CPU formula (the values
 * agree to a few tens of ulps, as -ffast-math reorders the sums; special values exactly):
 * PyTorch's calc_digamma (Cephes psi): reflection for x < 0 with pi / tan(pi r) on
 * the fractional part r, the recurrence up to 10, then the asymptotic series. Poles: +-inf
 * at +-0, NaN at negative integers and -inf.
 */
#ifndef TL_GAMMA_H
#define TL_GAMMA_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* x >= 0 (or NaN) after the reflection */
static inline double tl_digamma_pos_f64(double x) {
    double result = 0;
    while (x < 10) {
        result -= 1 / x;
        x += 1;
    }
    if (x == 10)
        return result + 2.25175258906672110764;
    double y = 0;
    if (x < 1.0e17) {
        double z = 1.0 / (x * x);
        double p = 8.33333333333333333333E-2;
        p = p * z - 2.10927960927960927961E-2;
        p = p * z + 7.57575757575757575758E-3;
        p = p * z - 4.16666666666666666667E-3;
        p = p * z + 3.96825396825396825397E-3;
        p = p * z - 8.33333333333333333333E-3;
        p = p * z + 8.33333333333333333333E-2;
        y = z * p;
    }
    return result + log(x) - (0.5 / x) - y;
}

/* zeros are found and signed on the bits: with -ffast-math (no signed zeros) gcc folds x
 * to +0 once it knows x == 0 */
static inline double tl_digamma1_f64(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits << 1) == 0)
        return (bits >> 63) ? INFINITY : -INFINITY;
    if (x < 0) {
        if (x == trunc(x))
            return NAN;
        double r = x - trunc(x);
        return tl_digamma_pos_f64(1 - x) - 3.14159265358979323846 / tan(3.14159265358979323846 * r);
    }
    return tl_digamma_pos_f64(x);
}

static inline float tl_digamma_pos_f32(float x) {
    float result = 0;
    while (x < 10) {
        result -= 1 / x;
        x += 1;
    }
    if (x == 10)
        return result + 2.25175258906672110764f;
    float y = 0;
    if (x < 1.0e17f) {
        float z = 1 / (x * x);
        float p = 8.33333333333333333333E-2f;
        p = p * z - 2.10927960927960927961E-2f;
        p = p * z + 7.57575757575757575758E-3f;
        p = p * z - 4.16666666666666666667E-3f;
        p = p * z + 3.96825396825396825397E-3f;
        p = p * z - 8.33333333333333333333E-3f;
        p = p * z + 8.33333333333333333333E-2f;
        y = z * p;
    }
    return result + logf(x) - (0.5f / x) - y;
}

static inline float tl_digamma1_f32(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((uint32_t)(bits << 1) == 0)
        return (bits >> 31) ? INFINITY : -INFINITY;
    if (x < 0) {
        if (x == truncf(x))
            return NAN;
        double r = (double)x - trunc((double)x);
        float pt = (float)(3.14159265358979323846 / tan(3.14159265358979323846 * r));
        return tl_digamma_pos_f32(1 - x) - pt;
    }
    return tl_digamma_pos_f32(x);
}

static void tl_digamma_f64(const double *x, double *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tl_digamma1_f64(x[i]);
}

static void tl_digamma_f32(const float *x, float *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tl_digamma1_f32(x[i]);
}
/* --- lgamma (float32 in float64 lanes, float64), PyTorch's values: log|Gamma(x)|, +inf at
 * the poles 0, -1, -2, ... and at +-inf, NaN for NaN. The vector body is _lgamma_tmpl.h. */
#include "_simd_vec.h"

/* libm's reentrant lgamma (signgam is a global the threads would race on) */
#if defined(__GLIBC__)
double lgamma_r(double, int *);
static inline double tl_lgamma1_f64(double x) {
    int sg;
    return isinf(x) ? INFINITY : lgamma_r(x, &sg);
}
#else
static inline double tl_lgamma1_f64(double x) { return isinf(x) ? INFINITY : lgamma(x); }
#endif

#if TL_HAVE_VEC
__attribute__((target("avx512f")))
static inline __m512d tl_rcp_pd512(__m512d a) {
    __m512d r = _mm512_rcp14_pd(a), one = _mm512_set1_pd(1.0);
    r = _mm512_fmadd_pd(_mm512_fnmadd_pd(a, r, one), r, r);
    return _mm512_fmadd_pd(_mm512_fnmadd_pd(a, r, one), r, r);
}

#define TL_LG_TARGET __attribute__((target("avx512f")))
#define TL_LG_SUFFIX 512
#define VD __m512d
#define VM __mmask8
#define VSET _mm512_set1_pd
#define VADD _mm512_add_pd
#define VSUB _mm512_sub_pd
#define VMUL _mm512_mul_pd
/* 1 / a: two Newton steps on the 14-bit estimate (a few times the division's throughput) */
#define VRCP(a) tl_rcp_pd512(a)
#define VMIN _mm512_min_pd
#define VMAX _mm512_max_pd
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VABS _mm512_abs_pd
#define VFLOOR(a) _mm512_roundscale_pd(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VROUND(a) _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCMP(a, b, op) _mm512_cmp_pd_mask(a, b, op)
#define VSEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define VAND(m1, m2) ((__mmask8)((m1) & (m2)))
#define VANDNOT(m1, m2) ((__mmask8)(~(m1) & (m2)))
#define VANY(m) ((m) != 0)
#define VALL(m) ((__mmask8)(m) == 0xFF)
#define VSPLIT(x, m, k)                                             \
    m = _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src); \
    k = _mm512_getexp_pd(x);
#include "_lgamma_tmpl.h"
#undef TL_LG_TARGET
#undef TL_LG_SUFFIX
#undef VD
#undef VM
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VRCP
#undef VMIN
#undef VMAX
#undef VFMA
#undef VABS
#undef VFLOOR
#undef VROUND
#undef VCMP
#undef VSEL
#undef VAND
#undef VANDNOT
#undef VANY
#undef VALL
#undef VSPLIT

#define TL_LG_TARGET __attribute__((target("avx2,fma")))
#define TL_LG_SUFFIX 256
#define VD __m256d
#define VM __m256d
#define VSET _mm256_set1_pd
#define VADD _mm256_add_pd
#define VSUB _mm256_sub_pd
#define VMUL _mm256_mul_pd
#define VRCP(a) _mm256_div_pd(_mm256_set1_pd(1.0), a)
#define VMIN _mm256_min_pd
#define VMAX _mm256_max_pd
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VABS(a) _mm256_andnot_pd(_mm256_set1_pd(-0.0), a)
#define VFLOOR(a) _mm256_floor_pd(a)
#define VROUND(a) _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCMP(a, b, op) _mm256_cmp_pd(a, b, op)
#define VSEL(m, a, b) _mm256_blendv_pd(b, a, m)
#define VAND(m1, m2) _mm256_and_pd(m1, m2)
#define VANDNOT(m1, m2) _mm256_andnot_pd(m1, m2)
#define VANY(m) (_mm256_movemask_pd(m) != 0)
#define VALL(m) (_mm256_movemask_pd(m) == 0xF)
/* positive normal x only (the caller's 1e-150 guard): exponent and mantissa from the bits;
 * e | 2^52 read as a double is 2^52 + e */
#define VSPLIT(x, m, k)                                                                  \
    {                                                                                    \
        __m256i bits_ = _mm256_castpd_si256(x);                                          \
        m = _mm256_castsi256_pd(_mm256_or_si256(                                         \
            _mm256_and_si256(bits_, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFLL)),           \
            _mm256_set1_epi64x(0x3FF0000000000000LL)));                                  \
        __m256i e_ = _mm256_or_si256(_mm256_srli_epi64(bits_, 52),                       \
                                     _mm256_set1_epi64x(0x4330000000000000LL));          \
        k = _mm256_sub_pd(_mm256_castsi256_pd(e_), _mm256_set1_pd(4503599627370496.0 + 1023)); \
    }
#include "_lgamma_tmpl.h"
#undef TL_LG_TARGET
#undef TL_LG_SUFFIX
#undef VD
#undef VM
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VRCP
#undef VMIN
#undef VMAX
#undef VFMA
#undef VABS
#undef VFLOOR
#undef VROUND
#undef VCMP
#undef VSEL
#undef VAND
#undef VANDNOT
#undef VANY
#undef VALL
#undef VSPLIT

/* lanes 0 < |x| < 1e-150 again with libm (see _lgamma_tmpl.h) */
#define TL_LG_FIX(T, xs, os, cnt)                                             \
    for (int i_ = 0; i_ < (cnt); i_++) {                                      \
        double a_ = fabs((double)(xs)[i_]);                                   \
        if (a_ > 0 && a_ < 1e-150)                                            \
            (os)[i_] = (T)tl_lgamma1_f64((double)(xs)[i_]);                   \
    }

__attribute__((target("avx512f")))
static void tl_lgamma_f64_512(const double *x, double *out, ptrdiff_t n) {
    int fix;
    for (ptrdiff_t k = 0; k < n; k += 8) {
        __mmask8 mk = n - k >= 8 ? 0xFF : (__mmask8)((1u << (n - k)) - 1);
        __m512d v = _mm512_mask_loadu_pd(_mm512_set1_pd(2.0), mk, x + k);
        _mm512_mask_storeu_pd(out + k, mk, tl_lgamma_vd_512(v, &fix, 0));
        if (fix)
            TL_LG_FIX(double, x + k, out + k, n - k >= 8 ? 8 : n - k)
    }
}

__attribute__((target("avx512f")))
static void tl_lgamma_f32_512(const float *x, float *out, ptrdiff_t n) {
    int fix;
    for (ptrdiff_t k = 0; k < n; k += 8) {
        __mmask8 mk = n - k >= 8 ? 0xFF : (__mmask8)((1u << (n - k)) - 1);
        /* (256-bit masked moves are AVX-512VL: the low half of a 512-bit one instead) */
        __m256 v = _mm512_castps512_ps256(_mm512_mask_loadu_ps(_mm512_set1_ps(2.0f), mk, x + k));
        __m512d r = tl_lgamma_vd_512(_mm512_cvtps_pd(v), &fix, 1);
        _mm512_mask_storeu_ps(out + k, mk, _mm512_castps256_ps512(_mm512_cvtpd_ps(r)));
        if (fix)
            TL_LG_FIX(float, x + k, out + k, n - k >= 8 ? 8 : n - k)
    }
}

__attribute__((target("avx2,fma")))
static void tl_lgamma_f64_256(const double *x, double *out, ptrdiff_t n) {
    int fix;
    ptrdiff_t k = 0;
    for (; k < n; k += 4) {
        double xb[4] = {2.0, 2.0, 2.0, 2.0}, ob[4];
        int cnt = n - k >= 4 ? 4 : (int)(n - k);
        const double *xp = x + k;
        double *op = cnt == 4 ? out + k : ob;
        if (cnt < 4) {
            memcpy(xb, xp, cnt * sizeof(double));
            xp = xb;
        }
        _mm256_storeu_pd(op, tl_lgamma_vd_256(_mm256_loadu_pd(xp), &fix, 0));
        if (cnt < 4)
            memcpy(out + k, ob, cnt * sizeof(double));
        if (fix)
            TL_LG_FIX(double, x + k, out + k, cnt)
    }
}

__attribute__((target("avx2,fma")))
static void tl_lgamma_f32_256(const float *x, float *out, ptrdiff_t n) {
    int fix;
    for (ptrdiff_t k = 0; k < n; k += 4) {
        float xb[4] = {2.0f, 2.0f, 2.0f, 2.0f}, ob[4];
        int cnt = n - k >= 4 ? 4 : (int)(n - k);
        const float *xp = x + k;
        float *op = cnt == 4 ? out + k : ob;
        if (cnt < 4) {
            memcpy(xb, xp, cnt * sizeof(float));
            xp = xb;
        }
        __m256d r = tl_lgamma_vd_256(_mm256_cvtps_pd(_mm_loadu_ps(xp)), &fix, 1);
        _mm_storeu_ps(op, _mm256_cvtpd_ps(r));
        if (cnt < 4)
            memcpy(out + k, ob, cnt * sizeof(float));
        if (fix)
            TL_LG_FIX(float, x + k, out + k, cnt)
    }
}
#endif

/* The dispatching entry points (the unary map signatures of _ops.pyx). */
static void tl_lgamma_f64(const double *x, double *out, ptrdiff_t n) {
#if TL_HAVE_VEC
    int lv = tl_vec_level();
    if (lv == 2) {
        tl_lgamma_f64_512(x, out, n);
        return;
    }
    if (lv == 1) {
        tl_lgamma_f64_256(x, out, n);
        return;
    }
#endif
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tl_lgamma1_f64(x[i]);
}

static void tl_lgamma_f32(const float *x, float *out, ptrdiff_t n) {
#if TL_HAVE_VEC
    int lv = tl_vec_level();
    if (lv == 2) {
        tl_lgamma_f32_512(x, out, n);
        return;
    }
    if (lv == 1) {
        tl_lgamma_f32_256(x, out, n);
        return;
    }
#endif
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = (float)tl_lgamma1_f64((double)x[i]);
}
#endif
