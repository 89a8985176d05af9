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

#endif
