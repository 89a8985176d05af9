/* Stable LSD radix argsort of uint64 keys, one byte a pass.
 *
 * NumPy's stable sort of int64 and float keys is a timsort (its radix sort only serves
 * 16-bit types): 100k int64 keys took 4-7x PyTorch's sort. Here every key's eight byte
 * histograms come from one read, a pass whose byte is the same for every key is skipped (a
 * key range below 2^40 needs five passes, float32 keys at most four), and each remaining
 * pass scatters (key, index) pairs stably into 256 buckets. Callers map their values to
 * order-preserving unsigned keys (sign flips, float bit tricks) first.
 */
#ifndef TL_RADIX_H
#define TL_RADIX_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* order (n) receives the stable ascending permutation of keys (n). Returns -1 when out of
 * memory, else 0. */
static int tl_radix_argsort_u64(const uint64_t *keys, int64_t *order, ptrdiff_t n) {
    if (n <= 0) return 0;
    size_t (*count)[256] = calloc(8, sizeof *count);
    uint64_t *ka = malloc(n * sizeof *ka), *kb = malloc(n * sizeof *kb);
    int64_t *ob = malloc(n * sizeof *ob);
    if (!count || !ka || !kb || !ob) {
        free(count); free(ka); free(kb); free(ob);
        return -1;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        ka[i] = k;
        order[i] = i;
        for (int d = 0; d < 8; d++)
            count[d][(k >> (8 * d)) & 255]++;
    }
    uint64_t *ksrc = ka, *kdst = kb;
    int64_t *osrc = order, *odst = ob;
    for (int d = 0; d < 8; d++) {
        size_t *c = count[d];
        if (c[(ksrc[0] >> (8 * d)) & 255] == (size_t)n)
            continue;                       /* every key shares this byte */
        size_t off = 0;
        for (int b = 0; b < 256; b++) {
            size_t m = c[b];
            c[b] = off;
            off += m;
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            uint64_t k = ksrc[i];
            size_t p = c[(k >> (8 * d)) & 255]++;
            kdst[p] = k;
            odst[p] = osrc[i];
        }
        uint64_t *kt = ksrc; ksrc = kdst; kdst = kt;
        int64_t *ot = osrc; osrc = odst; odst = ot;
    }
    if (osrc != order)
        memcpy(order, osrc, n * sizeof *order);
    free(count); free(ka); free(kb); free(ob);
    return 0;
}
#endif
