/* Softmax and log-softmax along one axis of a contiguous block, and their backward passes,
 * for float32 and float64.
 *
 * A block is (n, inner): the softmax runs along n, independently for each of the inner
 * positions (inner == 1: one contiguous row, the common last-axis case, has its own loops
 * so they vectorise along the row). The NumPy form took six passes over the data (max,
 * isfinite, subtract, exp, sum, divide); these take three, with tensorlib's vectorised
 * float32 exp. Sums are accumulated in double.
 *
 * The row max is an OpenMP simd reduction: gcc does not vectorise a plain max loop while NaN
 * must be honoured (-fno-finite-math-only), and the max may ignore NaN here, since exp(NaN)
 * carries the NaN into the sum anyway. Without OpenMP the pragma is ignored (scalar, same
 * results).
 *
 * As PyTorch, a row holding NaN or +inf, or all -inf, gives NaN throughout (x - max is NaN
 * somewhere, and the sum carries it).
 */
#ifndef TENSORLIB_SOFTMAX_H
#define TENSORLIB_SOFTMAX_H

#include <math.h>
#include <stddef.h>
#include "_simd_math.h"
#include "_simd_vec.h"

#define TL_SOFTMAX_KERNELS(SUF, T, EXP)                                                        \
TL_CLONES                                                                                      \
static void tl_softmax_row_##SUF(const T *restrict x, T *restrict y, ptrdiff_t n,           \
                                 int log_out) {                                             \
    T m = x[0];                                                                                \
    _Pragma("omp simd reduction(max:m)")                                                       \
    for (ptrdiff_t k = 1; k < n; k++)                                                          \
        m = x[k] > m ? x[k] : m;                                                               \
    double s = 0.0;                                                                            \
    if (log_out) {                                                                             \
        /* x - m is stored first: in one expression -ffast-math may reassociate it to       \
         * x - (m + ls), which rounds ls into a large m (log_softmax(1e4, 1e4) gave -0.6934) */\
        for (ptrdiff_t k = 0; k < n; k++) {                                                    \
            T d = x[k] - m;                                                                    \
            y[k] = d;                                                                          \
            s += EXP(d);                                                                       \
        }                                                                                      \
        T ls = (T)log(s);                                                                      \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            y[k] -= ls;                                                                        \
    } else {                                                                                   \
        for (ptrdiff_t k = 0; k < n; k++) {                                                    \
            T e = EXP(x[k] - m);                                                               \
            y[k] = e;                                                                          \
            s += e;                                                                            \
        }                                                                                      \
        T inv = (T)(1.0 / s);                                                                  \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            y[k] *= inv;                                                                       \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* m (inner values) and s (inner doubles): scratch */                                          \
TL_CLONES                                                                                      \
static void tl_softmax_block_##SUF(const T *restrict x, T *restrict y, ptrdiff_t n,         \
                                   ptrdiff_t inner, T *restrict m, double *restrict s,       \
                                   int log_out) {                                           \
    for (ptrdiff_t i = 0; i < inner; i++) {                                                    \
        m[i] = x[i];                                                                           \
        s[i] = 0.0;                                                                            \
    }                                                                                          \
    for (ptrdiff_t k = 1; k < n; k++) {                                                        \
        const T *r = x + k * inner;                                                            \
        for (ptrdiff_t i = 0; i < inner; i++)                                                  \
            m[i] = r[i] > m[i] ? r[i] : m[i];                                                  \
    }                                                                                          \
    for (ptrdiff_t k = 0; k < n; k++) {                                                        \
        const T *r = x + k * inner;                                                            \
        T *o = y + k * inner;                                                                  \
        for (ptrdiff_t i = 0; i < inner; i++) {                                                \
            T d = r[i] - m[i];                                                                 \
            T e = EXP(d);                                                                      \
            o[i] = log_out ? d : e;     /* (x - m kept apart from the log: see above) */       \
            s[i] += e;                                                                         \
        }                                                                                      \
    }                                                                                          \
    if (log_out) {                                                                             \
        for (ptrdiff_t i = 0; i < inner; i++)                                                  \
            m[i] = (T)log(s[i]);                                                               \
        for (ptrdiff_t k = 0; k < n; k++) {                                                    \
            T *o = y + k * inner;                                                              \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                o[i] -= m[i];                                                                  \
        }                                                                                      \
    } else {                                                                                   \
        for (ptrdiff_t i = 0; i < inner; i++)                                                  \
            m[i] = (T)(1.0 / s[i]);                                                            \
        for (ptrdiff_t k = 0; k < n; k++) {                                                    \
            T *o = y + k * inner;                                                              \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                o[i] *= m[i];                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* softmax: dx = y (g - sum(g y)); log-softmax (y its output): dx = g - exp(y) sum(g) */      \
TL_CLONES                                                                                      \
static void tl_softmax_grad_row_##SUF(const T *restrict g, const T *restrict y,             \
                                      T *restrict dx, ptrdiff_t n, int log_out) {           \
    double d = 0.0;                                                                            \
    if (log_out) {                                                                             \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            d += g[k];                                                                         \
        T t = (T)d;                                                                            \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            dx[k] = g[k] - EXP(y[k]) * t;                                                      \
    } else {                                                                                   \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            d += (double)g[k] * y[k];                                                          \
        T t = (T)d;                                                                            \
        for (ptrdiff_t k = 0; k < n; k++)                                                      \
            dx[k] = y[k] * (g[k] - t);                                                         \
    }                                                                                          \
}                                                                                              \
                                                                                               \
TL_CLONES                                                                                      \
static void tl_softmax_grad_block_##SUF(const T *restrict g, const T *restrict y,           \
                                        T *restrict dx, ptrdiff_t n, ptrdiff_t inner,        \
                                        double *restrict d, int log_out) {                  \
    for (ptrdiff_t i = 0; i < inner; i++)                                                      \
        d[i] = 0.0;                                                                            \
    for (ptrdiff_t k = 0; k < n; k++) {                                                        \
        const T *gr = g + k * inner, *yr = y + k * inner;                                      \
        if (log_out)                                                                           \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                d[i] += gr[i];                                                                 \
        else                                                                                   \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                d[i] += (double)gr[i] * yr[i];                                                 \
    }                                                                                          \
    for (ptrdiff_t k = 0; k < n; k++) {                                                        \
        const T *gr = g + k * inner, *yr = y + k * inner;                                      \
        T *o = dx + k * inner;                                                                 \
        if (log_out)                                                                           \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                o[i] = gr[i] - EXP(yr[i]) * (T)d[i];                                           \
        else                                                                                   \
            for (ptrdiff_t i = 0; i < inner; i++)                                              \
                o[i] = yr[i] * (gr[i] - (T)d[i]);                                              \
    }                                                                                          \
}

TL_SOFTMAX_KERNELS(f32, float, tl_expf)
TL_SOFTMAX_KERNELS(f64, double, exp)

/* Many short float32 rows (inner == 1, n small): one call for a run of rows, with
 * intrinsics (see _simd_vec.h). The generic row kernel paid ~40 ns a row in loop set-up,
 * peeled and scalar tails, and float->double conversions: 2.4x PyTorch on (65536, 16).
 * Here a row is whole registers plus one masked tail, and the sum is float lanes (n is
 * short: TL_SOFTMAX_SHORT at most), as PyTorch's. Returns 0 (nothing done) without AVX2. */
#define TL_SOFTMAX_SHORT 2048

#if TL_HAVE_VEC
__attribute__((target("avx512f")))
static void tl_softmax_rows_f32_avx512(const float *restrict x, float *restrict y,
                                       ptrdiff_t rows, ptrdiff_t n, int log_out) {
    const ptrdiff_t nv = n & ~(ptrdiff_t)15;
    const __mmask16 tm = (__mmask16)((1u << (n & 15)) - 1u);
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *a = x + r * n;
        float *b = y + r * n;
        __m512 mv = _mm512_set1_ps(-INFINITY);
        for (ptrdiff_t k = 0; k < nv; k += 16)
            mv = _mm512_max_ps(mv, _mm512_loadu_ps(a + k));
        if (tm)
            mv = _mm512_mask_max_ps(mv, tm, mv, _mm512_maskz_loadu_ps(tm, a + nv));
        /* a NaN the max drops still reaches the sum through exp(NaN - m) */
        const __m512 mb = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
        __m512 sv = _mm512_setzero_ps();
        for (ptrdiff_t k = 0; k < nv; k += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + k), mb);
            __m512 e = tl_exp512(d);
            _mm512_storeu_ps(b + k, log_out ? d : e);
            sv = _mm512_add_ps(sv, e);
        }
        if (tm) {
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(tm, a + nv), mb);
            __m512 e = tl_exp512(d);
            _mm512_mask_storeu_ps(b + nv, tm, log_out ? d : e);
            sv = _mm512_mask_add_ps(sv, tm, sv, e);
        }
        float s = _mm512_reduce_add_ps(sv);
        /* log-softmax subtracts log(s) from the stored x - m in its own pass (see above) */
        const __m512 f = _mm512_set1_ps(log_out ? (float)log((double)s) : 1.0f / s);
        for (ptrdiff_t k = 0; k < nv; k += 16) {
            __m512 v = _mm512_loadu_ps(b + k);
            _mm512_storeu_ps(b + k, log_out ? _mm512_sub_ps(v, f) : _mm512_mul_ps(v, f));
        }
        if (tm) {
            __m512 v = _mm512_maskz_loadu_ps(tm, b + nv);
            _mm512_mask_storeu_ps(b + nv, tm,
                                  log_out ? _mm512_sub_ps(v, f) : _mm512_mul_ps(v, f));
        }
    }
}

__attribute__((target("avx2,fma")))
static void tl_softmax_rows_f32_avx2(const float *restrict x, float *restrict y,
                                     ptrdiff_t rows, ptrdiff_t n, int log_out) {
    const ptrdiff_t nv = n & ~(ptrdiff_t)7, nt = n & 7;
    const __m256i tm = tl_mask256(nt);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *a = x + r * n;
        float *b = y + r * n;
        __m256 mv = ninf;
        for (ptrdiff_t k = 0; k < nv; k += 8)
            mv = _mm256_max_ps(mv, _mm256_loadu_ps(a + k));
        if (nt)
            mv = _mm256_max_ps(mv, _mm256_blendv_ps(ninf, _mm256_maskload_ps(a + nv, tm),
                                                    _mm256_castsi256_ps(tm)));
        const __m256 mb = _mm256_set1_ps(tl_hmax256(mv));
        __m256 sv = _mm256_setzero_ps();
        for (ptrdiff_t k = 0; k < nv; k += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + k), mb);
            __m256 e = tl_exp256(d);
            _mm256_storeu_ps(b + k, log_out ? d : e);
            sv = _mm256_add_ps(sv, e);
        }
        if (nt) {
            __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + nv, tm), mb);
            __m256 e = _mm256_and_ps(tl_exp256(d), _mm256_castsi256_ps(tm));
            _mm256_maskstore_ps(b + nv, tm, log_out ? d : e);
            sv = _mm256_add_ps(sv, e);
        }
        float s = tl_hsum256(sv);
        const __m256 f = _mm256_set1_ps(log_out ? (float)log((double)s) : 1.0f / s);
        for (ptrdiff_t k = 0; k < nv; k += 8) {
            __m256 v = _mm256_loadu_ps(b + k);
            _mm256_storeu_ps(b + k, log_out ? _mm256_sub_ps(v, f) : _mm256_mul_ps(v, f));
        }
        if (nt) {
            __m256 v = _mm256_maskload_ps(b + nv, tm);
            _mm256_maskstore_ps(b + nv, tm,
                                log_out ? _mm256_sub_ps(v, f) : _mm256_mul_ps(v, f));
        }
    }
}
#endif

static int tl_softmax_rows_f32(const float *x, float *y, ptrdiff_t rows, ptrdiff_t n,
                               int log_out) {
#if TL_HAVE_VEC
    int level = tl_vec_level();
    if (level == 2) {
        tl_softmax_rows_f32_avx512(x, y, rows, n, log_out);
        return 1;
    }
    if (level == 1) {
        tl_softmax_rows_f32_avx2(x, y, rows, n, log_out);
        return 1;
    }
#endif
    (void)x; (void)y; (void)rows; (void)n; (void)log_out;
    return 0;
}

#endif
