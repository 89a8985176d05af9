/* scatter_reduce's amax/amin along contiguous rows: out[idx[k]] = max/min(out[idx[k]], v[k]),
 * NaN winning and then staying, as PyTorch's.
 *
 * In C rather than Cython so the max and min loops are separate and each update is one
 * maxss/minss and an unconditional store (`m > a ? m : a` returns a where either is NaN, so
 * a NaN a wins; a NaN m is kept by a rare branch): the Cython loop, with the reduction
 * chosen inside it, compiled the max to a compare-and-branch that mispredicted on random
 * data (1.5x slower than the min). Returns 1, with the index in *bad, for an index outside
 * [0, n) (out is then partly written: the caller's fresh copy, never seen).
 */
#ifndef TL_SCATTER_EXT_H
#define TL_SCATTER_EXT_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define TL_SCATTER_EXT(SUF, T)                                                                 \
static int tl_scatter_ext_row_##SUF(T *restrict out, ptrdiff_t n,                           \
                                    const int64_t *restrict idx, const T *restrict v,       \
                                    ptrdiff_t k, int maximum, int include_self,             \
                                    int64_t *bad) {                                         \
    if (!include_self) {                                                                       \
        for (ptrdiff_t i = 0; i < k; i++) {                                                    \
            int64_t t = idx[i];                                                                \
            if ((uint64_t)t >= (uint64_t)n) { *bad = t; return 1; }                            \
            out[t] = maximum ? (T)-INFINITY : (T)INFINITY;                                     \
        }                                                                                      \
    }                                                                                          \
    if (maximum) {                                                                             \
        for (ptrdiff_t i = 0; i < k; i++) {                                                    \
            int64_t t = idx[i];                                                                \
            if ((uint64_t)t >= (uint64_t)n) { *bad = t; return 1; }                            \
            T m = out[t], a = v[i];                                                            \
            a = m > a ? m : a;                                                                 \
            if (m != m) a = m;                                                                 \
            out[t] = a;                                                                        \
        }                                                                                      \
    } else {                                                                                   \
        for (ptrdiff_t i = 0; i < k; i++) {                                                    \
            int64_t t = idx[i];                                                                \
            if ((uint64_t)t >= (uint64_t)n) { *bad = t; return 1; }                            \
            T m = out[t], a = v[i];                                                            \
            a = m < a ? m : a;                                                                 \
            if (m != m) a = m;                                                                 \
            out[t] = a;                                                                        \
        }                                                                                      \
    }                                                                                          \
    return 0;                                                                                  \
}

TL_SCATTER_EXT(f32, float)
TL_SCATTER_EXT(f64, double)

#endif
