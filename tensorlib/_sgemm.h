/* float32 GEMM for x86-64 CPUs with AVX-512 or AVX2 + FMA: C = alpha * A @ B + beta * C.
 *
 * Why tensorlib has its own: NumPy's OpenBLAS picks its kernels once, at load time, from
 * OPENBLAS_CORETYPE or its own CPU detection. Where the environment pins an AVX2 core type
 * (as these machines' does) on a CPU with full-width AVX-512 units, every matmul and
 * convolution runs at about half the machine's speed, and tensorlib cannot change that after
 * NumPy has loaded. On CPUs with AVX2 only it runs at 0.8-1.0x OpenBLAS's speed; there it
 * serves the convolutions (one image per thread, with no im2col of the whole batch) and,
 * once they have run, the products that OpenBLAS would thread. It is used only where it is
 * measured faster (see tensorlib/_gemm.py); everything else, float64 included, stays on BLAS.
 *
 * The structure is the usual one (Goto/BLIS): B is packed into KC x NR column panels, A into
 * MR x KC row panels, and an MR x NR register tile of C accumulates one packed panel of each.
 * The tile depends on the instruction set, chosen once by tl_sgemm_select(): 8 x 32 on
 * AVX-512 (two 16-float vectors a row: 16 of its 32 registers accumulate) and 6 x 16 on AVX2
 * (two 8-float vectors a row: 12 of its 16 registers).
 * The operands may have any strides (a transpose is just swapped strides), so callers never
 * copy a transposed matrix; C must have unit column stride. Threads split the columns of C
 * (or its rows when C is narrow), each packing its own panels: no synchronisation inside.
 */
#ifndef TL_SGEMM_H
#define TL_SGEMM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TL_SGEMM_X86 1
#include <immintrin.h>
#else
#define TL_SGEMM_X86 0
#endif

#define TL_KC 256        /* depth of a packed panel: a KC x NR panel of B is 16-32 KiB (L1) */
#define TL_MC 240        /* rows of A packed at once: MC x KC floats is 240 KiB (L2), a
                            multiple of both tiles' rows */
#define TL_NC 2048       /* columns of B packed at once: KC x NC floats is 2 MiB */

/* C[0:mr, 0:nr] = alpha * (packed A panel @ B panel) + beta * C, the B panel packed
 * (ldb = NR) or read in place from a row-major B (ldb = its row stride); beta == 0 never
 * reads C (it may hold NaN garbage) */
typedef void (*tl_tile_fn)(int kc, const float *ap, const float *bp, ptrdiff_t ldb, float *c,
                           ptrdiff_t ldc, int mr, int nr, float alpha, float beta);

#define TL_ISA_NONE 0
#define TL_ISA_AVX2 1
#define TL_ISA_AVX512 2
/* the kernel in use (TL_ISA_*) and its tile (MR x NR), set by tl_sgemm_select() */
static int tl_isa = TL_ISA_NONE, tl_mr = 8, tl_nr = 32;
static tl_tile_fn tl_tile = NULL;

/* inside a parallel region: this thread's static share [lo, hi) of parts work units */
static inline void tl_thread_share(int parts, int *lo, int *hi) {
    int t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    *lo = (int)((long long)parts * t / nt);
    *hi = (int)((long long)parts * (t + 1) / nt);
}

#if TL_SGEMM_X86

/* the best instruction set this CPU has for the kernel: TL_ISA_* */
static int tl_sgemm_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return TL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return TL_ISA_AVX2;
    return TL_ISA_NONE;
}

/* A[i0:i0+mc, p0:p0+kc] -> panels of MR rows, k-major inside a panel, zero rows past mc */
static void tl_pack_a(int mc, int kc, const float *a, ptrdiff_t rs, ptrdiff_t cs, float *ap) {
    const int MR = tl_mr;
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int mr = mc - i0 < MR ? mc - i0 : MR;
        const float *src = a + (ptrdiff_t)i0 * rs;
        if (cs == 1 && mr == MR) {   /* row-major A: read each row along k */
            for (int i = 0; i < MR; i++) {
                const float *row = src + (ptrdiff_t)i * rs;
                for (int k = 0; k < kc; k++)
                    ap[(ptrdiff_t)k * MR + i] = row[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *col = src + (ptrdiff_t)k * cs;
                float *dst = ap + (ptrdiff_t)k * MR;
                int i = 0;
                for (; i < mr; i++) dst[i] = col[(ptrdiff_t)i * rs];
                for (; i < MR; i++) dst[i] = 0.0f;
            }
        }
        ap += (ptrdiff_t)kc * MR;
    }
}

/* dst[k * ld + j] = src[j * cs + k] for an 8 x 8 block: eight rows of a transposed B
 * loaded along k and transposed in registers */
__attribute__((target("avx")))
static void tl_transpose_8x8(const float *src, ptrdiff_t cs, float *dst, ptrdiff_t ld) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + cs);
    __m256 r2 = _mm256_loadu_ps(src + 2 * cs), r3 = _mm256_loadu_ps(src + 3 * cs);
    __m256 r4 = _mm256_loadu_ps(src + 4 * cs), r5 = _mm256_loadu_ps(src + 5 * cs);
    __m256 r6 = _mm256_loadu_ps(src + 6 * cs), r7 = _mm256_loadu_ps(src + 7 * cs);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* B[p0:p0+kc, j0:j0+nc] -> panels of NR columns, k-major inside a panel, zero past nc */
static void tl_pack_b(int kc, int nc, const float *b, ptrdiff_t rs, ptrdiff_t cs, float *bp) {
    const int NR = tl_nr;
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int nr = nc - j0 < NR ? nc - j0 : NR;
        const float *src = b + (ptrdiff_t)j0 * cs;
        if (cs == 1) {
            for (int k = 0; k < kc; k++) {
                float *dst = bp + (ptrdiff_t)k * NR;
                memcpy(dst, src + (ptrdiff_t)k * rs, (size_t)nr * sizeof(float));
                if (nr < NR) memset(dst + nr, 0, (size_t)(NR - nr) * sizeof(float));
            }
        } else {   /* transposed B: 8 x 8 blocks transposed in registers, then the edges */
            int k8 = rs == 1 ? kc & ~7 : 0, j8 = rs == 1 ? nr & ~7 : 0;
            for (int j = 0; j < j8; j += 8)
                for (int k = 0; k < k8; k += 8)
                    tl_transpose_8x8(src + (ptrdiff_t)j * cs + k, cs, bp + (ptrdiff_t)k * NR + j,
                                     NR);
            for (int j = 0; j < NR; j++) {
                const float *col = src + (ptrdiff_t)j * cs;
                int k = j < j8 ? k8 : 0;
                if (j < nr)
                    for (; k < kc; k++) bp[(ptrdiff_t)k * NR + j] = col[(ptrdiff_t)k * rs];
                else
                    for (; k < kc; k++) bp[(ptrdiff_t)k * NR + j] = 0.0f;
            }
        }
        bp += (ptrdiff_t)kc * NR;
    }
}

/* the AVX-512 tile_fn */
__attribute__((target("avx512f")))
static void tl_kernel_8x32(int kc, const float *ap, const float *bp, ptrdiff_t ldb, float *c,
                           ptrdiff_t ldc, int mr, int nr, float alpha, float beta) {
    __m512 acc[8][2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp);
        __m512 b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512 a = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += 8;
        bp += ldb;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF
                 : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : (__mmask16)0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        if (i >= mr) break;
        float *row = c + (ptrdiff_t)i * ldc;
        __m512 v0 = _mm512_mul_ps(va, acc[i][0]);
        __m512 v1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), v0);
            v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), v1);
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row + 16, m1, v1);
    }
}

/* the AVX2 tile_fn: 6 x 16, the edge columns through masked loads and stores */
__attribute__((target("avx2,fma")))
static void tl_kernel_6x16(int kc, const float *ap, const float *bp, ptrdiff_t ldb, float *c,
                           ptrdiff_t ldc, int mr, int nr, float alpha, float beta) {
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp);
        __m256 b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += 6;
        bp += ldb;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        if (i >= mr) break;
        float *row = c + (ptrdiff_t)i * ldc;
        __m256 v0 = _mm256_mul_ps(va, acc[i][0]);
        __m256 v1 = _mm256_mul_ps(va, acc[i][1]);
        if (nr == 16) {
            if (beta != 0.0f) {
                v0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), v0);
                v1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), v1);
            }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row + 8, v1);
        } else {
            if (beta != 0.0f) {
                v0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row, m0), v0);
                v1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8, m1), v1);
            }
            _mm256_maskstore_ps(row, m0, v0);
            _mm256_maskstore_ps(row + 8, m1, v1);
        }
    }
}

/* Use the kernel for isa (TL_ISA_*, at most what tl_sgemm_cpu() says; its best for -1, or
 * TL_ISA_AVX2 on an AVX-512 CPU to test that kernel). Returns the ISA now in use. Call it
 * before any tl_sgemm, and not while one runs. */
static int tl_sgemm_select(int isa) {
    int cpu = tl_sgemm_cpu();
    if (isa < 0 || isa > cpu) isa = cpu;
    if (isa == TL_ISA_AVX512) {
        tl_mr = 8, tl_nr = 32, tl_tile = tl_kernel_8x32;
    } else if (isa == TL_ISA_AVX2) {
        tl_mr = 6, tl_nr = 16, tl_tile = tl_kernel_6x16;
    } else {
        tl_tile = NULL;
    }
    tl_isa = isa;
    return isa;
}

/* n floats, 64-byte aligned (aligned_alloc wants a size that is a multiple of 64) */
static float *tl_floats(size_t n) {
    return (float *)aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
}

/* one thread's share: C[m0:m1, n0:n1]. When all its rows fit one packed block of A and B is
 * row-major, full NR-wide panels of B are read in place on AVX-512: each is used by only
 * mc / MR register tiles, too few to pay for packing it (the edge panel is still packed).
 * Not on AVX2: its 16-float strips are one cache line a row, and at a power-of-two row
 * stride all of them fall in one L1 set (64 x 576 x 16384, one thread: 25 GFLOP/s in place,
 * 48 packed). */
static int tl_sgemm_block(int m0, int m1, int n0, int n1, int K, float alpha,
                          const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                          const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                          float beta, float *C, ptrdiff_t ldc) {
    const int MR = tl_mr, NR = tl_nr;
    const tl_tile_fn tile = tl_tile;
    int direct = csb == 1 && m1 - m0 <= TL_MC && NR == 32;
    /* buffers for the panels this call packs, not the largest blocks (many calls are small) */
    int mcap = m1 - m0 < TL_MC ? m1 - m0 : TL_MC, ncap = n1 - n0 < TL_NC ? n1 - n0 : TL_NC;
    int kcap = K < TL_KC ? K : TL_KC;
    mcap = (mcap + MR - 1) / MR * MR;
    ncap = direct ? NR : (ncap + NR - 1) / NR * NR;
    float *ap = tl_floats((size_t)mcap * kcap), *bp = tl_floats((size_t)kcap * ncap);
    if (ap == NULL || bp == NULL) {
        free(ap);
        free(bp);
        return -1;
    }
    for (int jc = n0; jc < n1; jc += TL_NC) {
        int nc = n1 - jc < TL_NC ? n1 - jc : TL_NC;
        for (int pc = 0; pc < K; pc += TL_KC) {
            int kc = K - pc < TL_KC ? K - pc : TL_KC;
            float bet = pc == 0 ? beta : 1.0f;
            const float *bsrc = B + (ptrdiff_t)pc * rsb + (ptrdiff_t)jc * csb;
            if (!direct)
                tl_pack_b(kc, nc, bsrc, rsb, csb, bp);
            for (int ic = m0; ic < m1; ic += TL_MC) {
                int mc = m1 - ic < TL_MC ? m1 - ic : TL_MC;
                tl_pack_a(mc, kc, A + (ptrdiff_t)ic * rsa + (ptrdiff_t)pc * csa, rsa, csa, ap);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bpan = bp + (ptrdiff_t)(jr / NR) * kc * NR;
                    ptrdiff_t ldb = NR;
                    if (direct && nr == NR) {
                        bpan = bsrc + jr;
                        ldb = rsb;
                    } else if (direct) {
                        tl_pack_b(kc, nr, bsrc + jr, rsb, csb, bp);
                        bpan = bp;
                    }
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        tile(kc, ap + (ptrdiff_t)(ir / MR) * kc * MR, bpan, ldb,
                             C + (ptrdiff_t)(ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, bet);
                    }
                }
            }
        }
    }
    free(ap);
    free(bp);
    return 0;
}

/* C (M x N, row stride ldc, unit column stride) = alpha * A (M x K) @ B (K x N) + beta * C.
 * Strides are in elements and may be anything (a transposed operand swaps them). Returns 0,
 * or -1 when a thread could not allocate its packing buffers (C is then incomplete). */
static int tl_sgemm(int M, int N, int K, float alpha, const float *A, ptrdiff_t rsa,
                    ptrdiff_t csa, const float *B, ptrdiff_t rsb, ptrdiff_t csb, float beta,
                    float *C, ptrdiff_t ldc, int nthreads) {
    const int MR = tl_mr, NR = tl_nr;
    if (tl_tile == NULL) return -1;   /* callers check first: never */
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) {   /* C = beta * C */
        for (int i = 0; i < M; i++) {
            float *row = C + (ptrdiff_t)i * ldc;
            for (int j = 0; j < N; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        }
        return 0;
    }
    int npan = (N + NR - 1) / NR, mpan = (M + MR - 1) / MR;
    int split_n = npan >= nthreads || npan >= mpan;
    int parts = split_n ? npan : mpan;
    if (nthreads > parts) nthreads = parts;
    if (nthreads < 1) nthreads = 1;
    if (nthreads == 1)   /* no parallel region: callers run this inside their own */
        return tl_sgemm_block(0, M, 0, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) reduction(|:failed)
#endif
    {
        int lo, hi;
        tl_thread_share(parts, &lo, &hi);
        if (hi > lo) {
            int r;
            if (split_n) {
                int n1 = hi * NR < N ? hi * NR : N;
                r = tl_sgemm_block(0, M, lo * NR, n1, K, alpha, A, rsa, csa, B, rsb, csb,
                                   beta, C, ldc);
            } else {
                int m1 = hi * MR < M ? hi * MR : M;
                r = tl_sgemm_block(lo * MR, m1, 0, N, K, alpha, A, rsa, csa, B, rsb, csb,
                                   beta, C, ldc);
            }
            failed |= r != 0;
        }
    }
    return failed ? -1 : 0;
}

#else   /* not x86-64 with GCC/Clang: callers use BLAS */

#define TL_ISA_NONE 0
static int tl_sgemm_cpu(void) { return TL_ISA_NONE; }
static int tl_sgemm_select(int isa) { (void)isa; return TL_ISA_NONE; }
static int tl_sgemm(int M, int N, int K, float alpha, const float *A, ptrdiff_t rsa,
                    ptrdiff_t csa, const float *B, ptrdiff_t rsb, ptrdiff_t csb, float beta,
                    float *C, ptrdiff_t ldc, int nthreads) {
    (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)rsa; (void)csa; (void)B;
    (void)rsb; (void)csb; (void)beta; (void)C; (void)ldc; (void)nthreads;
    return -1;
}

#endif
#endif
