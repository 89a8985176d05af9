# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""CPU kernels in Cython.

Every function here trusts its caller: shapes, dtypes, contiguity and index
ranges are checked in Python (the op registry's ``check``/forward functions)
before a kernel runs, so bad input never reaches unchecked memory access.
Kernels with a leading underscore-free name that take ``out`` arrays write
into them; callers allocate them with the right shape and dtype. Inputs are
``const`` memoryviews, so read-only arrays (memory maps, ONNX initializers,
``tl.from_numpy`` of a read-only array) are accepted without a copy.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.math cimport exp, log, sqrt
from openmp cimport omp_get_max_threads, omp_set_num_threads
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cnp.import_array()

ctypedef fused floating:
    float
    double


def erf(x):
    """Elementwise error function (float32/float64; other floats computed in float32).
    float32 runs a vectorised polynomial (_simd_math.h: relative error ~3e-7, a few float32
    roundings); float64 vector lanes (_simd_f64.h: within 1.25 ulp)."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    a = np.ascontiguousarray(a)
    out = np.empty_like(a)
    if a.size and a.dtype == np.float32:
        _erf_f32(a.reshape(-1), out.reshape(-1))
    elif a.size:
        math_f64("erf", a.reshape(-1), out.reshape(-1))
    return out


ctypedef void (*unary_f32)(const float *, float *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_f32)(const float *, const float *, float *, Py_ssize_t) noexcept nogil

# The vectorised maps below split their input into tasks of MAP_CHUNK elements (64 KiB): each
# thread streams through whole pages of a fresh output, so two threads do not fault on the
# same ones. A map takes threads from MAP_PAR_* elements, where its one-thread time (GELU
# and erf ~0.7 ns an element, sigmoid and tanh ~0.2 ns on a Zen 5 core) passes a few times
# the ~60 µs an OpenMP wake-up costs on the 2-core VMs (see PAR_MIN). 1M-float GELU: 735 µs
# on one thread, 422 µs on two, fresh outputs each call or ten kept alive alike.
DEF MAP_CHUNK = 16384
DEF MAP_PAR_SLOW = 1 << 18
DEF MAP_PAR_FAST = 1 << 20


cdef inline int _map_threads(Py_ssize_t n, Py_ssize_t par_min) noexcept nogil:
    return omp_get_max_threads() if n >= par_min else 1


cdef void _map1(void (*f)(const floating *, floating *, Py_ssize_t) noexcept nogil,
                const floating *x, floating *out, Py_ssize_t n,
                Py_ssize_t par_min) noexcept nogil:
    # out = f(x) over n elements, in MAP_CHUNK chunks over threads from par_min elements
    cdef Py_ssize_t nc = (n + MAP_CHUNK - 1) // MAP_CHUNK, i, lo
    cdef int threads = _map_threads(n, par_min)
    if threads <= 1 or nc < 2:
        if n:
            f(x, out, n)
        return
    for i in prange(nc, schedule="static", num_threads=threads):
        lo = i * MAP_CHUNK
        f(x + lo, out + lo, min(MAP_CHUNK, n - lo))


cdef void _map2(void (*f)(const floating *, const floating *, floating *,
                          Py_ssize_t) noexcept nogil,
                const floating *a, const floating *b, floating *out, Py_ssize_t n,
                Py_ssize_t par_min) noexcept nogil:
    # out = f(a, b), as _map1
    cdef Py_ssize_t nc = (n + MAP_CHUNK - 1) // MAP_CHUNK, i, lo
    cdef int threads = _map_threads(n, par_min)
    if threads <= 1 or nc < 2:
        if n:
            f(a, b, out, n)
        return
    for i in prange(nc, schedule="static", num_threads=threads):
        lo = i * MAP_CHUNK
        f(a + lo, b + lo, out + lo, min(MAP_CHUNK, n - lo))


cdef inline const float *_cp(const float[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] else NULL


cdef inline float *_mp(float[::1] v) noexcept nogil:
    return &v[0] if v.shape[0] else NULL


def _same_length(name, *arrays):
    if any(a.shape[0] != arrays[0].shape[0] for a in arrays):
        raise ValueError(f"{name}: the arrays differ in length")


def gelu_into(const floating[::1] x, floating[::1] out):
    """Exact GELU, x * Phi(x), of a flat float32 array (on whole AVX-512 / AVX2 registers
    where the CPU has them, _gelu_vec.h) or float64 one (vector lanes, _simd_f64.h), threaded
    when large."""
    _unary_map("gelu_into", <unary_f32>tl_gelu_f32_vec, <unary_f64>tl_gelu_f64, x, out,
               MAP_PAR_SLOW)


def gelu_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out):
    """g * (Phi(x) + x phi(x)), GELU's backward, of flat float32 or float64 arrays (as
    gelu_into)."""
    _act_grad("gelu_grad_into", <binary_f32>tl_gelu_grad_f32_vec,
              <binary_f64>tl_gelu_grad_f64, g, x, out, MAP_PAR_SLOW)


def gelu_tanh_into(const floating[::1] x, floating[::1] out):
    """GELU's tanh form of a flat float32 or float64 array, x / (1 + exp(-2u)): one
    vectorised pass, threaded when large."""
    _unary_map("gelu_tanh_into", <unary_f32>tl_gelu_tanh_f32, <unary_f64>tl_gelu_tanh_f64,
               x, out, MAP_PAR_SLOW)


def gelu_tanh_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out):
    """The backward of GELU's tanh form, g (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'), of
    flat float32 or float64 arrays in one pass (overflow-free in the tails)."""
    _act_grad("gelu_tanh_grad_into", <binary_f32>tl_gelu_tanh_grad_f32,
              <binary_f64>tl_gelu_tanh_grad_f64, g, x, out, MAP_PAR_SLOW)


def silu_into(const floating[::1] x, floating[::1] out):
    """x * sigmoid(x), SiLU, of flat float32 or float64 arrays in one pass."""
    _unary_map("silu_into", <unary_f32>tl_silu_f32, <unary_f64>tl_silu_f64, x, out,
               MAP_PAR_FAST)


def silu_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out):
    """g * s (1 + x (1 - s)), s = sigmoid(x): SiLU's backward, of flat float32 or float64
    arrays in one pass."""
    _act_grad("silu_grad_into", <binary_f32>tl_silu_grad_f32, <binary_f64>tl_silu_grad_f64,
              g, x, out)


def hardswish_f32(const float[::1] x, float[::1] out):
    """x * relu6(x + 3) / 6 of a flat float32 array."""
    _same_length("hardswish_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_hardswish_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_FAST)


def hardswish_grad_f32(const float[::1] g, const float[::1] x, float[::1] out):
    """Hardswish's backward (PyTorch's: 0 at -3, g at 3) of flat float32 arrays."""
    _same_length("hardswish_grad_f32", g, x, out)
    with nogil:
        _map2(<binary_f32>tl_hardswish_grad_f32, _cp(g), _cp(x), _mp(out), x.shape[0],
              MAP_PAR_FAST)


def relu_f32(const float[::1] x, float[::1] out):
    """ReLU of a flat float32 array (vectorised; threaded when large)."""
    _same_length("relu_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_relu_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_FAST)


def _erf_f32(const float[::1] x, float[::1] out):
    with nogil:
        _map1(<unary_f32>tl_erf_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_SLOW)


# Below this many elements of work a kernel runs on one thread: waking the OpenMP team costs
# more than it saves. Under the passive wait policy a wake-up took ~60 µs on the 2-core VMs
# the benchmarks run on: relu_grad of 65536 float32 took 8.6 µs on one thread and 71 µs on
# two, and at 1M elements the two tied (136 µs); this was 1 << 16 before that measurement.
DEF PAR_MIN = 1 << 20
# elementwise kernels split their work into blocks of this many elements
DEF BLOCK = 1 << 14


cdef inline int nthreads(Py_ssize_t work) noexcept nogil:
    return 1 if work < PAR_MIN else omp_get_max_threads()


# --- integer helpers -------------------------------------------------------------------
cdef inline Py_ssize_t floordiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # b > 0; C division truncates toward zero
    if a >= 0:
        return a // b
    return -((-a + b - 1) // b)


cdef inline Py_ssize_t clampi(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


# the outputs o in [range_lo, range_hi) are those whose input position o*s + off is in [0, n)
# (values, not pointers: variables assigned in a prange body must be visible as assignments
# to stay thread-private)
cdef inline Py_ssize_t range_lo(Py_ssize_t off, Py_ssize_t s, Py_ssize_t nout) noexcept nogil:
    return clampi(-floordiv(off, s), 0, nout)


cdef inline Py_ssize_t range_hi(Py_ssize_t off, Py_ssize_t s, Py_ssize_t n, Py_ssize_t lo,
                                Py_ssize_t nout) noexcept nogil:
    return clampi(floordiv(n - 1 - off, s) + 1, lo, nout)


# --- im2col / col2im ------------------------------------------------------------------------
cdef void _plane_patches(floating* cols, Py_ssize_t ld, floating* plane, Py_ssize_t H,
                         Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                         Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                         Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo, bint adjoint) noexcept nogil:
    """im2col of one input plane (H, W): its kh*kw rows of ``cols`` (row stride ``ld``, Ho*Wo
    long) get the patches, zero outside the plane. ``adjoint`` (col2im) instead adds the rows
    back into the plane, which the caller has zeroed."""
    cdef Py_ssize_t i, j, ho, wo, hi, off, lo, hi_w
    cdef floating* row
    cdef floating* img
    for i in range(kh):
        for j in range(kw):
            off = j * dw - pl
            lo = range_lo(off, sw, Wo)
            hi_w = range_hi(off, sw, W, lo, Wo)
            for ho in range(Ho):
                hi = ho * sh - pt + i * dh
                row = cols + (i * kw + j) * ld + ho * Wo
                if hi < 0 or hi >= H:
                    if not adjoint:
                        memset(row, 0, Wo * sizeof(floating))
                    continue
                img = plane + hi * W
                if adjoint:
                    if sw == 1:
                        for wo in range(lo, hi_w):
                            img[wo + off] += row[wo]
                    else:
                        for wo in range(lo, hi_w):
                            img[wo * sw + off] += row[wo]
                    continue
                for wo in range(lo):
                    row[wo] = 0
                if sw == 1:
                    for wo in range(lo, hi_w):
                        row[wo] = img[wo + off]
                else:
                    for wo in range(lo, hi_w):
                        row[wo] = img[wo * sw + off]
                for wo in range(hi_w, Wo):
                    row[wo] = 0


# tensorlib/_im2col.h: one float32 plane's patches with AVX-512 masked loads
cdef extern from "_im2col.h" nogil:
    void tl_im2col_f32(float *cols, Py_ssize_t ld, const float *plane, Py_ssize_t H,
                       Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho,
                       Py_ssize_t Wo)
    void tl_col2im_f32(const float *cols, Py_ssize_t ld, float *plane, Py_ssize_t H,
                       Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho,
                       Py_ssize_t Wo)

# tensorlib/_sgemm.h: float32 GEMM for CPUs with AVX-512 or AVX2 + FMA
cdef extern from "_sgemm.h" nogil:
    int tl_sgemm_cpu()
    int tl_sgemm_select(int isa)
    int tl_isa, tl_mr, tl_nr
    int tl_sgemm(int M, int N, int K, float alpha, const float *A, Py_ssize_t rsa,
                 Py_ssize_t csa, const float *B, Py_ssize_t rsb, Py_ssize_t csb, float beta,
                 float *C, Py_ssize_t ldc, int nthreads)

# the im2col/col2im loops and sgemv need AVX-512; the GEMM runs on AVX2 too
cdef int AVX512 = tl_sgemm_cpu() == 2
tl_sgemm_select(-1)

# tensorlib/_sgemv.h: float32 matrix-vector products (AVX-512)
cdef extern from "_sgemv.h" nogil:
    void tl_sgemv(int M, int K, const float *A, Py_ssize_t rsa, Py_ssize_t csa,
                  const float *x, float *y, int nthreads)


cdef inline void _patches(floating* cols, Py_ssize_t ld, floating* plane, Py_ssize_t H,
                          Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                          Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                          Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo, bint adjoint) noexcept nogil:
    """_plane_patches (the adjoint overwrites the plane), on the AVX-512 versions (_im2col.h)
    for float32 where the CPU has them: im2col at column stride 1 or 2, col2im at unit
    strides or where the taps outnumber the stride phases (a strided 1x1 kernel's scatter
    was 1.7x faster in the scalar loop; 7x7 stride 2 1.2x slower there)."""
    if floating is float:
        if AVX512 and (sw <= 2 if not adjoint else (sh * sw == 1 or kh * kw > sh * sw)):
            if adjoint:
                tl_col2im_f32(cols, ld, plane, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
            else:
                tl_im2col_f32(cols, ld, plane, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
            return
    if adjoint:
        memset(plane, 0, H * W * sizeof(floating))
    _plane_patches(cols, ld, plane, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, adjoint)


def im2col(const floating[:, :, :, ::1] x, floating[:, ::1] out, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
           Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo):
    """out[(c*kh + i)*kw + j, (n*Ho + ho)*Wo + wo] = x[n, c, ho*sh - pt + i*dh, wo*sw - pl + j*dw]
    (0 outside the input). out: (C*kh*kw, N*Ho*Wo)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t HW = Ho * Wo, ld = out.shape[1], p
    with nogil:
        # channel-major: each thread fills whole rows of the output, image after image
        for p in prange(N * C, schedule="static", num_threads=nthreads(N * C * kh * kw * HW)):
            _patches(&out[(p // N) * kh * kw, (p % N) * HW], ld, <floating*> &x[p % N, p // N, 0, 0],
                     H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, False)


def col2im(const floating[:, ::1] cols, floating[:, :, :, ::1] out, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
           Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo):
    """The adjoint of im2col: out (N, C, H, W) = sum of the patches in cols."""
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t HW = Ho * Wo, ld = cols.shape[1], p
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads(N * C * kh * kw * HW)):
            _patches(<floating*> &cols[(p % C) * kh * kw, (p // C) * HW], ld,
                     &out[p // C, p % C, 0, 0], H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, True)


# --- pooling ----------------------------------------------------------------------------------
def max_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, cnp.int64_t[:, :, :, ::1] idx,
               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
               Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw):
    """Max over each window (NaN wins, as PyTorch); idx holds the flat h*W + w of the max.
    Every window must hold at least one input element (checked by the caller)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t p, ho, wo, i, j, h0, w0, i0, i1, j0, j1, best, k
    cdef floating m, v
    cdef const floating* src
    cdef floating* dst
    cdef cnp.int64_t* di
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads(N * C * H * W)):
            src = &x[0, 0, 0, 0] + p * H * W
            dst = &out[0, 0, 0, 0] + p * Ho * Wo
            di = &idx[0, 0, 0, 0] + p * Ho * Wo
            for ho in range(Ho):
                h0 = ho * sh - ph
                # window rows i with 0 <= h0 + i*dh < H, computed once per output row
                i0 = range_lo(h0, dh, kh)
                i1 = range_hi(h0, dh, H, i0, kh)
                for wo in range(Wo):
                    w0 = wo * sw - pw
                    j0 = range_lo(w0, dw, kw)
                    j1 = range_hi(w0, dw, W, j0, kw)
                    best = (h0 + i0 * dh) * W + w0 + j0 * dw
                    m = src[best]
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            k = (h0 + i * dh) * W + w0 + j * dw
                            v = src[k]
                            if v > m or (v != v and m == m):
                                m = v
                                best = k
                    dst[ho * Wo + wo] = m
                    di[ho * Wo + wo] = best


cdef extern from *:
    """
    /* max-pool 2x2 stride 2, one output row, as a tournament (a|b, c|d, then the two
       winners) of selects that compile without branches: random data mispredicts a branchy
       scan half the time. Same result as the row-major scan: ties keep the earlier element,
       the first NaN wins. */
    #define TL_TAKES(v, m) (((v) > (m)) | (((v) != (v)) & ((m) == (m))))
    /* select through integer masks: gcc turns ?: on floats into branches here */
    #define TL_POOL2X2(NAME, T, U) \
    static inline T NAME##_sel(int t, T x, T y) { \
        U bx, by, mk = (U)0 - (U)t; memcpy(&bx, &x, sizeof(T)); memcpy(&by, &y, sizeof(T)); \
        by = by ^ ((bx ^ by) & mk); memcpy(&y, &by, sizeof(T)); return y; \
    } \
    static void NAME(const T* r0, const T* r1, T* dst, int64_t* di, Py_ssize_t Wo, \
                     Py_ssize_t k0, Py_ssize_t W) { \
        for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
            T a = r0[2 * wo], b = r0[2 * wo + 1], c = r1[2 * wo], d = r1[2 * wo + 1]; \
            int t1 = TL_TAKES(b, a), t2 = TL_TAKES(d, c); \
            T m1 = NAME##_sel(t1, b, a), m2 = NAME##_sel(t2, d, c); \
            int t3 = TL_TAKES(m2, m1); \
            int64_t i1 = t1, i2 = W + t2, mk = -(int64_t)t3; \
            dst[wo] = NAME##_sel(t3, m2, m1); \
            di[wo] = k0 + 2 * wo + (i1 ^ ((i1 ^ i2) & mk)); \
        } \
    }
    TL_POOL2X2(tl_pool2x2_f, float, uint32_t)
    TL_POOL2X2(tl_pool2x2_d, double, uint64_t)
    """
    void tl_pool2x2_f(const float* r0, const float* r1, float* dst, cnp.int64_t* di,
                      Py_ssize_t Wo, Py_ssize_t k0, Py_ssize_t W) noexcept nogil
    void tl_pool2x2_d(const double* r0, const double* r1, double* dst, cnp.int64_t* di,
                      Py_ssize_t Wo, Py_ssize_t k0, Py_ssize_t W) noexcept nogil


cdef inline void _pool2x2_rows(const floating* r0, const floating* r1, floating* dst,
                               cnp.int64_t* di, Py_ssize_t Wo, Py_ssize_t k0,
                               Py_ssize_t W) noexcept nogil:
    if floating is float:
        tl_pool2x2_f(r0, r1, dst, di, Wo, k0, W)
    else:
        tl_pool2x2_d(r0, r1, dst, di, Wo, k0, W)


def max_pool2d_2x2(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                   cnp.int64_t[:, :, :, ::1] idx):
    """max_pool2d with kernel 2, stride 2, no padding or dilation, windows inside the input
    (2*Ho <= H, 2*Wo <= W, checked by the caller); same NaN rule and indices as max_pool2d
    (row-major window order, the first maximum kept)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t p, ho
    cdef const floating* src
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads(N * C * H * W)):
            src = &x[0, 0, 0, 0] + p * H * W
            for ho in range(Ho):
                _pool2x2_rows(src + 2 * ho * W, src + (2 * ho + 1) * W,
                              &out[0, 0, 0, 0] + (p * Ho + ho) * Wo,
                              &idx[0, 0, 0, 0] + (p * Ho + ho) * Wo, Wo, 2 * ho * W, W)


def max_pool2d_backward(const floating[:, :, :, ::1] g, const cnp.int64_t[:, :, :, ::1] idx,
                        floating[:, :, :, ::1] out):
    """out (N, C, H, W) = scatter-add of g at idx (each idx in [0, H*W), checked by caller)."""
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t Ho = g.shape[2], Wo = g.shape[3]
    cdef Py_ssize_t p, n, c, ho, wo, k
    cdef floating* dst
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads(N * C * H * W)):
            n = p // C
            c = p % C
            dst = &out[n, c, 0, 0]
            memset(dst, 0, H * W * sizeof(floating))
            for ho in range(Ho):
                for wo in range(Wo):
                    k = idx[n, c, ho, wo]
                    dst[k] += g[n, c, ho, wo]


# --- activation backward ------------------------------------------------------------------------
def relu_backward(const floating[::1] g, const floating[::1] x, floating[::1] out):
    """out = 0 where x <= 0, else g (a NaN x passes g, as PyTorch's threshold backward), in
    one pass."""
    cdef Py_ssize_t n = g.shape[0], nb = (n + BLOCK - 1) // BLOCK, b, lo
    with nogil:
        for b in prange(nb, schedule="static", num_threads=nthreads(n)):
            lo = b * BLOCK
            _relu_bwd_block(&g[0] + lo, &x[0] + lo, &out[0] + lo, min(BLOCK, n - lo))




cdef void _relu_bwd_block(const floating* g, const floating* x, floating* out,
                          Py_ssize_t n) noexcept nogil:
    # a plain counted loop with a select: gcc vectorises it (a prange body is not)
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = g[i]   # loaded unconditionally, so the select below needs no branch
        out[i] = 0 if x[i] <= 0 else v


# --- embedding ------------------------------------------------------------------------------
def embedding_backward(const floating[:, ::1] g, const cnp.int64_t[::1] idx, floating[:, ::1] out,
                       Py_ssize_t padding_idx, bint accumulate=False):
    """out (V, D) = zeros (unless ``accumulate``: added into out as it is), then
    out[idx[k]] += g[k] (rows at padding_idx skipped). Threads split the columns, so
    repeated indices never race. idx in [0, V) (checked)."""
    cdef Py_ssize_t K = g.shape[0], D = g.shape[1], V = out.shape[0]
    cdef Py_ssize_t B = 64, nb = (D + B - 1) // B
    cdef Py_ssize_t b, k, d, d0, d1, row
    with nogil:
        if not accumulate:
            memset(&out[0, 0], 0, V * D * sizeof(floating))
        for b in prange(nb, schedule="static", num_threads=nthreads(K * D)):
            d0 = b * B
            d1 = min(d0 + B, D)
            for k in range(K):
                row = idx[k]
                if row == padding_idx:
                    continue
                for d in range(d0, d1):
                    out[row, d] += g[k, d]


# --- embedding bags (contiguous runs of a flat index list) ------------------------------------
cdef extern from *:
    """
    /* the table rows of upcoming bag entries are random: fetch them ahead (their misses
       overlap instead of stalling one after another) */
    static inline void tl_prefetch_row(const void *p, Py_ssize_t bytes) {
        const char *c = (const char *)p;
        for (Py_ssize_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 1);
    }
    """
    void tl_prefetch_row(const void *p, Py_ssize_t bytes) nogil

DEF BAG_AHEAD = 16      # entries ahead


def _check_bags(str name, Py_ssize_t N, indptr, Py_ssize_t B, Py_ssize_t n_coef):
    if indptr.shape[0] != B + 1 or (n_coef >= 0 and n_coef != N):
        raise ValueError(f"{name}: {indptr.shape[0]} bag bounds for {B} bags, {n_coef} "
                         f"coefficients for {N} entries")


def bag_sum(const floating[:, ::1] w, const cnp.int64_t[::1] flat,
            const cnp.int64_t[::1] indptr, const floating[::1] coef, floating[:, ::1] out):
    """out[b] = sum over the entries n of bag b (indptr[b] <= n < indptr[b + 1]) of
    coef[n] * w[flat[n]]. Threads own bags; bounds and indices outside the table are
    skipped (the caller checks them and raises)."""
    cdef Py_ssize_t B = out.shape[0], D = w.shape[1], V = w.shape[0], N = flat.shape[0]
    _check_bags("bag_sum", N, indptr, B, coef.shape[0])
    if out.shape[1] != D:
        raise ValueError("bag_sum: out has another width than the table")
    cdef Py_ssize_t b, n, d, j, lo, hi
    cdef floating c
    cdef floating *row
    cdef const floating *src
    with nogil:
        for b in prange(B, schedule="dynamic", num_threads=nthreads(N * D)):
            row = &out[b, 0] if D else NULL
            if D:
                memset(row, 0, D * sizeof(floating))
            lo = min(max(indptr[b], 0), N)
            hi = min(max(indptr[b + 1], lo), N)
            for n in range(lo, hi):
                if n + BAG_AHEAD < N and 0 <= flat[n + BAG_AHEAD] < V and D:
                    tl_prefetch_row(&w[flat[n + BAG_AHEAD], 0], D * sizeof(floating))
                j = flat[n]
                if j < 0 or j >= V:
                    continue
                c = coef[n]
                src = &w[j, 0]
                for d in range(D):
                    row[d] = row[d] + c * src[d]


def bag_sum_grad(const floating[:, ::1] g, const cnp.int64_t[::1] flat,
                 const cnp.int64_t[::1] indptr, const floating[::1] coef,
                 floating[:, ::1] out):
    """The adjoint of bag_sum: out (V, D) = zeros, then out[flat[n]] += coef[n] * g[b] for
    each entry n of bag b. Threads split the columns, so repeated rows never race."""
    cdef Py_ssize_t B = g.shape[0], D = g.shape[1], V = out.shape[0], N = flat.shape[0]
    _check_bags("bag_sum_grad", N, indptr, B, coef.shape[0])
    if out.shape[1] != D:
        raise ValueError("bag_sum_grad: out has another width than the gradient")
    cdef Py_ssize_t blk = 64, nblk = (D + blk - 1) // blk
    cdef Py_ssize_t k, b, n, d, d0, d1, j, lo, hi
    cdef floating c
    with nogil:
        if V * D:
            memset(&out[0, 0], 0, V * D * sizeof(floating))
        for k in prange(nblk, schedule="static", num_threads=nthreads(N * D)):
            d0 = k * blk
            d1 = min(d0 + blk, D)
            for b in range(B):
                lo = min(max(indptr[b], 0), N)
                hi = min(max(indptr[b + 1], lo), N)
                for n in range(lo, hi):
                    j = flat[n]
                    if j < 0 or j >= V:
                        continue
                    c = coef[n]
                    for d in range(d0, d1):
                        out[j, d] += c * g[b, d]


def bag_max(const floating[:, ::1] w, const cnp.int64_t[::1] flat,
            const cnp.int64_t[::1] indptr, floating[:, ::1] out, cnp.int64_t[:, ::1] arg):
    """Per bag and column the largest w[flat[n]] and its table row (the first in the bag on
    ties; a NaN wins, as PyTorch's max); an empty bag gives 0 and row -1."""
    cdef Py_ssize_t B = out.shape[0], D = w.shape[1], V = w.shape[0], N = flat.shape[0]
    _check_bags("bag_max", N, indptr, B, -1)
    if out.shape[1] != D or arg.shape[0] != B or arg.shape[1] != D:
        raise ValueError("bag_max: outputs of the wrong shape")
    cdef Py_ssize_t b, n, d, j, lo, hi
    cdef floating v, best
    cdef bint seen
    with nogil:
        for b in prange(B, schedule="dynamic", num_threads=nthreads(N * D)):
            lo = min(max(indptr[b], 0), N)
            hi = min(max(indptr[b + 1], lo), N)
            for d in range(D):
                out[b, d] = 0
                arg[b, d] = -1
            seen = False
            for n in range(lo, hi):
                if n + BAG_AHEAD < N and 0 <= flat[n + BAG_AHEAD] < V and D:
                    tl_prefetch_row(&w[flat[n + BAG_AHEAD], 0], D * sizeof(floating))
                j = flat[n]
                if j < 0 or j >= V:
                    continue
                for d in range(D):
                    v = w[j, d]
                    best = out[b, d]
                    if not seen or v > best or (v != v and best == best):
                        out[b, d] = v
                        arg[b, d] = j
                seen = True


# --- sampling at precomputed taps (grid_sample) --------------------------------------------
def _check_taps(str name, Py_ssize_t N, Py_ssize_t C, idx, w, Py_ssize_t P, Py_ssize_t P2):
    if idx.shape[1] != N or tuple(w.shape) != tuple(idx.shape) or idx.shape[2] != P or P2 != C:
        raise ValueError(f"{name}: taps {tuple(idx.shape)}, weights {tuple(w.shape)} do not "
                         f"fit {N} images of {C} channels and {P} points")


def gather_taps(const floating[:, :, ::1] x, const cnp.int64_t[:, :, ::1] idx,
                const floating[:, :, ::1] w, floating[:, :, ::1] out):
    """out[n, c, p] = sum over k of w[k, n, p] * x[n, c, idx[k, n, p]], the taps in order k;
    a tap outside [0, S) reads zero. x (N, C, S), idx and w (K, N, P), out (N, C, P); any
    idx value is safe."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    cdef Py_ssize_t K = idx.shape[0], P = out.shape[2]
    _check_taps("gather_taps", N, C, idx, w, idx.shape[2], out.shape[1])
    if out.shape[0] != N or out.shape[2] != idx.shape[2]:
        raise ValueError("gather_taps: out does not fit")
    cdef Py_ssize_t nc, n, k, p, j
    cdef const floating *xp
    cdef floating *op
    cdef const cnp.int64_t *ip
    cdef const floating *wp
    if N * C * P == 0:
        return
    with nogil:
        for nc in prange(N * C, schedule="static", num_threads=nthreads(N * C * P * K)):
            n = nc // C
            xp = &x[n, nc % C, 0]
            op = &out[n, nc % C, 0]
            memset(op, 0, P * sizeof(floating))
            for k in range(K):
                ip = &idx[k, n, 0]
                wp = &w[k, n, 0]
                for p in range(P):
                    j = ip[p]
                    # a tap outside reads 0 but still weighs it: a NaN weight (a NaN grid
                    # point) gives NaN, as PyTorch's
                    op[p] = op[p] + wp[p] * (xp[j] if 0 <= j < S else 0)


def scatter_taps(const floating[:, :, ::1] g, const cnp.int64_t[:, :, ::1] idx,
                 const floating[:, :, ::1] w, floating[:, :, ::1] out):
    """The adjoint of gather_taps: out (N, C, S) = zeros, then out[n, c, idx[k, n, p]] +=
    w[k, n, p] * g[n, c, p] (taps outside [0, S) dropped). Threads own whole (n, c) planes,
    so repeated taps never race."""
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], S = out.shape[2]
    cdef Py_ssize_t K = idx.shape[0], P = g.shape[2]
    _check_taps("scatter_taps", N, C, idx, w, P, g.shape[1])
    if g.shape[0] != N:
        raise ValueError("scatter_taps: g does not fit")
    cdef Py_ssize_t nc, n, k, p, j
    cdef const floating *gp
    cdef floating *op
    cdef const cnp.int64_t *ip
    cdef const floating *wp
    if N * C * S == 0:
        return
    with nogil:
        for nc in prange(N * C, schedule="static", num_threads=nthreads(N * C * P * K)):
            n = nc // C
            gp = &g[n, nc % C, 0]
            op = &out[n, nc % C, 0]
            memset(op, 0, S * sizeof(floating))
            for k in range(K):
                ip = &idx[k, n, 0]
                wp = &w[k, n, 0]
                for p in range(P):
                    j = ip[p]
                    if 0 <= j < S:
                        op[j] = op[j] + wp[p] * gp[p]


# --- vectorised float32 kernels written in C (tensorlib/_simd_math.h) -----------------------
cdef extern from "_simd_math.h" nogil:
    void tl_erf_f32(const float *x, float *out, Py_ssize_t m)
    void tl_gelu_f32(const float *x, float *out, Py_ssize_t m)
    void tl_gelu_grad_f32(const float *g, const float *x, float *out, Py_ssize_t m)
    void tl_silu_grad_f32(const float *g, const float *x, float *out, Py_ssize_t m)
    void tl_silu_f32(const float *x, float *out, Py_ssize_t m)
    void tl_gelu_tanh_grad_f32(const float *g, const float *x, float *out, Py_ssize_t m)
    void tl_hardswish_f32(const float *x, float *out, Py_ssize_t m)
    void tl_hardswish_grad_f32(const float *g, const float *x, float *out, Py_ssize_t m)
    void tl_tanh_grad_f32(const float *g, const float *y, float *out, Py_ssize_t m)
    void tl_sigmoid_grad_f32(const float *g, const float *y, float *out, Py_ssize_t m)
    void tl_tanh_grad_f64(const double *g, const double *y, double *out, Py_ssize_t m)
    void tl_sigmoid_grad_f64(const double *g, const double *y, double *out, Py_ssize_t m)
    void tl_lstm_cell_fwd_f32(const float *gates, const float *c, float *h_new, float *c_new,
                              float *acts, Py_ssize_t n, Py_ssize_t h)
    void tl_lstm_cell_bwd_f32(const float *acts, const float *c, const float *c_new,
                              const float *gh, const float *gc, const float *gacts,
                              float *dgates, float *dc, Py_ssize_t n, Py_ssize_t h)
    void tl_softmax_xent_row_f32(const float *x, cnp.int64_t t, float *prob, float *loss,
                                 Py_ssize_t c)
    void tl_rec_gemm_f32(const float *h, const float *w, float *out, Py_ssize_t n,
                         Py_ssize_t g, Py_ssize_t k)
    void tl_gru_cell_fwd_f32(const float *gi, const float *gh, const float *b_hn,
                             const float *h, float *ws, float *out, Py_ssize_t n,
                             Py_ssize_t hd)
    void tl_layer_norm_row_f32(const float *x, const float *w, const float *b, float *y,
                               float *mean, float *rstd, Py_ssize_t d, double eps)
    void tl_layer_norm_bwd_row_f32(const float *x, float m, float r, const float *gy,
                                   float gm, float gr, const float *w, float *dx, float *gyx,
                                   Py_ssize_t d)
    void tl_layer_norm_row_f64(const double *x, const double *w, const double *b, double *y,
                               double *mean, double *rstd, Py_ssize_t d, double eps)
    void tl_layer_norm_bwd_row_f64(const double *x, double m, double r, const double *gy,
                                   double gm, double gr, const double *w, double *dx,
                                   double *gyx, Py_ssize_t d)
    void tl_bn_stats_f32(const float *x, Py_ssize_t n, Py_ssize_t cs, Py_ssize_t s,
                         double *mean, double *var)
    void tl_bn_apply_f32(const float *x, float *y, Py_ssize_t n, Py_ssize_t cs, Py_ssize_t s,
                         float m, float scale, float shift)
    double tl_f32_residual(double m)
    void tl_bn_bwd_sums_f32(const float *x, const float *gy, Py_ssize_t n, Py_ssize_t cs,
                            Py_ssize_t s, float m, double *sg, double *sgx)
    void tl_bn_bwd_dx_f32(const float *x, const float *gy, float *dx, Py_ssize_t n,
                          Py_ssize_t cs, Py_ssize_t s, float m, float a, float b, float d)
    void tl_axpy_f32(float *y, const float *x, float a, Py_ssize_t n)
    void tl_axpy_f64(double *y, const double *x, double a, Py_ssize_t n)
    double tl_dot_f32(const float *a, const float *b, Py_ssize_t n)
    double tl_dot_f64(const double *a, const double *b, Py_ssize_t n)
    void tl_relu_f32(const float *x, float *out, Py_ssize_t n)
    void tl_sign_f32(const float *x, float *out, Py_ssize_t n)
    void tl_rsqrt_f32(const float *x, float *out, Py_ssize_t n)
    void tl_sigmoid_f32(const float *x, float *out, Py_ssize_t m)
    void tl_tanh_f32(const float *x, float *out, Py_ssize_t m)


# --- softmax + cross-entropy on (N, C) rows -----------------------------------------------------
def softmax_xent(const floating[:, ::1] x, const cnp.int64_t[::1] t, floating[:, ::1] prob,
                 floating[::1] loss):
    """Row-wise softmax into prob and -log p[t] into loss (t in [0, C), checked by caller)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t n, k
    cdef double m, s, lse
    if floating is float:     # vectorised exp (libm's scalar exp was the whole cost)
        if N and C:
            with nogil:
                for n in prange(N, schedule="static", num_threads=nthreads(N * C)):
                    tl_softmax_xent_row_f32(&x[n, 0], t[n], &prob[n, 0], &loss[n], C)
    else:
        with nogil:
            for n in prange(N, schedule="static", num_threads=nthreads(N * C)):
                m = x[n, 0]
                for k in range(1, C):
                    if x[n, k] > m:
                        m = x[n, k]
                s = 0
                for k in range(C):
                    prob[n, k] = <floating>exp(x[n, k] - m)
                    s = s + prob[n, k]
                for k in range(C):
                    prob[n, k] = <floating>(prob[n, k] / s)
                lse = m + log(s)
                loss[n] = <floating>(lse - x[n, t[n]])


# --- softmax / log-softmax along axis 1 of (outer, n, inner), and their gradients -----------
cdef extern from "_softmax.h" nogil:
    void tl_softmax_row_f32(const float *x, float *y, Py_ssize_t n, int log_out)
    void tl_softmax_row_f64(const double *x, double *y, Py_ssize_t n, int log_out)
    void tl_softmax_block_f32(const float *x, float *y, Py_ssize_t n, Py_ssize_t inner,
                              float *m, double *s, int log_out)
    void tl_softmax_block_f64(const double *x, double *y, Py_ssize_t n, Py_ssize_t inner,
                              double *m, double *s, int log_out)
    void tl_softmax_grad_row_f32(const float *g, const float *y, float *dx, Py_ssize_t n,
                                 int log_out)
    void tl_softmax_grad_row_f64(const double *g, const double *y, double *dx, Py_ssize_t n,
                                 int log_out)
    void tl_softmax_grad_block_f32(const float *g, const float *y, float *dx, Py_ssize_t n,
                                   Py_ssize_t inner, double *d, int log_out)
    void tl_softmax_grad_block_f64(const double *g, const double *y, double *dx, Py_ssize_t n,
                                   Py_ssize_t inner, double *d, int log_out)


cdef inline int _softmax_block(const floating *x, floating *y, Py_ssize_t n, Py_ssize_t inner,
                               bint log_out) noexcept nogil:
    # 1: out of memory for the scratch
    cdef floating *m
    cdef double *s
    if inner == 1:
        if floating is float:
            tl_softmax_row_f32(x, y, n, log_out)
        else:
            tl_softmax_row_f64(x, y, n, log_out)
        return 0
    m = <floating *> malloc(inner * sizeof(floating))
    s = <double *> malloc(inner * sizeof(double))
    cdef int bad = m == NULL or s == NULL
    if not bad:
        if floating is float:
            tl_softmax_block_f32(x, y, n, inner, m, s, log_out)
        else:
            tl_softmax_block_f64(x, y, n, inner, m, s, log_out)
    free(m)
    free(s)
    return bad


cdef inline int _softmax_grad_block(const floating *g, const floating *y, floating *dx,
                                    Py_ssize_t n, Py_ssize_t inner, bint log_out) noexcept nogil:
    cdef double *d
    if inner == 1:
        if floating is float:
            tl_softmax_grad_row_f32(g, y, dx, n, log_out)
        else:
            tl_softmax_grad_row_f64(g, y, dx, n, log_out)
        return 0
    d = <double *> malloc(inner * sizeof(double))
    if d == NULL:
        return 1
    if floating is float:
        tl_softmax_grad_block_f32(g, y, dx, n, inner, d, log_out)
    else:
        tl_softmax_grad_block_f64(g, y, dx, n, inner, d, log_out)
    free(d)
    return 0


def softmax_along(const floating[:, :, ::1] x, floating[:, :, ::1] out, bint log_out):
    """Softmax (log_out: log-softmax) of x (outer, n, inner) along axis 1 into out."""
    cdef Py_ssize_t O = x.shape[0], N = x.shape[1], I = x.shape[2], o
    cdef int failed = 0
    if out.shape[0] != O or out.shape[1] != N or out.shape[2] != I:
        raise ValueError("softmax_along: out must have x's shape")
    if O * N * I == 0:
        return
    with nogil:
        for o in prange(O, schedule="static", num_threads=nthreads(O * N * I)):
            failed += _softmax_block(&x[o, 0, 0], &out[o, 0, 0], N, I, log_out)
    if failed:
        raise MemoryError("softmax_along: out of memory")


def softmax_grad_along(const floating[:, :, ::1] g, const floating[:, :, ::1] y,
                       floating[:, :, ::1] out, bint log_out):
    """The gradient of softmax (log_out: log-softmax) along axis 1 of (outer, n, inner) at
    its output y, applied to g, into out."""
    cdef Py_ssize_t O = g.shape[0], N = g.shape[1], I = g.shape[2], o
    cdef int failed = 0
    if (y.shape[0] != O or y.shape[1] != N or y.shape[2] != I or out.shape[0] != O
            or out.shape[1] != N or out.shape[2] != I):
        raise ValueError("softmax_grad_along: g, y and out must have one shape")
    if O * N * I == 0:
        return
    with nogil:
        for o in prange(O, schedule="static", num_threads=nthreads(O * N * I)):
            failed += _softmax_grad_block(&g[o, 0, 0], &y[o, 0, 0], &out[o, 0, 0], N, I,
                                          log_out)
    if failed:
        raise MemoryError("softmax_grad_along: out of memory")


# --- optimizer updates, in place ------------------------------------------------------------------
def sgd_update(floating[::1] p, const floating[::1] g, floating[::1] buf, double lr, double momentum,
               double dampening, double weight_decay, bint nesterov, bint first):
    """p -= lr * step, with PyTorch's SGD (momentum buffer buf used when momentum != 0)."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double d, b
    with nogil:
        for i in prange(n, schedule="static", num_threads=nthreads(n)):
            d = g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            if momentum != 0:
                if first:
                    b = d
                else:
                    b = momentum * buf[i] + (1.0 - dampening) * d
                buf[i] = <floating>b
                if nesterov:
                    d = d + momentum * b
                else:
                    d = b
            p[i] = <floating>(p[i] - lr * d)


def adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v, double lr,
                double beta1, double beta2, double eps, double weight_decay, bint decoupled,
                double bc1, double bc2):
    """Adam (decoupled=False) / AdamW (decoupled=True) step; bc1, bc2 = 1 - beta**t."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef double d, mi, vi, pi, step = lr / bc1, sbc2 = sqrt(bc2)
    with nogil:
        for i in prange(n, schedule="static", num_threads=nthreads(n)):
            d = g[i]
            pi = p[i]
            if weight_decay != 0:
                if decoupled:
                    pi = pi * (1.0 - lr * weight_decay)
                else:
                    d = d + weight_decay * pi
            mi = beta1 * m[i] + (1.0 - beta1) * d
            vi = beta2 * v[i] + (1.0 - beta2) * d * d
            m[i] = <floating>mi
            v[i] = <floating>vi
            p[i] = <floating>(pi - step * mi / (sqrt(vi) / sbc2 + eps))


# --- fused LSTM cell (float32) ----------------------------------------------------------------
def lstm_cell_fwd(const float[:, ::1] gates, const float[:, ::1] c, float[:, ::1] h_new,
                  float[:, ::1] c_new, float[:, ::1] acts):
    """gates (n, 4h), c (n, h) -> h_new, c_new (n, h), acts (n, 4h); caller checks shapes."""
    cdef Py_ssize_t n = c.shape[0], h = c.shape[1]
    if n and h:
        with nogil:
            tl_lstm_cell_fwd_f32(&gates[0, 0], &c[0, 0], &h_new[0, 0], &c_new[0, 0],
                                 &acts[0, 0], n, h)


cdef inline bint _is3(float[:, :, ::1] a, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t d2):
    return a.shape[0] == d0 and a.shape[1] == d1 and a.shape[2] == d2


def lstm_seq_fwd_f32(float[:, :, ::1] gates, const float[:, ::1] w_hh,
                     const float[:, ::1] h0, const float[:, ::1] c0, float[:, :, ::1] y,
                     float[:, :, ::1] cs, float[:, :, ::1] acts, bint reverse):
    """One LSTM layer direction over T steps in float32, without a Python call per step:
    ``gates`` (T, N, 4H) holds each step's input half (x W_ih^T + b) and is overwritten with
    the full pre-activations; y, cs (T, N, H) and acts (T, N, 4H) get each step's h, c and
    activated gates (``reverse``: from t = T-1 down). For small layers (tl_rec_gemm_f32)."""
    cdef Py_ssize_t T = gates.shape[0], N = gates.shape[1], G = gates.shape[2]
    cdef Py_ssize_t H = h0.shape[1], step, t
    cdef const float *h
    cdef const float *c
    if (G != 4 * H or w_hh.shape[0] != G or w_hh.shape[1] != H or h0.shape[0] != N
            or c0.shape[0] != N or c0.shape[1] != H or not _is3(y, T, N, H)
            or not _is3(cs, T, N, H) or not _is3(acts, T, N, G)):
        raise ValueError("lstm_seq_fwd_f32: shapes do not fit")
    if T == 0 or N == 0 or H == 0:
        return
    with nogil:
        h = &h0[0, 0]
        c = &c0[0, 0]
        for step in range(T):
            t = T - 1 - step if reverse else step
            tl_rec_gemm_f32(h, &w_hh[0, 0], &gates[t, 0, 0], N, G, H)
            tl_lstm_cell_fwd_f32(&gates[t, 0, 0], c, &y[t, 0, 0], &cs[t, 0, 0],
                                 &acts[t, 0, 0], N, H)
            h = &y[t, 0, 0]
            c = &cs[t, 0, 0]


def gru_seq_fwd_f32(const float[:, :, ::1] gi, const float[:, ::1] w_hh,
                    const float[::1] b_hn, const float[:, ::1] h0, float[:, :, ::1] y,
                    float[:, :, ::1] ws, float[:, ::1] gh, bint reverse):
    """One GRU layer direction over T steps in float32, without a Python call per step: gi
    (T, N, 3H) the input side, b_hn (H) b_hh's n rows (zeros without bias), gh (N, 3H)
    scratch; y (T, N, H) and ws (T, N, 4H) (r, z, n, W_hn h + b_hn) per step."""
    cdef Py_ssize_t T = gi.shape[0], N = gi.shape[1], G = gi.shape[2]
    cdef Py_ssize_t H = h0.shape[1], step, t
    cdef const float *h
    if (G != 3 * H or w_hh.shape[0] != G or w_hh.shape[1] != H or h0.shape[0] != N
            or b_hn.shape[0] != H or not _is3(y, T, N, H) or not _is3(ws, T, N, 4 * H)
            or gh.shape[0] != N or gh.shape[1] != G):
        raise ValueError("gru_seq_fwd_f32: shapes do not fit")
    if T == 0 or N == 0 or H == 0:
        return
    with nogil:
        h = &h0[0, 0]
        for step in range(T):
            t = T - 1 - step if reverse else step
            memset(&gh[0, 0], 0, N * G * sizeof(float))
            tl_rec_gemm_f32(h, &w_hh[0, 0], &gh[0, 0], N, G, H)
            tl_gru_cell_fwd_f32(&gi[t, 0, 0], &gh[0, 0], &b_hn[0], h, &ws[t, 0, 0],
                                &y[t, 0, 0], N, H)
            h = &y[t, 0, 0]


def lstm_cell_bwd(const float[:, ::1] acts, const float[:, ::1] c, const float[:, ::1] c_new,
                  const float[:, ::1] gh, const float[:, ::1] gc, gacts,
                  float[:, ::1] dgates, float[:, ::1] dc):
    """The cell's backward; ``gacts`` is an (n, 4h) float32 array or None (no gradient)."""
    cdef Py_ssize_t n = c.shape[0], h = c.shape[1]
    cdef const float[:, ::1] ga
    cdef const float *gap = NULL
    if gacts is not None:
        ga = gacts
        gap = &ga[0, 0] if n and h else NULL
    if n and h:
        with nogil:
            tl_lstm_cell_bwd_f32(&acts[0, 0], &c[0, 0], &c_new[0, 0], &gh[0, 0], &gc[0, 0],
                                 gap, &dgates[0, 0], &dc[0, 0], n, h)


def sigmoid_f32(const float[::1] x, float[::1] out):
    """Vectorised float32 sigmoid (the LSTM kernels' own; tl.sigmoid's float32 kernel)."""
    _same_length("sigmoid_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_sigmoid_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_FAST)


def tanh_f32(const float[::1] x, float[::1] out):
    """Vectorised float32 tanh (tl.tanh's float32 kernel and the LSTM kernels' own)."""
    _same_length("tanh_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_tanh_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_FAST)


# --- layer norm over the last axis of (M, D) float32 or float64 rows --------------------------
# A row costs a few ns per element: a second thread pays for its wake-up only from ~1M
# elements (measured: 2 threads slower at 512 x 512, faster at 2M), hence work // 16.
def layer_norm_fwd(const floating[:, ::1] x, w, b, floating[:, ::1] y, floating[::1] mean,
                   floating[::1] rstd, double eps):
    """Rows of x normalised into y (times w, plus b: (D,) arrays of x's dtype, or None)."""
    cdef Py_ssize_t M = x.shape[0], D = x.shape[1], r
    cdef const floating[::1] wv, bv
    cdef const floating *wp = NULL
    cdef const floating *bp = NULL
    if w is not None and D:
        wv = w
        wp = &wv[0]
    if b is not None and D:
        bv = b
        bp = &bv[0]
    if M == 0:
        return
    with nogil:
        for r in prange(M, schedule="static", num_threads=nthreads(M * D // 16)):
            if floating is float:
                tl_layer_norm_row_f32(&x[r, 0] if D else NULL, wp, bp,
                                      &y[r, 0] if D else NULL, &mean[r], &rstd[r], D, eps)
            else:
                tl_layer_norm_row_f64(&x[r, 0] if D else NULL, wp, bp,
                                      &y[r, 0] if D else NULL, &mean[r], &rstd[r], D, eps)


def layer_norm_bwd(const floating[:, ::1] x, const floating[::1] mean,
                   const floating[::1] rstd, const floating[:, ::1] gy,
                   const floating[::1] gm, const floating[::1] gr, w, floating[:, ::1] dx,
                   floating[:, ::1] gyx):
    """dx of the rows, and gy * xhat into gyx (the caller sums it over rows)."""
    cdef Py_ssize_t M = x.shape[0], D = x.shape[1], r
    cdef const floating[::1] wv
    cdef const floating *wp = NULL
    if w is not None and D:
        wv = w
        wp = &wv[0]
    if M == 0 or D == 0:
        return
    with nogil:
        for r in prange(M, schedule="static", num_threads=nthreads(M * D // 16)):
            if floating is float:
                tl_layer_norm_bwd_row_f32(&x[r, 0], mean[r], rstd[r], &gy[r, 0], gm[r],
                                          gr[r], wp, &dx[r, 0], &gyx[r, 0], D)
            else:
                tl_layer_norm_bwd_row_f64(&x[r, 0], mean[r], rstd[r], &gy[r, 0], gm[r],
                                          gr[r], wp, &dx[r, 0], &gyx[r, 0], D)


def batch_norm_fwd(const float[:, :, ::1] x, w, b, float[:, :, ::1] y, float[::1] mean,
                   float[::1] var, double eps):
    """Batch norm of x (N, C, S) per channel C into y (times w, plus b: (C,) float32 arrays
    or None); the channels' mean and biased variance into mean and var. N * S > 0."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const float[::1] wv, bv
    cdef const float *wp = NULL
    cdef const float *bp = NULL
    cdef double m, v
    cdef float r, sc
    if C == 0 or N * S == 0:
        return
    if w is not None:
        wv = w
        wp = &wv[0]
    if b is not None:
        bv = b
        bp = &bv[0]
    with nogil:
        for c in prange(C, schedule="static", num_threads=nthreads(N * C * S // 16)):
            m = 0.0     # assigned in the loop, so private to each thread (its address is taken)
            v = 0.0
            tl_bn_stats_f32(&x[0, c, 0], N, C * S, S, &m, &v)
            mean[c] = <float>m
            var[c] = <float>v
            r = <float>(1.0 / sqrt(v + eps))
            sc = r * wp[c] if wp != NULL else r
            tl_bn_apply_f32(&x[0, c, 0], &y[0, c, 0], N, C * S, S, <float>m, sc,
                            <float>((bp[c] if bp != NULL else 0.0) - tl_f32_residual(m) * sc))


def batch_norm_apply(const float[:, :, ::1] x, const float[::1] mean,
                     const float[::1] scale, const float[::1] shift, float[:, :, ::1] y):
    """y = (x - mean) * scale + shift per channel of x (N, C, S): batch norm with fixed
    statistics, the weight and bias folded into scale and shift. Each thread takes whole
    (sample, channel) rows, so it writes one stretch of y."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], i, c
    if N * C * S == 0:
        return
    with nogil:
        for i in prange(N * C, schedule="static", num_threads=nthreads(N * C * S // 16)):
            c = i % C
            tl_bn_apply_f32(&x[i // C, c, 0], &y[i // C, c, 0], 1, 0, S, mean[c], scale[c],
                            shift[c])


def batch_norm_bwd(const float[:, :, ::1] x, const float[::1] mean, const float[::1] var,
                   const float[:, :, ::1] gy, const float[::1] gm, const float[::1] gv, w,
                   double eps, float[:, :, ::1] dx, float[::1] dw, float[::1] db):
    """dx of batch_norm_fwd from gy and the statistics' own gradients gm, gv; the weight's
    gradient (sum of gy * xhat) into dw and the bias's (sum of gy) into db, per channel."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const float[::1] wv
    cdef const float *wp = NULL
    cdef double sg, sgx, cnt = <double>(N * S)
    cdef float r, wc
    if C == 0 or N * S == 0:
        return
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        for c in prange(C, schedule="static", num_threads=nthreads(N * C * S // 16)):
            sg = 0.0    # private to each thread, as above
            sgx = 0.0
            tl_bn_bwd_sums_f32(&x[0, c, 0], &gy[0, c, 0], N, C * S, S, mean[c], &sg, &sgx)
            r = <float>(1.0 / sqrt(var[c] + eps))
            wc = wp[c] if wp != NULL else 1.0
            dw[c] = <float>(r * sgx)
            db[c] = <float>sg
            # dx = r w (gy - mean gy - xhat mean(gy xhat)) + gm / cnt + 2 gv (x - m) / cnt
            tl_bn_bwd_dx_f32(&x[0, c, 0], &gy[0, c, 0], &dx[0, c, 0], N, C * S, S, mean[c],
                             r * wc,
                             <float>((2.0 * gv[c] - r * r * r * wc * sgx) / cnt),
                             <float>((gm[c] - r * wc * sg) / cnt))


cdef void _gn_fwd_row(const float *x, const float *w, const float *b, float *y,
                      float *mean, float *rstd, Py_ssize_t cg, Py_ssize_t s,
                      double eps) noexcept nogil:
    # one (sample, group): the statistics over its cg channels of s positions (contiguous),
    # then each channel's affine folded into one scale and shift
    cdef double m = 0.0, v = 0.0
    cdef float r, sc
    cdef Py_ssize_t c
    tl_bn_stats_f32(x, 1, 0, cg * s, &m, &v)
    r = <float>(1.0 / sqrt(v + eps))
    mean[0] = <float>m
    rstd[0] = r
    for c in range(cg):
        # x - float(m) is exact for x near m; what float(m) lost goes into the shift, so a
        # group of tiny spread around a large mean keeps its precision
        sc = r * w[c] if w != NULL else r
        tl_bn_apply_f32(x + c * s, y + c * s, 1, 0, s, <float>m, sc,
                        <float>((b[c] if b != NULL else 0.0) - tl_f32_residual(m) * sc))


def group_norm_fwd(const float[:, :, ::1] x, w, b, float[:, :, ::1] y, float[:, ::1] mean,
                   float[:, ::1] rstd, double eps):
    """Group norm of x (N, C, S) over groups of C / G channels (G = mean.shape[1]) into y,
    times w plus b per channel ((C,) float32 arrays or None); each group's mean and rstd
    into mean and rstd (N, G). N * C * S > 0."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], G = mean.shape[1]
    cdef Py_ssize_t cg = C // G, r, n, g
    cdef const float[::1] wv, bv
    cdef const float *wp = NULL
    cdef const float *bp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    if b is not None:
        bv = b
        bp = &bv[0]
    with nogil:
        for r in prange(N * G, schedule="static", num_threads=nthreads(N * C * S // 16)):
            n = r // G
            g = r % G
            _gn_fwd_row(&x[n, g * cg, 0], wp + g * cg if wp != NULL else NULL,
                        bp + g * cg if bp != NULL else NULL, &y[n, g * cg, 0], &mean[n, g],
                        &rstd[n, g], cg, S, eps)


cdef void _gn_bwd_row(const float *x, const float *gy, float m, float r, float gm, float gr,
                      const float *w, float *dx, float *sg, float *sgx, Py_ssize_t cg,
                      Py_ssize_t s) noexcept nogil:
    # dx = r (gx - mean gx - xhat mean(gx xhat)) + (gm - gr r^2 xhat) / D with gx = w_c gy,
    # per channel as a gy + b (x - m) + d; the channel's sum gy and sum gy xhat to sg, sgx
    cdef double s1 = 0.0, s2 = 0.0, a, bb, inv_d = 1.0 / <double>(cg * s)
    cdef float wc, q
    cdef Py_ssize_t c
    for c in range(cg):
        a = 0.0
        bb = 0.0
        tl_bn_bwd_sums_f32(x + c * s, gy + c * s, 1, 0, s, m, &a, &bb)
        wc = w[c] if w != NULL else 1.0
        s1 += wc * a
        s2 += wc * bb
        sg[c] = <float>a
        sgx[c] = <float>(r * bb)
    q = <float>(-r * r * (r * s2 + gr * r) * inv_d)
    for c in range(cg):
        wc = w[c] if w != NULL else 1.0
        tl_bn_bwd_dx_f32(x + c * s, gy + c * s, dx + c * s, 1, 0, s, m, r * wc, q,
                         <float>((gm - r * s1) * inv_d))


def group_norm_bwd(const float[:, :, ::1] x, const float[:, ::1] mean,
                   const float[:, ::1] rstd, const float[:, :, ::1] gy, const float[:, ::1] gm,
                   const float[:, ::1] gr, w, float[:, :, ::1] dx, float[:, ::1] sg,
                   float[:, ::1] sgx):
    """dx of group_norm_fwd from gy and the statistics' own gradients gm, gr (N, G); per
    sample and channel, sum gy into sg and sum gy * xhat into sgx (N, C): summed over N, the
    bias's and the weight's gradients. N * C * S > 0."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], G = mean.shape[1]
    cdef Py_ssize_t cg = C // G, r, n, g
    cdef const float[::1] wv
    cdef const float *wp = NULL
    if w is not None:
        wv = w
        wp = &wv[0]
    with nogil:
        for r in prange(N * G, schedule="static", num_threads=nthreads(N * C * S // 16)):
            n = r // G
            g = r % G
            _gn_bwd_row(&x[n, g * cg, 0], &gy[n, g * cg, 0], mean[n, g], rstd[n, g], gm[n, g],
                        gr[n, g], wp + g * cg if wp != NULL else NULL, &dx[n, g * cg, 0],
                        &sg[n, g * cg], &sgx[n, g * cg], cg, S)


# --- float32 GEMM (AVX-512 or AVX2; tensorlib/_sgemm.h) --------------------------------------

_ISA_NAMES = ("", "avx2", "avx512")
# the GEMM's instruction set on this CPU: "avx512", "avx2" or "" (none: the functions below
# raise, and tensorlib._gemm leaves everything to NumPy)
SGEMM_ISA = _ISA_NAMES[tl_sgemm_cpu()]
SGEMM_SUPPORTED = bool(SGEMM_ISA)
# sgemv's loops are AVX-512 only
SGEMV_SUPPORTED = bool(AVX512)


def sgemm_tile():
    """The GEMM's register tile (rows, columns) on the kernel in use: (8, 32) on AVX-512,
    (6, 16) on AVX2."""
    return tl_mr, tl_nr


def _sgemm_select(str isa):
    """Use the GEMM kernel for ``isa`` ("avx512", "avx2"; at most what the CPU has) and
    return the name of the one used before: the tests run the AVX2 kernel on AVX-512 CPUs.
    Not while another thread runs a product."""
    cdef int old = tl_isa
    if isa not in _ISA_NAMES[1:]:
        raise ValueError(f"_sgemm_select: isa must be 'avx512' or 'avx2', not {isa!r}")
    if SGEMM_SUPPORTED:
        tl_sgemm_select(_ISA_NAMES.index(isa))
    return _ISA_NAMES[old] if SGEMM_SUPPORTED else ""


def sgemm(const float[:, :] a, const float[:, :] b, float[:, :] c, float alpha=1.0,
          float beta=0.0, int threads=0):
    """``c = alpha * a @ b + beta * c`` for float32 matrices of any strides, ``c`` with unit
    column stride and no overlap with ``a``/``b`` (checked by tensorlib._gemm). ``threads``
    0 means OpenMP's maximum. Needs :data:`SGEMM_SUPPORTED`."""
    cdef int M = c.shape[0], N = c.shape[1], K = a.shape[1], r
    cdef Py_ssize_t ldc = c.strides[0] // 4
    if not SGEMM_SUPPORTED:
        raise RuntimeError("sgemm: this CPU has neither AVX-512 nor AVX2")
    if a.shape[0] != M or b.shape[0] != K or b.shape[1] != N or c.strides[1] != 4:
        raise ValueError("sgemm: shapes or strides do not fit")
    if threads <= 0:
        threads = omp_get_max_threads()
    if M == 0 or N == 0:
        return
    with nogil:
        r = tl_sgemm(M, N, K, alpha, &a[0, 0] if K else NULL, a.strides[0] // 4,
                     a.strides[1] // 4, &b[0, 0] if K else NULL, b.strides[0] // 4,
                     b.strides[1] // 4, beta, &c[0, 0], ldc, threads)
    if r:
        raise MemoryError("sgemm: could not allocate packing buffers")


def sgemm_batched(const float[:, :, :] a, const float[:, :, :] b, float[:, :, ::1] c,
                  int threads=0):
    """``c[i] = a[i] @ b[i]`` for float32 stacks of any strides (0 broadcasts one matrix over
    the stack); ``c`` contiguous and not overlapping the inputs (checked by tensorlib._gemm).
    With at least as many matrices as threads, each thread takes whole products."""
    cdef Py_ssize_t nb = c.shape[0], i
    cdef int M = c.shape[1], N = c.shape[2], K = a.shape[2], failed = 0
    cdef Py_ssize_t sa = a.strides[0] // 4, sb = b.strides[0] // 4
    cdef Py_ssize_t rsa = a.strides[1] // 4, csa = a.strides[2] // 4
    cdef Py_ssize_t rsb = b.strides[1] // 4, csb = b.strides[2] // 4
    if not SGEMM_SUPPORTED:
        raise RuntimeError("sgemm_batched: this CPU has neither AVX-512 nor AVX2")
    if (a.shape[0] != nb or b.shape[0] != nb or a.shape[1] != M or b.shape[1] != K
            or b.shape[2] != N):
        raise ValueError("sgemm_batched: shapes do not fit")
    if threads <= 0:
        threads = omp_get_max_threads()
    if nb == 0 or M == 0 or N == 0:
        return
    cdef const float* pa = &a[0, 0, 0] if K else NULL
    cdef const float* pb = &b[0, 0, 0] if K else NULL
    cdef float* pc = &c[0, 0, 0]
    with nogil:
        if nb >= threads:
            for i in prange(nb, schedule="static", num_threads=threads):
                failed += tl_sgemm(M, N, K, 1.0, pa + i * sa if K else NULL, rsa, csa,
                                   pb + i * sb if K else NULL, rsb, csb, 0.0,
                                   pc + i * M * N, N, 1) != 0
        else:
            for i in range(nb):
                failed += tl_sgemm(M, N, K, 1.0, pa + i * sa if K else NULL, rsa, csa,
                                   pb + i * sb if K else NULL, rsb, csb, 0.0,
                                   pc + i * M * N, N, threads) != 0
    if failed:
        raise MemoryError("sgemm_batched: could not allocate packing buffers")


def sgemv(const float[:, :] a, const float[::1] x, float[::1] y, int threads=0):
    """``y = a @ x`` for a float32 matrix with one unit stride (either: a transposed matrix
    is read in place) and contiguous vectors. ``threads`` 0 means OpenMP's maximum. Needs
    :data:`SGEMV_SUPPORTED`."""
    cdef int M = a.shape[0], K = a.shape[1]
    cdef Py_ssize_t rsa = a.strides[0] // 4, csa = a.strides[1] // 4
    if not SGEMV_SUPPORTED:
        raise RuntimeError("sgemv: this CPU has no AVX-512")
    if x.shape[0] != K or y.shape[0] != M:
        raise ValueError(f"sgemv: shapes ({M}, {K}), ({x.shape[0]},) and ({y.shape[0]},) "
                         "do not fit")
    if M > 1 and K > 1 and csa != 1 and rsa != 1:
        raise ValueError("sgemv: the matrix needs a unit stride")
    if K == 1:
        csa = 1      # one column: the dot form reads one element per row, at any row stride
    if threads <= 0:
        threads = omp_get_max_threads()
    if M == 0:
        return
    with nogil:
        tl_sgemv(M, K, &a[0, 0] if K else NULL, rsa, csa, &x[0] if K else NULL, &y[0],
                 threads)


# --- float32 convolutions one image at a time ------------------------------------------------
cdef inline void _unfold_image(const float* x, float* cols, Py_ssize_t C, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                               Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                               Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """im2col of one (C, H, W) image into cols (C*kh*kw, Ho*Wo)."""
    cdef Py_ssize_t c
    for c in range(C):
        _patches(cols + c * kh * kw * Ho * Wo, Ho * Wo, <float*> x + c * H * W, H, W, kh, kw,
                 sh, sw, pt, pl, dh, dw, Ho, Wo, False)


# Each thread takes whole images: it unfolds one image into its own column buffer (cache-
# resident) and runs single-threaded GEMMs on it, so a call is one parallel region with no
# barrier inside, where image chunks with a threaded GEMM each wake the thread team twice.
# Callers (tensorlib.ops.nn_conv) check shapes and pass ``bufs`` (threads, C*kh*kw*Ho*Wo).
def conv2d_images(const float[:, :, :, ::1] x, const float[:, ::1] wm, const float[::1] bias,
                  float[:, :, ::1] out, float[:, ::1] bufs, Py_ssize_t groups, Py_ssize_t kh,
                  Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                  Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo):
    """out[n] (O, Ho*Wo) = conv of x[n] with wm (O, C/groups*kh*kw), plus bias (or None)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = wm.shape[0], K = wm.shape[1], HW = Ho * Wo, Og = O // groups
    cdef Py_ssize_t n, gi, o, j
    cdef int failed = 0
    cdef float* cols
    cdef float* row
    cdef const float* bp = &bias[0] if bias is not None else NULL
    if not SGEMM_SUPPORTED:
        raise RuntimeError("conv2d_images: this CPU has neither AVX-512 nor AVX2")
    with nogil:
        for n in prange(N, schedule="static", num_threads=bufs.shape[0]):
            cols = &bufs[threadid(), 0]
            _unfold_image(&x[n, 0, 0, 0], cols, C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
            for gi in range(groups):
                failed += tl_sgemm(Og, HW, K, 1.0, &wm[gi * Og, 0], K, 1, cols + gi * K * HW,
                                   HW, 1, 0.0, &out[n, gi * Og, 0], HW, 1) != 0
            if bp != NULL:
                for o in range(O):
                    row = &out[n, o, 0]
                    for j in range(HW):
                        row[j] = row[j] + bp[o]
    if failed:
        raise MemoryError("conv2d: could not allocate GEMM packing buffers")


def conv2d_input_grad_images(const float[:, :, ::1] g, const float[:, ::1] wm,
                             float[:, :, :, ::1] dx, float[:, ::1] bufs, Py_ssize_t groups,
                             Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                             Py_ssize_t Ho, Py_ssize_t Wo):
    """dx[n] (C, H, W) = col2im(wm^T @ g[n]) for g (N, O, Ho*Wo)."""
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t O = wm.shape[0], K = wm.shape[1], HW = Ho * Wo, Og = O // groups
    cdef Py_ssize_t n, c, gi
    cdef int failed = 0
    cdef float* cols
    if not SGEMM_SUPPORTED:
        raise RuntimeError("conv2d_input_grad_images: this CPU has neither AVX-512 nor AVX2")
    with nogil:
        for n in prange(N, schedule="static", num_threads=bufs.shape[0]):
            cols = &bufs[threadid(), 0]
            for gi in range(groups):
                failed += tl_sgemm(K, HW, Og, 1.0, &wm[gi * Og, 0], 1, K, &g[n, gi * Og, 0], HW,
                                   1, 0.0, cols + gi * K * HW, HW, 1) != 0
            for c in range(C):
                _patches(cols + c * kh * kw * HW, HW, &dx[n, c, 0, 0], H, W, kh, kw, sh, sw, pt,
                         pl, dh, dw, Ho, Wo, True)
    if failed:
        raise MemoryError("conv2d_input_grad: could not allocate GEMM packing buffers")


def conv2d_weight_grad_images(const float[:, :, :, ::1] x, const float[:, :, ::1] g,
                              float[:, :, ::1] parts, float[:, ::1] bufs, Py_ssize_t groups,
                              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                              Py_ssize_t Ho, Py_ssize_t Wo):
    """parts[t] (O, C/groups*kh*kw) += g[n] @ im2col(x[n])^T over the images thread t takes
    (the caller zeroes ``parts`` and sums it over t)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = parts.shape[1], K = parts.shape[2], HW = Ho * Wo, Og = O // groups
    cdef Py_ssize_t n, gi, t
    cdef int failed = 0
    cdef float* cols
    if not SGEMM_SUPPORTED:
        raise RuntimeError("conv2d_weight_grad_images: this CPU has neither AVX-512 nor AVX2")
    with nogil:
        for n in prange(N, schedule="static", num_threads=bufs.shape[0]):
            t = threadid()
            cols = &bufs[t, 0]
            _unfold_image(&x[n, 0, 0, 0], cols, C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
            for gi in range(groups):
                failed += tl_sgemm(Og, K, HW, 1.0, &g[n, gi * Og, 0], HW, 1, cols + gi * K * HW,
                                   1, HW, 1.0, &parts[t, gi * Og, 0], K, 1) != 0
    if failed:
        raise MemoryError("conv2d_weight_grad: could not allocate GEMM packing buffers")


# ---- strided conv input gradient ----
# (and the large-map tiles that tensorlib.ops.nn_conv._conv_tiled runs: the stride-1 input
# gradient as a flipped-kernel forward, and forwards on large maps.) A Python loop over the
# tiles paid calls and views per tile: 256 one-row tiles of 64->64 3x3 at 256x256, 1 thread,
# 61 -> 59 ms CPU time this way (PyTorch 48; its GEMM alone is ~48 ms here, im2col ~7.5).
# Strided col2im runs on _im2col.h's AVX-512 loops where _patches says.
def conv2d_tiled(const float[:, :, :, ::1] x, const float[:, ::1] wm, const float[::1] bias,
                 float[:, :, ::1] out, float[::1] buf, Py_ssize_t groups, Py_ssize_t kh,
                 Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                 Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t R,
                 int threads):
    """out[n] (O, Ho*Wo) = conv of x[n] with wm (O, C/groups*kh*kw), plus bias (or None),
    ``R`` output rows at a time: the tile's im2col columns (C*kh*kw, R*Wo) in ``buf`` (any
    padding offset is safe: every input row is bound-checked), then one GEMM per group with
    ``threads`` threads straight into ``out``."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t O = wm.shape[0], K = wm.shape[1], HW = Ho * Wo, Og
    cdef Py_ssize_t n, h0, r, q, c, gi, o, j
    cdef int failed = 0
    cdef float* row
    cdef const float* bp = &bias[0] if bias is not None and O else NULL
    if not SGEMM_SUPPORTED:
        raise RuntimeError("conv2d_tiled: this CPU has neither AVX-512 nor AVX2")
    if (groups < 1 or O % groups or K * groups != C * kh * kw or R < 1 or threads < 1
            or out.shape[0] != N or out.shape[1] != O or out.shape[2] != HW
            or buf.shape[0] < C * kh * kw * min(R, Ho) * Wo
            or (bias is not None and bias.shape[0] != O)):
        raise ValueError("conv2d_tiled: shapes do not fit")
    if N == 0 or HW == 0 or O == 0:
        return
    Og = O // groups
    with nogil:
        for n in range(N):
            h0 = 0
            while h0 < Ho:
                r = min(R, Ho - h0)
                q = r * Wo
                for c in prange(C, schedule="static", num_threads=threads):
                    _patches(&buf[c * kh * kw * q], q, <float*> &x[n, c, 0, 0], H, W, kh, kw,
                             sh, sw, pt - h0 * sh, pl, dh, dw, r, Wo, False)
                for gi in range(groups):
                    failed += tl_sgemm(Og, q, K, 1.0, &wm[gi * Og, 0], K, 1, &buf[gi * K * q],
                                       q, 1, 0.0, &out[n, gi * Og, h0 * Wo], HW, threads) != 0
                if bp != NULL:      # while the tile is in cache
                    for o in range(O):
                        row = &out[n, o, h0 * Wo]
                        for j in range(q):
                            row[j] = row[j] + bp[o]
                h0 += r
    if failed:
        raise MemoryError("conv2d: could not allocate GEMM packing buffers")


def max_threads():
    """OpenMP's thread count for a parallel region."""
    return omp_get_max_threads()


def set_threads(int n):
    """Set OpenMP's thread count for later parallel regions (n >= 1, checked by the caller)."""
    omp_set_num_threads(n)


def _after_fork_in_child():
    """GNU OpenMP's thread pool does not survive fork(): a child's first parallel region with
    more than one thread waits forever for the parent's threads. Every kernel here takes its
    thread count from omp_get_max_threads(), so one thread from now on keeps a forked child
    (multiprocessing's default start method on Linux) working."""
    omp_set_num_threads(1)


# --- top-k along rows ------------------------------------------------------------------------
cdef inline bint _before(floating a, floating b, bint largest) noexcept nogil:
    # a strictly ahead of b in topk's order; NaN counts as the largest value
    if largest:
        return a > b or (a != a and b == b)
    return a < b or (a == a and b != b)


cdef void _topk_row(const floating *x, Py_ssize_t n, Py_ssize_t k, cnp.int64_t *idx,
                    floating *vals, bint largest) noexcept nogil:
    # a best-first buffer of k; most elements lose to its last entry and cost one comparison.
    # A newcomer goes after its equals: they came first, as in the stable sort
    cdef Py_ssize_t i, j, lo, hi, mid, cnt = 0
    cdef floating v
    for i in range(n):
        v = x[i]
        if cnt == k:
            if not _before(v, vals[k - 1], largest):
                continue
            cnt -= 1
        lo = 0
        hi = cnt
        while lo < hi:
            mid = (lo + hi) >> 1
            if _before(v, vals[mid], largest):
                hi = mid
            else:
                lo = mid + 1
        j = cnt
        while j > lo:
            vals[j] = vals[j - 1]
            idx[j] = idx[j - 1]
            j -= 1
        vals[lo] = v
        idx[lo] = i
        cnt += 1


cdef int _topk_rows_run(const floating *x, Py_ssize_t M, Py_ssize_t n, Py_ssize_t k,
                        cnp.int64_t *out, bint largest) noexcept nogil:
    # one value buffer per thread, allocated once (not per row); -1: out of memory
    cdef int nt = nthreads(M * n)
    cdef Py_ssize_t r
    cdef floating *vals = <floating *> malloc(nt * k * sizeof(floating))
    if vals == NULL:
        return -1
    if nt == 1:
        # no parallel region: entering one costs more than a small call's selection
        for r in range(M):
            _topk_row(x + r * n, n, k, out + r * k, vals, largest)
    else:
        for r in prange(M, schedule="static", num_threads=nt):
            _topk_row(x + r * n, n, k, out + r * k, vals + threadid() * k, largest)
    free(vals)
    return 0


def topk_rows(x, out, bint largest):
    """The indices of each row's ``out.shape[1]`` largest (smallest) values, best first, ties
    in index order: the first k of the stable sort. ``x``: a C-contiguous (rows, n)
    float32/float64 ndarray; ``out``: a writeable C-contiguous (rows, k) int64 one;
    0 < k <= n (all checked). Raw ndarray access: a typed memoryview's dispatch and buffer
    acquisition were most of a small call's cost."""
    if type(x) is not np.ndarray or type(out) is not np.ndarray:
        raise TypeError("topk_rows: x and out must be NumPy arrays")
    cdef cnp.ndarray a = x, o = out
    cdef int t = cnp.PyArray_TYPE(a)
    if (a.ndim != 2 or o.ndim != 2 or (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64)
            or cnp.PyArray_TYPE(o) != cnp.NPY_INT64
            or not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(o))
            or not (cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISNOTSWAPPED(o))
            or not (cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISALIGNED(o))
            or not cnp.PyArray_ISWRITEABLE(o)):
        raise ValueError("topk_rows: x must be a C-contiguous 2-d float32/float64 array and "
                         "out a writeable C-contiguous 2-d int64 array")
    cdef Py_ssize_t M = a.shape[0], n = a.shape[1], k = o.shape[1]
    cdef int rc
    if o.shape[0] != M or not 0 < k <= n:
        raise ValueError("topk_rows: out must be (rows, k) with 0 < k <= row length")
    if M == 0:
        return
    cdef void *xp = cnp.PyArray_DATA(a)
    cdef cnp.int64_t *op = <cnp.int64_t *> cnp.PyArray_DATA(o)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            rc = _topk_rows_run(<const float *> xp, M, n, k, op, largest)
        else:
            rc = _topk_rows_run(<const double *> xp, M, n, k, op, largest)
    if rc < 0:
        raise MemoryError("topk_rows: out of memory")


# ---- adaptive max pool kernel ----
# Windows of unequal sizes (H % Ho != 0) do not fit max_pool2d's fixed kernel and stride; a
# direct scan of each window beats gathering the windows into padded tiles for that kernel.
cdef void _adaptive_max_plane(const floating *src, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo,
                              const Py_ssize_t *rb, const Py_ssize_t *cb, floating *dst,
                              cnp.int64_t *di) noexcept nogil:
    # PyTorch's scan: from the window's first position, take ``v > m || isnan(v)`` in
    # row-major order: the first maximum, a window's last NaN (an all -inf window: its first
    # position). rb[2i], rb[2i + 1]: window row i's rows [lo, hi); cb the same for columns
    cdef Py_ssize_t i, j, h, w, best
    cdef floating m, v
    cdef const floating *row
    for i in range(Ho):
        for j in range(Wo):
            best = rb[2 * i] * W + cb[2 * j]
            m = src[best]
            for h in range(rb[2 * i], rb[2 * i + 1]):
                row = src + h * W
                for w in range(cb[2 * j], cb[2 * j + 1]):
                    v = row[w]
                    if v > m or v != v:
                        m = v
                        best = h * W + w
            dst[i * Wo + j] = m
            di[i * Wo + j] = best


def adaptive_max_pool2d_planes(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                               cnp.int64_t[:, :, ::1] idx):
    """Adaptive max pooling of the (P, H, W) planes ``x`` into ``out`` (P, Ho, Wo): window
    (i, j) covers rows [floor(i H / Ho), ceil((i + 1) H / Ho)) and the same for columns, as
    PyTorch; ``idx`` (P, Ho, Wo) gets the flat h * W + w of each maximum (the first in
    row-major order, a window's last NaN, as PyTorch). Shapes checked; H, W >= 1."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = out.shape[1], Wo = out.shape[2], i, p
    if (out.shape[0] != P or idx.shape[0] != P or idx.shape[1] != Ho or idx.shape[2] != Wo):
        raise ValueError("adaptive_max_pool2d_planes: out and idx must be (P, Ho, Wo) with "
                         "x's P")
    if P == 0 or Ho == 0 or Wo == 0:
        return
    if H < 1 or W < 1:
        raise ValueError("adaptive_max_pool2d_planes: empty input planes")
    cdef Py_ssize_t *rb = <Py_ssize_t *> malloc(2 * (Ho + Wo) * sizeof(Py_ssize_t))
    if rb == NULL:
        raise MemoryError("adaptive_max_pool2d_planes: out of memory")
    cdef Py_ssize_t *cb = rb + 2 * Ho
    for i in range(Ho):
        rb[2 * i] = i * H // Ho
        rb[2 * i + 1] = ((i + 1) * H + Ho - 1) // Ho
    for i in range(Wo):
        cb[2 * i] = i * W // Wo
        cb[2 * i + 1] = ((i + 1) * W + Wo - 1) // Wo
    with nogil:
        for p in prange(P, schedule="static", num_threads=nthreads(P * H * W)):
            _adaptive_max_plane(&x[p, 0, 0], W, Ho, Wo, rb, cb, &out[p, 0, 0], &idx[p, 0, 0])
    free(rb)


# --- depthwise convolution: one input channel per group, direct loops ------------------------
# im2col copies each input pixel kh * kw times for a GEMM with one row per group, which costs
# more than the products; these loops read each input plane once. Output channel o reads input
# channel o // m (m outputs per group). Stride 1: the input plane is copied into a zero-padded
# buffer whose rows are Wp = Wo + (kw - 1) dw wide, so each tap is ONE long axpy (or dot
# product) over all Ho rows at once, the columns past Wo being scratch; the C loops are
# compiled per instruction set. Other strides walk output rows.
cdef inline void _axpy(floating *y, const floating *x, floating a, Py_ssize_t n) noexcept nogil:
    if floating is float:
        tl_axpy_f32(y, x, a, n)
    else:
        tl_axpy_f64(y, x, a, n)


cdef inline double _dot(const floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return tl_dot_f32(a, b, n)
    else:
        return tl_dot_f64(a, b, n)


cdef inline void _dw_span(Py_ssize_t j, Py_ssize_t dw, Py_ssize_t pl, Py_ssize_t sw,
                          Py_ssize_t W, Py_ssize_t Wo, Py_ssize_t *lo,
                          Py_ssize_t *hi) noexcept nogil:
    # the output columns whose tap j reads a column of the input, [lo, hi)
    cdef Py_ssize_t off = j * dw - pl
    lo[0] = 0 if off >= 0 else (-off + sw - 1) // sw
    hi[0] = 0 if W - 1 - off < 0 else min(Wo, (W - 1 - off) // sw + 1)


cdef inline void _pad_plane(const floating *src, Py_ssize_t H, Py_ssize_t W, floating *dst,
                            Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t pt, Py_ssize_t pl,
                            Py_ssize_t size) noexcept nogil:
    # src (H, W) at (pt, pl) of a zeroed (Hp, Wp) buffer of `size` elements
    cdef Py_ssize_t h, cols = min(W, Wp - pl)
    memset(dst, 0, size * sizeof(floating))
    if cols <= 0:
        return
    for h in range(H):
        if h + pt < Hp:
            memcpy(dst + (h + pt) * Wp + pl, src + h * W, cols * sizeof(floating))


cdef inline void _rows_in(const floating *src, Py_ssize_t rows, Py_ssize_t cols,
                          floating *dst, Py_ssize_t ld) noexcept nogil:
    # rows of `cols` into a buffer whose rows are ld wide (its other columns untouched)
    cdef Py_ssize_t r
    for r in range(rows):
        memcpy(dst + r * ld, src + r * cols, cols * sizeof(floating))


cdef inline void _rows_out(const floating *src, Py_ssize_t ld, Py_ssize_t rows,
                           Py_ssize_t cols, floating *dst) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(rows):
        memcpy(dst + r * cols, src + r * ld, cols * sizeof(floating))


def depthwise_conv2d(const floating[:, :, :, ::1] x, const floating[:, ::1] w, b,
                     floating[:, :, :, ::1] out, Py_ssize_t m, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                     Py_ssize_t dh, Py_ssize_t dw):
    """out[n, o] = sum over taps of w[o, tap] * x[n, o // m] shifted (zero padding), plus
    b[o]; w is (O, kh * kw)."""
    cdef Py_ssize_t N = out.shape[0], O = out.shape[1], Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Hp = Ho + (kh - 1) * dh, Wp = Wo + (kw - 1) * dw
    cdef Py_ssize_t size = Hp * Wp + (kw - 1) * dw, p, n, c, o, ho, i, j, hi, lo, hi2, k
    cdef const floating[::1] bv
    cdef const floating *bp = NULL
    cdef const floating *xr
    cdef floating *orow
    cdef floating *pad
    cdef floating *big
    cdef int failed = 0
    if N * O * Ho * Wo == 0:
        return
    if b is not None:
        bv = b
        bp = &bv[0]
    with nogil:
        if sh == 1 and sw == 1:
            for p in prange(N * C, schedule="static",
                            num_threads=nthreads(N * O * Ho * Wo * kh * kw // 4)):
                n = p // C
                c = p % C
                pad = <floating *> malloc((size + Ho * Wp) * sizeof(floating))
                if pad == NULL:
                    failed += 1     # a reduction: no thread's failure is lost
                    continue
                big = pad + size
                _pad_plane(&x[n, c, 0, 0], H, W, pad, Hp, Wp, pt, pl, size)
                for o in range(c * m, c * m + m):
                    for k in range(Ho * Wp):
                        big[k] = bp[o] if bp != NULL else 0
                    for i in range(kh):
                        for j in range(kw):
                            _axpy(big, pad + i * dh * Wp + j * dw, w[o, i * kw + j], Ho * Wp)
                    _rows_out(big, Wp, Ho, Wo, &out[n, o, 0, 0])
                free(pad)
        else:
            for p in prange(N * O, schedule="static",
                            num_threads=nthreads(N * O * Ho * Wo * kh * kw // 4)):
                n = p // O
                o = p % O
                for ho in range(Ho):
                    orow = &out[n, o, ho, 0]
                    for k in range(Wo):
                        orow[k] = bp[o] if bp != NULL else 0
                    for i in range(kh):
                        hi = ho * sh + i * dh - pt
                        if hi < 0 or hi >= H:
                            continue
                        xr = &x[n, o // m, hi, 0]
                        for j in range(kw):
                            lo = 0      # assigned here, so private to each thread (written through a pointer
                            hi2 = 0     # only, they were shared: a data race)
                            _dw_span(j, dw, pl, sw, W, Wo, &lo, &hi2)
                            for k in range(lo, hi2):
                                orow[k] += w[o, i * kw + j] * xr[k * sw + j * dw - pl]
    if failed:
        raise MemoryError("depthwise_conv2d: out of memory")


def depthwise_conv2d_input_grad(const floating[:, :, :, ::1] g, const floating[:, ::1] w,
                                floating[:, :, :, ::1] dx, Py_ssize_t m, Py_ssize_t kh,
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt,
                                Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw):
    """dx of depthwise_conv2d: each (image, input channel) plane gathers its m output
    channels' gradients through the taps (one thread per plane: no two write the same)."""
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t Ho = g.shape[2], Wo = g.shape[3]
    cdef Py_ssize_t Hp = Ho + (kh - 1) * dh, Wp = Wo + (kw - 1) * dw
    cdef Py_ssize_t size = Hp * Wp + (kw - 1) * dw, p, n, c, o, ho, i, j, hi, lo, hi2, k, h
    cdef Py_ssize_t cols
    cdef const floating *grow
    cdef floating *dr
    cdef floating *pad
    cdef floating *big
    cdef int failed = 0
    if N * C * H * W == 0:
        return
    with nogil:
        if sh == 1 and sw == 1:
            for p in prange(N * C, schedule="static",
                            num_threads=nthreads(N * C * Ho * Wo * m * kh * kw // 4)):
                n = p // C
                c = p % C
                pad = <floating *> malloc((size + Ho * Wp) * sizeof(floating))
                if pad == NULL:
                    failed += 1     # a reduction: no thread's failure is lost
                    continue
                big = pad + size
                memset(pad, 0, (size + Ho * Wp) * sizeof(floating))   # big's scratch columns stay 0
                for o in range(c * m, c * m + m):
                    _rows_in(&g[n, o, 0, 0], Ho, Wo, big, Wp)
                    for i in range(kh):
                        for j in range(kw):
                            _axpy(pad + i * dh * Wp + j * dw, big, w[o, i * kw + j], Ho * Wp)
                cols = min(W, Wp - pl)
                memset(&dx[n, c, 0, 0], 0, H * W * sizeof(floating))
                for h in range(H):
                    if h + pt < Hp and cols > 0:
                        memcpy(&dx[n, c, h, 0], pad + (h + pt) * Wp + pl, cols * sizeof(floating))
                free(pad)
        else:
            for p in prange(N * C, schedule="static",
                            num_threads=nthreads(N * C * Ho * Wo * m * kh * kw // 4)):
                n = p // C
                c = p % C
                memset(&dx[n, c, 0, 0], 0, H * W * sizeof(floating))
                for o in range(c * m, c * m + m):
                    for ho in range(Ho):
                        grow = &g[n, o, ho, 0]
                        for i in range(kh):
                            hi = ho * sh + i * dh - pt
                            if hi < 0 or hi >= H:
                                continue
                            dr = &dx[n, c, hi, 0]
                            for j in range(kw):
                                lo = 0      # assigned here, so private to each thread (written through a pointer
                                hi2 = 0     # only, they were shared: a data race)
                                _dw_span(j, dw, pl, sw, W, Wo, &lo, &hi2)
                                for k in range(lo, hi2):
                                    dr[k * sw + j * dw - pl] += w[o, i * kw + j] * grow[k]
    if failed:
        raise MemoryError("depthwise_conv2d_input_grad: out of memory")


def depthwise_conv2d_weight_grad(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] g,
                                 floating[:, ::1] gw, Py_ssize_t m, Py_ssize_t kh,
                                 Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt,
                                 Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw):
    """gw (O, kh * kw) of depthwise_conv2d: per output channel (one thread each), each tap's
    dot products of the gradient with the shifted input, summed over the images."""
    cdef Py_ssize_t N = g.shape[0], O = g.shape[1], Ho = g.shape[2], Wo = g.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Hp = Ho + (kh - 1) * dh, Wp = Wo + (kw - 1) * dw
    cdef Py_ssize_t size = Hp * Wp + (kw - 1) * dw, o, n, ho, i, j, hi, lo, hi2, k
    cdef const floating *grow
    cdef const floating *xr
    cdef floating *pad
    cdef floating *big
    cdef double s
    cdef int failed = 0
    if O * kh * kw == 0:
        return
    with nogil:
        for o in prange(O, schedule="static",
                        num_threads=nthreads(N * O * Ho * Wo * kh * kw // 4)):
            for k in range(kh * kw):
                gw[o, k] = 0
            if sh == 1 and sw == 1:
                pad = <floating *> malloc((size + Ho * Wp) * sizeof(floating))
                if pad == NULL:
                    failed += 1     # a reduction: no thread's failure is lost
                    continue
                big = pad + size
                memset(big, 0, Ho * Wp * sizeof(floating))      # scratch columns stay 0
                for n in range(N):
                    _pad_plane(&x[n, o // m, 0, 0], H, W, pad, Hp, Wp, pt, pl, size)
                    _rows_in(&g[n, o, 0, 0], Ho, Wo, big, Wp)
                    for i in range(kh):
                        for j in range(kw):
                            gw[o, i * kw + j] += <floating>_dot(big, pad + i * dh * Wp + j * dw,
                                                                Ho * Wp)
                free(pad)
            else:
                for i in range(kh):
                    for j in range(kw):
                        lo = 0      # assigned here, so private to each thread (written through a pointer
                        hi2 = 0     # only, they were shared: a data race)
                        _dw_span(j, dw, pl, sw, W, Wo, &lo, &hi2)
                        s = 0.0
                        for n in range(N):
                            for ho in range(Ho):
                                hi = ho * sh + i * dh - pt
                                if hi < 0 or hi >= H:
                                    continue
                                grow = &g[n, o, ho, 0]
                                xr = &x[n, o // m, hi, 0]
                                for k in range(lo, hi2):
                                    s = s + grow[k] * xr[k * sw + j * dw - pl]
                        gw[o, i * kw + j] = <floating>s
    if failed:
        raise MemoryError("depthwise_conv2d_weight_grad: out of memory")


# --- reflect / edge pads of the last two axes ---------------------------------------------------
# out[p, i, j] = x[p, rows[i], cols[j]]: the interior of each row one memcpy, the bands from the
# column map; planes shared among the threads. NumPy's strided slice copies took 4x PyTorch's
# time on a (16, 64, 32, 32) reflect pad.
cdef _check_pad_maps(str name, Py_ssize_t P, Py_ssize_t P2, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t H2, Py_ssize_t W2, const long long[::1] rows,
                     const long long[::1] cols, Py_ssize_t left):
    # (P, H, W): the unpadded planes, (P2, H2, W2): the padded ones
    cdef Py_ssize_t i
    if P2 != P or rows.shape[0] != H2 or cols.shape[0] != W2 or left < 0 or left + W > W2:
        raise ValueError(f"{name}: shapes do not match")
    for i in range(H2):
        if not 0 <= rows[i] < H:
            raise ValueError(f"{name}: row index out of range")
    for i in range(W2):
        if not 0 <= cols[i] < W:
            raise ValueError(f"{name}: column index out of range")


def pad_planes(const floating[:, :, ::1] x, floating[:, :, ::1] out,
               const long long[::1] rows, const long long[::1] cols, Py_ssize_t left):
    """Pad every (H, W) plane of ``x`` into ``out`` by the source maps ``rows``/``cols``
    (indices into H and W; ``cols[left + j] == j`` for the interior)."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t H2 = out.shape[1], W2 = out.shape[2], p, i, j
    cdef const floating *src
    cdef floating *dst
    _check_pad_maps("pad_planes", P, out.shape[0], H, W, H2, W2, rows, cols, left)
    if P * H2 * W2 == 0 or W == 0:
        return
    with nogil:
        for p in prange(P, schedule="static", num_threads=nthreads(P * H2 * W2 * 4)):
            for i in range(H2):
                src = &x[p, rows[i], 0]
                dst = &out[p, i, 0]
                memcpy(dst + left, src, W * sizeof(floating))
                for j in range(left):
                    dst[j] = src[cols[j]]
                for j in range(left + W, W2):
                    dst[j] = src[cols[j]]


def pad_planes_grad(const floating[:, :, ::1] g, floating[:, :, ::1] out,
                    const long long[::1] rows, const long long[::1] cols, Py_ssize_t left):
    """The adjoint of :func:`pad_planes`: ``out`` (zeroed here) gets each element of ``g``
    added at its source position."""
    cdef Py_ssize_t P = out.shape[0], H = out.shape[1], W = out.shape[2]
    cdef Py_ssize_t H2 = g.shape[1], W2 = g.shape[2], p, i, j
    cdef const floating *src
    cdef floating *dst
    _check_pad_maps("pad_planes_grad", P, g.shape[0], H, W, H2, W2, rows, cols, left)
    if P * H * W == 0:
        return
    with nogil:
        for p in prange(P, schedule="static", num_threads=nthreads(P * H2 * W2 * 4)):
            memset(&out[p, 0, 0], 0, H * W * sizeof(floating))
            for i in range(H2):
                src = &g[p, i, 0]
                dst = &out[p, rows[i], 0]
                for j in range(W):
                    dst[j] += src[left + j]
                for j in range(left):
                    dst[cols[j]] += src[j]
                for j in range(left + W, W2):
                    dst[cols[j]] += src[j]


# --- transposed copies --------------------------------------------------------------------------
# NumPy copies a transposed matrix element by element along the destination's rows, each read
# a stride apart: 1024 x 1024 float32 took ~3.7 ms here (PyTorch ~0.5 ms). Tiles of 32 x 32
# keep the source lines in cache while a tile is written.
DEF TILE = 32


def transpose_copy(const floating[:, :] src, floating[:, :] dst):
    """``dst[i, j] = src[i, j]`` for same-shaped 2-d arrays of any strides, in tiles, on all
    threads when large (tiles of rows per thread: no two write the same row)."""
    cdef Py_ssize_t M = dst.shape[0], N = dst.shape[1], ib, i, j, j0, i1, j1
    cdef Py_ssize_t sr = src.strides[0] // sizeof(floating), sc = src.strides[1] // sizeof(floating)
    cdef Py_ssize_t dr = dst.strides[0] // sizeof(floating), dc = dst.strides[1] // sizeof(floating)
    cdef const floating *s
    cdef floating *d
    if src.shape[0] != M or src.shape[1] != N:
        raise ValueError("transpose_copy: shapes differ")
    if (src.strides[0] % sizeof(floating) or src.strides[1] % sizeof(floating)
            or dst.strides[0] % sizeof(floating) or dst.strides[1] % sizeof(floating)):
        raise ValueError("transpose_copy: strides must be multiples of the item size")
    if M == 0 or N == 0:
        return
    s = &src[0, 0]
    d = &dst[0, 0]
    with nogil:
        for ib in prange((M + TILE - 1) // TILE, schedule="static",
                         num_threads=nthreads(M * N * 4)):
            i1 = min(M, ib * TILE + TILE)
            for j0 in range(0, N, TILE):
                j1 = min(N, j0 + TILE)
                for i in range(ib * TILE, i1):
                    for j in range(j0, j1):
                        d[i * dr + j * dc] = s[i * sr + j * sc]


def transpose_copy_planes(const floating[:, :, :, :] src, floating[:, :, :, :] dst):
    """``transpose_copy`` of every (M, N) plane of 4-d arrays of any strides (the first two
    axes index the planes), planes shared among the threads: a batch of transposes too
    small one by one (NCHW -> NHWC of 32 x 32 images, a batched k.transpose(-2, -1))."""
    cdef Py_ssize_t A = dst.shape[0], B = dst.shape[1], M = dst.shape[2], N = dst.shape[3]
    cdef Py_ssize_t p, a, b, i, j, i0, j0, i1, j1
    cdef Py_ssize_t sa = src.strides[0] // sizeof(floating), sb = src.strides[1] // sizeof(floating)
    cdef Py_ssize_t sr = src.strides[2] // sizeof(floating), sc = src.strides[3] // sizeof(floating)
    cdef Py_ssize_t da = dst.strides[0] // sizeof(floating), db = dst.strides[1] // sizeof(floating)
    cdef Py_ssize_t dr = dst.strides[2] // sizeof(floating), dc = dst.strides[3] // sizeof(floating)
    cdef const floating *s
    cdef floating *d
    cdef int k
    for k in range(4):
        if src.shape[k] != dst.shape[k]:
            raise ValueError("transpose_copy_planes: shapes differ")
        if src.strides[k] % sizeof(floating) or dst.strides[k] % sizeof(floating):
            raise ValueError("transpose_copy_planes: strides must be multiples of the item "
                             "size")
    if A * B * M * N == 0:
        return
    with nogil:
        for p in prange(A * B, schedule="static", num_threads=nthreads(A * B * M * N * 4)):
            a = p // B
            b = p % B
            s = &src[a, b, 0, 0]
            d = &dst[a, b, 0, 0]
            for i0 in range(0, M, TILE):
                i1 = min(M, i0 + TILE)
                for j0 in range(0, N, TILE):
                    j1 = min(N, j0 + TILE)
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            d[i * dr + j * dc] = s[i * sr + j * sc]


# --- float16 <-> float32 (F16C) ---------------------------------------------------------------
cdef extern from "_half.h" nogil:
    int tl_half_to_float(const unsigned short *src, float *dst, Py_ssize_t n)
    int tl_float_to_half(const float *src, unsigned short *dst, Py_ssize_t n)


def half_to_float(const unsigned short[::1] src, float[::1] dst) -> bool:
    """Convert float16 values (their bits, a uint16 view) into float32 ``dst`` with the
    CPU's F16C instructions; False (nothing written) where the CPU lacks them."""
    _same_length("half_to_float", src, dst)
    cdef int done
    with nogil:
        done = tl_half_to_float(&src[0] if src.shape[0] else NULL,
                                &dst[0] if dst.shape[0] else NULL, src.shape[0])
    return bool(done)


def float_to_half(const float[::1] src, unsigned short[::1] dst) -> bool:
    """Convert float32 values into float16 bits (a uint16 view of the result), rounding to
    nearest even as NumPy; False (nothing written) where the CPU lacks F16C."""
    _same_length("float_to_half", src, dst)
    cdef int done
    with nogil:
        done = tl_float_to_half(&src[0] if src.shape[0] else NULL,
                                &dst[0] if dst.shape[0] else NULL, src.shape[0])
    return bool(done)


# --- float32/float64 sums, float32 extremes of contiguous runs; cumsum --------------------------
cdef extern from "_reduce.h" nogil:
    double tl_sum_f32(const float *x, Py_ssize_t n)
    float tl_extreme_f32(const float *x, Py_ssize_t n, int is_min)
    void tl_sum_cols_f32(const float *x, Py_ssize_t R, Py_ssize_t stride, Py_ssize_t n,
                         float *out, double scale)
    void tl_sum_cols_f64(const double *x, Py_ssize_t R, Py_ssize_t stride, Py_ssize_t n,
                         double *out, double scale)
    void tl_sum_rows_f64(const double *x, Py_ssize_t R, Py_ssize_t N, double *out,
                         double scale)

# a full sum is cut into chunks of this many elements, summed in parallel and then in order,
# so the result does not depend on the thread count
DEF SUM_CHUNK = 65536
DEF COL_TILE = 1024     # TL_COL_TILE in _reduce.h
# A reduction reads each element once and writes next to nothing (a float32 sum: ~0.09 ns
# an element on one Zen 3 core), so a second thread pays for its wake-up (60-160 µs under the
# passive wait policy on 2-core VMs) only from ~16 MiB read. With 100 µs of serial work
# between calls, one thread against two: float32 sums of 1M elements 89 against 172 µs, 2M
# 153 against 207, 4M 499 against 318 (rows, middle axes and row maxima alike); float64 rows
# 225 against 248 µs at 8 MiB, 737 against 459 at 16 (benchmarks/README.md, 28th session).
DEF REDUCE_PAR_BYTES = 1 << 24


cdef inline int reduce_threads(Py_ssize_t nbytes) noexcept nogil:
    return 1 if nbytes < REDUCE_PAR_BYTES else omp_get_max_threads()


def sum_all_f32(const float[::1] x) -> float:
    """The sum of x, accumulated in float64 (rounded to float32 by the caller)."""
    cdef Py_ssize_t n = x.shape[0], nc = (n + SUM_CHUNK - 1) // SUM_CHUNK, c, lo
    cdef double s = 0.0
    if n == 0:
        return 0.0
    cdef double[::1] parts = np.empty(nc, np.float64)
    with nogil:
        for c in prange(nc, schedule="static", num_threads=reduce_threads(n * 4)):
            lo = c * SUM_CHUNK
            parts[c] = tl_sum_f32(&x[lo], min(SUM_CHUNK, n - lo))
        for c in range(nc):
            s += parts[c]
    return s


def sum_rows_f32(const float[:, ::1] x, float[::1] out, double scale=1.0):
    """out[i] = scale * sum(x[i]) (scale 1/n gives the mean), accumulated in float64."""
    cdef Py_ssize_t R = x.shape[0], N = x.shape[1], r
    if out.shape[0] != R:
        raise ValueError("sum_rows_f32: out must have x's row count")
    if R == 0:
        return
    if N == 0:
        out[:] = 0.0
        return
    with nogil:
        for r in prange(R, schedule="static", num_threads=reduce_threads(R * N * 4)):
            out[r] = <float>(scale * tl_sum_f32(&x[r, 0], N))


def sum_mid(const floating[:, :, ::1] x, floating[:, ::1] out, double scale=1.0):
    """out[o, i] = scale * sum_r x[o, r, i], a cascade sum (float32: float32 leaves, float64
    top; float64 throughout)."""
    cdef Py_ssize_t O = x.shape[0], R = x.shape[1], I = x.shape[2], t, o, lo, T
    if out.shape[0] != O or out.shape[1] != I:
        raise ValueError("sum_mid: out must have shape (x.shape[0], x.shape[2])")
    if O * I == 0:
        return
    if R == 0:
        out[:, :] = 0.0
        return
    T = (I + COL_TILE - 1) // COL_TILE
    with nogil:
        for t in prange(O * T, schedule="static",
                        num_threads=reduce_threads(O * R * I * sizeof(floating))):
            o = t // T
            lo = (t % T) * COL_TILE
            if floating is float:
                tl_sum_cols_f32(&x[o, 0, lo], R, I, min(COL_TILE, I - lo), &out[o, lo], scale)
            else:
                tl_sum_cols_f64(&x[o, 0, lo], R, I, min(COL_TILE, I - lo), &out[o, lo], scale)


DEF ROW_CHUNK = 4096    # elements a parallel task sums in sum_rows_f64, at least a row


def sum_rows_f64(const double[:, ::1] x, double[::1] out, double scale=1.0):
    """out[i] = scale * sum(x[i]) (scale 1/n gives the mean), a cascade sum of each row."""
    cdef Py_ssize_t R = x.shape[0], N = x.shape[1], k, rows, nk, lo
    if out.shape[0] != R:
        raise ValueError("sum_rows_f64: out must have x's row count")
    if R == 0:
        return
    if N == 0:
        out[:] = 0.0
        return
    # rows in groups: one kernel call a group, not a call a (short) row
    rows = max(1, ROW_CHUNK // N)
    nk = (R + rows - 1) // rows
    with nogil:
        for k in prange(nk, schedule="static", num_threads=reduce_threads(R * N * 8)):
            lo = k * rows
            tl_sum_rows_f64(&x[lo, 0], min(rows, R - lo), N, &out[lo], scale)


ctypedef fused cum_t:
    double
    cnp.int64_t


def cumsum_mid(const cum_t[:, :, ::1] x, cum_t[:, :, ::1] out):
    """out[o, j, i] = sum_{r <= j} x[o, r, i] in order (as NumPy's cumsum; int64 wraps)."""
    cdef Py_ssize_t O = x.shape[0], R = x.shape[1], I = x.shape[2], o, r, i
    if out.shape[0] != O or out.shape[1] != R or out.shape[2] != I:
        raise ValueError("cumsum_mid: out must have x's shape")
    if O * R * I == 0:
        return
    cdef cum_t s
    with nogil:
        for o in prange(O, schedule="static", num_threads=nthreads(O * R * I)):
            if I == 1:
                s = 0
                for r in range(R):
                    s = s + x[o, r, 0]
                    out[o, r, 0] = s
            else:
                # row after row: the inner loops along contiguous columns vectorise, where
                # NumPy's accumulate over a leading axis strides through memory
                for i in range(I):
                    out[o, 0, i] = x[o, 0, i]
                for r in range(1, R):
                    for i in range(I):
                        out[o, r, i] = out[o, r - 1, i] + x[o, r, i]


def extreme_rows_f32(const float[:, ::1] x, float[::1] out, bint is_min):
    """out[i] = max(x[i]) (is_min: min), NaN if the row has one; rows must be non-empty."""
    cdef Py_ssize_t R = x.shape[0], N = x.shape[1], r
    if out.shape[0] != R or (N == 0 and R > 0):
        raise ValueError("extreme_rows_f32: out must have x's row count and rows an element")
    with nogil:
        for r in prange(R, schedule="static", num_threads=reduce_threads(R * N * 4)):
            out[r] = tl_extreme_f32(&x[r, 0], N, is_min)



# --- stable radix argsort of unsigned 64-bit keys (_radix.h) ---------------------------------
cdef extern from "_radix.h" nogil:
    int tl_radix_argsort_u64(const cnp.uint64_t *keys, cnp.int64_t *order, Py_ssize_t n)


def radix_argsort_rows(const cnp.uint64_t[:, ::1] keys, cnp.int64_t[:, ::1] out):
    """out[r] = the stable ascending argsort of keys[r] (order-preserving unsigned keys)."""
    cdef Py_ssize_t R = keys.shape[0], N = keys.shape[1], r
    cdef int failed = 0
    if out.shape[0] != R or out.shape[1] != N:
        raise ValueError("radix_argsort_rows: out must have keys' shape")
    if R == 0 or N == 0:
        return
    with nogil:
        for r in prange(R, schedule="static", num_threads=nthreads(R * N * 8)):
            failed += tl_radix_argsort_u64(&keys[r, 0], &out[r, 0], N) != 0
    if failed:
        raise MemoryError("radix_argsort_rows: out of memory")


# --- batched LU with partial pivoting (LAPACK getf2's steps) --------------------------------
cdef int _lu_one(floating* a, int* piv, Py_ssize_t m, Py_ssize_t n, bint pivot) noexcept nogil:
    """Factor one row-major m x n matrix in place; piv 1-based, as getrf's. Returns info."""
    cdef Py_ssize_t k = m if m < n else n, j, i, c, p
    cdef floating best, v, d, r, l, tmp
    cdef floating* rj
    cdef floating* ri
    cdef int info = 0
    for j in range(k):
        p = j
        if pivot:
            # the first largest |entry|, as idamax (NaN never wins: LAPACK's compare too)
            best = a[j * n + j]
            if best < 0:
                best = -best
            for i in range(j + 1, m):
                v = a[i * n + j]
                if v < 0:
                    v = -v
                if v > best:
                    best, p = v, i
        piv[j] = <int>(p + 1)
        d = a[p * n + j]
        if d != 0:
            if p != j:      # swap whole rows (getrf applies each swap across all columns)
                rj, ri = a + j * n, a + p * n
                for c in range(n):
                    tmp = rj[c]
                    rj[c] = ri[c]
                    ri[c] = tmp
            r = 1 / d
            for i in range(j + 1, m):
                a[i * n + j] *= r
        elif info == 0:
            info = <int>(j + 1)
        rj = a + j * n
        for i in range(j + 1, m):
            ri = a + i * n
            l = ri[j]
            if l != 0:
                for c in range(j + 1, n):
                    ri[c] -= l * rj[c]
    return info


def lu_batched(floating[:, :, ::1] a, int[:, ::1] piv, int[::1] info, bint pivot):
    """Factor each matrix of ``a`` (B, m, n) in place as getrf: unit-lower L below the
    diagonal, U on and above it; ``piv`` (B, min(m, n)) 1-based row swaps, ``info`` (B,)
    the first zero pivot (1-based) or 0."""
    cdef Py_ssize_t B = a.shape[0], m = a.shape[1], n = a.shape[2], b
    cdef Py_ssize_t k = m if m < n else n
    if piv.shape[0] != B or piv.shape[1] != k or info.shape[0] != B:
        raise ValueError("lu_batched: piv must be (B, min(m, n)) and info (B,)")
    if B == 0 or k == 0:
        return
    with nogil:
        for b in prange(B, schedule="static", num_threads=nthreads(B * m * n * k)):
            info[b] = _lu_one(&a[b, 0, 0], &piv[b, 0], m, n, pivot)


# --- lerp in one pass (PyTorch's two forms) ------------------------------------------------
def lerp_into(const floating[::1] x, const floating[::1] end, double weight,
              floating[::1] out):
    """out = x + w (end - x) for |w| < 0.5, else end - (end - x) (1 - w) (weight 1 gives
    ``end`` exactly), the weight rounded to the dtype as PyTorch's; ``out`` may be ``x``."""
    cdef Py_ssize_t n = x.shape[0], i
    cdef floating w = <floating>weight, v = <floating>(1.0 - weight)
    if end.shape[0] != n or out.shape[0] != n:
        raise ValueError("lerp_into: x, end and out must have one length")
    with nogil:
        if -0.5 < weight < 0.5:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                out[i] = x[i] + w * (end[i] - x[i])
        else:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                out[i] = end[i] - (end[i] - x[i]) * v


# === kernels20: short softmax rows, GELU tanh form, scatter amax/amin ========================
from libc.math cimport INFINITY

cdef extern from "_simd_vec.h" nogil:
    int tl_vec_cap
    int tl_vec_level()

cdef extern from "_softmax.h" nogil:
    int TL_SOFTMAX_SHORT
    int tl_softmax_rows_f32(const float *x, float *y, Py_ssize_t rows, Py_ssize_t n,
                            int log_out)

cdef extern from "_simd_math.h" nogil:
    void tl_gelu_tanh_f32(const float *x, float *out, Py_ssize_t m)


def _vec_cap(int cap):
    """Cap the hand-vectorised kernels' instruction set (2 AVX-512, 1 AVX2, 0 none) and
    return the old cap: the tests run every path on one machine."""
    global tl_vec_cap
    cdef int old = tl_vec_cap
    tl_vec_cap = cap
    return old


SOFTMAX_SHORT = TL_SOFTMAX_SHORT


def softmax_rows_f32(const float[:, ::1] x, float[:, ::1] out, bint log_out):
    """Softmax (log_out: log-softmax) of each row of x (rows, n), n <= SOFTMAX_SHORT, into
    out. Returns False, writing nothing, where the CPU has neither AVX-512 nor AVX2."""
    cdef Py_ssize_t R = x.shape[0], N = x.shape[1], c, nc, step
    if out.shape[0] != R or out.shape[1] != N:
        raise ValueError("softmax_rows_f32: out must have x's shape")
    if N > TL_SOFTMAX_SHORT:
        raise ValueError(f"softmax_rows_f32: rows longer than {TL_SOFTMAX_SHORT}")
    if tl_vec_level() == 0:
        return False
    if R == 0 or N == 0:
        return True
    # runs of ~16K elements: one call (and one dispatch) each, and the tasks threads share
    step = max(1, 16384 // N)
    nc = (R + step - 1) // step
    with nogil:
        for c in prange(nc, schedule="static", num_threads=nthreads(R * N)):
            tl_softmax_rows_f32(&x[c * step, 0], &out[c * step, 0], min(step, R - c * step), N,
                                log_out)
    return True


cdef inline bint _beats(floating v, floating m, bint maximum) noexcept nogil:
    # NaN wins and then stays (no comparison with a NaN m is true), as PyTorch's amax/amin
    if v != v:
        return True
    return v > m if maximum else v < m


cdef inline bint _outside(cnp.int64_t t, Py_ssize_t n) noexcept nogil:
    return <unsigned long long>t >= <unsigned long long>n


cdef extern from "_scatter_ext.h" nogil:
    int tl_scatter_ext_row_f32(float *out, Py_ssize_t n, const cnp.int64_t *idx,
                               const float *v, Py_ssize_t k, int maximum, int include_self,
                               cnp.int64_t *bad)
    int tl_scatter_ext_row_f64(double *out, Py_ssize_t n, const cnp.int64_t *idx,
                               const double *v, Py_ssize_t k, int maximum, int include_self,
                               cnp.int64_t *bad)


cdef inline int _scatter_ext_row(floating *out, Py_ssize_t N, const cnp.int64_t *idx,
                                 const floating *v, Py_ssize_t K, bint maximum,
                                 bint include_self, cnp.int64_t *bad) noexcept nogil:
    if floating is float:
        return tl_scatter_ext_row_f32(out, N, idx, v, K, maximum, include_self, bad)
    else:
        return tl_scatter_ext_row_f64(out, N, idx, v, K, maximum, include_self, bad)


cdef int _scatter_ext(floating[:, :, ::1] out, const cnp.int64_t[:, :, :] idx,
                      const floating[:, :, :] v, bint maximum, bint include_self,
                      cnp.int64_t *bad) noexcept nogil:
    cdef Py_ssize_t O = out.shape[0], N = out.shape[1], I = out.shape[2]
    cdef Py_ssize_t K = idx.shape[1], o, k, i
    cdef cnp.int64_t t
    cdef floating ident = -INFINITY if maximum else INFINITY, a
    if (I == 1 and K > 0 and idx.strides[1] == sizeof(cnp.int64_t)
            and v.strides[1] == sizeof(floating)):
        for o in range(O):
            if _scatter_ext_row(&out[o, 0, 0], N, &idx[o, 0, 0], &v[o, 0, 0], K, maximum,
                                include_self, bad):
                return 1
        return 0
    for o in range(O):
        for k in range(K):
            for i in range(I):
                t = idx[o, k, i]
                if _outside(t, N):
                    bad[0] = t
                    return 1
                if not include_self:
                    out[o, t, i] = ident
    for o in range(O):
        for k in range(K):
            for i in range(I):
                t = idx[o, k, i]
                a = v[o, k, i]
                if _beats(a, out[o, t, i], maximum):
                    out[o, t, i] = a
    return 0


def scatter_extreme_f(floating[:, :, ::1] out, const cnp.int64_t[:, :, :] idx,
                      const floating[:, :, :] v, bint maximum, bint include_self):
    """out (O, N, I) amax/amin-combined in place with v at idx (both (O, K, I), any strides)
    along axis 1; without include_self the positions hit start from the identity (-inf or
    +inf), those not hit keep their value. Returns None, or the first index outside [0, N)
    (out is then partly written)."""
    cdef cnp.int64_t bad = 0
    cdef int failed
    if (idx.shape[0] != out.shape[0] or idx.shape[2] != out.shape[2]
            or v.shape[0] != idx.shape[0] or v.shape[1] != idx.shape[1]
            or v.shape[2] != idx.shape[2]):
        raise ValueError("scatter_extreme_f: idx and v must be (O, K, I) for out (O, N, I)")
    with nogil:
        failed = _scatter_ext(out, idx, v, maximum, include_self, &bad)
    return bad if failed else None


# --- cumprod's backward along the last axis -------------------------------------------------
def cumprod_grad_rows(const floating[:, ::1] g, const floating[:, ::1] x, floating[:, ::1] out):
    """The gradient of cumprod along axis 1 of x (R, n) applied to g, into out: PyTorch's
    zero-safe form without division, (prod_{k<i} x_k) S_i with S_i = g_i + x_{i+1} S_{i+1},
    in two passes a row (double accumulators)."""
    cdef Py_ssize_t R = x.shape[0], n = x.shape[1], r, i
    cdef double sacc, p
    cdef double *sbuf
    cdef int failed = 0
    if g.shape[0] != R or g.shape[1] != n or out.shape[0] != R or out.shape[1] != n:
        raise ValueError("cumprod_grad_rows: g, x and out must have one shape")
    if R == 0 or n == 0:
        return
    with nogil:
        for r in prange(R, schedule="static", num_threads=nthreads(R * n)):
            sbuf = <double *> malloc(n * sizeof(double))
            if sbuf == NULL:
                failed += 1
                continue
            sacc = 0.0
            for i in range(n - 1, -1, -1):
                if i + 1 < n:
                    sacc = g[r, i] + <double>x[r, i + 1] * sacc
                else:
                    sacc = g[r, i]
                sbuf[i] = sacc
            p = 1.0
            for i in range(n):
                out[r, i] = <floating>(p * sbuf[i])
                p = p * x[r, i]
            free(sbuf)
    if failed:
        raise MemoryError("cumprod_grad_rows: out of memory")



# --- exact GELU on whole vector registers (gelu_into above), embedding-bag sums (float32) -----
cdef extern from "_gelu_vec.h" nogil:
    void tl_gelu_f32_vec(const float *x, float *out, Py_ssize_t m)
    void tl_gelu_grad_f32_vec(const float *g, const float *x, float *out, Py_ssize_t m)

cdef extern from "_bag.h" nogil:
    void tl_bag_sum_f32(const float *w, Py_ssize_t D, const cnp.int64_t *flat,
                        const cnp.int64_t *indptr, const float *coef, float *out,
                        Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t N)

DEF BAG_CHUNK = 64      # bags a task


def bag_sum_f32(const float[:, ::1] w, const cnp.int64_t[::1] flat,
                const cnp.int64_t[::1] indptr, const float[::1] coef, float[:, ::1] out):
    """bag_sum for float32 (_bag.h): out[b] = sum over bag b's entries n (indptr[b] <= n <
    indptr[b + 1]) of coef[n] * w[flat[n]]. Checks every index and bound first (raising
    IndexError / ValueError), then runs unchecked; threads own chunks of bags."""
    cdef Py_ssize_t B = out.shape[0], D = w.shape[1], V = w.shape[0], N = flat.shape[0]
    _check_bags("bag_sum_f32", N, indptr, B, coef.shape[0])
    if out.shape[1] != D:
        raise ValueError("bag_sum_f32: out has another width than the table")
    cdef Py_ssize_t b, n, k, nch = (B + BAG_CHUNK - 1) // BAG_CHUNK
    cdef int bad_idx = 0, bad_ptr = 0
    with nogil:
        for n in range(N):
            if flat[n] < 0 or flat[n] >= V:
                bad_idx = 1
        if B and indptr[0] != 0 or indptr[B] != N:
            bad_ptr = 1
        for b in range(B):
            if indptr[b + 1] < indptr[b]:
                bad_ptr = 1
    if bad_idx:
        raise IndexError(f"bag_sum_f32: an index lies outside the table's {V} rows")
    if bad_ptr:
        raise ValueError(f"bag_sum_f32: bag bounds must run from 0 to {N} without decreasing")
    if B == 0:
        return
    with nogil:
        for k in prange(nch, schedule="dynamic", num_threads=nthreads(N * D)):
            tl_bag_sum_f32(&w[0, 0] if V and D else NULL, D, &flat[0] if N else NULL,
                           &indptr[0], &coef[0] if N else NULL, &out[0, 0] if D else NULL,
                           k * BAG_CHUNK, min(B, (k + 1) * BAG_CHUNK), N)


# --- where: a branch-free select ----------------------------------------------------------
ctypedef fused word_t:
    cnp.uint32_t
    cnp.uint64_t


def where_bits(const unsigned char[::1] c, const word_t[::1] a, const word_t[::1] b,
               word_t[::1] out):
    """out[i] = a[i] if c[i] else b[i] over the bit patterns of 4- or 8-byte elements, with
    a mask instead of a branch (NumPy's where branches per element: ~15x slower on a random
    condition). ``a`` or ``b`` of length 1 is a scalar; ``c`` holds 0/1 (a bool array)."""
    cdef Py_ssize_t n = c.shape[0], i
    cdef word_t m, av, bv
    if out.shape[0] != n or a.shape[0] not in (1, n) or b.shape[0] not in (1, n):
        raise ValueError("where_bits: c, a, b and out must have one length (a, b: or 1)")
    if n == 0:
        return
    av, bv = a[0], b[0]
    with nogil:
        if a.shape[0] == n and b.shape[0] == n:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                m = <word_t>0 - <word_t>(c[i] != 0)
                out[i] = (a[i] & m) | (b[i] & ~m)
        elif a.shape[0] == n:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                m = <word_t>0 - <word_t>(c[i] != 0)
                out[i] = (a[i] & m) | (bv & ~m)
        elif b.shape[0] == n:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                m = <word_t>0 - <word_t>(c[i] != 0)
                out[i] = (av & m) | (b[i] & ~m)
        else:
            for i in prange(n, schedule="static", num_threads=nthreads(n)):
                m = <word_t>0 - <word_t>(c[i] != 0)
                out[i] = (av & m) | (bv & ~m)


# === kernels21b: digamma by PyTorch's CPU formula (_gamma.h) ==================================
cdef extern from "_gamma.h" nogil:
    void tl_digamma_f64(const double *x, double *out, Py_ssize_t n)
    void tl_digamma_f32(const float *x, float *out, Py_ssize_t n)


ctypedef void (*unary_f64)(const double *, double *, Py_ssize_t) noexcept nogil
ctypedef void (*binary_f64)(const double *, const double *, double *, Py_ssize_t) noexcept nogil


cdef _unary_map(str name, unary_f32 f32, unary_f64 f64, const floating[::1] x,
                floating[::1] out, Py_ssize_t par_min):
    # one elementwise map of flat float32 or float64 arrays: checks, then chunks over
    # threads from par_min elements
    cdef Py_ssize_t n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"{name}: x and out must have one length")
    if n == 0:
        return
    with nogil:
        if floating is float:
            _map1(f32, &x[0], &out[0], n, par_min)
        else:
            _map1(f64, &x[0], &out[0], n, par_min)


def digamma_into(const floating[::1] x, floating[::1] out):
    """out = digamma(x), elementwise, by PyTorch's CPU formula (Cephes' psi).
    Threads from MAP_PAR_SLOW / 4 elements (~10-50 ns an element)."""
    _unary_map("digamma_into", tl_digamma_f32, tl_digamma_f64, x, out, MAP_PAR_SLOW >> 2)


# === kernels21c: lgamma on vector registers (_gamma.h, _lgamma_tmpl.h) =========================
cdef extern from "_gamma.h" nogil:
    void tl_lgamma_f64(const double *x, double *out, Py_ssize_t n)
    void tl_lgamma_f32(const float *x, float *out, Py_ssize_t n)


def lgamma_into(const floating[::1] x, floating[::1] out):
    """out = lgamma(x) = log|Gamma(x)|, elementwise, with PyTorch's values: +inf at 0, the
    negative integers and +-inf, NaN for NaN; float32 is computed in float64 lanes.
    Threads from MAP_PAR_SLOW / 4 elements (~2-5 ns an element)."""
    _unary_map("lgamma_into", tl_lgamma_f32, tl_lgamma_f64, x, out, MAP_PAR_SLOW >> 2)


# === grid_sample's fused 4-d forward and backward (_grid2d.h) ===================================
cdef extern from "_grid2d.h" nogil:
    void tl_grid2d_f32(const float *x, const float *grid, float *out, Py_ssize_t C,
                       Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t r0,
                       Py_ssize_t r1, int bilinear, int pad, int align, cnp.int32_t *offs,
                       float *ws)
    void tl_grid2d_f64(const double *x, const double *grid, double *out, Py_ssize_t C,
                       Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t r0,
                       Py_ssize_t r1, int bilinear, int pad, int align, cnp.int32_t *offs,
                       double *ws)
    void tl_grid2d_bwd_f32(const float *x, const float *grid, const float *g, float *gx,
                           float *gg, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho,
                           Py_ssize_t Wo, Py_ssize_t n0, Py_ssize_t n1, int bilinear, int pad,
                           int align, cnp.int32_t *offs, float *ws)
    void tl_grid2d_bwd_f64(const double *x, const double *grid, const double *g, double *gx,
                           double *gg, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho,
                           Py_ssize_t Wo, Py_ssize_t n0, Py_ssize_t n1, int bilinear, int pad,
                           int align, cnp.int32_t *offs, double *ws)


def _grid2d_check(str name, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, grid,
                  int bilinear, int padding):
    if grid.shape[0] != N or grid.shape[3] != 2:
        raise ValueError(f"{name}: grid of shape {tuple(grid.shape[i] for i in range(4))}"
                         f" does not fit input {(N, C, H, W)} (needs (N, Ho, Wo, 2))")
    if H < 1 or W < 1:
        raise ValueError(f"{name}: the input has an empty spatial dimension")
    if H * W > 2147483647:     # (taps are 32-bit offsets)
        raise ValueError(f"{name}: an input plane of {H}x{W} has over 2^31 pixels")
    if padding not in (0, 1, 2) or bilinear not in (0, 1):
        raise ValueError(f"{name}: bilinear {bilinear} must be 0 or 1, padding "
                         f"{padding} 0, 1 or 2")


def grid_sample_2d(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] grid,
                   floating[:, :, :, ::1] out, int bilinear, int padding, bint align_corners):
    """PyTorch's grid_sample of x (N, C, H, W) at grid (N, Ho, Wo, 2) into out (N, C, Ho, Wo),
    'bilinear' (bilinear=1) or 'nearest' (0), padding 0 zeros, 1 border, 2 reflection; the
    values of PyTorch's vectorised CPU kernel. H * W < 2^31. Threads over the N * Ho output
    rows."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = grid.shape[1], Wo = grid.shape[2]
    _grid2d_check("grid_sample_2d", N, C, H, W, grid, bilinear, padding)
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (N, C, Ho, Wo):
        raise ValueError(f"grid_sample_2d: out of shape "
                         f"{tuple(out.shape[i] for i in range(4))} must be {(N, C, Ho, Wo)}")
    if N * Ho * Wo == 0 or C == 0:
        return
    cdef Py_ssize_t rows = N * Ho
    cdef int T = nthreads(N * C * Ho * Wo * (4 if bilinear else 1) * 4)
    if T > rows:
        T = <int>rows
    offs_a = np.empty((T, 4 * Wo), np.int32)
    ws_a = np.empty((T, 10 * Wo), np.float32 if floating is float else np.float64)
    cdef cnp.int32_t[:, ::1] offs = offs_a
    cdef floating[:, ::1] ws = ws_a
    cdef int t
    cdef Py_ssize_t r0, r1
    with nogil:
        for t in prange(T, schedule="static", num_threads=T):
            r0 = rows * t // T
            r1 = rows * (t + 1) // T
            if floating is float:
                tl_grid2d_f32(&x[0, 0, 0, 0], &grid[0, 0, 0, 0], &out[0, 0, 0, 0], C, H, W, Ho,
                              Wo, r0, r1, bilinear, padding, align_corners, &offs[t, 0],
                              &ws[t, 0])
            else:
                tl_grid2d_f64(&x[0, 0, 0, 0], &grid[0, 0, 0, 0], &out[0, 0, 0, 0], C, H, W, Ho,
                              Wo, r0, r1, bilinear, padding, align_corners, &offs[t, 0],
                              &ws[t, 0])


def grid_sample_2d_backward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] grid,
                            const floating[:, :, :, ::1] g, floating[:, :, :, ::1] gx,
                            floating[:, :, :, ::1] gg, int bilinear, int padding,
                            bint align_corners, bint want_x=True, bint want_grid=True):
    """The gradients of grid_sample_2d for the incoming gradient g (N, C, Ho, Wo): gx (N, C,
    H, W) = the scatter-add of the weighted g into the taps, gg (N, Ho, Wo, 2) the grid
    gradient (zeros for 'nearest', as PyTorch's), in one pass over the output; either is left
    untouched when not wanted. Threads over the images (each owns its gx planes)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = grid.shape[1], Wo = grid.shape[2]
    _grid2d_check("grid_sample_2d_backward", N, C, H, W, grid, bilinear, padding)
    if (g.shape[0], g.shape[1], g.shape[2], g.shape[3]) != (N, C, Ho, Wo):
        raise ValueError(f"grid_sample_2d_backward: g of shape "
                         f"{tuple(g.shape[i] for i in range(4))} must be {(N, C, Ho, Wo)}")
    if want_x and (gx.shape[0], gx.shape[1], gx.shape[2], gx.shape[3]) != (N, C, H, W):
        raise ValueError(f"grid_sample_2d_backward: gx of shape "
                         f"{tuple(gx.shape[i] for i in range(4))} must be {(N, C, H, W)}")
    if want_grid and (gg.shape[0], gg.shape[1], gg.shape[2], gg.shape[3]) != (N, Ho, Wo, 2):
        raise ValueError(f"grid_sample_2d_backward: gg of shape "
                         f"{tuple(gg.shape[i] for i in range(4))} must be {(N, Ho, Wo, 2)}")
    if not (want_x or want_grid) or N == 0:
        return
    if C == 0 or Ho * Wo == 0:     # nothing sampled: zero gradients
        if want_x:
            np.asarray(gx)[...] = 0
        if want_grid:
            np.asarray(gg)[...] = 0
        return
    cdef int T = nthreads(N * C * Ho * Wo * (8 if bilinear else 1) * 4)
    if T > N:
        T = <int>N
    offs_a = np.empty((T, 4 * Wo), np.int32)
    ws_a = np.empty((T, 12 * Wo), np.float32 if floating is float else np.float64)
    cdef cnp.int32_t[:, ::1] offs = offs_a
    cdef floating[:, ::1] ws = ws_a
    cdef floating *gxp = &gx[0, 0, 0, 0] if want_x else NULL
    cdef floating *ggp = &gg[0, 0, 0, 0] if want_grid else NULL
    cdef int t
    cdef Py_ssize_t n0, n1
    with nogil:
        for t in prange(T, schedule="static", num_threads=T):
            n0 = N * t // T
            n1 = N * (t + 1) // T
            if floating is float:
                tl_grid2d_bwd_f32(&x[0, 0, 0, 0], &grid[0, 0, 0, 0], &g[0, 0, 0, 0], gxp, ggp,
                                  C, H, W, Ho, Wo, n0, n1, bilinear, padding, align_corners,
                                  &offs[t, 0], &ws[t, 0])
            else:
                tl_grid2d_bwd_f64(&x[0, 0, 0, 0], &grid[0, 0, 0, 0], &g[0, 0, 0, 0], gxp, ggp,
                                  C, H, W, Ho, Wo, n0, n1, bilinear, padding, align_corners,
                                  &offs[t, 0], &ws[t, 0])


# ---- fused losses and activations (_fused_pointwise.h) ----
cdef extern from "_fused_pointwise.h" nogil:
    void tl_huber_f32(const float *x, const float *y, float *out, Py_ssize_t n, float delta,
                      int smooth)
    void tl_huber_f64(const double *x, const double *y, double *out, Py_ssize_t n,
                      double delta, int smooth)
    double tl_huber_sum_f32(const float *x, const float *y, Py_ssize_t n, float delta,
                            int smooth)
    double tl_huber_sum_f64(const double *x, const double *y, Py_ssize_t n, double delta,
                            int smooth)
    void tl_huber_grad_f32(const float *g, int gs, const float *x, const float *y, float *out,
                           Py_ssize_t n, float delta, float k)
    void tl_huber_grad_f64(const double *g, int gs, const double *x, const double *y,
                           double *out, Py_ssize_t n, double delta, double k)
    void tl_hardtanh_grad_f32(const float *g, const float *x, float *out, Py_ssize_t n,
                              float lo, float hi)
    void tl_hardtanh_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n,
                              double lo, double hi)
    void tl_nan_to_num_f32(const float *x, float *out, Py_ssize_t n, float nan_, float pinf,
                           float ninf)
    void tl_nan_to_num_f64(const double *x, double *out, Py_ssize_t n, double nan_,
                           double pinf, double ninf)


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n) noexcept nogil:
    return (n + MAP_CHUNK - 1) // MAP_CHUNK


def huber_into(const floating[::1] x, const floating[::1] y, floating[::1] out, double delta,
               bint smooth):
    """out = Huber (smooth: smooth L1 with beta = delta) loss of x - y, elementwise, as
    PyTorch's; flat arrays of one length and dtype, threaded in chunks when large."""
    _same_length("huber_into", x, y, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    if n == 0:
        return
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_huber_f32(&x[lo], &y[lo], &out[lo], min(MAP_CHUNK, n - lo), <float>delta,
                             smooth)
            else:
                tl_huber_f64(&x[lo], &y[lo], &out[lo], min(MAP_CHUNK, n - lo), delta, smooth)


def huber_sum(const floating[::1] x, const floating[::1] y, double delta, bint smooth):
    """The sum of huber_into's values over x, y without writing them (a float: blocks in the
    dtype, their totals in double)."""
    _same_length("huber_sum", x, y)
    cdef Py_ssize_t n = x.shape[0], nc = _n_chunks(n), i, lo
    if n == 0:
        return 0.0
    part_a = np.empty(nc, np.float64)
    cdef double[::1] part = part_a
    with nogil:
        for i in prange(nc, schedule="static", num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            if floating is float:
                part[i] = tl_huber_sum_f32(&x[lo], &y[lo], min(MAP_CHUNK, n - lo),
                                           <float>delta, smooth)
            else:
                part[i] = tl_huber_sum_f64(&x[lo], &y[lo], min(MAP_CHUNK, n - lo), delta,
                                           smooth)
    return float(part_a.sum())


def huber_grad_into(const floating[::1] g, const floating[::1] x, const floating[::1] y,
                    floating[::1] out, double delta, double k):
    """out = g k clip(x - y, -delta, delta): the Huber / smooth L1 backward (k = scale, or
    scale / beta); g of length 1 (one number for all) or of x's length."""
    _same_length("huber_grad_into", x, y, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    cdef int gs = g.shape[0] != 1
    if gs and g.shape[0] != n:
        raise ValueError("huber_grad_into: g must have length 1 or x's length")
    if n == 0:
        return
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_huber_grad_f32(&g[lo * gs], gs, &x[lo], &y[lo], &out[lo],
                                  min(MAP_CHUNK, n - lo), <float>delta, <float>k)
            else:
                tl_huber_grad_f64(&g[lo * gs], gs, &x[lo], &y[lo], &out[lo],
                                  min(MAP_CHUNK, n - lo), delta, k)


def hardtanh_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out,
                       double lo_val, double hi_val):
    """out = g where lo_val < x < hi_val, else 0 (NaN included): hardtanh's backward."""
    _same_length("hardtanh_grad_into", g, x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    if n == 0:
        return
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_hardtanh_grad_f32(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo),
                                     <float>lo_val, <float>hi_val)
            else:
                tl_hardtanh_grad_f64(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo), lo_val,
                                     hi_val)


def nan_to_num_into(const floating[::1] x, floating[::1] out, double nan, double posinf,
                    double neginf):
    """out = x with NaN, +inf, -inf replaced by nan, posinf, neginf (the caller passes values
    the dtype holds: a double out of float32's range would not convert)."""
    _same_length("nan_to_num_into", x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    if n == 0:
        return
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_nan_to_num_f32(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), <float>nan,
                                  <float>posinf, <float>neginf)
            else:
                tl_nan_to_num_f64(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), nan, posinf,
                                  neginf)


cdef extern from "_fused_pointwise.h" nogil:
    void tl_logsigmoid_f32(const float *x, float *out, Py_ssize_t n)
    void tl_logsigmoid_grad_f32(const float *g, const float *x, float *out, Py_ssize_t n)
    void tl_expm1_f32(const float *x, float *out, Py_ssize_t n)
    void tl_log1p_f32(const float *x, float *out, Py_ssize_t n)
    void tl_exp_f32(const float *x, float *out, Py_ssize_t n)
    void tl_exp2_f32(const float *x, float *out, Py_ssize_t n)
    void tl_log_f32(const float *x, float *out, Py_ssize_t n)
    void tl_log2_f32(const float *x, float *out, Py_ssize_t n)
    void tl_sinh_f32(const float *x, float *out, Py_ssize_t n)
    void tl_cosh_f32(const float *x, float *out, Py_ssize_t n)
    void tl_asinh_f32(const float *x, float *out, Py_ssize_t n)
    void tl_acosh_f32(const float *x, float *out, Py_ssize_t n)
    void tl_atanh_f32(const float *x, float *out, Py_ssize_t n)
    void tl_atan_f32(const float *x, float *out, Py_ssize_t n)
    void tl_asin_f32(const float *x, float *out, Py_ssize_t n)
    void tl_acos_f32(const float *x, float *out, Py_ssize_t n)
    void tl_sin_f32(const float *x, float *out, Py_ssize_t n)
    void tl_cos_f32(const float *x, float *out, Py_ssize_t n)
    void tl_tan_f32(const float *x, float *out, Py_ssize_t n)
    void tl_atan2_f32(const float *y, const float *x, float *out, Py_ssize_t n)
    void tl_hypot_f32(const float *a, const float *b, float *out, Py_ssize_t n)
    void tl_elu_f32(const float *x, float *out, Py_ssize_t n, float alpha)
    void tl_leaky_relu_f32(const float *x, float *out, Py_ssize_t n, float slope)
    void tl_leaky_relu_grad_f32(const float *g, const float *x, float *out, Py_ssize_t n,
                                float slope)
    void tl_elu_grad_f32(const float *g, const float *x, float *out, Py_ssize_t n, float alpha)
    void tl_softplus_f32(const float *x, float *out, Py_ssize_t n, float beta, float threshold)
    void tl_softplus_grad_f32(const float *g, const float *x, float *out, Py_ssize_t n,
                              float beta, float threshold)


def expm1_f32(const float[::1] x, float[::1] out):
    """out = expm1(x) of flat float32 arrays (vector lanes, ~2 ulp), threaded when large."""
    _same_length("expm1_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_expm1_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_SLOW)


def log1p_f32(const float[::1] x, float[::1] out):
    """out = log1p(x) of flat float32 arrays (vector lanes, ~2 ulp), threaded when large."""
    _same_length("log1p_f32", x, out)
    with nogil:
        _map1(<unary_f32>tl_log1p_f32, _cp(x), _mp(out), x.shape[0], MAP_PAR_SLOW)


cdef Py_ssize_t _map_index(str fn, tuple names, str name) except -1:
    # name's place in a map function's table of names, or a ValueError naming them
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(f"{fn}: name must be one of {names}, not {name!r}") from None


# tensorlib's names of the float32 maps math_f32 runs, in _MATH_KERNELS' order; from sign on
# they are fast (~0.2 ns an element), threaded from MAP_PAR_FAST, the rest from MAP_PAR_SLOW
MATH_F32 = ("exp", "exp2", "log", "log2", "sinh", "cosh", "asinh", "acosh", "atanh", "atan",
            "asin", "acos", "sin", "cos", "tan", "sign", "rsqrt")
cdef unary_f32[17] _MATH_KERNELS = [
    <unary_f32>tl_exp_f32, <unary_f32>tl_exp2_f32, <unary_f32>tl_log_f32, <unary_f32>tl_log2_f32,
    <unary_f32>tl_sinh_f32, <unary_f32>tl_cosh_f32, <unary_f32>tl_asinh_f32,
    <unary_f32>tl_acosh_f32, <unary_f32>tl_atanh_f32, <unary_f32>tl_atan_f32,
    <unary_f32>tl_asin_f32, <unary_f32>tl_acos_f32, <unary_f32>tl_sin_f32, <unary_f32>tl_cos_f32,
    <unary_f32>tl_tan_f32, <unary_f32>tl_sign_f32, <unary_f32>tl_rsqrt_f32]
cdef Py_ssize_t _MATH_F32_FAST = MATH_F32.index("sign")


def math_f32(str name, const float[::1] x, float[::1] out):
    """out = name(x) of flat float32 arrays, ``name`` one of :data:`MATH_F32`, threaded when
    large. Vector lanes, IEEE special values and subnormals kept; against float64, exp and exp2
    are within 1.25 ulp, log and log2 within 1, sin and cos 1.6, the others within 4
    (tests/kernels); sign is 0 at NaN (PyTorch's), rsqrt is 1 / sqrt(x) rounded twice."""
    cdef Py_ssize_t k = _map_index("math_f32", MATH_F32, name)
    cdef unary_f32 f = _MATH_KERNELS[k]
    cdef Py_ssize_t par_min = MAP_PAR_FAST if k >= _MATH_F32_FAST else MAP_PAR_SLOW
    _same_length(name, x, out)
    with nogil:
        _map1(f, _cp(x), _mp(out), x.shape[0], par_min)


# the names of math2_f32's maps, in _MATH2_KERNELS' order
MATH2_F32 = ("atan2", "hypot")
cdef binary_f32[2] _MATH2_KERNELS = [<binary_f32>tl_atan2_f32, <binary_f32>tl_hypot_f32]


def math2_f32(str name, const float[::1] a, const float[::1] b, float[::1] out):
    """out = name(a, b) of flat float32 arrays of one length, ``name`` one of
    :data:`MATH2_F32` (atan2 within 3.1 ulp of float64, C99's values on the axes and at the
    infinities; hypot within 0.5 ulp, in double inside), threaded when large."""
    cdef binary_f32 f = _MATH2_KERNELS[_map_index("math2_f32", MATH2_F32, name)]
    _same_length(name, a, b, out)
    with nogil:
        _map2(f, _cp(a), _cp(b), _mp(out), out.shape[0], MAP_PAR_SLOW)


cdef extern from "_simd_f64_inside.h" nogil:
    void tl_erfc_f32(const float *x, float *out, Py_ssize_t n)
    void tl_erfinv_f32(const float *x, float *out, Py_ssize_t n)
    void tl_erfinv_f64(const double *x, double *out, Py_ssize_t n)
    void tl_pow_f32(const float *a, const float *b, Py_ssize_t bstride, float *out,
                    Py_ssize_t n)
    void tl_fmod_f32(const float *a, const float *b, Py_ssize_t bstride, float *out,
                     Py_ssize_t n)
    void tl_remainder_f32(const float *a, const float *b, Py_ssize_t bstride, float *out,
                          Py_ssize_t n)

cdef _pair_map(str name,
               void (*f)(const floating *, const floating *, Py_ssize_t, floating *,
                         Py_ssize_t) noexcept nogil,
               const floating[::1] a, const floating[::1] b, floating[::1] out,
               Py_ssize_t par_min):
    # out = f(a, b), b of a's length (stride 1) or one element (stride 0), in chunks over
    # threads
    cdef Py_ssize_t n = a.shape[0], bs, i, lo
    if out.shape[0] != n or b.shape[0] not in (1, n):
        raise ValueError(f"{name}: a and out must have one length, and b it or 1 "
                         f"({n}, {b.shape[0]}, {out.shape[0]})")
    if n == 0:
        return
    bs = 1 if b.shape[0] == n and n != 1 else 0
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, par_min)):
            lo = i * MAP_CHUNK
            f(&a[lo], &b[lo * bs], bs, &out[lo], min(MAP_CHUNK, n - lo))


def pow_f32(const float[::1] a, const float[::1] b, float[::1] out):
    """out = a ** b of flat float32 arrays, b of a's length or one element (the exponent of
    all), threaded when large: C99's powf in float64 lanes (within 0.5 ulp; every special
    case, negative bases with integral exponents included), except that a lone exponent 0.5
    takes sqrt (NumPy's and PyTorch's -0 and NaN at -0 and -inf)."""
    _pair_map("pow_f32", tl_pow_f32, a, b, out, MAP_PAR_SLOW >> 2)


cdef extern from "_simd_f64.h" nogil:
    void tl_exp_f64(const double *x, double *out, Py_ssize_t n)
    void tl_log_f64(const double *x, double *out, Py_ssize_t n)
    void tl_expm1_f64(const double *x, double *out, Py_ssize_t n)
    void tl_log1p_f64(const double *x, double *out, Py_ssize_t n)
    void tl_tanh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_sigmoid_f64(const double *x, double *out, Py_ssize_t n)
    void tl_exp2_f64(const double *x, double *out, Py_ssize_t n)
    void tl_log2_f64(const double *x, double *out, Py_ssize_t n)
    void tl_sin_f64(const double *x, double *out, Py_ssize_t n)
    void tl_cos_f64(const double *x, double *out, Py_ssize_t n)
    void tl_tan_f64(const double *x, double *out, Py_ssize_t n)
    void tl_sinh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_cosh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_asinh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_acosh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_atanh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_atan_f64(const double *x, double *out, Py_ssize_t n)
    void tl_asin_f64(const double *x, double *out, Py_ssize_t n)
    void tl_acos_f64(const double *x, double *out, Py_ssize_t n)
    void tl_sign_f64(const double *x, double *out, Py_ssize_t n)
    void tl_erf_f64(const double *x, double *out, Py_ssize_t n)
    void tl_erfc_f64(const double *x, double *out, Py_ssize_t n)
    void tl_erfcx_f64(const double *x, double *out, Py_ssize_t n)
    void tl_gelu_f64(const double *x, double *out, Py_ssize_t n)
    void tl_gelu_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n)
    void tl_gelu_tanh_f64(const double *x, double *out, Py_ssize_t n)
    void tl_gelu_tanh_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n)
    void tl_silu_f64(const double *x, double *out, Py_ssize_t n)
    void tl_silu_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n)
    void tl_fmod_f64(const double *a, const double *b, Py_ssize_t bstride, double *out,
                     Py_ssize_t n)
    void tl_remainder_f64(const double *a, const double *b, Py_ssize_t bstride, double *out,
                          Py_ssize_t n)
    void tl_atan2_f64(const double *y, const double *x, double *out, Py_ssize_t n)
    void tl_hypot_f64(const double *a, const double *b, double *out, Py_ssize_t n)
    void tl_logaddexp_f64(const double *a, const double *b, double *out, Py_ssize_t n)
    void tl_rsqrt_f64(const double *x, double *out, Py_ssize_t n)
    void tl_logsigmoid_f64(const double *x, double *out, Py_ssize_t n)
    void tl_logsigmoid_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n)
    void tl_elu_f64(const double *x, double *out, Py_ssize_t n, double alpha)
    void tl_elu_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n,
                         double alpha)
    void tl_softplus_f64(const double *x, double *out, Py_ssize_t n, double beta,
                         double threshold)
    void tl_softplus_grad_f64(const double *g, const double *x, double *out, Py_ssize_t n,
                              double beta, double threshold)

# tensorlib's names of the float64 maps math_f64 runs, in _MATH64_KERNELS' order; from sign on
# they are fast (~0.3-1 ns an element), threaded from MAP_PAR_FAST, the rest from MAP_PAR_SLOW
MATH_F64 = ("exp", "log", "expm1", "log1p", "tanh", "sigmoid", "exp2", "log2", "sin", "cos",
            "tan", "sinh", "cosh", "asinh", "acosh", "atanh", "atan", "asin", "acos", "erf",
            "erfc", "erfcx", "sign", "rsqrt")
cdef unary_f64[24] _MATH64_KERNELS = [
    <unary_f64>tl_exp_f64, <unary_f64>tl_log_f64, <unary_f64>tl_expm1_f64,
    <unary_f64>tl_log1p_f64, <unary_f64>tl_tanh_f64, <unary_f64>tl_sigmoid_f64,
    <unary_f64>tl_exp2_f64, <unary_f64>tl_log2_f64, <unary_f64>tl_sin_f64,
    <unary_f64>tl_cos_f64, <unary_f64>tl_tan_f64, <unary_f64>tl_sinh_f64,
    <unary_f64>tl_cosh_f64, <unary_f64>tl_asinh_f64, <unary_f64>tl_acosh_f64,
    <unary_f64>tl_atanh_f64, <unary_f64>tl_atan_f64, <unary_f64>tl_asin_f64,
    <unary_f64>tl_acos_f64, <unary_f64>tl_erf_f64, <unary_f64>tl_erfc_f64,
    <unary_f64>tl_erfcx_f64, <unary_f64>tl_sign_f64, <unary_f64>tl_rsqrt_f64]
cdef Py_ssize_t _MATH_F64_FAST = MATH_F64.index("sign")


def math_f64(str name, const double[::1] x, double[::1] out):
    """out = name(x) of flat float64 arrays, ``name`` one of :data:`MATH_F64`, threaded when
    large: vector lanes, IEEE special values and subnormals kept; against long double, sin,
    cos and log2 within 0.75 ulp (sin, cos and tan by libm beyond |x| = 1e6), exp, exp2, log
    and expm1 within 1.2, atan 1.3, log1p and cosh 1.5, sinh 1.8, asinh, atanh and acos 2,
    tan 2.2, asin 2.3, acosh and sigmoid 2.5, tanh 3.1, erf 1.25, erfc 2.1 and erfcx 2.3
    (tests/kernels); sign is 0 at NaN (PyTorch's), rsqrt is 1 / sqrt(x) rounded twice."""
    cdef Py_ssize_t k = _map_index("math_f64", MATH_F64, name)
    cdef unary_f64 f = _MATH64_KERNELS[k]
    cdef Py_ssize_t par_min = MAP_PAR_FAST if k >= _MATH_F64_FAST else MAP_PAR_SLOW
    _same_length(name, x, out)
    with nogil:
        _map1(f, &x[0] if x.shape[0] else NULL, &out[0] if out.shape[0] else NULL,
                  x.shape[0], par_min)


# the names of math2_f64's maps, in _MATH2_64_KERNELS' order
MATH2_F64 = ("atan2", "hypot", "logaddexp")
cdef binary_f64[3] _MATH2_64_KERNELS = [<binary_f64>tl_atan2_f64, <binary_f64>tl_hypot_f64,
                                        <binary_f64>tl_logaddexp_f64]


def math2_f64(str name, const double[::1] a, const double[::1] b, double[::1] out):
    """out = name(a, b) of flat float64 arrays of one length, ``name`` one of
    :data:`MATH2_F64` (atan2 within 1.6 ulp, hypot 1.2, C99's values on the axes and at the
    infinities, signed zeros included; logaddexp NumPy's formula on vector lanes), threaded
    when large."""
    cdef binary_f64 f = _MATH2_64_KERNELS[_map_index("math2_f64", MATH2_F64, name)]
    _same_length(name, a, b, out)
    with nogil:
        _map2(f, &a[0] if a.shape[0] else NULL, &b[0] if b.shape[0] else NULL,
              &out[0] if out.shape[0] else NULL, out.shape[0], MAP_PAR_SLOW)


def fmod_into(const floating[::1] a, const floating[::1] b, floating[::1] out,
              bint remainder=False):
    """out = fmod(a, b) of flat float32 or float64 arrays, exactly (C's fmod: the sign of a),
    b of a's length or one element; ``remainder``: PyTorch's remainder, r + b where the
    nonzero r = fmod(a, b) and b differ in sign (rounded once), a zero keeping a's sign.
    Vector lanes while |a / b| < 2^26 (float32, in float64) or 2^52 (float64, by fma), else
    libm's fmod; threaded when large."""
    if floating is float:
        _pair_map("fmod_into", tl_remainder_f32 if remainder else tl_fmod_f32, a, b, out,
                  MAP_PAR_SLOW)
    else:
        _pair_map("fmod_into", tl_remainder_f64 if remainder else tl_fmod_f64, a, b, out,
                  MAP_PAR_SLOW)


cdef _act_grad(str name, binary_f32 f32, binary_f64 f64, const floating[::1] g,
               const floating[::1] y, floating[::1] out, Py_ssize_t par_min=MAP_PAR_FAST):
    # one activation backward of flat arrays of one length: chunks over threads from par_min
    # elements (float32; float64 from half as many)
    _same_length(name, g, y, out)
    cdef Py_ssize_t n = y.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            _map2(f32, &g[0], &y[0], &out[0], n, par_min)
        else:
            _map2(f64, &g[0], &y[0], &out[0], n, par_min >> 1)


def tanh_grad_into(const floating[::1] g, const floating[::1] y, floating[::1] out):
    """out = g (1 - y^2): tanh's backward at its output y, of flat float32 or float64 arrays,
    one pass."""
    _act_grad("tanh_grad_into", <binary_f32>tl_tanh_grad_f32, <binary_f64>tl_tanh_grad_f64,
              g, y, out)


def sigmoid_grad_into(const floating[::1] g, const floating[::1] y, floating[::1] out):
    """out = g y (1 - y): sigmoid's backward at its output y, of flat float32 or float64
    arrays, one pass."""
    _act_grad("sigmoid_grad_into", <binary_f32>tl_sigmoid_grad_f32,
              <binary_f64>tl_sigmoid_grad_f64, g, y, out)


def erfc_into(const floating[::1] x, floating[::1] out):
    """out = erfc(x), elementwise: float32 in float64 lanes (within 2.3 ulp, the tail's
    subnormals rounded once), float64 in vector lanes (within 2.1 ulp, _simd_f64.h);
    threaded from MAP_PAR_SLOW / 4."""
    _unary_map("erfc_into", tl_erfc_f32, tl_erfc_f64, x, out, MAP_PAR_SLOW >> 2)


def erfinv_into(const floating[::1] x, floating[::1] out):
    """out = erfinv(x), elementwise, in double (Halley steps on libm's erf and erfc; within
    ~3 ulp, float32 correctly rounded), ~0.1 us an element; threaded from MAP_PAR_SLOW / 4."""
    _unary_map("erfinv_into", tl_erfinv_f32, tl_erfinv_f64, x, out, MAP_PAR_SLOW >> 2)


def elu_into(const floating[::1] x, floating[::1] out, double alpha):
    """out = x above 0, else alpha expm1(x): ELU of flat float32 or float64 arrays in one
    pass."""
    _same_length("elu_into", x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_elu_f32(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), <float>alpha)
            else:
                tl_elu_f64(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), alpha)


def leaky_relu_f32(const float[::1] x, float[::1] out, double slope):
    """out = x above 0, else slope x, of flat float32 arrays (out may be x itself), threaded
    from 1M elements."""
    _same_length("leaky_relu_f32", x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            tl_leaky_relu_f32(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), <float>slope)


def leaky_relu_grad_f32(const float[::1] g, const float[::1] x, float[::1] out, double slope):
    """out = g where x > 0, else slope g: leaky ReLU's backward, of flat float32 arrays."""
    _same_length("leaky_relu_grad_f32", g, x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_FAST)):
            lo = i * MAP_CHUNK
            tl_leaky_relu_grad_f32(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo),
                                   <float>slope)


def elu_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out,
                  double alpha):
    """out = g alpha exp(x) where x <= 0, else g: ELU's backward, of flat float32 or float64
    arrays."""
    _same_length("elu_grad_into", g, x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_elu_grad_f32(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo),
                                <float>alpha)
            else:
                tl_elu_grad_f64(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo), alpha)


def softplus_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out,
                       double beta, double threshold):
    """out = g where beta x > threshold, else g sigmoid(beta x): softplus' backward, of flat
    float32 or float64 arrays."""
    _same_length("softplus_grad_into", g, x, out)
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_softplus_grad_f32(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo),
                                     <float>beta, <float>threshold)
            else:
                tl_softplus_grad_f64(&g[lo], &x[lo], &out[lo], min(MAP_CHUNK, n - lo),
                                     beta, threshold)


def softplus_into(const floating[::1] x, floating[::1] out, double beta, double threshold):
    """out = softplus(x) with PyTorch's beta and threshold, of flat float32 or float64 arrays
    in one pass (beta must not be 0)."""
    _same_length("softplus_into", x, out)
    if beta == 0:
        raise ValueError("softplus_into: beta must not be 0")
    cdef Py_ssize_t n = x.shape[0], i, lo
    with nogil:
        for i in prange(_n_chunks(n), schedule="static",
                        num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = i * MAP_CHUNK
            if floating is float:
                tl_softplus_f32(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), <float>beta,
                                <float>threshold)
            else:
                tl_softplus_f64(&x[lo], &out[lo], min(MAP_CHUNK, n - lo), beta, threshold)


def logsigmoid_into(const floating[::1] x, floating[::1] out):
    """out = log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), elementwise on vector lanes,
    threaded when large."""
    _same_length("logsigmoid_into", x, out)
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            _map1(<unary_f32>tl_logsigmoid_f32, &x[0], &out[0], n, MAP_PAR_SLOW)
        else:
            _map1(<unary_f64>tl_logsigmoid_f64, &x[0], &out[0], n, MAP_PAR_SLOW >> 2)


def logsigmoid_grad_into(const floating[::1] g, const floating[::1] x, floating[::1] out):
    """out = g sigmoid(-x): log-sigmoid's backward, of flat arrays of one length."""
    _same_length("logsigmoid_grad_into", g, x, out)
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            _map2(<binary_f32>tl_logsigmoid_grad_f32, &g[0], &x[0], &out[0], n, MAP_PAR_SLOW)
        else:
            _map2(<binary_f64>tl_logsigmoid_grad_f64, &g[0], &x[0], &out[0], n,
                  MAP_PAR_SLOW >> 2)


# ---- session 23: outer broadcasts and fused BCE ----
cdef extern from "_outer_binary.h" nogil:
    void tl_outer_arith_f32(int op, const float *col, const float *row, float *out,
                            Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t J, Py_ssize_t K)
    void tl_outer_arith_f64(int op, const double *col, const double *row, double *out,
                            Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t J, Py_ssize_t K)
    void tl_outer_cmp_f32(int op, const float *col, const float *row, unsigned char *out,
                          Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t J, Py_ssize_t K)
    void tl_outer_cmp_f64(int op, const double *col, const double *row, unsigned char *out,
                          Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t J, Py_ssize_t K)

# below this many output elements NumPy's broadcast loop costs about as much
DEF OUTER_MIN = 2048
# the op code with the operands exchanged (the kernel computes col op row)
_OUTER_SWAP = (0, 2, 1, 3, 5, 4, 7, 6, 9, 8, 10, 11, 14, 15, 12, 13)


def binary_kernel(fallback, int code, a, b):
    """``a op b`` for the CPU kernel of a binary op (code: _outer_binary.h's TL_OUT_*, an
    unswapped one): when a and b are float32 or float64 arrays of one dtype whose broadcast
    is an outer pattern (dims collapsing to a (I, 1, K) against b (1, J, K), either way
    round), _outer_binary.h's kernel, bit for bit NumPy's; anything else ``fallback(a, b)``.
    ValueError for a code outside TL_OUT_* or a non-native byte order (the kernel reads raw
    memory as the machine's float32/float64; a swapped code past the table would index it)."""
    if code < 0 or code >= len(_OUTER_SWAP):
        raise ValueError(f"binary_kernel: op code must be in [0, {len(_OUTER_SWAP)}), got {code}")
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return fallback(a, b)
    cdef cnp.ndarray x = a, y = b
    if not (cnp.PyArray_ISNOTSWAPPED(x) and cnp.PyArray_ISNOTSWAPPED(y)):
        raise ValueError(f"binary_kernel: arrays must be in native byte order, got "
                         f"{x.dtype.str} and {y.dtype.str}")
    cdef int tx = cnp.PyArray_TYPE(x), nx = x.ndim, ny = y.ndim
    if (nx == 0 or ny == 0 or tx != cnp.PyArray_TYPE(y)
            or (tx != cnp.NPY_FLOAT32 and tx != cnp.NPY_FLOAT64)):
        return fallback(a, b)
    cdef int nd = max(nx, ny), d, kind, first = 0, stage = 0
    cdef cnp.npy_intp *dx = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *dy = cnp.PyArray_DIMS(y)
    cdef Py_ssize_t p, q, I = 1, J = 1, K = 1
    # stage 1: dims where only the first group's operand varies; 2: the other's; 3: both
    for d in range(nd):
        p = dx[d - (nd - nx)] if d >= nd - nx else 1
        q = dy[d - (nd - ny)] if d >= nd - ny else 1
        if p == q:
            if p == 1:
                continue
            kind = 3
        elif q == 1:
            kind = 1
        elif p == 1:
            kind = 2
        else:
            return fallback(a, b)       # (NumPy's error for shapes that do not broadcast)
        if kind == 3:
            if stage < 2:
                return fallback(a, b)
            stage = 3
            K *= p
        elif stage == 0:
            first, stage = kind, 1
            I *= max(p, q)
        elif kind == first:
            if stage != 1:
                return fallback(a, b)
            I *= max(p, q)
        elif stage <= 2:
            stage = 2
            J *= max(p, q)
        else:
            return fallback(a, b)
    if stage < 2 or I * J * K < OUTER_MIN:
        return fallback(a, b)
    cdef bint swap = first == 2
    col_a = np.ascontiguousarray((y if swap else x).reshape(I, K))
    row_a = np.ascontiguousarray((x if swap else y).reshape(J, K))
    if swap:
        code = _OUTER_SWAP[code]
    shape = np.broadcast_shapes(a.shape, b.shape)
    cdef bint cmp = code >= 10
    out = np.empty(shape, np.bool_ if cmp else x.dtype)
    cdef void *cp = cnp.PyArray_DATA(col_a)
    cdef void *rp = cnp.PyArray_DATA(row_a)
    cdef void *op_ = cnp.PyArray_DATA(out)
    cdef Py_ssize_t step = max(1, MAP_CHUNK // (J * K)), nt = (I + step - 1) // step, t, i0
    cdef bint f32 = tx == cnp.NPY_FLOAT32
    with nogil:
        for t in prange(nt, schedule="static",
                        num_threads=_map_threads(I * J * K, MAP_PAR_FAST)):
            i0 = t * step
            if cmp and f32:
                tl_outer_cmp_f32(code, <const float *>cp, <const float *>rp,
                                 <unsigned char *>op_, i0, min(I, i0 + step), J, K)
            elif cmp:
                tl_outer_cmp_f64(code, <const double *>cp, <const double *>rp,
                                 <unsigned char *>op_, i0, min(I, i0 + step), J, K)
            elif f32:
                tl_outer_arith_f32(code, <const float *>cp, <const float *>rp,
                                   <float *>op_, i0, min(I, i0 + step), J, K)
            else:
                tl_outer_arith_f64(code, <const double *>cp, <const double *>rp,
                                   <double *>op_, i0, min(I, i0 + step), J, K)
    return out


cdef extern from "_fused_pointwise.h" nogil:
    double tl_bcel_rows_f32(const float *x, const float *y, const float *w, Py_ssize_t wstep,
                            const float *pw, Py_ssize_t pstep, float *out, Py_ssize_t rows,
                            Py_ssize_t P)
    double tl_bcel_rows_f64(const double *x, const double *y, const double *w,
                            Py_ssize_t wstep, const double *pw, Py_ssize_t pstep, double *out,
                            Py_ssize_t rows, Py_ssize_t P)
    void tl_bcel_grad_rows_f32(const float *g, int gs, const float *x, const float *y,
                               const float *w, Py_ssize_t wstep, const float *pw,
                               Py_ssize_t pstep, float *out, Py_ssize_t rows, Py_ssize_t P,
                               float k)
    void tl_bcel_grad_rows_f64(const double *g, int gs, const double *x, const double *y,
                               const double *w, Py_ssize_t wstep, const double *pw,
                               Py_ssize_t pstep, double *out, Py_ssize_t rows, Py_ssize_t P,
                               double k)


cdef Py_ssize_t _bcel_step(str name, Py_ssize_t n, Py_ssize_t P, v) except -1:
    if v is None or (P and v.shape[0] == P):
        return 0
    if v.shape[0] == n:
        return P if P else n
    raise ValueError(f"{name}: weights of length {v.shape[0]} for {n} elements with period "
                     f"{P}")


cdef Py_ssize_t _bcel_check(str name, Py_ssize_t n, Py_ssize_t ny, Py_ssize_t P, w, pw,
                            Py_ssize_t *wstep, Py_ssize_t *pstep) except -1:
    """The task step (elements) after checking lengths; w / pw step a row (0 or P)."""
    if ny != n:
        raise ValueError(f"{name}: x and y differ in length")
    if P < 0 or (P and n % P):
        raise ValueError(f"{name}: the period {P} does not divide the length {n}")
    wstep[0] = _bcel_step(name, n, P, w)
    pstep[0] = _bcel_step(name, n, P, pw)
    return P * max(1, MAP_CHUNK // P) if P else MAP_CHUNK


def bce_logits(const floating[::1] x, const floating[::1] y, w, pw, Py_ssize_t P, out):
    """binary_cross_entropy_with_logits of flat x, y (one dtype), PyTorch's formula, with a
    weight ``w`` and a pos_weight ``pw`` (None, x's length, or P long: one row of P repeated
    over x's rows of P elements; P = 0 when nothing repeats). ``out`` (x's length) gets the
    values; out None: returns their sum (a float) without writing them."""
    cdef Py_ssize_t n = x.shape[0], wstep, pstep, t, lo, m, rows, p
    cdef Py_ssize_t step = _bcel_check("bce_logits", n, y.shape[0], P, w, pw, &wstep, &pstep)
    cdef const floating[::1] wv = w
    cdef const floating[::1] pv = pw
    cdef floating[::1] ov = out
    if out is not None and ov.shape[0] != n:
        raise ValueError("bce_logits: out must have x's length")
    if n == 0:
        return 0.0
    cdef const floating *wp = &wv[0] if w is not None else NULL
    cdef const floating *pp = &pv[0] if pw is not None else NULL
    cdef floating *outp = &ov[0] if out is not None else NULL
    cdef Py_ssize_t nt = (n + step - 1) // step
    part_a = np.zeros(nt, np.float64)
    cdef double[::1] part = part_a
    with nogil:
        for t in prange(nt, schedule="static", num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = t * step
            m = min(step, n - lo)
            rows = m // P if P else 1
            p = P if P else m
            if floating is float:
                part[t] = tl_bcel_rows_f32(&x[lo], &y[lo],
                                           wp + (lo if wstep else 0) if wp else NULL,
                                           wstep, pp + (lo if pstep else 0) if pp else NULL,
                                           pstep, outp + lo if outp else NULL, rows, p)
            else:
                part[t] = tl_bcel_rows_f64(&x[lo], &y[lo],
                                           wp + (lo if wstep else 0) if wp else NULL,
                                           wstep, pp + (lo if pstep else 0) if pp else NULL,
                                           pstep, outp + lo if outp else NULL, rows, p)
    return float(part_a.sum())


def bce_logits_grad_into(const floating[::1] g, const floating[::1] x, const floating[::1] y,
                         w, pw, Py_ssize_t P, floating[::1] out, double k):
    """out = k g w (lw sigmoid(x) - pw y), lw = 1 + (pw - 1) y (sigmoid(x) - y without pw):
    bce_logits' backward; g of length 1 or x's, w / pw as bce_logits takes them."""
    cdef Py_ssize_t n = x.shape[0], wstep, pstep, t, lo, m, rows, p
    cdef Py_ssize_t step = _bcel_check("bce_logits_grad_into", n, y.shape[0], P, w, pw,
                                       &wstep, &pstep)
    cdef int gs = g.shape[0] != 1
    if (gs and g.shape[0] != n) or out.shape[0] != n:
        raise ValueError("bce_logits_grad_into: g must have length 1 or x's, out x's")
    cdef const floating[::1] wv = w
    cdef const floating[::1] pv = pw
    if n == 0:
        return
    cdef const floating *wp = &wv[0] if w is not None else NULL
    cdef const floating *pp = &pv[0] if pw is not None else NULL
    cdef Py_ssize_t nt = (n + step - 1) // step
    with nogil:
        for t in prange(nt, schedule="static", num_threads=_map_threads(n, MAP_PAR_SLOW)):
            lo = t * step
            m = min(step, n - lo)
            rows = m // P if P else 1
            p = P if P else m
            if floating is float:
                tl_bcel_grad_rows_f32(&g[lo * gs], gs, &x[lo], &y[lo],
                                      wp + (lo if wstep else 0) if wp else NULL, wstep,
                                      pp + (lo if pstep else 0) if pp else NULL, pstep,
                                      &out[lo], rows, p, <float>k)
            else:
                tl_bcel_grad_rows_f64(&g[lo * gs], gs, &x[lo], &y[lo],
                                      wp + (lo if wstep else 0) if wp else NULL, wstep,
                                      pp + (lo if pstep else 0) if pp else NULL, pstep,
                                      &out[lo], rows, p, k)
