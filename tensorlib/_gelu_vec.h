/* Exact (erf) GELU and its backward on whole AVX-512 / AVX2 registers (float32).
 *
 * The same formula as tl_gelu_f32 (_simd_math.h): Phi(x) = h for x < 0 and 1 - h above,
 * h = erfc(|x| / sqrt 2) / 2 = t exp(P(t) - x^2 / 2) / 2 with t = 1 / (1 + |x| / (2 sqrt 2))
 * (Numerical Recipes' fit, relative error < 1.2e-7), so the left tail keeps its relative
 * accuracy where 1 + erf(x / sqrt 2) cancels. gcc's vectorisation of that loop spent a
 * division and ~15 clamp/select instructions an exp; here the division is a reciprocal and
 * one Newton step (2^-28), ln 2 is folded into P's constant (the / 2), and AVX-512's exp
 * works in base 2 and scales by 2^n with vscalefps, which under- and overflows correctly
 * with no clamps. |x| is capped at 20 (beyond, h is 0 in
 * float32) so inf gives no inf - inf; NaN propagates through x itself.
 */
#ifndef TL_GELU_VEC_H
#define TL_GELU_VEC_H
#include "_simd_math.h"
#include "_simd_vec.h"

/* P(t) of tl_erfcf_pos with its constant term lowered by ln 2 (the 1/2 of h) */
#define TL_GELU_POLY(FMA, SET, t, p)                                   \
    p = FMA(SET(0.17087277f), t, SET(-0.82215223f));                 \
    p = FMA(p, t, SET(1.48851587f));                                 \
    p = FMA(p, t, SET(-1.13520398f));                                \
    p = FMA(p, t, SET(0.27886807f));                                 \
    p = FMA(p, t, SET(-0.18628806f));                                \
    p = FMA(p, t, SET(0.09678418f));                                 \
    p = FMA(p, t, SET(0.37409196f));                                 \
    p = FMA(p, t, SET(1.00002368f));                                 \
    p = FMA(p, t, SET(-1.26551223f - 0.69314718055994531f));

#if TL_HAVE_VEC
/* 2^v for finite v (no clamps: vscalefps under- and overflows correctly); the degree-6 fit of
 * 2^r on [-1/2, 1/2] is within 1.1e-7 relative in float32 */
__attribute__((target("avx512f")))
static inline __m512 tl_exp2_512(__m512 v) {
    __m512 n = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(v, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.5469732e-4f), r, _mm512_set1_ps(1.3400433e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.6180253e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5503272e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022651e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.9314718e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Phi(x) on 16 lanes, in base 2: h = t 2^(P(t) log2 e - x^2 log2 e / 2) with P's constant
 * lowered by ln 2 (the / 2), which saves the exp's multiply and Cody-Waite split (the
 * argument's rounding, up to 2.6e-6 relative near the float32 underflow, is as large as
 * it was in base e). *ec = exp(-x^2 / 2) (the density without its constant) when ec is
 * not NULL. */
__attribute__((target("avx512f")))
static inline __m512 tl_normcdf512(__m512 x, __m512 *ec) {
    __m512 xc = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(20.0f));
    __m512 d = _mm512_fmadd_ps(xc, _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, t, _mm512_set1_ps(1.0f)), t, t);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.24651730f), t, _mm512_set1_ps(-1.1861149f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(2.1474745f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.6377531f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.40232158f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.26875687f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.13963005f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.53970063f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.4427292f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-2.8257482f));
    __m512 hx = _mm512_mul_ps(xc, _mm512_set1_ps(-0.72134752f));    /* -log2(e) / 2 */
    /* P - x^2 log2(e) / 2 with one rounding */
    __m512 h = _mm512_mul_ps(t, tl_exp2_512(_mm512_fmadd_ps(hx, xc, p)));
    if (ec)
        *ec = tl_exp2_512(_mm512_mul_ps(hx, xc));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), h), neg, h);
}

__attribute__((target("avx512f")))
static void tl_gelu_f32_512(const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k += 16) {
        __mmask16 mk = m - k >= 16 ? 0xFFFF : (__mmask16)((1u << (m - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mk, x + k);
        _mm512_mask_storeu_ps(out + k, mk, _mm512_mul_ps(v, tl_normcdf512(v, NULL)));
    }
}

__attribute__((target("avx512f")))
static void tl_gelu_grad_f32_512(const float *g, const float *x, float *out, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k += 16) {
        __mmask16 mk = m - k >= 16 ? 0xFFFF : (__mmask16)((1u << (m - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mk, x + k), e;
        __m512 cdf = tl_normcdf512(v, &e);
        /* x (not the capped value) times the density: inf * 0 is NaN, as PyTorch's */
        __m512 pdf = _mm512_mul_ps(e, _mm512_set1_ps(0.39894228040143268f));
        __m512 d = _mm512_fmadd_ps(v, pdf, cdf);
        _mm512_mask_storeu_ps(out + k, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, g + k), d));
    }
}

__attribute__((target("avx2,fma")))
static inline __m256 tl_normcdf256(__m256 x, __m256 *ec) {
    __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 xc = _mm256_min_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(20.0f));
    __m256 d = _mm256_fmadd_ps(xc, _mm256_set1_ps(0.35355339059327376f), _mm256_set1_ps(1.0f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
    __m256 p;
    TL_GELU_POLY(_mm256_fmadd_ps, _mm256_set1_ps, t, p)
    __m256 hx = _mm256_mul_ps(xc, _mm256_set1_ps(-0.5f));
    __m256 h = _mm256_mul_ps(t, tl_exp256(_mm256_fmadd_ps(hx, xc, p)));
    if (ec)
        *ec = tl_exp256(_mm256_mul_ps(hx, xc));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), h), h, neg);
}

__attribute__((target("avx2,fma")))
static ptrdiff_t tl_gelu_f32_256(const float *x, float *out, ptrdiff_t m) {
    ptrdiff_t k = 0;
    for (; k + 8 <= m; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        _mm256_storeu_ps(out + k, _mm256_mul_ps(v, tl_normcdf256(v, NULL)));
    }
    return k;
}

__attribute__((target("avx2,fma")))
static ptrdiff_t tl_gelu_grad_f32_256(const float *g, const float *x, float *out, ptrdiff_t m) {
    ptrdiff_t k = 0;
    for (; k + 8 <= m; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k), e;
        __m256 cdf = tl_normcdf256(v, &e);
        __m256 pdf = _mm256_mul_ps(e, _mm256_set1_ps(0.39894228040143268f));
        _mm256_storeu_ps(out + k, _mm256_mul_ps(_mm256_loadu_ps(g + k),
                                                _mm256_fmadd_ps(v, pdf, cdf)));
    }
    return k;
}
#endif

/* The dispatching entry points (the unary/binary map signatures of _ops.pyx). */
static void tl_gelu_f32_vec(const float *x, float *out, ptrdiff_t m) {
#if TL_HAVE_VEC
    int lv = tl_vec_level();
    if (lv == 2) {
        tl_gelu_f32_512(x, out, m);
        return;
    }
    if (lv == 1) {
        ptrdiff_t k = tl_gelu_f32_256(x, out, m);
        x += k, out += k, m -= k;
    }
#endif
    if (m)
        tl_gelu_f32(x, out, m);
}

static void tl_gelu_grad_f32_vec(const float *g, const float *x, float *out, ptrdiff_t m) {
#if TL_HAVE_VEC
    int lv = tl_vec_level();
    if (lv == 2) {
        tl_gelu_grad_f32_512(g, x, out, m);
        return;
    }
    if (lv == 1) {
        ptrdiff_t k = tl_gelu_grad_f32_256(g, x, out, m);
        g += k, x += k, out += k, m -= k;
    }
#endif
    if (m)
        tl_gelu_grad_f32(g, x, out, m);
}
#endif
