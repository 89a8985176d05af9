/* im2col and col2im of one float32 image plane with AVX-512 masked loads and stores.
 *
 * A W3-sized plane (14 x 14, 5 x 5 kernel) is 25 * 14 row segments of 14 floats; a scalar loop
 * spends ~35 cycles on each (bounds, zero fill, a short vector loop and its tail), as long as
 * the GEMM that follows takes. With unit stride a segment is one masked load and one masked
 * store per 16 floats: the lanes outside the plane are masked off (never read) and stored as
 * zeros. col2im sums each image row in registers. tensorlib._ops sends float32 planes here
 * where tl_sgemm_supported() and the strides are 1; the rest take its generic loops.
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

/* lanes [lo, hi) of the 16 starting at w0, as a mask */
static inline __mmask16 tl_lanes(ptrdiff_t w0, ptrdiff_t lo, ptrdiff_t hi) {
    ptrdiff_t a = lo - w0 < 0 ? 0 : lo - w0, b = hi - w0 > 16 ? 16 : hi - w0;
    if (b <= a) return 0;
    return (__mmask16)(((1u << b) - 1u) & ~((1u << a) - 1u));
}

/* im2col: the kh*kw rows of cols (row stride ld, Ho*Wo long) from one plane (H, W);
 * unit column stride (sw == 1) only */
__attribute__((target("avx512f")))
static void tl_im2col_f32(float *cols, ptrdiff_t ld, const float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
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
                /* masked-off lanes are never accessed: img + off + w0 may point outside */
                for (ptrdiff_t w0 = 0; w0 < Wo; w0 += 16)
                    _mm512_mask_storeu_ps(row + w0, tl_lanes(w0, 0, Wo),
                                          _mm512_maskz_loadu_ps(tl_lanes(w0, lo, hi),
                                                                img + off + w0));
            }
        }
    }
}

/* col2im, the adjoint, for unit strides (sh == sw == 1) only: plane (H, W) = the sum of its
 * kh*kw rows of cols. Each image row is summed in registers from every (i, j) row that
 * reaches it and stored once: adding shifted rows into memory one after another makes each
 * load wait on the overlapping store before it. */
__attribute__((target("avx512f")))
static void tl_col2im_f32(const float *cols, ptrdiff_t ld, float *plane, ptrdiff_t H,
                          ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t Ho,
                          ptrdiff_t Wo) {
    (void)sh;
    (void)sw;
    for (ptrdiff_t r = 0; r < H; r++) {
        for (ptrdiff_t w0 = 0; w0 < W; w0 += 16) {
            __m512 acc = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < kh; i++) {
                ptrdiff_t ho = r + pt - i * dh;     /* the output row that reads image row r */
                if (ho < 0 || ho >= Ho) continue;
                for (ptrdiff_t j = 0; j < kw; j++) {
                    ptrdiff_t off = j * dw - pl;     /* image column w = wo + off */
                    const float *row = cols + (i * kw + j) * ld + ho * Wo;
                    /* lanes w in [w0, w0+16) with wo = w - off in [0, Wo) */
                    __mmask16 m = tl_lanes(w0, off, off + Wo);
                    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, row + (w0 - off)));
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
