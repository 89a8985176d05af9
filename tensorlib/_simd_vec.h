/* float32 exp on whole AVX-512 / AVX2 registers, and the run-time check that picks them.
 *
 * The same Cody-Waite reduction and polynomial as tl_expf (_simd_math.h), written with
 * intrinsics: gcc lowers inline helpers for the baseline before target_clones clones them,
 * so row kernels that need horizontal max/sum and masked tails (short softmax rows) are
 * written by hand and chosen with __builtin_cpu_supports, as _half.h and _reduce.h do.
 * NaN in gives NaN; above ~88.7 inf, below -88 zero (exactly tl_expf's contract).
 *
 * tl_vec_level(): 2 = AVX-512F, 1 = AVX2 + FMA, 0 = neither (or not x86 / not gcc-compatible);
 * tl_vec_cap lowers it (tests use it to exercise every path on one machine).
 */
#ifndef TL_SIMD_VEC_H
#define TL_SIMD_VEC_H
#include <stddef.h>
#include <math.h>

static int tl_vec_cap = 2;

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define TL_HAVE_VEC 1
#include <immintrin.h>

static int tl_vec_level(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") ? 2
              : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return known < tl_vec_cap ? known : tl_vec_cap;
}

__attribute__((target("avx512f")))
static inline __m512 tl_exp512(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    n = _mm512_max_ps(n, _mm512_set1_ps(-126.0f));
    n = _mm512_min_ps(n, _mm512_set1_ps(127.0f));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)),
                                  23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-88.0f), _CMP_LT_OQ),
                           _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.7f), _CMP_GT_OQ),
                              _mm512_set1_ps(INFINITY));
}

__attribute__((target("avx2,fma")))
static inline __m256 tl_exp256(__m256 x) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    n = _mm256_max_ps(n, _mm256_set1_ps(-126.0f));
    n = _mm256_min_ps(n, _mm256_set1_ps(127.0f));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(),
                         _mm256_cmp_ps(x, _mm256_set1_ps(-88.0f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY),
                            _mm256_cmp_ps(x, _mm256_set1_ps(88.7f), _CMP_GT_OQ));
}

/* lanes [0, k) of an AVX2 mask, 0 <= k <= 8 */
__attribute__((target("avx2")))
static inline __m256i tl_mask256(ptrdiff_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2")))
static inline float tl_hmax256(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

__attribute__((target("avx2")))
static inline float tl_hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}
#else
#define TL_HAVE_VEC 0
static int tl_vec_level(void) { return 0; }
#endif

#endif
