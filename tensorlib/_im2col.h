/* im2col and col2im of one float32 image plane with AVX-512 masked loads and stores.
 *
 * A W3-sized plane (14 x 14, 5 x 5 kernel) is 25 * 14 row segments of 14 floats; a scalar loop
 * spends ~35 cycles on each (bounds, zero fill, a short vector loop and its tail), as long as
 * the GEMM that follows takes. With unit stride a segment is one masked load and one masked
 * store per 16 floats: the lanes outside the plane are masked off (never read) and stored as
 * zeros. col2im sums each image row in registers. tensorlib._ops sends float32 planes here
 * where tl_sgemm_supported(): im2col with unit column stride, col2im with any strides; the
 * rest take its generic loops.
 */
#ifndef TL_IM2COL_H
#define TL_IM2COL_H

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

static inline ptrdiff_t tl_floordiv(ptrdiff_t a, ptrdiff_t b) {   /* b > 0 */
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static inline ptrdiff_t tl_clamp(ptrdiff_t v, ptrdiff_t lo, ptrdiff_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* a / s for a >= 0, s > 0: a shift for the common stride 2 (a division by a runtime
 * stride costs tens of cycles, per 16 lanes in col2im) */
static inline ptrdiff_t tl_div(ptrdiff_t a, ptrdiff_t s) {
    return s == 2 ? a >> 1 : (s == 1 ? a : a / s);
}

/* lanes [lo, hi) of the 16 starting at w0, as a mask */
static inline __mmask16 tl_lanes(ptrdiff_t w0, ptrdiff_t lo, ptrdiff_t hi) {
    ptrdiff_t a = lo - w0 < 0 ? 0 : lo - w0, b = hi - w0 > 16 ? 16 : hi - w0;
    if (b <= a) return 0;
    return (__mmask16)(((1u << b) - 1u) & ~((1u << a) - 1u));
}

/* im2col: the kh*kw rows of cols (row stride ld, Ho*Wo long) from one plane (H, W);
 * column stride sw 1 or 2 only */
__attribute__((target("avx512f")))
static void tl_im2col_f32(float *cols, ptrdiff_t ld, const float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                          2, 0);
    for (ptrdiff_t i = 0; i < kh; i++) {
        for (ptrdiff_t j = 0; j < kw; j++) {
            ptrdiff_t off = j * dw - pl;
            /* the outputs wo whose input column wo*sw + off lies in [0, W) */
            ptrdiff_t lo = tl_clamp(-tl_floordiv(off, sw), 0, Wo);
            ptrdiff_t hi = tl_clamp(tl_floordiv(W - 1 - off, sw) + 1, lo, Wo);
            for (ptrdiff_t ho = 0; ho < Ho; ho++) {
                ptrdiff_t r = ho * sh - pt + i * dh;
                float *row = cols + (i * kw + j) * ld + ho * Wo;
                if (r < 0 || r >= H) {
                    memset(row, 0, (size_t)Wo * sizeof(float));
                    continue;
                }
                const float *img = plane + r * W;
                if (sw == 2) {
                    /* 32 consecutive input columns (those outside the plane masked off and
                     * read as zeros), their even lanes picked: the scalar strided loop was
                     * a stride-2 conv's largest cost after its GEMM */
                    for (ptrdiff_t w0 = 0; w0 < Wo; w0 += 16) {
                        ptrdiff_t c0 = off + 2 * w0;
                        __m512 a = _mm512_maskz_loadu_ps(tl_lanes(c0, 0, W), img + c0);
                        __m512 b = _mm512_maskz_loadu_ps(tl_lanes(c0 + 16, 0, W), img + c0 + 16);
                        _mm512_mask_storeu_ps(row + w0, tl_lanes(w0, 0, Wo),
                                              _mm512_permutex2var_ps(a, even, b));
                    }
                    continue;
                }
                /* masked-off lanes are never accessed: img + off + w0 may point outside */
                for (ptrdiff_t w0 = 0; w0 < Wo; w0 += 16)
                    _mm512_mask_storeu_ps(row + w0, tl_lanes(w0, 0, Wo),
                                          _mm512_maskz_loadu_ps(tl_lanes(w0, lo, hi),
                                                                img + off + w0));
            }
        }
    }
}

/* col2im, the adjoint: plane (H, W) = the sum of its kh*kw rows of cols, any strides. Each
 * image row is summed in registers from every (i, j) row that reaches it and stored once:
 * adding shifted rows into memory one after another makes each load wait on the overlapping
 * store before it. With sw > 1 the lanes of 16 image columns that one row of cols reaches
 * are every sw-th: a masked load of its consecutive values, spread by an expand (the scalar
 * scatter loop it replaces was a fifth of a stride-2 input gradient). */
__attribute__((target("avx512f")))
static void tl_col2im_f32(const float *cols, ptrdiff_t ld, float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
    unsigned every = 0;     /* bits 0, sw, 2*sw, ... below 16 */
    for (ptrdiff_t q = 0; q < 16; q += sw) every |= 1u << q;
    for (ptrdiff_t r = 0; r < H; r++) {
        for (ptrdiff_t w0 = 0; w0 < W; w0 += 16) {
            __m512 acc = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < kh; i++) {
                ptrdiff_t t = r + pt - i * dh;     /* ho * sh for the output row that reads r */
                if (t < 0) continue;
                ptrdiff_t ho = tl_div(t, sh);
                if (ho * sh != t || ho >= Ho) continue;
                for (ptrdiff_t j = 0; j < kw; j++) {
                    ptrdiff_t off = j * dw - pl;     /* image column w = wo * sw + off */
                    const float *row = cols + (i * kw + j) * ld + ho * Wo;
                    if (sw == 1) {
                        /* lanes w in [w0, w0+16) with wo = w - off in [0, Wo) */
                        __mmask16 m = tl_lanes(w0, off, off + Wo);
                        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, row + (w0 - off)));
                        continue;
                    }
                    /* outputs wo in [wa, wb) land on lanes wo * sw - lo */
                    ptrdiff_t lo = w0 - off;                      /* wo * sw of lane 0 */
                    ptrdiff_t wa = lo <= 0 ? 0 : tl_div(lo + sw - 1, sw);
                    ptrdiff_t wb = lo + 15 < 0 ? 0 : tl_div(lo + 15, sw) + 1;
                    if (wb > Wo) wb = Wo;
                    if (wa >= wb) continue;
                    ptrdiff_t first = wa * sw - lo, last = first + (wb - 1 - wa) * sw;
                    __mmask16 m = (__mmask16)((every << first) & ((2u << last) - 1u));
                    __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << (wb - wa)) - 1u),
                                                     row + wa);
                    acc = _mm512_add_ps(acc, _mm512_maskz_expand_ps(m, v));
                }
            }
            _mm512_mask_storeu_ps(plane + r * W + w0, tl_lanes(w0, 0, W), acc);
        }
    }
}

#else

/* never called: callers check tl_sgemm_supported() first */
static void tl_im2col_f32(float *cols, ptrdiff_t ld, const float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
    (void)cols; (void)ld; (void)plane; (void)H; (void)W; (void)kh; (void)kw; (void)sh;
    (void)sw; (void)pt; (void)pl; (void)dh; (void)dw; (void)Ho; (void)Wo;
}
static void tl_col2im_f32(const float *cols, ptrdiff_t ld, float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
    (void)cols; (void)ld; (void)plane; (void)H; (void)W; (void)kh; (void)kw; (void)sh;
    (void)sw; (void)pt; (void)pl; (void)dh; (void)dw; (void)Ho; (void)Wo;
}

#endif
#endif
