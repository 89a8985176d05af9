/* float16 <-> float32 conversion with the CPU's F16C instructions (8 values a step), chosen
 * at run time: NumPy converts half floats one at a time in software, ~40x slower, which was
 * most of a float16 op's cost on the CPU (ops compute float16 in float32). Rounding is
 * IEEE round-to-nearest-even, as NumPy's; NaN and inf are kept. Without F16C (or off x86)
 * the functions return 0 and the caller converts with NumPy. */
#ifndef TL_HALF_H
#define TL_HALF_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

static int tl_has_f16c(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    }
    return known;
}

__attribute__((target("avx,f16c")))
static void tl_h2f_f16c(const uint16_t *src, float *dst, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

__attribute__((target("avx,f16c")))
static void tl_f2h_f16c(const float *src, uint16_t *dst, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

static int tl_half_to_float(const uint16_t *src, float *dst, ptrdiff_t n) {
    if (!tl_has_f16c()) return 0;
    tl_h2f_f16c(src, dst, n);
    return 1;
}

static int tl_float_to_half(const float *src, uint16_t *dst, ptrdiff_t n) {
    if (!tl_has_f16c()) return 0;
    tl_f2h_f16c(src, dst, n);
    return 1;
}
#else
static int tl_half_to_float(const uint16_t *src, float *dst, ptrdiff_t n) {
    (void)src; (void)dst; (void)n; return 0;
}
static int tl_float_to_half(const float *src, uint16_t *dst, ptrdiff_t n) {
    (void)src; (void)dst; (void)n; return 0;
}
#endif
#endif
