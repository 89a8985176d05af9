/* float32 matrix-vector products for x86-64 CPUs with AVX-512: y = A @ x.
 *
 * Why: tensorlib's GEMM (_sgemm.h) computes whole 8 x 32 tiles, so it would do 32x the work on
 * a matrix-vector product, and NumPy's OpenBLAS must run large products on one thread next to
 * tensorlib's OpenMP kernels (its spinning workers take the cores from them; see _gemm.py).
 * A matrix-vector product is bound by reading the matrix once; these loops do that on
 * OpenMP's threads, which is what a second core is worth here (a 4096 x 4096 product: about
 * 1.7 ms on one OpenBLAS thread).
 *
 * Two layouts, by which stride of A is 1:
 *   rows of A contiguous:    y[i] = dot(A[i, :], x), four rows at a time;
 *   columns of A contiguous: y = sum over k of x[k] * A[:, k], A[:, k] being row k of A's
 *                            transpose, streamed four rows at a time into a block of y
 *                            that stays in L1.
 * Threads split y. x and y are contiguous (tensorlib._gemm copies a strided vector).
 */
#ifndef TL_SGEMV_H
#define TL_SGEMV_H

#include "_sgemm.h"    /* tl_thread_share */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TL_GEMV_YB 1024   /* floats of y one thread keeps in L1 while streaming A^T's rows */

static inline __mmask16 tl_first(int n) {   /* the first n (0..16) lanes */
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* y[i] = A[i, :K] . x for i in [m0, m1); A's rows contiguous, lda apart */
__attribute__((target("avx512f")))
static void tl_gemv_dot(int m0, int m1, int K, const float *A, ptrdiff_t lda, const float *x,
                        float *y) {
    int kv = K & ~15;
    __mmask16 tail = tl_first(K & 15);
    int i = m0;
    for (; i + 4 <= m1; i += 4) {
        const float *r0 = A + (ptrdiff_t)i * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < kv; k += 16) {
            __m512 xv = _mm512_loadu_ps(x + k);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + k), xv, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + k), xv, s1);
            s2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + k), xv, s2);
            s3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + k), xv, s3);
        }
        if (tail) {   /* masked-off lanes are never read */
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + kv);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r0 + kv), xv, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r1 + kv), xv, s1);
            s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r2 + kv), xv, s2);
            s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r3 + kv), xv, s3);
        }
        y[i] = _mm512_reduce_add_ps(s0);
        y[i + 1] = _mm512_reduce_add_ps(s1);
        y[i + 2] = _mm512_reduce_add_ps(s2);
        y[i + 3] = _mm512_reduce_add_ps(s3);
    }
    for (; i < m1; i++) {
        const float *r = A + (ptrdiff_t)i * lda;
        __m512 s = _mm512_setzero_ps();
        for (int k = 0; k < kv; k += 16)
            s = _mm512_fmadd_ps(_mm512_loadu_ps(r + k), _mm512_loadu_ps(x + k), s);
        if (tail)
            s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r + kv),
                                _mm512_maskz_loadu_ps(tail, x + kv), s);
        y[i] = _mm512_reduce_add_ps(s);
    }
}

/* y[0:n] = sum over k < K of x[k] * T[k, 0:n] (n <= TL_GEMV_YB): T's rows are A's columns,
 * contiguous and ldt apart. Eight rows per pass over y, so y (in L1) is loaded and stored
 * once per eight rows of T streamed from memory; the last K % 8 rows one at a time. */
__attribute__((target("avx512f")))
static void tl_gemv_axpy_block(int n, int K, const float *T, ptrdiff_t ldt, const float *x,
                               float *y) {
    int nv = n & ~15;
    __mmask16 tail = tl_first(n & 15);
    for (int j = 0; j < n; j += 16)
        _mm512_mask_storeu_ps(y + j, tl_first(n - j), _mm512_setzero_ps());
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        const float *t[8];
        __m512 xs[8];
        for (int q = 0; q < 8; q++) {
            t[q] = T + (ptrdiff_t)(k + q) * ldt;
            xs[q] = _mm512_set1_ps(x[k + q]);
        }
        for (int j = 0; j < nv; j += 16) {
            __m512 a0 = _mm512_mul_ps(xs[0], _mm512_loadu_ps(t[0] + j));
            __m512 a1 = _mm512_mul_ps(xs[1], _mm512_loadu_ps(t[1] + j));
            a0 = _mm512_fmadd_ps(xs[2], _mm512_loadu_ps(t[2] + j), a0);
            a1 = _mm512_fmadd_ps(xs[3], _mm512_loadu_ps(t[3] + j), a1);
            a0 = _mm512_fmadd_ps(xs[4], _mm512_loadu_ps(t[4] + j), a0);
            a1 = _mm512_fmadd_ps(xs[5], _mm512_loadu_ps(t[5] + j), a1);
            a0 = _mm512_fmadd_ps(xs[6], _mm512_loadu_ps(t[6] + j), a0);
            a1 = _mm512_fmadd_ps(xs[7], _mm512_loadu_ps(t[7] + j), a1);
            _mm512_storeu_ps(y + j, _mm512_add_ps(_mm512_loadu_ps(y + j),
                                                  _mm512_add_ps(a0, a1)));
        }
        if (tail) {   /* masked-off lanes are never read */
            __m512 a0 = _mm512_setzero_ps();
            for (int q = 0; q < 8; q++)
                a0 = _mm512_fmadd_ps(xs[q], _mm512_maskz_loadu_ps(tail, t[q] + nv), a0);
            _mm512_mask_storeu_ps(y + nv, tail,
                                  _mm512_add_ps(_mm512_maskz_loadu_ps(tail, y + nv), a0));
        }
    }
    for (; k < K; k++) {   /* the last rows one at a time (a zero weight on a repeated row
                              would turn an inf in it into NaN) */
        const float *t0 = T + (ptrdiff_t)k * ldt;
        __m512 x0 = _mm512_set1_ps(x[k]);
        for (int j = 0; j < n; j += 16) {
            __mmask16 m = tl_first(n - j);
            __m512 acc = _mm512_maskz_loadu_ps(m, y + j);
            _mm512_mask_storeu_ps(y + j, m,
                                  _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, t0 + j), acc));
        }
    }
}

/* y (M) = A (M x K) @ x (K). A has unit column stride (rsa its row stride) or unit row
 * stride (csa its column stride); the caller checks that one of them is 1. */
static void tl_sgemv(int M, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                     const float *x, float *y, int nthreads) {
    if (M <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++) y[i] = 0.0f;
        return;
    }
    int rows = csa == 1;
    /* work units: four rows of y for dot products, a block of y for the streamed form */
    int unit = rows ? 4 : TL_GEMV_YB;
    int parts = (M + unit - 1) / unit;
    if (nthreads > parts) nthreads = parts;
    if (nthreads < 1) nthreads = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
#endif
    {
        int lo, hi;
        tl_thread_share(parts, &lo, &hi);
        lo *= unit;
        hi = hi * unit < M ? hi * unit : M;
        if (rows) {
            if (hi > lo) tl_gemv_dot(lo, hi, K, A, rsa, x, y);
        } else {
            for (int j = lo; j < hi; j += TL_GEMV_YB) {
                int n = hi - j < TL_GEMV_YB ? hi - j : TL_GEMV_YB;
                tl_gemv_axpy_block(n, K, A + j, csa, x, y + j);
            }
        }
    }
}

#else   /* not x86-64 with GCC/Clang: tensorlib._gemm never calls it (no AVX-512 GEMM) */

static void tl_sgemv(int M, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                     const float *x, float *y, int nthreads) {
    (void)M; (void)K; (void)A; (void)rsa; (void)csa; (void)x; (void)y; (void)nthreads;
}

#endif
#endif
