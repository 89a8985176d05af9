/* Outer-broadcast binary ops: out[i, j, k] = col[i, k] op row[j, k] (or row op col), the shape
 * a[:, None] op b[None, :] takes after its dims are collapsed; float32 and float64, arithmetic
 * (add sub mul div maximum minimum) and comparisons (to bytes 0/1).
 *
 * Compiled without fast-math (the pragma below): every element must be NumPy's bit for bit, so
 * no x / c turned into x * (1 / c) for a loop-invariant divisor, signed zeros kept, and the
 * NaN tests of maximum/minimum kept. The loops are plain, vectorised by the compiler inside
 * target_clones. For K == 1 the column value is a scalar for the whole row; for small K the
 * column row is repeated into a tile (a multiple of K long) so the inner loop stays flat and
 * contiguous; for K >= TL_OUTER_WIDE the column row itself is the tile.
 */
#ifndef TL_OUTER_BINARY_H
#define TL_OUTER_BINARY_H
#include <stddef.h>
#include "_simd_math.h"     /* TL_CLONES */

#pragma GCC push_options
#pragma GCC optimize("no-fast-math")

#define TL_OUTER_TILE 512
#define TL_OUTER_WIDE 16

enum { TL_OUT_ADD, TL_OUT_SUB, TL_OUT_RSUB, TL_OUT_MUL, TL_OUT_DIV, TL_OUT_RDIV, TL_OUT_MAX,
       TL_OUT_RMAX, TL_OUT_MIN, TL_OUT_RMIN, TL_OUT_EQ, TL_OUT_NE, TL_OUT_LT, TL_OUT_LE,
       TL_OUT_GT, TL_OUT_GE };

/* NumPy's maximum/minimum: NaN in either gives NaN, a tie gives the second operand. */
#define TL_OUT_E_ADD(x, y) ((x) + (y))
#define TL_OUT_E_SUB(x, y) ((x) - (y))
#define TL_OUT_E_RSUB(x, y) ((y) - (x))
#define TL_OUT_E_MUL(x, y) ((x) * (y))
#define TL_OUT_E_DIV(x, y) ((x) / (y))
#define TL_OUT_E_RDIV(x, y) ((y) / (x))
#define TL_OUT_E_MAX(x, y) (((x) > (y) || (x) != (x)) ? (x) : (y))
#define TL_OUT_E_RMAX(x, y) (((y) > (x) || (y) != (y)) ? (y) : (x))
#define TL_OUT_E_MIN(x, y) (((x) < (y) || (x) != (x)) ? (x) : (y))
#define TL_OUT_E_RMIN(x, y) (((y) < (x) || (y) != (y)) ? (y) : (x))
#define TL_OUT_E_EQ(x, y) ((x) == (y))
#define TL_OUT_E_NE(x, y) ((x) != (y))
#define TL_OUT_E_LT(x, y) ((x) < (y))
#define TL_OUT_E_LE(x, y) ((x) <= (y))
#define TL_OUT_E_GT(x, y) ((x) > (y))
#define TL_OUT_E_GE(x, y) ((x) >= (y))

/* Rows i0..i1 of one op E(col value, row value): x the scalar col[i] (K == 1) or the tile. */
#define TL_OUTER_ROWS(E, T, O)                                                               \
    if (K == 1) {                                                                            \
        for (ptrdiff_t i = i0; i < i1; i++) {                                                \
            const T s = col[i];                                                              \
            O *o = out + i * J;                                                              \
            for (ptrdiff_t j = 0; j < J; j++) o[j] = (O)E(s, row[j]);                         \
        }                                                                                    \
    } else {                                                                                 \
        for (ptrdiff_t i = i0; i < i1; i++) {                                                \
            const T *t = col + i * K;                                                        \
            if (L != K) {                                                                    \
                for (ptrdiff_t r = 0; r < L; r += K)                                         \
                    for (ptrdiff_t k = 0; k < K; k++) tile[r + k] = t[k];                    \
                t = tile;                                                                    \
            }                                                                                \
            O *o = out + i * JK;                                                             \
            for (ptrdiff_t c = 0; c < JK; c += L) {                                          \
                const ptrdiff_t m_end = JK - c < L ? JK - c : L;                             \
                const T *rc = row + c;                                                       \
                O *oc = o + c;                                                               \
                for (ptrdiff_t m = 0; m < m_end; m++) oc[m] = (O)E(t[m], rc[m]);             \
            }                                                                                \
        }                                                                                    \
    }

#define TL_OUTER_CASE(NAME, T, O) case TL_OUT_##NAME: TL_OUTER_ROWS(TL_OUT_E_##NAME, T, O) break;

#define TL_OUTER_DEFINE(T, S)                                                                \
/* The tile length: a multiple of K near TL_OUTER_TILE, at most a whole row (J K). */        \
static inline ptrdiff_t tl_outer_period_##S(ptrdiff_t J, ptrdiff_t K) {                      \
    if (K >= TL_OUTER_WIDE) return K;                                                        \
    ptrdiff_t L = (TL_OUTER_TILE / K) * K;                                                   \
    return L < J * K ? L : J * K;                                                            \
}                                                                                            \
                                                                                             \
/* Arithmetic ops (TL_OUT_ADD .. TL_OUT_RMIN) on rows i0..i1: col is (I, K), row (J, K),     \
 * out (I, J, K), all C-contiguous. */                                                       \
TL_CLONES                                                                                    \
static void tl_outer_arith_##S(int op, const T *col, const T *row, T *out, ptrdiff_t i0,     \
                               ptrdiff_t i1, ptrdiff_t J, ptrdiff_t K) {                     \
    T tile[TL_OUTER_TILE];                                                                   \
    const ptrdiff_t JK = J * K, L = tl_outer_period_##S(J, K);                               \
    switch (op) {                                                                            \
    TL_OUTER_CASE(ADD, T, T) TL_OUTER_CASE(SUB, T, T) TL_OUTER_CASE(RSUB, T, T)              \
    TL_OUTER_CASE(MUL, T, T) TL_OUTER_CASE(DIV, T, T) TL_OUTER_CASE(RDIV, T, T)              \
    TL_OUTER_CASE(MAX, T, T) TL_OUTER_CASE(RMAX, T, T) TL_OUTER_CASE(MIN, T, T)              \
    TL_OUTER_CASE(RMIN, T, T)                                                                \
    default: break;                                                                          \
    }                                                                                        \
}                                                                                            \
                                                                                             \
/* Comparisons (TL_OUT_EQ .. TL_OUT_GE, col op row) to bytes 0/1. */                         \
TL_CLONES                                                                                    \
static void tl_outer_cmp_##S(int op, const T *col, const T *row, unsigned char *out,         \
                             ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t J, ptrdiff_t K) {         \
    T tile[TL_OUTER_TILE];                                                                   \
    const ptrdiff_t JK = J * K, L = tl_outer_period_##S(J, K);                               \
    switch (op) {                                                                            \
    TL_OUTER_CASE(EQ, T, unsigned char) TL_OUTER_CASE(NE, T, unsigned char)                  \
    TL_OUTER_CASE(LT, T, unsigned char) TL_OUTER_CASE(LE, T, unsigned char)                  \
    TL_OUTER_CASE(GT, T, unsigned char) TL_OUTER_CASE(GE, T, unsigned char)                  \
    default: break;                                                                          \
    }                                                                                        \
}

TL_OUTER_DEFINE(float, f32)
TL_OUTER_DEFINE(double, f64)

#pragma GCC pop_options

#endif
