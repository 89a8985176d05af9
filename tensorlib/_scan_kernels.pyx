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


def cum_f32(const float[:, :, ::1] x, float[:, :, ::1] out, bint prod):
    """Running sum (or product, ``prod``) of float32 ``x`` (outer, n, inner) along n with a
    double accumulator per column, as PyTorch's CPU scans: no pairwise summation is possible
    in a scan, and a float32 accumulator drifts by 1e-4 relative over 10^5 terms."""
    cdef Py_ssize_t O = x.shape[0], n = x.shape[1], K = x.shape[2]
    cdef Py_ssize_t nck = (K + COLS - 1) // COLS
    cdef Py_ssize_t t, o, c, j, k, k0, k1
    cdef double acc
    cdef double *accs
    if n == 0 or O == 0 or K == 0:
        return
    with nogil:
        for t in prange(O * nck, schedule="static", num_threads=_threads(O * n * K)):
            o = t // nck
            c = t % nck
            if K == 1:
                acc = 1.0 if prod else 0.0
                for j in range(n):
                    if prod:
                        acc = acc * x[o, j, 0]
                    else:
                        acc = acc + x[o, j, 0]
                    out[o, j, 0] = <float>acc
            else:
                k0 = c * COLS
                k1 = min(k0 + COLS, K)
                accs = <double *>malloc((k1 - k0) * sizeof(double))
                for k in range(k1 - k0):
                    accs[k] = 1.0 if prod else 0.0
                for j in range(n):
                    for k in range(k0, k1):
                        if prod:
                            accs[k - k0] *= x[o, j, k]
                        else:
                            accs[k - k0] += x[o, j, k]
                        out[o, j, k] = <float>accs[k - k0]
                free(accs)


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
