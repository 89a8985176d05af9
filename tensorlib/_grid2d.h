/* grid_sample's forward for 4-d inputs ('nearest' and 'bilinear'), fused: the grid is read,
 * unnormalised, padded, floored and weighed inside the loop, one output row at a time, and
 * every channel is then gathered from the row's taps.
 *
 * The coordinate arithmetic follows PyTorch's vectorised CPU kernel (GridSamplerKernel.cpp)
 * operation by operation, so the values match it to the last bit: -ffast-math is switched
 * off here (it would turn the divisions of the reflection into reciprocals and reorder the
 * four-term sum), and NaN/inf keep PyTorch's meaning (a NaN position is clamped to 0 by
 * 'border'/'reflection', reads nothing under 'zeros'; a bilinear NaN weight still multiplies
 * the zero it reads, giving NaN as PyTorch's).
 *
 * pad: 0 zeros, 1 border, 2 reflection. Rows r0..r1 of the (N * Ho) output rows; taps
 * and weights for one row go to offs (4 * Wo) and ws (4 * Wo), caller-owned scratch.
 * Every offset is computed from a position checked to lie inside the input (an invalid
 * tap is -1 and reads 0), so any grid value is safe.
 */
#ifndef TL_GRID2D_H
#define TL_GRID2D_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "_simd_vec.h"

#pragma GCC push_options
#pragma GCC optimize ("no-fast-math", "fp-contract=off")

/* PyTorch's AVX2/AVX-512 kernels are compiled with contraction on: the unnormalising
 * multiply-subtract, the reflection's fold and the four-term sum become fused multiply-adds
 * there, so the copy for those machines fuses exactly the same operations (FMA) and the
 * baseline copy none, as PyTorch's default kernel. */
#define TL_GS_FMA(a, b, c) __builtin_fma((a), (b), (c))
#define TL_GS_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define TL_GS_MULADD(a, b, c) ((a) * (b) + (c))
/* xc[o], or 0 where o < 0: the load is made safe and selected after, so it does not branch */
#define TL_GS_READ(T, xc, o) ((o) < 0 ? (T)0 : (xc)[(o) < 0 ? 0 : (o)])

#define TL_GRID2D_DEFINE(T, SUF, ATTR, FMA)                                                 \
ATTR static inline T tl_gs_pos_##SUF(T c, ptrdiff_t n, int pad, int align) {               \
    T u = align ? (c + (T)1) * (T)((double)(n - 1) / 2.0)                                   \
                : FMA(c + (T)1, (T)((double)n / 2.0), (T)-0.5);                             \
    if (pad == 2) {                                                                         \
        if (align && n == 1) return (T)0;                                                   \
        /* fold into [low, low + span], low -0.5 or 0, span n or n - 1 */                   \
        T low = align ? (T)0 : (T)-0.5;                                                     \
        T twice = align ? (T)(2 * (n - 1)) : (T)(2 * n);                                    \
        T a = fabs(u - low);                                                                \
        T extra = FMA(-(T)trunc(a / twice), twice, a);                                      \
        T back = twice - extra;                                                             \
        u = (extra > back ? back : extra) + low;                                            \
    }                                                                                       \
    if (pad != 0) {     /* clip into [0, n - 1], NaN to 0 */                                \
        T hi = (T)(n - 1);                                                                  \
        u = u > (T)0 ? u : (T)0;                                                            \
        u = u < hi ? u : hi;                                                                \
    }                                                                                       \
    return u;                                                                               \
}                                                                                           \
                                                                                            \
ATTR static void tl_grid2d_##SUF(const T *x, const T *grid, T *out, ptrdiff_t C, ptrdiff_t H,\
                            ptrdiff_t W, ptrdiff_t Ho, ptrdiff_t Wo, ptrdiff_t r0,          \
                            ptrdiff_t r1, int bilinear, int pad, int align,                 \
                            int64_t *offs, T *ws) {                                         \
    const ptrdiff_t S = H * W, P = Ho * Wo;                                                 \
    for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
        const ptrdiff_t n = r / Ho, ho = r % Ho;                                            \
        const T *g = grid + r * Wo * 2;                                                     \
        const T *xn = x + n * C * S;                                                        \
        T *on = out + n * C * P + ho * Wo;                                                  \
        if (!bilinear) {                                                                    \
            for (ptrdiff_t p = 0; p < Wo; p++) {                                            \
                T ix = nearbyint(tl_gs_pos_##SUF(g[2 * p], W, pad, align));                 \
                T iy = nearbyint(tl_gs_pos_##SUF(g[2 * p + 1], H, pad, align));             \
                int ok = (ix >= (T)0) & (ix < (T)W) & (iy >= (T)0) & (iy < (T)H);                \
                offs[p] = ok ? (int64_t)iy * W + (int64_t)ix : -1;                          \
            }                                                                               \
            for (ptrdiff_t c = 0; c < C; c++) {                                             \
                const T *xc = xn + c * S;                                                   \
                T *oc = on + c * P;                                                         \
                for (ptrdiff_t p = 0; p < Wo; p++) {                                        \
                    int64_t o = offs[p];                                                    \
                    T v = xc[o < 0 ? 0 : o];    /* (no branch to mispredict) */             \
                    oc[p] = o < 0 ? (T)0 : v;                                               \
                }                                                                           \
            }                                                                               \
            continue;                                                                       \
        }                                                                                   \
        for (ptrdiff_t p = 0; p < Wo; p++) {                                                \
            T ux = tl_gs_pos_##SUF(g[2 * p], W, pad, align);                                \
            T uy = tl_gs_pos_##SUF(g[2 * p + 1], H, pad, align);                            \
            T xw = floor(ux), yn = floor(uy);                                               \
            T w = ux - xw, e = (T)1 - w;    /* distances to the west and east taps */       \
            T nd = uy - yn, s = (T)1 - nd;                                                  \
            int vw = (xw >= (T)0) & (xw < (T)W), ve = (xw >= (T)-1) & (xw < (T)(W - 1));          \
            int vn = (yn >= (T)0) & (yn < (T)H), vs = (yn >= (T)-1) & (yn < (T)(H - 1));          \
            int64_t cw = vw ? (int64_t)xw : 0, ce = ve ? (int64_t)xw + 1 : 0;               \
            int64_t rn = vn ? (int64_t)yn * W : 0, rs = vs ? ((int64_t)yn + 1) * W : 0;     \
            int64_t *o = offs + 4 * p;                                                      \
            T *wp = ws + 4 * p;                                                             \
            o[0] = vn & vw ? rn + cw : -1;                                                   \
            o[1] = vn & ve ? rn + ce : -1;                                                   \
            o[2] = vs & vw ? rs + cw : -1;                                                   \
            o[3] = vs & ve ? rs + ce : -1;                                                   \
            wp[0] = s * e; wp[1] = s * w; wp[2] = nd * e; wp[3] = nd * w;                   \
        }                                                                                   \
        for (ptrdiff_t c = 0; c < C; c++) {                                                 \
            const T *xc = xn + c * S;                                                       \
            T *oc = on + c * P;                                                             \
            for (ptrdiff_t p = 0; p < Wo; p++) {                                            \
                const int64_t *o = offs + 4 * p;                                            \
                const T *wp = ws + 4 * p;                                                   \
                T a = TL_GS_READ(T, xc, o[0]), b = TL_GS_READ(T, xc, o[1]);                 \
                T d = TL_GS_READ(T, xc, o[2]), f = TL_GS_READ(T, xc, o[3]);                 \
                /* PyTorch's order: nw + ne + sw + se */                                    \
                oc[p] = FMA(f, wp[3], FMA(d, wp[2], FMA(b, wp[1], a * wp[0])));           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

TL_GRID2D_DEFINE(float, f32_base, , TL_GS_MULADD)
TL_GRID2D_DEFINE(double, f64_base, , TL_GS_MULADD)
#ifdef TL_HAVE_VEC
TL_GRID2D_DEFINE(float, f32_fma, __attribute__((target("avx2,fma"))), TL_GS_FMAF)
TL_GRID2D_DEFINE(double, f64_fma, __attribute__((target("avx2,fma"))), TL_GS_FMA)
#endif

#define TL_GRID2D_DISPATCH(T, SUF)                                                          \
static void tl_grid2d_##SUF(const T *x, const T *grid, T *out, ptrdiff_t C, ptrdiff_t H,   \
                            ptrdiff_t W, ptrdiff_t Ho, ptrdiff_t Wo, ptrdiff_t r0,          \
                            ptrdiff_t r1, int bilinear, int pad, int align,                 \
                            int64_t *offs, T *ws) {                                         \
    TL_GRID2D_PICK(SUF)(x, grid, out, C, H, W, Ho, Wo, r0, r1, bilinear, pad, align, offs,  \
                        ws);                                                                \
}
#ifdef TL_HAVE_VEC
#define TL_GRID2D_PICK(SUF) (tl_vec_level() >= 1 ? tl_grid2d_##SUF##_fma : tl_grid2d_##SUF##_base)
#else
#define TL_GRID2D_PICK(SUF) tl_grid2d_##SUF##_base
#endif
TL_GRID2D_DISPATCH(float, f32)
TL_GRID2D_DISPATCH(double, f64)

#pragma GCC pop_options
#endif
