# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""CPU kernels for scans, NaN-skipping sums, ``mode`` and the L1 ``cdist``.

As in ``_ops.pyx`` every kernel trusts its caller: the op modules check dtypes, shapes and
contiguity and allocate the outputs before a kernel runs. An array along a reduced or
scanned dim is viewed as ``(outer, n, inner)`` (C order, the dim in the middle), so one
kernel serves every dim: with ``inner == 1`` a row is a contiguous run; otherwise the loop
over ``inner`` is the contiguous, vectorisable one.
"""
cimport cython
from cython.parallel cimport prange
from openmp cimport omp_get_max_threads
from libc.stdlib cimport free, malloc

ctypedef fused floating:
    float
    double

# every dtype the scans and ``mode`` take (bool travels as uint8)
ctypedef fused scalar:
    float
    double
    long long
    int
    short
    signed char
    unsigned char

# Threads only pay past about a million elements: an OpenMP wake-up costs ~60 µs on the
# 2-core VMs (see _ops.pyx PAR_MIN).
DEF PAR_MIN = 1 << 20
# a task of a scan along a non-last dim covers this many columns of ``inner``
DEF COLS = 512


cdef inline int _threads(Py_ssize_t work) noexcept nogil:
    return 1 if work < PAR_MIN else omp_get_max_threads()


# --- cummax / cummin -------------------------------------------------------------------------
cdef extern from "_scan_kernels.h" nogil:
    void tl_cum_row_f32(const float *x, Py_ssize_t n, float *vals, long long *idx, int is_max)
    void tl_cum_cols_f32(const float *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, float *vals, long long *idx, int is_max)
    void tl_cum_row_f64(const double *x, Py_ssize_t n, double *vals, long long *idx, int is_max)
    void tl_cum_cols_f64(const double *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, double *vals, long long *idx, int is_max)
    void tl_cum_row_i64(const long long *x, Py_ssize_t n, long long *vals, long long *idx, int is_max)
    void tl_cum_cols_i64(const long long *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, long long *vals, long long *idx, int is_max)
    void tl_cum_row_i32(const int *x, Py_ssize_t n, int *vals, long long *idx, int is_max)
    void tl_cum_cols_i32(const int *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, int *vals, long long *idx, int is_max)
    void tl_cum_row_i16(const short *x, Py_ssize_t n, short *vals, long long *idx, int is_max)
    void tl_cum_cols_i16(const short *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, short *vals, long long *idx, int is_max)
    void tl_cum_row_i8(const signed char *x, Py_ssize_t n, signed char *vals, long long *idx, int is_max)
    void tl_cum_cols_i8(const signed char *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, signed char *vals, long long *idx, int is_max)
    void tl_cum_row_u8(const unsigned char *x, Py_ssize_t n, unsigned char *vals, long long *idx, int is_max)
    void tl_cum_cols_u8(const unsigned char *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                          Py_ssize_t k1, unsigned char *vals, long long *idx, int is_max)


cdef inline void _cum_row(const scalar *x, Py_ssize_t n, scalar *v, long long *i,
                          int is_max) noexcept nogil:
    if scalar is float:
        tl_cum_row_f32(x, n, v, i, is_max)
    elif scalar is double:
        tl_cum_row_f64(x, n, v, i, is_max)
    elif scalar is cython.longlong:
        tl_cum_row_i64(x, n, v, i, is_max)
    elif scalar is int:
        tl_cum_row_i32(x, n, v, i, is_max)
    elif scalar is short:
        tl_cum_row_i16(x, n, v, i, is_max)
    elif scalar is cython.schar:
        tl_cum_row_i8(x, n, v, i, is_max)
    else:
        tl_cum_row_u8(x, n, v, i, is_max)


cdef inline void _cum_cols(const scalar *x, Py_ssize_t n, Py_ssize_t K, Py_ssize_t k0,
                           Py_ssize_t k1, scalar *v, long long *i, int is_max) noexcept nogil:
    if scalar is float:
        tl_cum_cols_f32(x, n, K, k0, k1, v, i, is_max)
    elif scalar is double:
        tl_cum_cols_f64(x, n, K, k0, k1, v, i, is_max)
    elif scalar is cython.longlong:
        tl_cum_cols_i64(x, n, K, k0, k1, v, i, is_max)
    elif scalar is int:
        tl_cum_cols_i32(x, n, K, k0, k1, v, i, is_max)
    elif scalar is short:
        tl_cum_cols_i16(x, n, K, k0, k1, v, i, is_max)
    elif scalar is cython.schar:
        tl_cum_cols_i8(x, n, K, k0, k1, v, i, is_max)
    else:
        tl_cum_cols_u8(x, n, K, k0, k1, v, i, is_max)


def cum_extreme(const scalar[:, :, ::1] x, scalar[:, :, ::1] vals, long long[:, :, ::1] idx,
                bint is_max):
    """Running max (``is_max``) or min of ``x`` (outer, n, inner) along n, with the index of
    each value (the last one on ties; a NaN propagates with its own index)."""
    cdef Py_ssize_t O = x.shape[0], n = x.shape[1], K = x.shape[2]
    cdef Py_ssize_t nck = (K + COLS - 1) // COLS
    cdef Py_ssize_t t, o, c
    if n == 0 or O == 0 or K == 0:
        return
    with nogil:
        for t in prange(O * nck, schedule="static", num_threads=_threads(O * n * K)):
            o = t // nck
            c = t % nck
            if K == 1:
                _cum_row(&x[o, 0, 0], n, &vals[o, 0, 0], &idx[o, 0, 0], is_max)
            else:
                _cum_cols(&x[o, 0, 0], n, K, c * COLS, min(c * COLS + COLS, K),
                          &vals[o, 0, 0], &idx[o, 0, 0], is_max)


# --- cumsum / cumprod / logcumsumexp (float32, float64) -------------------------------------
cdef extern from "_scan_kernels.h" nogil:
    void tl_scan_rows_sum_f32(const float *x, float *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_rows_sum_f64(const double *x, double *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_rows_prod_f32(const float *x, float *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_rows_prod_f64(const double *x, double *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_rows_lae_f32(const float *x, float *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_rows_lae_f64(const double *x, double *out, Py_ssize_t R, Py_ssize_t n)
    void tl_scan_cols_sum_f32(const float *x, float *out, Py_ssize_t n, Py_ssize_t K,
                              Py_ssize_t k0, Py_ssize_t k1, double *acc)
    void tl_scan_cols_sum_f64(const double *x, double *out, Py_ssize_t n, Py_ssize_t K,
                              Py_ssize_t k0, Py_ssize_t k1, double *acc)
    void tl_scan_cols_prod_f32(const float *x, float *out, Py_ssize_t n, Py_ssize_t K,
                               Py_ssize_t k0, Py_ssize_t k1, double *acc)
    void tl_scan_cols_prod_f64(const double *x, double *out, Py_ssize_t n, Py_ssize_t K,
                               Py_ssize_t k0, Py_ssize_t k1, double *acc)
    void tl_scan_cols_lae_f32(const float *x, float *out, Py_ssize_t n, Py_ssize_t K,
                              Py_ssize_t k0, Py_ssize_t k1, double *acc)
    void tl_scan_cols_lae_f64(const double *x, double *out, Py_ssize_t n, Py_ssize_t K,
                              Py_ssize_t k0, Py_ssize_t k1, double *acc)

# the scans cum_scan runs (its ``op``)
SCAN_SUM, SCAN_PROD, SCAN_LOGADDEXP = 0, 1, 2
# rows of a last-dim scan a task takes (a multiple of the header's TL_SCAN_ILP = 8)
DEF SCAN_ROWS = 64


cdef inline void _scan_rows(const floating *x, floating *out, Py_ssize_t R, Py_ssize_t n,
                            int op) noexcept nogil:
    if floating is float:
        if op == 0:
            tl_scan_rows_sum_f32(x, out, R, n)
        elif op == 1:
            tl_scan_rows_prod_f32(x, out, R, n)
        else:
            tl_scan_rows_lae_f32(x, out, R, n)
    else:
        if op == 0:
            tl_scan_rows_sum_f64(x, out, R, n)
        elif op == 1:
            tl_scan_rows_prod_f64(x, out, R, n)
        else:
            tl_scan_rows_lae_f64(x, out, R, n)


cdef inline void _scan_cols(const floating *x, floating *out, Py_ssize_t n, Py_ssize_t K,
                            Py_ssize_t k0, Py_ssize_t k1, double *acc, int op) noexcept nogil:
    if floating is float:
        if op == 0:
            tl_scan_cols_sum_f32(x, out, n, K, k0, k1, acc)
        elif op == 1:
            tl_scan_cols_prod_f32(x, out, n, K, k0, k1, acc)
        else:
            tl_scan_cols_lae_f32(x, out, n, K, k0, k1, acc)
    else:
        if op == 0:
            tl_scan_cols_sum_f64(x, out, n, K, k0, k1, acc)
        elif op == 1:
            tl_scan_cols_prod_f64(x, out, n, K, k0, k1, acc)
        else:
            tl_scan_cols_lae_f64(x, out, n, K, k0, k1, acc)


def cum_scan(const floating[:, :, ::1] x, floating[:, :, ::1] out, int op):
    """Running sum (``op`` SCAN_SUM), product (SCAN_PROD) or log-sum-exp (SCAN_LOGADDEXP)
    of ``x`` (outer, n, inner) along n into ``out`` (x's shape), sequential in double as
    PyTorch's CPU scans: no pairwise summation is possible in a scan, and a float32
    accumulator drifts by 1e-4 relative over 10^5 terms."""
    cdef Py_ssize_t O = x.shape[0], n = x.shape[1], K = x.shape[2]
    if op < 0 or op > 2:
        raise ValueError(f"cum_scan: op must be 0, 1 or 2, got {op}")
    if out.shape[0] != O or out.shape[1] != n or out.shape[2] != K:
        raise ValueError("cum_scan: out must have x's shape")
    cdef Py_ssize_t nck = (K + COLS - 1) // COLS
    cdef Py_ssize_t ngr = (O + SCAN_ROWS - 1) // SCAN_ROWS
    cdef Py_ssize_t t, o, c, k0, failed = 0
    cdef double *acc
    if n == 0 or O == 0 or K == 0:
        return
    with nogil:
        if K == 1:
            # (outer, n) rows, C-contiguous: groups of rows side by side
            for t in prange(ngr, schedule="static", num_threads=_threads(O * n)):
                o = t * SCAN_ROWS
                _scan_rows(&x[o, 0, 0], &out[o, 0, 0], min(SCAN_ROWS, O - o), n, op)
        else:
            for t in prange(O * nck, schedule="static", num_threads=_threads(O * n * K)):
                o = t // nck
                c = t % nck
                k0 = c * COLS
                acc = <double *>malloc(COLS * sizeof(double))
                if acc == NULL:
                    failed += 1
                    continue
                _scan_cols(&x[o, 0, 0], &out[o, 0, 0], n, K, k0, min(k0 + COLS, K), acc, op)
                free(acc)
    if failed:
        raise MemoryError("cum_scan: could not allocate a column buffer")


def scatter_along(const floating[:, :, :] g, const long long[:, :, ::1] idx,
                  floating[:, :, ::1] out):
    """``out[o, idx[o, i, k], k] += g[o, i, k]`` (``out`` zeroed by the caller; ``g`` may be
    strided, a broadcast gradient needs no copy): the gradient of a gather along n. Indices
    outside [0, out.shape[1]) are skipped and counted: returns how many there were."""
    cdef Py_ssize_t O = g.shape[0], n = g.shape[1], K = g.shape[2], m = out.shape[1]
    cdef Py_ssize_t o, i, k, bad = 0
    cdef long long j, cur
    cdef floating acc
    with nogil:
        for o in prange(O, schedule="static", num_threads=_threads(O * n * K)):
            if K == 1 and n:
                # along a row a scan's indices come in runs: sum a run in a register (adding
                # into out[j] each time would wait on the previous store, ~5 cycles each)
                cur = idx[o, 0, 0]
                acc = 0
                for i in range(n):
                    j = idx[o, i, 0]
                    if j != cur:
                        if 0 <= cur < m:
                            out[o, cur, 0] += acc
                        else:
                            bad += 1
                        cur = j
                        acc = 0
                    acc = acc + g[o, i, 0]
                if 0 <= cur < m:
                    out[o, cur, 0] += acc
                else:
                    bad += 1
            else:
                for i in range(n):
                    for k in range(K):
                        j = idx[o, i, k]
                        if 0 <= j < m:
                            out[o, j, k] += g[o, i, k]
                        else:
                            bad += 1
    return bad


# --- nansum / nanmean ------------------------------------------------------------------------
cdef extern from "_scan_kernels.h" nogil:
    double tl_row_nansum_f32(const float *p, Py_ssize_t n, long long *cnt)
    double tl_row_nansum_f64(const double *p, Py_ssize_t n, long long *cnt)
    void tl_cols_nansum_f32(const float *x, Py_ssize_t n, Py_ssize_t K, double *out,
                            long long *cnt, float *acc, float *c)
    void tl_cols_nansum_f64(const double *x, Py_ssize_t n, Py_ssize_t K, double *out,
                            long long *cnt, double *acc, double *c)
    void tl_l1_row_f32(const float *a, const float *bt, Py_ssize_t M, Py_ssize_t R, float *out)
    void tl_l1_row_f64(const double *a, const double *bt, Py_ssize_t M, Py_ssize_t R,
                       double *out)
    void tl_l1_grad_row_f32(const float *g, const float *a, const float *bt, Py_ssize_t M,
                            Py_ssize_t R, float *ga, float *gbt)
    void tl_l1_grad_row_f64(const double *g, const double *a, const double *bt, Py_ssize_t M,
                            Py_ssize_t R, double *ga, double *gbt)


cdef inline double _row_nansum(const floating *p, Py_ssize_t n, long long *cnt) noexcept nogil:
    if floating is float:
        return tl_row_nansum_f32(p, n, cnt)
    else:
        return tl_row_nansum_f64(p, n, cnt)


cdef inline void _cols_nansum(const floating *x, Py_ssize_t n, Py_ssize_t K, double *out,
                              long long *cnt, floating *acc) noexcept nogil:
    if floating is float:
        tl_cols_nansum_f32(x, n, K, out, cnt, acc, acc + K)
    else:
        tl_cols_nansum_f64(x, n, K, out, cnt, acc, acc + K)


def nan_sum(const floating[:, :, ::1] x, double[:, ::1] out, long long[:, ::1] count=None):
    """``out[o, k]`` = the sum of the non-NaN ``x[o, :, k]``; ``count`` (optional) how many
    there are."""
    cdef Py_ssize_t O = x.shape[0], n = x.shape[1], K = x.shape[2]
    cdef Py_ssize_t o
    cdef bint want = count is not None
    cdef floating *acc
    if O == 0 or K == 0:
        return
    if n == 0:
        out[:, :] = 0
        if want:
            count[:, :] = 0
        return
    with nogil:
        if K == 1:
            for o in prange(O, schedule="static", num_threads=_threads(O * n)):
                out[o, 0] = _row_nansum(&x[o, 0, 0], n, &count[o, 0] if want else NULL)
        else:
            for o in prange(O, schedule="static", num_threads=_threads(O * n * K)):
                acc = <floating *> malloc(2 * K * sizeof(floating))
                _cols_nansum(&x[o, 0, 0], n, K, &out[o, 0], &count[o, 0] if want else NULL,
                             acc)
                free(acc)


# --- mode --------------------------------------------------------------------------------
cdef inline bint _isnan(scalar v) noexcept nogil:
    if scalar is float or scalar is double:
        return v != v
    else:
        return False


def mode_rows(const scalar[:, ::1] srt, const scalar[:, ::1] x, scalar[::1] val,
              long long[::1] idx):
    """For each row of ``x`` (``srt`` the same row sorted, NaNs last): the value of its
    longest run of equal values (the first, so the smallest, on ties; NaN never equals NaN)
    and the index of its last occurrence in ``x`` (of the first NaN for a NaN)."""
    cdef Py_ssize_t R = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t r, i, run, best_run
    cdef scalar best
    if n == 0:
        return
    with nogil:
        for r in prange(R, schedule="static", num_threads=_threads(R * n * 8)):
            best = srt[r, 0]
            best_run = 1
            run = 1
            for i in range(1, n):
                if srt[r, i] == srt[r, i - 1]:
                    run = run + 1
                else:
                    run = 1
                if run > best_run:
                    best_run = run
                    best = srt[r, i]
            val[r] = best
            if _isnan(best):
                for i in range(n):
                    if _isnan(x[r, i]):
                        idx[r] = i
                        break
            else:
                for i in range(n - 1, -1, -1):
                    if x[r, i] == best:
                        idx[r] = i
                        break


# --- cdist, p = 1 ------------------------------------------------------------------------
def cdist_l1(const floating[:, :, ::1] a, const floating[:, :, ::1] bt,
             floating[:, :, ::1] out):
    """``out[b, i, j] = sum_m |a[b, i, m] - bt[b, m, j]|`` (``bt`` holds x2 transposed, so
    the loop over j is contiguous and vectorises)."""
    cdef Py_ssize_t B = a.shape[0], P = a.shape[1], M = a.shape[2], R = bt.shape[2]
    cdef Py_ssize_t t, b, i
    if B == 0 or P == 0 or R == 0:
        return
    with nogil:
        for t in prange(B * P, schedule="static", num_threads=_threads(B * P * R * M)):
            b = t // P
            i = t % P
            if floating is float:
                tl_l1_row_f32(&a[b, i, 0] if M else NULL, &bt[b, 0, 0] if M else NULL, M, R,
                              &out[b, i, 0])
            else:
                tl_l1_row_f64(&a[b, i, 0] if M else NULL, &bt[b, 0, 0] if M else NULL, M, R,
                              &out[b, i, 0])


def cdist_l1_grad(const floating[:, :, ::1] g, const floating[:, :, ::1] a,
                  const floating[:, :, ::1] bt, floating[:, :, ::1] ga,
                  floating[:, :, ::1] gbt):
    """Gradients of :func:`cdist_l1` for the upstream ``g`` (B, P, R): ``ga`` (B, P, M) and
    ``gbt`` (B, M, R, x2's gradient transposed), both written in full. sign(0) is 0."""
    cdef Py_ssize_t B = a.shape[0], P = a.shape[1], M = a.shape[2], R = bt.shape[2]
    cdef Py_ssize_t b, i, m, j
    if B == 0 or M == 0:
        return
    with nogil:
        # one thread per batch item: the rows i of one item all add into the same gbt
        for b in prange(B, schedule="static", num_threads=_threads(B * P * R * M)):
            for m in range(M):
                for j in range(R):
                    gbt[b, m, j] = 0
            for i in range(P):
                if R == 0:
                    for m in range(M):
                        ga[b, i, m] = 0
                elif floating is float:
                    tl_l1_grad_row_f32(&g[b, i, 0], &a[b, i, 0], &bt[b, 0, 0], M, R,
                                       &ga[b, i, 0], &gbt[b, 0, 0])
                else:
                    tl_l1_grad_row_f64(&g[b, i, 0], &a[b, i, 0], &bt[b, 0, 0], M, R,
                                       &ga[b, i, 0], &gbt[b, 0, 0])


# --- pdist, p = 2, by differences ---------------------------------------------------------
cdef extern from "_scan_kernels.h" nogil:
    int TL_PD_BLOCK
    void tl_pdist_row_f32(const float *xi, const float *xt, Py_ssize_t N, Py_ssize_t M,
                          Py_ssize_t i, float *out)
    void tl_pdist_row_f64(const double *xi, const double *xt, Py_ssize_t N, Py_ssize_t M,
                          Py_ssize_t i, double *out)
    void tl_pdist_grad_row_f32(const float *g, const float *d, const float *xi,
                               const float *xt, Py_ssize_t N, Py_ssize_t M, Py_ssize_t i,
                               float *gxi, float *w)
    void tl_pdist_grad_row_f64(const double *g, const double *d, const double *xi,
                               const double *xt, Py_ssize_t N, Py_ssize_t M, Py_ssize_t i,
                               double *gxi, double *w)
    int TL_PD_GI
    Py_ssize_t TL_PD_GT(...)
    void tl_pdist_grad_cols_f32(const float *g, const float *d, const float *xt, Py_ssize_t N,
                                Py_ssize_t M, Py_ssize_t j0, Py_ssize_t j1, float *gx,
                                float *gt, float *wc)
    void tl_pdist_grad_cols_f64(const double *g, const double *d, const double *xt,
                                Py_ssize_t N, Py_ssize_t M, Py_ssize_t j0, Py_ssize_t j1,
                                double *gx, double *gt, double *wc)


cdef inline Py_ssize_t _row_start(Py_ssize_t i, Py_ssize_t N) noexcept nogil:
    return i * (2 * N - i - 1) // 2


def _pdist_shapes(str name, x, xt, Py_ssize_t P):
    cdef Py_ssize_t N = x.shape[0], M = x.shape[1]
    if xt.shape[0] != M or xt.shape[1] != N or P != N * (N - 1) // 2:
        raise ValueError(f"{name}: needs x (N, M), xt (M, N) and vectors of N (N - 1) / 2")


def pdist_l2(const floating[:, ::1] x, const floating[:, ::1] xt, floating[::1] out):
    """``out`` = the distances |x_i - x_j| of the pairs i < j of x's rows, row by row
    (``torch.pdist``'s order), from their differences (``xt``: x transposed)."""
    _pdist_shapes("pdist_l2", x, xt, out.shape[0])
    cdef Py_ssize_t N = x.shape[0], M = x.shape[1], i
    if N < 2:
        return
    with nogil:
        # rows in a cyclic schedule: row i has N - i - 1 pairs
        for i in prange(N - 1, schedule="static", chunksize=16,
                        num_threads=_threads(N * N * M // 2)):
            if floating is float:
                tl_pdist_row_f32(&x[i, 0], &xt[0, 0], N, M, i, &out[_row_start(i, N)])
            else:
                tl_pdist_row_f64(&x[i, 0], &xt[0, 0], N, M, i, &out[_row_start(i, N)])


def pdist_l2_grad(const floating[::1] g, const floating[::1] d, const floating[:, ::1] x,
                  const floating[:, ::1] xt, floating[:, ::1] gx):
    """``gx_i = sum_{j != i} w_ij (x_i - x_j)``, w = g / d (0 where d is not > 0): the
    gradient of :func:`pdist_l2` for the upstream ``g``; ``gx`` (x's shape) written in
    full. Each row's own pairs first (parallel over rows), then each block of partner rows
    (parallel over blocks), so no two threads write one row."""
    _pdist_shapes("pdist_l2_grad", x, xt, g.shape[0])
    if d.shape[0] != g.shape[0] or gx.shape[0] != x.shape[0] or gx.shape[1] != x.shape[1]:
        raise ValueError("pdist_l2_grad: d must have g's length and gx x's shape")
    cdef Py_ssize_t N = x.shape[0], M = x.shape[1], i, b, j0
    cdef Py_ssize_t B = TL_PD_BLOCK, nb = (N + B - 1) // B
    cdef Py_ssize_t GT = TL_PD_GT(<floating>0), scratch = (M + TL_PD_GI) * GT
    cdef int nt = _threads(N * N * M)
    cdef floating *w
    cdef floating *gt
    cdef Py_ssize_t failed = 0
    if M == 0:
        return
    if N < 2:
        gx[:, :] = 0
        return
    gx[N - 1, :] = 0
    with nogil:
        for i in prange(N - 1, schedule="static", chunksize=16, num_threads=nt):
            w = <floating *>malloc(N * sizeof(floating))
            if w == NULL:
                failed += 1
                continue
            if floating is float:
                tl_pdist_grad_row_f32(&g[_row_start(i, N)], &d[_row_start(i, N)], &x[i, 0],
                                      &xt[0, 0], N, M, i, &gx[i, 0], w)
            else:
                tl_pdist_grad_row_f64(&g[_row_start(i, N)], &d[_row_start(i, N)], &x[i, 0],
                                      &xt[0, 0], N, M, i, &gx[i, 0], w)
            free(w)
        for b in prange(nb, schedule="dynamic", num_threads=nt):
            j0 = b * B
            w = <floating *>malloc(scratch * sizeof(floating))
            if w == NULL:
                failed += 1
                continue
            gt = w + TL_PD_GI * GT
            if floating is float:
                tl_pdist_grad_cols_f32(&g[0], &d[0], &xt[0, 0], N, M, j0, min(j0 + B, N),
                                       &gx[0, 0], gt, w)
            else:
                tl_pdist_grad_cols_f64(&g[0], &d[0], &xt[0, 0], N, M, j0, min(j0 + B, N),
                                       &gx[0, 0], gt, w)
            free(w)
    if failed:
        raise MemoryError("pdist_l2_grad: could not allocate a row buffer")
