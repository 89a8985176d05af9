/* float32 sum and max/min of a contiguous run; float32 and float64 column and row sums.
 *
 * NumPy's float32 add.reduce is a pairwise sum whose inner blocks are not vectorised well,
 * and its max pays a setup per row; both ran 2.5-5x slower than PyTorch. The sum here
 * sums short float32 blocks in AVX lanes and adds the blocks in float64, so it is
 * faster than NumPy's and about as accurate (see tl_sum_f32_avx).
 * The max/min keep NaN: a NaN anywhere in the run gives NaN, as NumPy and PyTorch.
 *
 * Intrinsics with a run-time AVX check (as _half.h), not target_clones: gcc lowers generic
 * vector comparisons for the baseline before it clones, which scalarised them.
 */
#ifndef TL_REDUCE_H
#define TL_REDUCE_H
#include <stddef.h>
#include <math.h>
#include "_simd_math.h"

static double tl_sum_f32_scalar(const float *x, ptrdiff_t n) {
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; i++)
        s += (double)x[i];
    return s;
}

/* n >= 1 */
static float tl_extreme_f32_scalar(const float *x, ptrdiff_t n, int is_min) {
    float m = x[0];
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) return NAN;
        m = is_min ? (v < m ? v : m) : (v > m ? v : m);
    }
    return m;
}

/* Column sums over the middle axis of a contiguous (R, stride) block, for n <= TL_COL_TILE
 * columns starting at x: out[i] = scale * sum_r x[r * stride + i]. A cascade, as PyTorch's:
 * T over 16 rows, those partials in T over 16 more, then ACC (double), so a long axis (a
 * bias gradient over a million rows) keeps float64-like accuracy where NumPy's row-by-row
 * add.reduce lost 1e-2 in float32. The inner loops run along contiguous columns and
 * vectorise. One macro makes the float32 and the float64 kernels.
 *
 * Columns this narrow (a (1e6, 3) array) leave the inner loops too short to vectorise:
 * the block is read as (R / m, m * n) rows instead, m * n >= TL_COL_WIDE, and the m
 * partial sums of each column are added at the end (the rows past a multiple of m too). */
#define TL_COL_TILE 1024
#define TL_COL_LEAF 16
#define TL_COL_WIDE 32

#define TL_DEF_SUM_COLS(SFX, T, ACC)                                                          \
TL_CLONES                                                                                     \
static void tl_sum_cols_acc_##SFX(const T *x, ptrdiff_t R, ptrdiff_t stride, ptrdiff_t n,     \
                                  ACC *tot) {                                                 \
    T leaf[TL_COL_TILE], mid[TL_COL_TILE];                                                    \
    const ptrdiff_t top = TL_COL_LEAF * TL_COL_LEAF;                                          \
    for (ptrdiff_t i = 0; i < n; i++) tot[i] = 0;                                             \
    for (ptrdiff_t r2 = 0; r2 < R; r2 += top) {                                               \
        ptrdiff_t e2 = R - r2 < top ? R : r2 + top;                                           \
        for (ptrdiff_t i = 0; i < n; i++) mid[i] = 0;                                         \
        for (ptrdiff_t r1 = r2; r1 < e2; r1 += TL_COL_LEAF) {                                 \
            ptrdiff_t e1 = e2 - r1 < TL_COL_LEAF ? e2 : r1 + TL_COL_LEAF, r = r1;             \
            const T *a = x + r * stride;                                                      \
            /* two rows a pass: half the loads and stores of the leaf (one row a pass ran     \
             * at half NumPy's speed on wide rows) */                                         \
            if ((e1 - r1) % 2) {                                                              \
                for (ptrdiff_t i = 0; i < n; i++) leaf[i] = a[i];                             \
                r += 1;                                                                       \
            } else {                                                                          \
                for (ptrdiff_t i = 0; i < n; i++) leaf[i] = a[i] + a[i + stride];             \
                r += 2;                                                                       \
            }                                                                                 \
            for (; r < e1; r += 2) {                                                          \
                const T *p = x + r * stride, *q = p + stride;                                 \
                for (ptrdiff_t i = 0; i < n; i++) leaf[i] += p[i] + q[i];                     \
            }                                                                                 \
            for (ptrdiff_t i = 0; i < n; i++) mid[i] += leaf[i];                              \
        }                                                                                     \
        for (ptrdiff_t i = 0; i < n; i++) tot[i] += (ACC)mid[i];                              \
    }                                                                                         \
}                                                                                             \
                                                                                              \
static void tl_sum_cols_##SFX(const T *x, ptrdiff_t R, ptrdiff_t stride, ptrdiff_t n,         \
                              T *out, double scale) {                                         \
    ACC tot[TL_COL_TILE];                                                                     \
    if (stride != n || n >= TL_COL_WIDE / 2) {                                                \
        tl_sum_cols_acc_##SFX(x, R, stride, n, tot);                                          \
        for (ptrdiff_t i = 0; i < n; i++) out[i] = (T)(tot[i] * scale);                       \
        return;                                                                               \
    }                                                                                         \
    ptrdiff_t m = (TL_COL_WIDE + n - 1) / n, w = m * n, rm = R / m;                           \
    tl_sum_cols_acc_##SFX(x, rm, w, w, tot);                                                  \
    for (ptrdiff_t i = 0; i < n; i++) {                                                       \
        ACC s = 0;                                                                            \
        for (ptrdiff_t c = 0; c < m; c++) s += tot[c * n + i];                                \
        for (ptrdiff_t r = rm * m; r < R; r++) s += (ACC)x[r * n + i];                        \
        out[i] = (T)(s * scale);                                                              \
    }                                                                                         \
}

TL_DEF_SUM_COLS(f32, float, double)
TL_DEF_SUM_COLS(f64, double, double)

/* out[r] = scale * sum(x[r * N : (r + 1) * N]) for R float64 rows. Short rows are summed
 * in order (NumPy pays a ufunc inner loop per row there); longer ones in 16 lanes over
 * blocks of 256, the block lanes added into 64-block lanes and those into totals: a
 * cascade whose error is of a pairwise sum's size, in loops the compiler vectorises. */
#define TL_ROW_LANES 16
#define TL_ROW_BLOCK 256
#define TL_ROW_MID 64

TL_CLONES
static void tl_sum_rows_f64(const double *x, ptrdiff_t R, ptrdiff_t N, double *out,
                            double scale) {
    for (ptrdiff_t r = 0; r < R; r++) {
        const double *p = x + r * N;
        if (N < 2 * TL_ROW_LANES) {
            double s = 0.0;
            for (ptrdiff_t i = 0; i < N; i++) s += p[i];
            out[r] = s * scale;
            continue;
        }
        double leaf[TL_ROW_LANES], mid[TL_ROW_LANES], tot[TL_ROW_LANES];
        ptrdiff_t nb = N / TL_ROW_LANES * TL_ROW_LANES, i = 0;
        for (int j = 0; j < TL_ROW_LANES; j++) tot[j] = 0.0;
        while (i < nb) {
            for (int j = 0; j < TL_ROW_LANES; j++) mid[j] = 0.0;
            for (int b = 0; b < TL_ROW_MID && i < nb; b++) {
                ptrdiff_t e = nb - i < TL_ROW_BLOCK ? nb : i + TL_ROW_BLOCK;
                for (int j = 0; j < TL_ROW_LANES; j++) leaf[j] = p[i + j];
                for (i += TL_ROW_LANES; i < e; i += TL_ROW_LANES)
                    for (int j = 0; j < TL_ROW_LANES; j++) leaf[j] += p[i + j];
                for (int j = 0; j < TL_ROW_LANES; j++) mid[j] += leaf[j];
            }
            for (int j = 0; j < TL_ROW_LANES; j++) tot[j] += mid[j];
        }
        for (int h = TL_ROW_LANES / 2; h; h /= 2)      /* pairwise across the lanes */
            for (int j = 0; j < h; j++) tot[j] += tot[j + h];
        double s = tot[0];
        for (; i < N; i++) s += p[i];
        out[r] = s * scale;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

static int tl_has_avx(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx");
    }
    return known;
}

/* float32 lanes over blocks of 512 values, then float64 across blocks: each lane sums 16
 * values in float32, so the error stays near a pairwise sum's at float32 throughput (a
 * float64 accumulator throughout ran 4x slower, limited by the conversions) */
#define TL_SUM_BLOCK 512

__attribute__((target("avx")))
static double tl_sum_f32_avx(const float *x, ptrdiff_t n) {
    __m256d t0 = _mm256_setzero_pd(), t1 = t0;
    ptrdiff_t i = 0;
    while (n - i >= 32) {
        ptrdiff_t end = n - i >= TL_SUM_BLOCK ? i + TL_SUM_BLOCK : i + (n - i) / 32 * 32;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; i < end; i += 32) {     /* four independent chains hide the add latency */
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
        }
        __m256 b = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        t0 = _mm256_add_pd(t0, _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
        t1 = _mm256_add_pd(t1, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(t0, t1));
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tl_sum_f32_scalar(x + i, n - i);
}

__attribute__((target("avx")))
static float tl_extreme_f32_avx(const float *x, ptrdiff_t n, int is_min) {
    if (n < 16)
        return tl_extreme_f32_scalar(x, n, is_min);
    __m256 a0 = _mm256_loadu_ps(x), a1 = _mm256_loadu_ps(x + 8);
    /* unordered self-comparisons collect NaN lanes; max/min alone would drop them */
    __m256 bad = _mm256_or_ps(_mm256_cmp_ps(a0, a0, _CMP_UNORD_Q),
                              _mm256_cmp_ps(a1, a1, _CMP_UNORD_Q));
    ptrdiff_t i = 16;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q),
                                             _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)));
        a0 = is_min ? _mm256_min_ps(a0, v0) : _mm256_max_ps(a0, v0);
        a1 = is_min ? _mm256_min_ps(a1, v1) : _mm256_max_ps(a1, v1);
    }
    if (_mm256_movemask_ps(bad))
        return NAN;
    float lanes[8];
    _mm256_storeu_ps(lanes, is_min ? _mm256_min_ps(a0, a1) : _mm256_max_ps(a0, a1));
    float m = tl_extreme_f32_scalar(lanes, 8, is_min);
    if (i < n) {
        float t = tl_extreme_f32_scalar(x + i, n - i, is_min);
        m = isnan(t) ? t : is_min ? (t < m ? t : m) : (t > m ? t : m);
    }
    return m;
}

static double tl_sum_f32(const float *x, ptrdiff_t n) {
    return tl_has_avx() ? tl_sum_f32_avx(x, n) : tl_sum_f32_scalar(x, n);
}

static float tl_extreme_f32(const float *x, ptrdiff_t n, int is_min) {
    return tl_has_avx() ? tl_extreme_f32_avx(x, n, is_min) : tl_extreme_f32_scalar(x, n, is_min);
}
#else
static double tl_sum_f32(const float *x, ptrdiff_t n) { return tl_sum_f32_scalar(x, n); }
static float tl_extreme_f32(const float *x, ptrdiff_t n, int is_min) {
    return tl_extreme_f32_scalar(x, n, is_min);
}
#endif
#endif
