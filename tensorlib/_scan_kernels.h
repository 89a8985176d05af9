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

/* ---- running sums, products and log-sum-exps (cumsum, cumprod, logcumsumexp) ----------
 * Each output is the sequential scan in double (PyTorch's CPU order and accumulator), so a
 * float64 result is bit for bit a plain running loop's. One row is a chain of dependent adds
 * (~4 cycles each); rows of a block run TL_SCAN_ILP chains side by side, so the core keeps
 * that many in flight. Not cloned: vectorising across rows would need gathers. */
#include <math.h>

/* log(exp(a) + exp(b)) as NumPy's npy_logaddexp (PyTorch's helper gives the same values):
 * equal values (same-signed infinities included) give a + log 2, a NaN gives NaN */
static inline double tl_logaddexp(double a, double b) {
    if (a == b) return a + 0.693147180559945309417232121458176568;
    double t = a - b;
    if (t > 0) return a + log1p(exp(-t));
    if (t <= 0) return b + log1p(exp(t));
    return t;
}

#define TL_SCAN_ADD(acc, v) ((acc) + (v))
#define TL_SCAN_MUL(acc, v) ((acc) * (v))
#define TL_SCAN_LAE(acc, v) tl_logaddexp((acc), (v))
#define TL_SCAN_ILP 8

/* rows r of x (R, n), C order: out[r, j] = acc_r after x[r, 0 .. j] */
#define TL_SCAN_ROWS(NAME, T, INIT, STEP)                                                   \
static void NAME(const T *restrict x, T *restrict out, ptrdiff_t R, ptrdiff_t n) {         \
    ptrdiff_t r = 0;                                                                        \
    for (; r + TL_SCAN_ILP <= R; r += TL_SCAN_ILP) {                                        \
        const T *restrict p = x + r * n;                                                    \
        T *restrict o = out + r * n;                                                        \
        double a0 = INIT, a1 = INIT, a2 = INIT, a3 = INIT;                                  \
        double a4 = INIT, a5 = INIT, a6 = INIT, a7 = INIT;                                  \
        for (ptrdiff_t j = 0; j < n; j++) {                                                 \
            a0 = STEP(a0, (double)p[j]);         o[j] = (T)a0;                              \
            a1 = STEP(a1, (double)p[n + j]);     o[n + j] = (T)a1;                          \
            a2 = STEP(a2, (double)p[2 * n + j]); o[2 * n + j] = (T)a2;                      \
            a3 = STEP(a3, (double)p[3 * n + j]); o[3 * n + j] = (T)a3;                      \
            a4 = STEP(a4, (double)p[4 * n + j]); o[4 * n + j] = (T)a4;                      \
            a5 = STEP(a5, (double)p[5 * n + j]); o[5 * n + j] = (T)a5;                      \
            a6 = STEP(a6, (double)p[6 * n + j]); o[6 * n + j] = (T)a6;                      \
            a7 = STEP(a7, (double)p[7 * n + j]); o[7 * n + j] = (T)a7;                      \
        }                                                                                   \
    }                                                                                       \
    for (; r < R; r++) {                                                                    \
        const T *restrict p = x + r * n;                                                    \
        T *restrict o = out + r * n;                                                        \
        double a = INIT;                                                                    \
        for (ptrdiff_t j = 0; j < n; j++) { a = STEP(a, (double)p[j]); o[j] = (T)a; }       \
    }                                                                                       \
}

/* columns k0 .. k1 of the (n, K) block x down its rows; acc: k1 - k0 doubles of scratch */
#define TL_SCAN_COLS(NAME, T, INIT, STEP)                                                   \
TL_SCAN_CLONES static void NAME(const T *restrict x, T *restrict out, ptrdiff_t n,         \
                                ptrdiff_t K, ptrdiff_t k0, ptrdiff_t k1,                   \
                                double *restrict acc) {                                    \
    ptrdiff_t w = k1 - k0;                                                                  \
    for (ptrdiff_t k = 0; k < w; k++) acc[k] = INIT;                                        \
    for (ptrdiff_t i = 0; i < n; i++) {                                                     \
        const T *restrict p = x + i * K + k0;                                               \
        T *restrict o = out + i * K + k0;                                                   \
        for (ptrdiff_t k = 0; k < w; k++) {                                                 \
            acc[k] = STEP(acc[k], (double)p[k]);                                            \
            o[k] = (T)acc[k];                                                               \
        }                                                                                   \
    }                                                                                       \
}

#define TL_SCAN_ALL(OPN, INIT, STEP)                                                        \
    TL_SCAN_ROWS(tl_scan_rows_##OPN##_f32, float, INIT, STEP)                               \
    TL_SCAN_ROWS(tl_scan_rows_##OPN##_f64, double, INIT, STEP)                              \
    TL_SCAN_COLS(tl_scan_cols_##OPN##_f32, float, INIT, STEP)                               \
    TL_SCAN_COLS(tl_scan_cols_##OPN##_f64, double, INIT, STEP)
TL_SCAN_ALL(sum, 0.0, TL_SCAN_ADD)
TL_SCAN_ALL(prod, 1.0, TL_SCAN_MUL)
/* -inf is logaddexp's identity: the first step gives x[0] exactly (NaN and inf included) */
TL_SCAN_ALL(lae, -INFINITY, TL_SCAN_LAE)

/* ---- pdist, p = 2, by differences ----------------------------------------------------------
 * xt is x (N, M) transposed (M, N), so the loops over the partner rows j are contiguous and
 * vectorise; sums over the M features run in T in order, as PyTorch's differences (which
 * overflow, NaN and inf follow), then the exact sqrt (-fno-finite-math-only keeps gcc's
 * approximate rsqrt out). */
#define TL_PD_BLOCK 512

/* sqrt in T's precision (a float through sqrtf: exactly rounded either way) */
#define TL_PD_SQRT(T, v) (sizeof(T) == 4 ? (T)sqrtf((float)(v)) : (T)sqrt((double)(v)))
/* tiles of partner rows whose sums stay in registers across the M features: 128 (eight
 * AVX-512 float chains, so the fma latency is hidden), then 16, then one at a time */
#define TL_PD_TILE_STEP(T, TILE)                                                            \
    for (; j0 + (TILE) <= N; j0 += (TILE)) {                                                \
        T acc[TILE];                                                                        \
        for (int j = 0; j < (TILE); j++) acc[j] = 0;                                        \
        for (ptrdiff_t m = 0; m < M; m++) {                                                 \
            const T s = xi[m];                                                              \
            const T *restrict b = xt + m * N + j0;                                          \
            for (int j = 0; j < (TILE); j++) { T d = s - b[j]; acc[j] += d * d; }           \
        }                                                                                   \
        T *restrict o = out + (j0 - i - 1);                                                 \
        for (int j = 0; j < (TILE); j++) o[j] = TL_PD_SQRT(T, acc[j]);                      \
    }

/* out[j - i - 1] = |x_i - x_j| for j = i + 1 .. N - 1 (out: row i's part of the vector) */
#define TL_PDIST_ROW(NAME, T)                                                               \
TL_SCAN_CLONES static void NAME(const T *restrict xi, const T *restrict xt, ptrdiff_t N,   \
                                ptrdiff_t M, ptrdiff_t i, T *restrict out) {               \
    ptrdiff_t j0 = i + 1;                                                                   \
    TL_PD_TILE_STEP(T, 128)                                                                 \
    TL_PD_TILE_STEP(T, 16)                                                                  \
    TL_PD_TILE_STEP(T, 1)                                                                   \
}

/* w[k] = g[k] / d[k], 0 where d is not > 0 (a coinciding pair, or NaN) */
#define TL_PD_WEIGHTS(w, g, d, L)                                                           \
    for (ptrdiff_t k_ = 0; k_ < (L); k_++)                                                  \
        (w)[k_] = (d)[k_] > 0 ? (g)[k_] / (d)[k_] : 0;

/* gx_i = sum_{j > i} w_ij (x_i - x_j): row i's own pairs (g, d: row i's part; w: N scratch).
 * Four features at a time share each load of w (four independent sums in registers) */
#define TL_PDIST_GRAD_ROW(NAME, T)                                                          \
TL_SCAN_CLONES static void NAME(const T *restrict g, const T *restrict d,                  \
                                const T *restrict xi, const T *restrict xt, ptrdiff_t N,   \
                                ptrdiff_t M, ptrdiff_t i, T *restrict gxi, T *restrict w) { \
    ptrdiff_t L = N - i - 1, m = 0;                                                         \
    TL_PD_WEIGHTS(w, g, d, L)                                                               \
    for (; m + 4 <= M; m += 4) {                                                            \
        const T s0 = xi[m], s1 = xi[m + 1], s2 = xi[m + 2], s3 = xi[m + 3];                 \
        const T *restrict b0 = xt + m * N + i + 1, *restrict b1 = b0 + N;                   \
        const T *restrict b2 = b1 + N, *restrict b3 = b2 + N;                               \
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                   \
        for (ptrdiff_t j = 0; j < L; j++) {                                                 \
            const T wj = w[j];                                                              \
            a0 += wj * (s0 - b0[j]); a1 += wj * (s1 - b1[j]);                               \
            a2 += wj * (s2 - b2[j]); a3 += wj * (s3 - b3[j]);                               \
        }                                                                                   \
        gxi[m] = a0; gxi[m + 1] = a1; gxi[m + 2] = a2; gxi[m + 3] = a3;                     \
    }                                                                                       \
    for (; m < M; m++) {                                                                    \
        const T s = xi[m];                                                                  \
        const T *restrict b = xt + m * N + i + 1;                                           \
        T acc = 0;                                                                          \
        for (ptrdiff_t j = 0; j < L; j++) acc += w[j] * (s - b[j]);                         \
        gxi[m] = acc;                                                                       \
    }                                                                                       \
}

/* the other side, register-tiled as the forward: for TL_PD_GT(T) partner rows j at a time,
 * their sums sum_{i < j} w_ij (x_j - x_i) stay in registers over chunks of TL_PD_GI rows i
 * (the chunk's weights in wc, TL_PD_GI x TL_PD_GT(T)), meeting memory (gt, M x TL_PD_GT(T))
 * once per chunk and feature rather than once per row i and feature */
#define TL_PD_GT(T) (512 / (ptrdiff_t)sizeof(T))
#define TL_PD_GI 32
#define TL_PD_GRAD_CHUNK(T, NT)                                                             \
    for (ptrdiff_t m = 0; m < M; m++) {                                                     \
        const T *restrict b = xt + m * N + jt;                                              \
        const T *restrict s = xt + m * N + i0;                                              \
        T *restrict o = gt + m * TL_PD_GT(T);                                               \
        T acc[TL_PD_GT(T)];                                                                 \
        for (ptrdiff_t t = 0; t < (NT); t++) acc[t] = o[t];                                 \
        for (ptrdiff_t ii = 0; ii < ni; ii++) {                                             \
            const T si = s[ii];                                                             \
            const T *restrict wr = wc + ii * TL_PD_GT(T);                                   \
            for (ptrdiff_t t = 0; t < (NT); t++) acc[t] += wr[t] * (b[t] - si);             \
        }                                                                                   \
        for (ptrdiff_t t = 0; t < (NT); t++) o[t] = acc[t];                                 \
    }

/* adds sum_{i < j} w_ij (x_j - x_i) to gx_j for the partner rows j in [j0, j1) (gt: M
 * TL_PD_GT(T), wc: TL_PD_GI TL_PD_GT(T) scratch; g and d the whole pdist vectors) */
#define TL_PDIST_GRAD_COLS(NAME, T)                                                         \
TL_SCAN_CLONES static void NAME(const T *restrict g, const T *restrict d,                  \
                                const T *restrict xt, ptrdiff_t N, ptrdiff_t M,            \
                                ptrdiff_t j0, ptrdiff_t j1, T *restrict gx,                \
                                T *restrict gt, T *restrict wc) {                          \
    const ptrdiff_t GT = TL_PD_GT(T);                                                       \
    for (ptrdiff_t jt = j0; jt < j1; jt += GT) {                                            \
        const ptrdiff_t nt = j1 - jt < GT ? j1 - jt : GT;                                   \
        for (ptrdiff_t k = 0; k < M * GT; k++) gt[k] = 0;                                   \
        for (ptrdiff_t i0 = 0; i0 < jt; i0 += TL_PD_GI) {                                   \
            const ptrdiff_t ni = jt - i0 < TL_PD_GI ? jt - i0 : TL_PD_GI;                   \
            for (ptrdiff_t ii = 0; ii < ni; ii++) {                                         \
                const ptrdiff_t i = i0 + ii, at = i * (2 * N - i - 1) / 2 + (jt - i - 1);   \
                TL_PD_WEIGHTS(wc + ii * GT, g + at, d + at, nt)                             \
            }                                                                               \
            if (nt == GT) { TL_PD_GRAD_CHUNK(T, TL_PD_GT(T)) }                              \
            else { TL_PD_GRAD_CHUNK(T, nt) }                                                \
        }                                                                                   \
        /* the pairs inside the tile */                                                     \
        for (ptrdiff_t i = jt; i + 1 < jt + nt; i++) {                                      \
            const ptrdiff_t lo = i + 1, L = jt + nt - lo;                                   \
            const ptrdiff_t at = i * (2 * N - i - 1) / 2;                                   \
            TL_PD_WEIGHTS(wc, g + at, d + at, L)                                            \
            for (ptrdiff_t m = 0; m < M; m++) {                                             \
                const T s = xt[m * N + i];                                                  \
                const T *restrict b = xt + m * N + lo;                                      \
                T *restrict o = gt + m * GT + (lo - jt);                                    \
                for (ptrdiff_t j = 0; j < L; j++) o[j] += wc[j] * (b[j] - s);               \
            }                                                                               \
        }                                                                                   \
        for (ptrdiff_t t = 0; t < nt; t++)                                                  \
            for (ptrdiff_t m = 0; m < M; m++) gx[(jt + t) * M + m] += gt[m * GT + t];       \
    }                                                                                       \
}

TL_PDIST_ROW(tl_pdist_row_f32, float)
TL_PDIST_ROW(tl_pdist_row_f64, double)
TL_PDIST_GRAD_ROW(tl_pdist_grad_row_f32, float)
TL_PDIST_GRAD_ROW(tl_pdist_grad_row_f64, double)
TL_PDIST_GRAD_COLS(tl_pdist_grad_cols_f32, float)
TL_PDIST_GRAD_COLS(tl_pdist_grad_cols_f64, double)

#endif
