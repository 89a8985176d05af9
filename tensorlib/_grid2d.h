/* grid_sample for 4-d inputs ('nearest' and 'bilinear'), fused, forward and backward: the
 * grid of one output row is read, unnormalised, padded, floored and weighed once (loops
 * specialised on the padding and align_corners, so they vectorise), then every channel is
 * gathered from the row's taps (AVX2 gathers where there are, as PyTorch's kernel), or, in
 * the backward, scattered into (input gradient) and summed against (grid gradient).
 *
 * The coordinate arithmetic follows PyTorch's vectorised CPU kernel (GridSamplerKernel.cpp)
 * operation by operation, so the forward values match it to the last bit: -ffast-math is
 * switched off here (it would turn the divisions of the reflection into reciprocals and
 * reorder the four-term sum; no-trapping-math only lets the selects vectorise), and NaN/inf
 * keep PyTorch's meaning (a NaN position is clamped to 0 by 'border'/'reflection', reads
 * nothing under 'zeros'; a bilinear NaN weight still multiplies the zero it reads, giving
 * NaN as PyTorch's).
 *
 * pad: 0 zeros, 1 border, 2 reflection. Taps are 32-bit offsets into one H x W plane (the
 * caller checks H * W < 2^31), -1 for a tap outside, which reads 0 and receives nothing;
 * every offset comes from a position checked to lie inside the input, so any grid value is
 * safe. Scratch (per thread, caller-owned): offs 4 * Wo int32, ws 10 * Wo (forward) or
 * 12 * Wo (backward) values.
 */
#ifndef TL_GRID2D_H
#define TL_GRID2D_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_simd_vec.h"

#pragma GCC push_options
#pragma GCC optimize ("no-fast-math", "fp-contract=off", "no-trapping-math")

/* PyTorch's AVX2/AVX-512 kernels are compiled with contraction on: the unnormalising
 * multiply-subtract, the reflection's fold and the four-term sum become fused multiply-adds
 * there, so the copy for those machines fuses exactly the same operations (FMA) and the
 * baseline copy none, as PyTorch's default kernel. */
#define TL_GS_FMA(a, b, c) __builtin_fma((a), (b), (c))
#define TL_GS_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define TL_GS_MULADD(a, b, c) ((a) * (b) + (c))
/* xc[o], or 0 where o < 0, by masking the bits: a select here compiles to a branch, which
 * mispredicts on every scattered out-of-range tap ('zeros' padding) */
static inline float tl_gs_mask_float(float v, int32_t o) {
    uint32_t b;
    memcpy(&b, &v, 4);
    b &= ~(uint32_t)(o >> 31);
    memcpy(&v, &b, 4);
    return v;
}
static inline double tl_gs_mask_double(double v, int32_t o) {
    uint64_t b;
    memcpy(&b, &v, 8);
    b &= ~(uint64_t)(int64_t)(o >> 31);
    memcpy(&v, &b, 8);
    return v;
}
#define TL_GS_READ(T, xc, o) tl_gs_mask_##T((xc)[(o) & ~((o) >> 31)], (o))
/* xc[o] += v where o >= 0 (else + 0 at xc[0]) */
#define TL_GS_ADD(T, xc, o, v) ((xc)[(o) & ~((o) >> 31)] += tl_gs_mask_##T((v), (o)))

/* The per-channel reads of one row on AVX2 gathers (as PyTorch's kernel): masked lanes (a
 * tap outside, -1) read 0 without touching memory; the same multiply and fused adds as the
 * scalar loop, so the same values. Return how many points they did (the rest: scalar). */
#if TL_HAVE_VEC
#define TL_GS_NOT(i) _mm256_xor_si256((i), _mm256_set1_epi32(-1))   /* sign set: inside */
__attribute__((target("avx2,fma"))) static ptrdiff_t
tl_gs_gather_f32(const float *xc, const int32_t *o0, const int32_t *o1, const int32_t *o2,
                 const int32_t *o3, const float *w0, const float *w1, const float *w2,
                 const float *w3, float *oc, ptrdiff_t Wo, int bilinear) {
    const __m256 z = _mm256_setzero_ps();
    ptrdiff_t p = 0;
#define TL_GS_G8(o) __extension__({ __m256i i_ = _mm256_loadu_si256((const __m256i *)((o) + p)); \
        _mm256_mask_i32gather_ps(z, xc, i_, _mm256_castsi256_ps(TL_GS_NOT(i_)), 4); })
    if (!bilinear) {
        for (; p + 8 <= Wo; p += 8) _mm256_storeu_ps(oc + p, TL_GS_G8(o0));
        return p;
    }
    for (; p + 8 <= Wo; p += 8) {
        __m256 r = _mm256_mul_ps(TL_GS_G8(o0), _mm256_loadu_ps(w0 + p));
        r = _mm256_fmadd_ps(TL_GS_G8(o1), _mm256_loadu_ps(w1 + p), r);
        r = _mm256_fmadd_ps(TL_GS_G8(o2), _mm256_loadu_ps(w2 + p), r);
        r = _mm256_fmadd_ps(TL_GS_G8(o3), _mm256_loadu_ps(w3 + p), r);
        _mm256_storeu_ps(oc + p, r);
    }
#undef TL_GS_G8
    return p;
}
__attribute__((target("avx2,fma"))) static ptrdiff_t
tl_gs_gather_f64(const double *xc, const int32_t *o0, const int32_t *o1, const int32_t *o2,
                 const int32_t *o3, const double *w0, const double *w1, const double *w2,
                 const double *w3, double *oc, ptrdiff_t Wo, int bilinear) {
    const __m256d z = _mm256_setzero_pd();
    ptrdiff_t p = 0;
#define TL_GS_G4(o) __extension__({ __m128i i_ = _mm_loadu_si128((const __m128i *)((o) + p));   \
        __m256i m_ = _mm256_cvtepi32_epi64(_mm_xor_si128(i_, _mm_set1_epi32(-1)));               \
        _mm256_mask_i32gather_pd(z, xc, i_, _mm256_castsi256_pd(m_), 8); })
    if (!bilinear) {
        for (; p + 4 <= Wo; p += 4) _mm256_storeu_pd(oc + p, TL_GS_G4(o0));
        return p;
    }
    for (; p + 4 <= Wo; p += 4) {
        __m256d r = _mm256_mul_pd(TL_GS_G4(o0), _mm256_loadu_pd(w0 + p));
        r = _mm256_fmadd_pd(TL_GS_G4(o1), _mm256_loadu_pd(w1 + p), r);
        r = _mm256_fmadd_pd(TL_GS_G4(o2), _mm256_loadu_pd(w2 + p), r);
        r = _mm256_fmadd_pd(TL_GS_G4(o3), _mm256_loadu_pd(w3 + p), r);
        _mm256_storeu_pd(oc + p, r);
    }
#undef TL_GS_G4
    return p;
}
/* The grid gradient's per-channel sums of one row on gathers (the scalar loop's operations) */
__attribute__((target("avx2,fma"))) static ptrdiff_t
tl_gs_ggrad_f32(const float *xc, const int32_t *o0, const int32_t *o1, const int32_t *o2,
                const int32_t *o3, const float *fxs, const float *fys, const float *gc,
                float *sx, float *sy, ptrdiff_t Wo) {
    const __m256 z = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    ptrdiff_t p = 0;
#define TL_GS_G8(o) __extension__({ __m256i i_ = _mm256_loadu_si256((const __m256i *)((o) + p)); \
        _mm256_mask_i32gather_ps(z, xc, i_, _mm256_castsi256_ps(TL_GS_NOT(i_)), 4); })
    for (; p + 8 <= Wo; p += 8) {
        __m256 a = TL_GS_G8(o0), b = TL_GS_G8(o1), d = TL_GS_G8(o2), f = TL_GS_G8(o3);
        __m256 fx = _mm256_loadu_ps(fxs + p), fy = _mm256_loadu_ps(fys + p);
        __m256 v = _mm256_loadu_ps(gc + p);
        __m256 tx = _mm256_fmadd_ps(fy, _mm256_sub_ps(f, d),
                                    _mm256_mul_ps(_mm256_sub_ps(one, fy), _mm256_sub_ps(b, a)));
        __m256 ty = _mm256_fmadd_ps(fx, _mm256_sub_ps(f, b),
                                    _mm256_mul_ps(_mm256_sub_ps(one, fx), _mm256_sub_ps(d, a)));
        _mm256_storeu_ps(sx + p, _mm256_add_ps(_mm256_loadu_ps(sx + p), _mm256_mul_ps(v, tx)));
        _mm256_storeu_ps(sy + p, _mm256_add_ps(_mm256_loadu_ps(sy + p), _mm256_mul_ps(v, ty)));
    }
#undef TL_GS_G8
    return p;
}
__attribute__((target("avx2,fma"))) static ptrdiff_t
tl_gs_ggrad_f64(const double *xc, const int32_t *o0, const int32_t *o1, const int32_t *o2,
                const int32_t *o3, const double *fxs, const double *fys, const double *gc,
                double *sx, double *sy, ptrdiff_t Wo) {
    const __m256d z = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    ptrdiff_t p = 0;
#define TL_GS_G4(o) __extension__({ __m128i i_ = _mm_loadu_si128((const __m128i *)((o) + p));   \
        __m256i m_ = _mm256_cvtepi32_epi64(_mm_xor_si128(i_, _mm_set1_epi32(-1)));               \
        _mm256_mask_i32gather_pd(z, xc, i_, _mm256_castsi256_pd(m_), 8); })
    for (; p + 4 <= Wo; p += 4) {
        __m256d a = TL_GS_G4(o0), b = TL_GS_G4(o1), d = TL_GS_G4(o2), f = TL_GS_G4(o3);
        __m256d fx = _mm256_loadu_pd(fxs + p), fy = _mm256_loadu_pd(fys + p);
        __m256d v = _mm256_loadu_pd(gc + p);
        __m256d tx = _mm256_fmadd_pd(fy, _mm256_sub_pd(f, d),
                                     _mm256_mul_pd(_mm256_sub_pd(one, fy), _mm256_sub_pd(b, a)));
        __m256d ty = _mm256_fmadd_pd(fx, _mm256_sub_pd(f, b),
                                     _mm256_mul_pd(_mm256_sub_pd(one, fx), _mm256_sub_pd(d, a)));
        _mm256_storeu_pd(sx + p, _mm256_add_pd(_mm256_loadu_pd(sx + p), _mm256_mul_pd(v, tx)));
        _mm256_storeu_pd(sy + p, _mm256_add_pd(_mm256_loadu_pd(sy + p), _mm256_mul_pd(v, ty)));
    }
#undef TL_GS_G4
    return p;
}
#endif
#define TL_GS_NOGATHER(...) ((ptrdiff_t)0)

/* The taps of one output row (Wo points of grid g), compile-time specialised on PAD and
 * ALIGN (the caller's switch passes constants, always_inline folds them) so the loop has no
 * branch and vectorises: 32-bit offsets (the caller checks H * W < 2^31; float -> int32
 * converts on vector registers, -> int64 does not before AVX-512DQ), an invalid tap -1.
 * Bilinear: offsets o[k * Wo + p], weights w[k * Wo + p] (k = nw, ne, sw, se) and the
 * fractions fx (west->east), fy (north->south) in w[4 * Wo...], w[5 * Wo...], and in
 * w[6 * Wo...], w[7 * Wo...] d(position)/d(grid) per point (the unnormalising scale times
 * the padding's slope, PyTorch's gx_mult) for the grid gradient; nearest: o[p] only. */
#define TL_GRID2D_DEFINE(T, SUF, ATTR, FMA, FLOOR, RINT, TRUNC, FABS, GATHER, GGRAD)         \
ATTR static inline __attribute__((always_inline)) T                                          \
tl_gs_pos_##SUF(T c, ptrdiff_t n, const int pad, const int align, T *slope) {               \
    const T scale = align ? (T)((double)(n - 1) / 2.0) : (T)((double)n / 2.0);              \
    T u = align ? (c + (T)1) * scale : FMA(c + (T)1, scale, (T)-0.5);                       \
    T sl = scale;                                                                           \
    if (pad == 2) {                                                                         \
        /* fold into [low, low + span], low -0.5 or 0, span n or n - 1 */                   \
        const T low = align ? (T)0 : (T)-0.5;                                               \
        const T twice = align ? (T)(2 * (n - 1)) : (T)(2 * n);                              \
        /* (align_corners with n == 1: scale and twice are 0, so u folds to 0 or NaN, which \
         * the clip makes 0, slope 0; the divisor 1 only keeps 0 / 0 out) */                 \
        const T div = twice > (T)0 ? twice : (T)1;                                          \
        T d = u - low;                                                                      \
        T a = FABS(d);                                                                      \
        T extra = FMA(-TRUNC(a / div), twice, a);                                           \
        T back = twice - extra;                                                             \
        int flip = extra > back;                                                            \
        u = (flip ? back : extra) + low;                                                    \
        sl = (flip ^ (d < (T)0)) ? -scale : scale;                                          \
    }                                                                                       \
    if (pad != 0) {     /* clip into [0, n - 1], NaN to 0; the slope 0 on the borders */     \
        T hi = (T)(n - 1);                                                                  \
        sl = (u > (T)0) & (u < hi) ? sl : (T)0;                                             \
        u = u > (T)0 ? u : (T)0;                                                            \
        u = u < hi ? u : hi;                                                                \
    }                                                                                       \
    *slope = sl;                                                                            \
    return u;                                                                               \
}                                                                                           \
                                                                                            \
ATTR static __attribute__((noinline)) void    /* (noinline: inlined, restrict is lost) */   \
tl_gs_bil_##SUF(const T *restrict u, const T *restrict v, ptrdiff_t Wo, ptrdiff_t H,      \
                ptrdiff_t W, int32_t *restrict o0, int32_t *restrict o1,                    \
                int32_t *restrict o2, int32_t *restrict o3, T *restrict w0, T *restrict w1, \
                T *restrict w2, T *restrict w3, T *restrict w4, T *restrict w5) {           \
    /* (one pointer an array: gcc does not vectorise the loop with offsets k * Wo) */       \
    for (ptrdiff_t p = 0; p < Wo; p++) {                                                    \
        T ux = u[p], uy = v[p];                                                             \
        T xw = FLOOR(ux), yn = FLOOR(uy);                                                   \
        T fx = ux - xw, e = (T)1 - fx;    /* distances to the west and east taps */         \
        T fy = uy - yn, s = (T)1 - fy;                                                      \
        int vw = (xw >= (T)0) & (xw < (T)W), ve = (xw >= (T)-1) & (xw < (T)(W - 1));        \
        int vn = (yn >= (T)0) & (yn < (T)H), vs = (yn >= (T)-1) & (yn < (T)(H - 1));        \
        int32_t cw = (int32_t)(vw | ve ? xw : (T)0), rn = (int32_t)(vn | vs ? yn : (T)0);   \
        int32_t W32 = (int32_t)W, base = rn * W32 + cw;                                     \
        o0[p] = base | ((vn & vw) - 1);    /* (-1 where invalid, as above) */               \
        o1[p] = (base + 1) | ((vn & ve) - 1);                                               \
        o2[p] = (base + W32) | ((vs & vw) - 1);                                             \
        o3[p] = (base + W32 + 1) | ((vs & ve) - 1);                                         \
        w0[p] = s * e; w1[p] = s * fx; w2[p] = fy * e; w3[p] = fy * fx;                     \
        w4[p] = fx; w5[p] = fy;                                                             \
    }                                                                                       \
}                                                                                           \
                                                                                            \
ATTR static inline __attribute__((always_inline)) void                                       \
tl_gs_taps_##SUF(const T *restrict g, ptrdiff_t Wo, ptrdiff_t H, ptrdiff_t W,               \
                 const int bilinear, const int pad, const int align, int32_t *restrict o,   \
                 T *restrict w) {                                                           \
    if (!bilinear) {                                                                        \
        for (ptrdiff_t p = 0; p < Wo; p++) {                                                \
            T unused;                                                                       \
            T ix = RINT(tl_gs_pos_##SUF(g[2 * p], W, pad, align, &unused));                 \
            T iy = RINT(tl_gs_pos_##SUF(g[2 * p + 1], H, pad, align, &unused));             \
            int ok = (ix >= (T)0) & (ix < (T)W) & (iy >= (T)0) & (iy < (T)H);               \
            /* convert only what fits an int32 (selected first: NaN/huge never convert) */  \
            int32_t cx = (int32_t)(ok ? ix : (T)0), ry = (int32_t)(ok ? iy : (T)0);         \
            o[p] = (ry * (int32_t)W + cx) | (ok - 1);   /* (-1 where not ok; no select,     \
                                                           which gcc makes a masked store) */\
        }                                                                                   \
        return;                                                                             \
    }                                                                                       \
    /* (two loops, the positions through w[8 * Wo...]: gcc vectorises each, not their      \
     * fusion) */                                                                           \
    T *restrict ux = w + 8 * Wo, *restrict uy = w + 9 * Wo;                                 \
    T *restrict sx = w + 6 * Wo, *restrict sy = w + 7 * Wo;                                 \
    for (ptrdiff_t p = 0; p < Wo; p++) {                                                    \
        ux[p] = tl_gs_pos_##SUF(g[2 * p], W, pad, align, sx + p);                           \
        uy[p] = tl_gs_pos_##SUF(g[2 * p + 1], H, pad, align, sy + p);                       \
    }                                                                                       \
    tl_gs_bil_##SUF(w + 8 * Wo, w + 9 * Wo, Wo, H, W, o, o + Wo, o + 2 * Wo, o + 3 * Wo, w, \
                    w + Wo, w + 2 * Wo, w + 3 * Wo, w + 4 * Wo, w + 5 * Wo);                \
}                                                                                           \
                                                                                            \
ATTR static void tl_gs_row_taps_##SUF(const T *g, ptrdiff_t Wo, ptrdiff_t H, ptrdiff_t W,  \
                                      int bilinear, int pad, int align, int32_t *o, T *w) { \
    switch (bilinear * 6 + pad * 2 + !!align) {                                             \
    case 0: tl_gs_taps_##SUF(g, Wo, H, W, 0, 0, 0, o, w); break;                            \
    case 1: tl_gs_taps_##SUF(g, Wo, H, W, 0, 0, 1, o, w); break;                            \
    case 2: tl_gs_taps_##SUF(g, Wo, H, W, 0, 1, 0, o, w); break;                            \
    case 3: tl_gs_taps_##SUF(g, Wo, H, W, 0, 1, 1, o, w); break;                            \
    case 4: tl_gs_taps_##SUF(g, Wo, H, W, 0, 2, 0, o, w); break;                            \
    case 5: tl_gs_taps_##SUF(g, Wo, H, W, 0, 2, 1, o, w); break;                            \
    case 6: tl_gs_taps_##SUF(g, Wo, H, W, 1, 0, 0, o, w); break;                            \
    case 7: tl_gs_taps_##SUF(g, Wo, H, W, 1, 0, 1, o, w); break;                            \
    case 8: tl_gs_taps_##SUF(g, Wo, H, W, 1, 1, 0, o, w); break;                            \
    case 9: tl_gs_taps_##SUF(g, Wo, H, W, 1, 1, 1, o, w); break;                            \
    case 10: tl_gs_taps_##SUF(g, Wo, H, W, 1, 2, 0, o, w); break;                           \
    default: tl_gs_taps_##SUF(g, Wo, H, W, 1, 2, 1, o, w); break;                           \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* rows r0..r1 of the N * Ho output rows; offs (4 * Wo) and ws (10 * Wo) scratch */         \
ATTR static void tl_grid2d_##SUF(const T *x, const T *grid, T *out, ptrdiff_t C, ptrdiff_t H,\
                            ptrdiff_t W, ptrdiff_t Ho, ptrdiff_t Wo, ptrdiff_t r0,          \
                            ptrdiff_t r1, int bilinear, int pad, int align,                 \
                            int32_t *offs, T *ws) {                                         \
    const ptrdiff_t S = H * W, P = Ho * Wo;                                                 \
    for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
        const ptrdiff_t n = r / Ho, ho = r % Ho;                                            \
        const T *xn = x + n * C * S;                                                        \
        T *on = out + n * C * P + ho * Wo;                                                  \
        tl_gs_row_taps_##SUF(grid + r * Wo * 2, Wo, H, W, bilinear, pad, align, offs, ws);  \
        const int32_t *o0 = offs, *o1 = offs + Wo, *o2 = offs + 2 * Wo, *o3 = offs + 3 * Wo;\
        const T *w0 = ws, *w1 = ws + Wo, *w2 = ws + 2 * Wo, *w3 = ws + 3 * Wo;              \
        for (ptrdiff_t c = 0; c < C; c++) {                                                 \
            const T *xc = xn + c * S;                                                       \
            T *oc = on + c * P;                                                             \
            ptrdiff_t p0 = GATHER(xc, o0, o1, o2, o3, w0, w1, w2, w3, oc, Wo, bilinear);    \
            if (!bilinear) {                                                                \
                for (ptrdiff_t p = p0; p < Wo; p++)                                         \
                    oc[p] = TL_GS_READ(T, xc, o0[p]);                                       \
                continue;                                                                   \
            }                                                                               \
            for (ptrdiff_t p = p0; p < Wo; p++) {                                           \
                T a = TL_GS_READ(T, xc, o0[p]), b = TL_GS_READ(T, xc, o1[p]);               \
                T d = TL_GS_READ(T, xc, o2[p]), f = TL_GS_READ(T, xc, o3[p]);               \
                /* PyTorch's order: nw + ne + sw + se */                                    \
                oc[p] = FMA(f, w3[p], FMA(d, w2[p], FMA(b, w1[p], a * w0[p])));             \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* The backward of images n0..n1: gx (N, C, H, W) zeroed here, then += the weighted g at   \
 * every tap; gg (N, Ho, Wo, 2) the grid gradient (bilinear; zeros for nearest). gx or gg  \
 * NULL: not wanted. offs (4 * Wo), ws (12 * Wo) scratch. Threads own whole images. */     \
ATTR static void tl_grid2d_bwd_##SUF(const T *x, const T *grid, const T *g, T *gx, T *gg,  \
                                     ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t Ho,   \
                                     ptrdiff_t Wo, ptrdiff_t n0, ptrdiff_t n1, int bilinear,\
                                     int pad, int align, int32_t *offs, T *ws) {            \
    const ptrdiff_t S = H * W, P = Ho * Wo;                                                 \
    T *mx = ws + 6 * Wo, *my = ws + 7 * Wo, *sx = ws + 10 * Wo, *sy = ws + 11 * Wo;           \
    const int32_t *o0 = offs, *o1 = offs + Wo, *o2 = offs + 2 * Wo, *o3 = offs + 3 * Wo;    \
    const T *w0 = ws, *w1 = ws + Wo, *w2 = ws + 2 * Wo, *w3 = ws + 3 * Wo;                  \
    const T *fxs = ws + 4 * Wo, *fys = ws + 5 * Wo;                                         \
    for (ptrdiff_t n = n0; n < n1; n++) {                                                   \
        if (gx) for (ptrdiff_t i = 0; i < C * S; i++) gx[n * C * S + i] = (T)0;            \
        for (ptrdiff_t ho = 0; ho < Ho; ho++) {                                             \
            const ptrdiff_t r = n * Ho + ho;                                                \
            T *ggr = gg ? gg + r * Wo * 2 : NULL;                                           \
            if (!bilinear) {                                                                \
                if (ggr) for (ptrdiff_t p = 0; p < 2 * Wo; p++) ggr[p] = (T)0;              \
                if (!gx) continue;                                                          \
            }                                                                               \
            tl_gs_row_taps_##SUF(grid + r * Wo * 2, Wo, H, W, bilinear, pad, align, offs,   \
                                 ws);                                                       \
            if (ggr) for (ptrdiff_t p = 0; p < Wo; p++) { sx[p] = (T)0; sy[p] = (T)0; }     \
            for (ptrdiff_t c = 0; c < C; c++) {                                             \
                const T *xc = x + (n * C + c) * S;                                          \
                const T *gc = g + (n * C + c) * P + ho * Wo;                                \
                T *gxc = gx ? gx + (n * C + c) * S : NULL;                                  \
                if (!bilinear) {                                                            \
                    for (ptrdiff_t p = 0; p < Wo; p++)                                      \
                        TL_GS_ADD(T, gxc, o0[p], gc[p]);                                    \
                    continue;                                                               \
                }                                                                           \
                if (gxc) {                                                                  \
                    for (ptrdiff_t p = 0; p < Wo; p++) {                                    \
                        T v = gc[p];                                                        \
                        TL_GS_ADD(T, gxc, o0[p], w0[p] * v);                                \
                        TL_GS_ADD(T, gxc, o1[p], w1[p] * v);                                \
                        TL_GS_ADD(T, gxc, o2[p], w2[p] * v);                                \
                        TL_GS_ADD(T, gxc, o3[p], w3[p] * v);                                \
                    }                                                                       \
                }                                                                           \
                if (ggr) {                                                                  \
                    ptrdiff_t p0 = GGRAD(xc, o0, o1, o2, o3, fxs, fys, gc, sx, sy, Wo);     \
                    for (ptrdiff_t p = p0; p < Wo; p++) {                                   \
                        T a = TL_GS_READ(T, xc, o0[p]), b = TL_GS_READ(T, xc, o1[p]);       \
                        T d = TL_GS_READ(T, xc, o2[p]), f = TL_GS_READ(T, xc, o3[p]);       \
                        T fx = fxs[p], fy = fys[p], v = gc[p];                              \
                        /* d(sample)/dx = (1 - fy)(ne - nw) + fy (se - sw), and in y */     \
                        sx[p] += v * FMA(fy, f - d, ((T)1 - fy) * (b - a));                 \
                        sy[p] += v * FMA(fx, f - b, ((T)1 - fx) * (d - a));                 \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
            if (ggr && bilinear)                                                            \
                for (ptrdiff_t p = 0; p < Wo; p++) {                                        \
                    ggr[2 * p] = mx[p] * sx[p];                                             \
                    ggr[2 * p + 1] = my[p] * sy[p];                                         \
                }                                                                           \
        }                                                                                   \
    }                                                                                       \
}

TL_GRID2D_DEFINE(float, f32_base, , TL_GS_MULADD, floorf, nearbyintf, truncf, fabsf,
                 TL_GS_NOGATHER, TL_GS_NOGATHER)
TL_GRID2D_DEFINE(double, f64_base, , TL_GS_MULADD, floor, nearbyint, trunc, fabs, TL_GS_NOGATHER,
                 TL_GS_NOGATHER)
#if TL_HAVE_VEC
TL_GRID2D_DEFINE(float, f32_fma, __attribute__((target("avx2,fma"))), TL_GS_FMAF, floorf,
                 nearbyintf, truncf, fabsf, tl_gs_gather_f32, tl_gs_ggrad_f32)
TL_GRID2D_DEFINE(double, f64_fma, __attribute__((target("avx2,fma"))), TL_GS_FMA, floor,
                 nearbyint, trunc, fabs, tl_gs_gather_f64, tl_gs_ggrad_f64)
#endif

#if TL_HAVE_VEC
#define TL_GRID2D_PICK(NAME, SUF) (tl_vec_level() >= 1 ? NAME##_##SUF##_fma : NAME##_##SUF##_base)
#else
#define TL_GRID2D_PICK(NAME, SUF) NAME##_##SUF##_base
#endif
#define TL_GRID2D_DISPATCH(T, SUF)                                                          \
static void tl_grid2d_##SUF(const T *x, const T *grid, T *out, ptrdiff_t C, ptrdiff_t H,   \
                            ptrdiff_t W, ptrdiff_t Ho, ptrdiff_t Wo, ptrdiff_t r0,          \
                            ptrdiff_t r1, int bilinear, int pad, int align,                 \
                            int32_t *offs, T *ws) {                                         \
    TL_GRID2D_PICK(tl_grid2d, SUF)(x, grid, out, C, H, W, Ho, Wo, r0, r1, bilinear, pad,    \
                                   align, offs, ws);                                        \
}                                                                                           \
static void tl_grid2d_bwd_##SUF(const T *x, const T *grid, const T *g, T *gx, T *gg,       \
                                ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t Ho,        \
                                ptrdiff_t Wo, ptrdiff_t n0, ptrdiff_t n1, int bilinear,     \
                                int pad, int align, int32_t *offs, T *ws) {                 \
    TL_GRID2D_PICK(tl_grid2d_bwd, SUF)(x, grid, g, gx, gg, C, H, W, Ho, Wo, n0, n1,         \
                                       bilinear, pad, align, offs, ws);                     \
}
TL_GRID2D_DISPATCH(float, f32)
TL_GRID2D_DISPATCH(double, f64)

#pragma GCC pop_options
#endif
