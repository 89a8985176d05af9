/* embedding_bag's sum and mean (float32). A bag's rows are random rows of a table far larger
 * than the caches, so the time goes to memory latency: the rows of the entries TL_BAG_AHEAD
 * ahead are prefetched (their misses overlap), and on AVX-512 each 64-column slice of a bag
 * is accumulated in four registers and stored once (masked at a ragged end), where the
 * Cython loop read and wrote the output row for every entry. Other CPUs take plain loops
 * that gcc vectorises. Every index and bound is checked by the caller. */
#ifndef TL_BAG_H
#define TL_BAG_H
#include <stddef.h>
#include <stdint.h>
#include "_simd_vec.h"

#define TL_BAG_AHEAD 16     /* entries ahead */

static inline void tl_bag_prefetch(const float *row, ptrdiff_t D) {
    const char *c = (const char *)row;
    for (ptrdiff_t o = 0; o < D * (ptrdiff_t)sizeof(float); o += 64)
        __builtin_prefetch(c + o, 0, 3);
}

/* Plain loops: the baseline and non-x86 path. */
static void tl_bag_sum_f32_scalar(const float *w, ptrdiff_t D, const int64_t *flat,
                                  const int64_t *indptr, const float *coef, float *out,
                                  ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t N) {
    for (ptrdiff_t b = b0; b < b1; b++) {
        float *restrict row = out + b * D;
        for (ptrdiff_t d = 0; d < D; d++) row[d] = 0.0f;
        for (ptrdiff_t n = indptr[b]; n < indptr[b + 1]; n++) {
            if (n + TL_BAG_AHEAD < N) tl_bag_prefetch(w + flat[n + TL_BAG_AHEAD] * D, D);
            const float *restrict src = w + flat[n] * D;
            float c = coef[n];
            for (ptrdiff_t d = 0; d < D; d++) row[d] += c * src[d];
        }
    }
}

#if TL_HAVE_VEC
/* lanes [0, k) of 16 (none when k <= 0) */
static inline __mmask16 tl_bag_mask(ptrdiff_t k) {
    return k >= 16 ? (__mmask16)0xFFFF : k <= 0 ? (__mmask16)0 : (__mmask16)((1u << k) - 1);
}

__attribute__((target("avx512f")))
static void tl_bag_sum_f32_512(const float *w, ptrdiff_t D, const int64_t *flat,
                               const int64_t *indptr, const float *coef, float *out,
                               ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t N) {
    for (ptrdiff_t b = b0; b < b1; b++) {
        ptrdiff_t lo = indptr[b], hi = indptr[b + 1];
        for (ptrdiff_t d0 = 0; d0 < D; d0 += 64) {
            ptrdiff_t left = D - d0;
            __mmask16 m0 = tl_bag_mask(left);
            __mmask16 m1 = tl_bag_mask(left - 16), m2 = tl_bag_mask(left - 32);
            __mmask16 m3 = tl_bag_mask(left - 48);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (ptrdiff_t n = lo; n < hi; n++) {
                if (d0 == 0 && n + TL_BAG_AHEAD < N)
                    tl_bag_prefetch(w + flat[n + TL_BAG_AHEAD] * D, D);
                const float *src = w + flat[n] * D + d0;
                __m512 c = _mm512_set1_ps(coef[n]);
                a0 = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(m0, src), a0);
                a1 = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(m1, src + 16), a1);
                a2 = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(m2, src + 32), a2);
                a3 = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(m3, src + 48), a3);
            }
            float *dst = out + b * D + d0;
            _mm512_mask_storeu_ps(dst, m0, a0);
            _mm512_mask_storeu_ps(dst + 16, m1, a1);
            _mm512_mask_storeu_ps(dst + 32, m2, a2);
            _mm512_mask_storeu_ps(dst + 48, m3, a3);
        }
    }
}

#endif

/* out[b] = sum over bag b's entries n (indptr[b] <= n < indptr[b + 1]) of coef[n] w[flat[n]],
 * for bags [b0, b1). The caller has checked every index and bound. */
static void tl_bag_sum_f32(const float *w, ptrdiff_t D, const int64_t *flat,
                           const int64_t *indptr, const float *coef, float *out,
                           ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t N) {
#if TL_HAVE_VEC
    int lv = tl_vec_level();
    if (lv == 2) {
        tl_bag_sum_f32_512(w, D, flat, indptr, coef, out, b0, b1, N);
        return;
    }
#endif
    tl_bag_sum_f32_scalar(w, D, flat, indptr, coef, out, b0, b1, N);
}
#endif
