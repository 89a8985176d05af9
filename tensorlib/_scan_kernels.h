/* The inner loops of _scan_kernels.pyx that must vectorise: NaN-skipping sums (along a
 * contiguous row, and down the rows of a (n, K) block) and the L1 distance rows.
 *
 * Plain C loops with independent partial sums, so gcc vectorises them without waiting on one
 * accumulator; compiled for AVX-512, AVX2 and the baseline (target_clones, as in
 * _simd_math.h) where the GNU toolchain and glibc support it, the loader picking the best.
 * Sums run in the input's precision over blocks (TL_SUM_BLOCK values of a row in TL_LANES
 * partial sums; TL_COL_BLOCK rows down a column), blocks add in double.
 */
#ifndef TENSORLIB_SCAN_KERNELS_H
#define TENSORLIB_SCAN_KERNELS_H

#include <stddef.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) \
    && !defined(__clang__)
#define TL_SCAN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TL_SCAN_CLONES
#endif

#define TL_SUM_BLOCK 1024
/* down the rows each column has one accumulator: flush it into double more often */
#define TL_COL_BLOCK 128
#define TL_LANES 32

/* sum (and, if cnt, the count) of the non-NaN p[0 .. n) */
#define TL_ROW_NANSUM(NAME, T)                                                              \
TL_SCAN_CLONES static double NAME(const T *p, ptrdiff_t n, long long *cnt) {               \
    double total = 0;                                                                       \
    long long ctotal = 0;                                                                   \
    for (ptrdiff_t b = 0; b < n; b += TL_SUM_BLOCK) {                                       \
        ptrdiff_t e = b + TL_SUM_BLOCK < n ? b + TL_SUM_BLOCK : n;                          \
        T acc[TL_LANES], c[TL_LANES];                                                       \
        for (int j = 0; j < TL_LANES; j++) { acc[j] = 0; c[j] = 0; }                        \
        ptrdiff_t i = b;                                                                    \
        if (cnt) {                                                                          \
            for (; i + TL_LANES <= e; i += TL_LANES)                                        \
                for (int j = 0; j < TL_LANES; j++) {                                        \
                    T v = p[i + j];                                                         \
                    acc[j] += v == v ? v : (T)0;                                            \
                    c[j] += v == v ? (T)1 : (T)0;                                           \
                }                                                                           \
        } else {                                                                            \
            for (; i + TL_LANES <= e; i += TL_LANES)                                        \
                for (int j = 0; j < TL_LANES; j++) {                                        \
                    T v = p[i + j];                                                         \
                    acc[j] += v == v ? v : (T)0;                                            \
                }                                                                           \
        }                                                                                   \
        for (; i < e; i++) {                                                                \
            T v = p[i];                                                                     \
            acc[0] += v == v ? v : (T)0;                                                    \
            c[0] += v == v ? (T)1 : (T)0;                                                   \
        }                                                                                   \
        for (int j = 0; j < TL_LANES; j++) { total += acc[j]; ctotal += (long long)c[j]; } \
    }                                                                                       \
    if (cnt) *cnt = ctotal;                                                                 \
    return total;                                                                           \
}

/* out[k] (and, if cnt, cnt[k]) over the n rows of x (n, K); acc and c hold 2 K scratch */
#define TL_COLS_NANSUM(NAME, T)                                                             \
TL_SCAN_CLONES static void NAME(const T *x, ptrdiff_t n, ptrdiff_t K, double *out,         \
                                long long *cnt, T *acc, T *c) {                             \
    for (ptrdiff_t k = 0; k < K; k++) { out[k] = 0; if (cnt) cnt[k] = 0; }                  \
    for (ptrdiff_t b = 0; b < n; b += TL_COL_BLOCK) {                                       \
        ptrdiff_t e = b + TL_COL_BLOCK < n ? b + TL_COL_BLOCK : n;                          \
        for (ptrdiff_t k = 0; k < K; k++) { acc[k] = 0; c[k] = 0; }                         \
        for (ptrdiff_t i = b; i < e; i++) {                                                 \
            const T *row = x + i * K;                                                       \
            if (cnt) {                                                                      \
                for (ptrdiff_t k = 0; k < K; k++) {                                         \
                    T v = row[k];                                                           \
                    acc[k] += v == v ? v : (T)0;                                            \
                    c[k] += v == v ? (T)1 : (T)0;                                           \
                }                                                                           \
            } else {                                                                        \
                for (ptrdiff_t k = 0; k < K; k++) {                                         \
                    T v = row[k];                                                           \
                    acc[k] += v == v ? v : (T)0;                                            \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        for (ptrdiff_t k = 0; k < K; k++) out[k] += acc[k];                                 \
        if (cnt) for (ptrdiff_t k = 0; k < K; k++) cnt[k] += (long long)c[k];               \
    }                                                                                       \
}

/* out[j] = sum_m |a[m] - bt[m * R + j]| for j < R (bt: x2 transposed, M rows of R) */
#define TL_L1_ROW(NAME, T)                                                                  \
TL_SCAN_CLONES static void NAME(const T *restrict a, const T *restrict bt, ptrdiff_t M,    \
                                ptrdiff_t R, T *restrict out) {                            \
    for (ptrdiff_t j = 0; j < R; j++) out[j] = 0;                                           \
    for (ptrdiff_t m = 0; m < M; m++) {                                                     \
        const T s = a[m];                                                                   \
        const T *b = bt + m * R;                                                            \
        for (ptrdiff_t j = 0; j < R; j++) {                                                 \
            T d = s - b[j];                                                                 \
            out[j] += d < 0 ? -d : d;                                                       \
        }                                                                                   \
    }                                                                                       \
}

/* for one row i: ga[m] = sum_j g[j] sign(a[m] - bt[m, j]) and gbt[m, j] -= the same terms */
#define TL_L1_GRAD_ROW(NAME, T)                                                             \
TL_SCAN_CLONES static void NAME(const T *restrict g, const T *restrict a,                  \
                                const T *restrict bt, ptrdiff_t M, ptrdiff_t R,            \
                                T *restrict ga, T *restrict gbt) {                         \
    for (ptrdiff_t m = 0; m < M; m++) {                                                     \
        const T s = a[m];                                                                   \
        const T *restrict b = bt + m * R;                                                   \
        T *restrict gb = gbt + m * R;                                                       \
        T acc = 0;                                                                          \
        for (ptrdiff_t j = 0; j < R; j++) {                                                 \
            T d = s - b[j];                                                                 \
            /* branch-free: the signs are random, a branch would mispredict */              \
            T t = g[j] * ((T)(d > 0) - (T)(d < 0));                                         \
            acc += t;                                                                       \
            gb[j] -= t;                                                                     \
        }                                                                                   \
        ga[m] = acc;                                                                        \
    }                                                                                       \
}

TL_ROW_NANSUM(tl_row_nansum_f32, float)
TL_ROW_NANSUM(tl_row_nansum_f64, double)
TL_COLS_NANSUM(tl_cols_nansum_f32, float)
TL_COLS_NANSUM(tl_cols_nansum_f64, double)
TL_L1_ROW(tl_l1_row_f32, float)
TL_L1_ROW(tl_l1_row_f64, double)
TL_L1_GRAD_ROW(tl_l1_grad_row_f32, float)
TL_L1_GRAD_ROW(tl_l1_grad_row_f64, double)

/* Running max (IS_MAX) or min with its index, PyTorch's rule: a NaN always takes over (and
 * keeps it: nothing beats a NaN), a tie moves the index to the later element. For integer T
 * the NaN tests fold away. */
#define TL_TAKES(v, best, IS_MAX) \
    ((v) != (v) || ((best) == (best) && ((IS_MAX) ? (v) >= (best) : (v) <= (best))))

/* along one contiguous row of n. In blocks of TL_CUM_BLOCK: when no element of a block can take
 * over from the running value (all strictly below it for a max, no NaN; one vectorised test),
 * the block repeats it; otherwise the block runs element by element. On data whose running
 * value settles (most data) nearly every block is the fast kind. */
#define TL_CUM_BLOCK 16
#define TL_CUM_ROW(NAME, T)                                                                 \
TL_SCAN_CLONES static void NAME(const T *restrict x, ptrdiff_t n, T *restrict vals,         \
                                long long *restrict idx, int is_max) {                     \
    T best = x[0];                                                                          \
    long long bi = 0;                                                                       \
    ptrdiff_t i = 0;                                                                        \
    while (i < n) {                                                                         \
        ptrdiff_t e = i + TL_CUM_BLOCK <= n ? i + TL_CUM_BLOCK : n;                         \
        if (e - i == TL_CUM_BLOCK && best == best) {                                        \
            int hit = 0;                                                                    \
            if (is_max)                                                                     \
                for (int j = 0; j < TL_CUM_BLOCK; j++) hit |= !(x[i + j] < best);           \
            else                                                                            \
                for (int j = 0; j < TL_CUM_BLOCK; j++) hit |= !(x[i + j] > best);           \
            if (!hit) {                                                                     \
                for (int j = 0; j < TL_CUM_BLOCK; j++) { vals[i + j] = best; idx[i + j] = bi; } \
                i = e;                                                                      \
                continue;                                                                   \
            }                                                                               \
        }                                                                                   \
        if (is_max)                                                                         \
            for (; i < e; i++) {                                                            \
                T v = x[i];                                                                 \
                if (TL_TAKES(v, best, 1)) { best = v; bi = i; }                             \
                vals[i] = best; idx[i] = bi;                                                \
            }                                                                               \
        else                                                                                \
            for (; i < e; i++) {                                                            \
                T v = x[i];                                                                 \
                if (TL_TAKES(v, best, 0)) { best = v; bi = i; }                             \
                vals[i] = best; idx[i] = bi;                                                \
            }                                                                               \
    }                                                                                       \
}

/* step i of a scan down the rows of a (n, K) block, columns k0 .. k1: row i - 1 of vals and
 * idx holds the running values; branch-free selects, so the loop over k vectorises */
#define TL_CUM_COLS(NAME, T)                                                                \
TL_SCAN_CLONES static void NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t K, ptrdiff_t k0, \
                                ptrdiff_t k1, T *restrict vals, long long *restrict idx,   \
                                int is_max) {                                               \
    for (ptrdiff_t k = k0; k < k1; k++) { vals[k] = x[k]; idx[k] = 0; }                     \
    for (ptrdiff_t i = 1; i < n; i++) {                                                     \
        const T *restrict xr = x + i * K;                                                   \
        const T *restrict pv = vals + (i - 1) * K;                                          \
        const long long *restrict pi = idx + (i - 1) * K;                                   \
        T *restrict ov = vals + i * K;                                                      \
        long long *restrict oi = idx + i * K;                                               \
        if (is_max) {                                                                       \
            for (ptrdiff_t k = k0; k < k1; k++) {                                           \
                T v = xr[k], b = pv[k];                                                     \
                int t = TL_TAKES(v, b, 1);                                                  \
                ov[k] = t ? v : b; oi[k] = t ? (long long)i : pi[k];                        \
            }                                                                               \
        } else {                                                                            \
            for (ptrdiff_t k = k0; k < k1; k++) {                                           \
                T v = xr[k], b = pv[k];                                                     \
                int t = TL_TAKES(v, b, 0);                                                  \
                ov[k] = t ? v : b; oi[k] = t ? (long long)i : pi[k];                        \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

/* The row scan must branch: if-converted (cmov), every element waits on the previous
 * select, 4-5 cycles each, where a predicted branch runs ahead (sorted input: 2.5x faster) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-if-conversion", "no-if-conversion2")
#endif
TL_CUM_ROW(tl_cum_row_f32, float)
TL_CUM_ROW(tl_cum_row_f64, double)
TL_CUM_ROW(tl_cum_row_i64, long long)
TL_CUM_ROW(tl_cum_row_i32, int)
TL_CUM_ROW(tl_cum_row_i16, short)
TL_CUM_ROW(tl_cum_row_i8, signed char)
TL_CUM_ROW(tl_cum_row_u8, unsigned char)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#define TL_CUM(SUFFIX, T) TL_CUM_COLS(tl_cum_cols_##SUFFIX, T)
TL_CUM(f32, float)
TL_CUM(f64, double)
TL_CUM(i64, long long)
TL_CUM(i32, int)
TL_CUM(i16, short)
TL_CUM(i8, signed char)
TL_CUM(u8, unsigned char)

#endif
