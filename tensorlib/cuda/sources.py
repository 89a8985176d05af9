"""CUDA C++ sources of tensorlib's GPU kernels, as plain strings.

Each ``Source`` is compiled once per device by CuPy (``RawModule`` with
``name_expressions`` for the template instances it needs). The same strings are
compile-checked through NVRTC or nvcc by ``tests/cuda/test_cuda_kernels_compile.py``
on machines without a GPU, so a broken kernel fails CI everywhere.

The sources include no headers (NVRTC provides the device math functions), so
they compile the same way under every CUDA toolkit CuPy may use. Kernels are
templates over ``T`` in {float, double}; float16 inputs are widened to float32
by the Python wrappers, which keeps the accumulations accurate.
"""
from __future__ import annotations

from dataclasses import dataclass

FLOAT_TYPES = ("float", "double")


@dataclass(frozen=True)
class Source:
    name: str
    code: str
    names: tuple[str, ...]      # template instances (NVRTC name expressions)


COMMON = r"""
typedef long long i64;

template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double neg_inf<double>() {
    return __longlong_as_double(0xfff0000000000000LL);
}

template <typename T> __device__ __forceinline__ T qnan();
template <> __device__ __forceinline__ float qnan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double qnan<double>() {
    return __longlong_as_double(0x7ff8000000000000LL);
}

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Block-wide reductions; every thread of the block must call them. sh holds 32 T.
template <typename T> __device__ T block_sum(T v, T* sh) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : T(0);
    if (w == 0) v = warp_sum(v);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    T r = sh[0];
    __syncthreads();
    return r;
}
template <typename T> __device__ T block_max(T v, T* sh) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : neg_inf<T>();
    if (w == 0) v = warp_max(v);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    T r = sh[0];
    __syncthreads();
    return r;
}
"""

# --- softmax, log-softmax, fused softmax cross-entropy (rows of a C-contiguous matrix) ---
SOFTMAX = Source("softmax", COMMON + r"""
// One block per row. LOG selects log-softmax. A row whose max is not finite is
// shifted by 0 instead (so an all -inf row gives NaN like the NumPy reference).
template <typename T, int LOG>
__global__ void softmax_fwd(const T* __restrict__ x, T* __restrict__ y, i64 rows, i64 cols) {
    __shared__ T sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T m = neg_inf<T>();
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) m = fmax(m, xr[j]);
        m = block_max(m, sh);
        if (!isfinite(m)) m = T(0);
        T s = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) s += exp(xr[j] - m);
        s = block_sum(s, sh);
        if (LOG) {
            const T lse = m + log(s);
            for (i64 j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = xr[j] - lse;
        } else {
            const T inv = T(1) / s;
            for (i64 j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = exp(xr[j] - m) * inv;
        }
    }
}

// Softmax backward from the output: gx = y * (g - sum(g * y));
// log-softmax: gx = g - exp(y) * sum(g).
template <typename T, int LOG>
__global__ void softmax_bwd(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx,
                            i64 rows, i64 cols) {
    __shared__ T sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* yr = y + r * cols;
        const T* gr = g + r * cols;
        T* out = gx + r * cols;
        T s = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) s += LOG ? gr[j] : gr[j] * yr[j];
        s = block_sum(s, sh);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x)
            out[j] = LOG ? gr[j] - exp(yr[j]) * s : yr[j] * (gr[j] - s);
    }
}

// Fused cross-entropy: loss[r] = logsumexp(x[r]) - x[r, label[r]] (0 where label ==
// ignore_index), lse[r] saved for the backward. A label outside [0, cols) that is not
// ignore_index is never read through: its row's loss is NaN (no host-side range check on
// the GPU: that would synchronise the stream on every call).
template <typename T>
__global__ void xent_fwd(const T* __restrict__ x, const i64* __restrict__ label, i64 lstride,
                         T* __restrict__ loss, T* __restrict__ lse, i64 rows, i64 cols,
                         i64 ignore_index) {
    __shared__ T sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T m = neg_inf<T>();
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) m = fmax(m, xr[j]);
        m = block_max(m, sh);
        if (!isfinite(m)) m = T(0);
        T s = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) s += exp(xr[j] - m);
        s = block_sum(s, sh);
        if (threadIdx.x == 0) {
            const T l = m + log(s);
            const i64 t = label[r * lstride];
            lse[r] = l;
            loss[r] = (t == ignore_index) ? T(0)
                      : (t < 0 || t >= cols) ? qnan<T>() : l - xr[t];
        }
    }
}

// gx[r, j] = gloss[r] * (softmax(x[r])[j] - (j == label[r])), 0 on ignored rows.
template <typename T>
__global__ void xent_bwd(const T* __restrict__ x, const i64* __restrict__ label, i64 lstride,
                         const T* __restrict__ lse, const T* __restrict__ gloss,
                         T* __restrict__ gx, i64 rows, i64 cols, i64 ignore_index) {
    const i64 n = rows * cols;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / cols, j = i - r * cols;
        const i64 t = label[r * lstride];
        if (t == ignore_index) { gx[i] = T(0); continue; }
        if (t < 0 || t >= cols) { gx[i] = qnan<T>(); continue; }
        const T p = exp(x[i] - lse[r]);
        gx[i] = gloss[r] * (p - (j == t ? T(1) : T(0)));
    }
}

// cross_entropy's first-order backward in one pass, one block per row:
// gx[r, j] = (softmax(x[r])[j] - (j == tc)) * valid[r] * g[r * gstride] (/ the count of
// valid rows for 'mean': *denom, or counted by each block when COUNT, which saves the host
// three launches for a few rows), tc = label or 0 on ignored rows (as the generic op); NaN
// rows for out-of-range labels.
template <typename T, int COUNT>
__global__ void xent_grad(const T* __restrict__ x, const i64* __restrict__ label, i64 lstride,
                          const T* __restrict__ g, i64 gstride, const T* __restrict__ denom,
                          T* __restrict__ gx, i64 rows, i64 cols, i64 ignore_index) {
    __shared__ T sh[32];
    T n_valid = T(1);
    if (COUNT) {
        T n = T(0);
        for (i64 r = threadIdx.x; r < rows; r += blockDim.x)
            n += label[r * lstride] != ignore_index ? T(1) : T(0);
        n_valid = block_sum(n, sh);
    }
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T* out = gx + r * cols;
        const i64 t = label[r * lstride];
        const bool valid = t != ignore_index;
        if (valid && (t < 0 || t >= cols)) {
            for (i64 j = threadIdx.x; j < cols; j += blockDim.x) out[j] = qnan<T>();
            continue;
        }
        const i64 tc = valid ? t : 0;
        T scale = (valid ? T(1) : T(0)) * g[r * gstride];
        if (denom && valid) scale = scale / denom[0];   // all rows ignored: 0, not 0/0
        if (COUNT && valid) scale = scale / n_valid;
        T m = neg_inf<T>();
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) m = fmax(m, xr[j]);
        m = block_max(m, sh);
        if (!isfinite(m)) m = T(0);
        T s = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) s += exp(xr[j] - m);
        s = block_sum(s, sh);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x)
            out[j] = (exp(xr[j] - m) / s - (j == tc ? T(1) : T(0))) * scale;
    }
}

// out[0] = the sum of loss over the rows whose label is not ignore_index, divided by their
// count when MEAN (0/0 = NaN, as PyTorch, when every row is ignored). One block: the host
// launches one kernel where sum, compare, count and divide were four.
template <typename T, int MEAN>
__global__ void xent_reduce(const T* __restrict__ loss, const i64* __restrict__ label,
                            i64 lstride, T* __restrict__ out, i64 rows, i64 ignore_index) {
    __shared__ T sh[32];
    T s = T(0), n = T(0);
    for (i64 r = threadIdx.x; r < rows; r += blockDim.x) {
        if (label[r * lstride] != ignore_index) { s += loss[r]; n += T(1); }
    }
    s = block_sum(s, sh);
    if (MEAN) n = block_sum(n, sh);
    if (threadIdx.x == 0) out[0] = MEAN ? s / n : s;
}
""", tuple(f"softmax_fwd<{t},{k}>" for t in FLOAT_TYPES for k in (0, 1))
    + tuple(f"softmax_bwd<{t},{k}>" for t in FLOAT_TYPES for k in (0, 1))
    + tuple(f"xent_fwd<{t}>" for t in FLOAT_TYPES)
    + tuple(f"xent_grad<{t},{c}>" for t in FLOAT_TYPES for c in (0, 1))
    + tuple(f"xent_bwd<{t}>" for t in FLOAT_TYPES)
    + tuple(f"xent_reduce<{t},{m}>" for t in FLOAT_TYPES for m in (0, 1)))

# --- bias + activation, activation backward -----------------------------------------------
ACTS = {"none": 0, "relu": 1, "tanh": 2, "sigmoid": 3, "gelu_tanh": 4, "gelu": 5}

ACTIVATION = Source("activation", r"""
typedef long long i64;

template <typename T, int ACT> __device__ __forceinline__ T act(T v) {
    if (ACT == 1) return v > T(0) ? v : T(0);
    if (ACT == 2) return tanh(v);
    if (ACT == 3) {                       // overflow-free logistic
        const T e = exp(-fabs(v));
        return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
    if (ACT == 4) {
        const T k = T(0.7978845608028654);
        return T(0.5) * v * (T(1) + tanh(k * (v + T(0.044715) * v * v * v)));
    }
    // Phi(v) as erfc(-v / sqrt 2) / 2: 1 + erf(.) cancels in the left tail
    if (ACT == 5) return T(0.5) * v * erfc(v * T(-0.7071067811865476));
    return v;
}

// y[i] = act(x[i] + b[(i / inner) % C]): a bias along the last axis (inner = 1) or the
// channel axis of NCHW (inner = H * W).
template <typename T, int ACT>
__global__ void bias_act(const T* __restrict__ x, const T* __restrict__ b, T* __restrict__ y,
                         i64 n, i64 inner, i64 C) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x)
        y[i] = act<T, ACT>(x[i] + b[(i / inner) % C]);
}

// y[i] += b[(i / inner) % C] in place: a linear layer's bias after its GEMM (one launch with
// no second buffer, where a broadcasting ufunc costs the host twice as much).
template <typename T>
__global__ void add_bias_(T* __restrict__ y, const T* __restrict__ b, i64 n, i64 inner, i64 C) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x)
        y[i] += b[(i / inner) % C];
}

// out[j] = sum over r of x[r, j] for a C-contiguous (rows, cols) matrix (a bias gradient):
// blocks of 32 columns x 8 row phases, each thread a strided run of rows, then a fixed-order
// sum of the 8 partials (deterministic; coalesced reads along the rows). With acc != 0 the
// sums are added into out (and into out2 when it is not null): the backward pass's running
// sums of two biases that share one gradient (an LSTM's b_ih and b_hh).
template <typename T>
__global__ void col_sum(const T* __restrict__ x, T* out, T* out2, i64 rows, i64 cols,
                        i64 acc) {
    __shared__ T part[8][33];
    const i64 j = (i64)blockIdx.x * 32 + threadIdx.x;
    T s = T(0);
    if (j < cols)
        for (i64 r = threadIdx.y; r < rows; r += 8) s += x[r * cols + j];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
        T t = part[0][threadIdx.x];
        for (int k = 1; k < 8; ++k) t += part[k][threadIdx.x];
        if (acc) {
            out[j] += t;
            if (out2) out2[j] += t;
        } else {
            out[j] = t;
        }
    }
}

// y[i] = act(x[i]) (sigmoid: one pass instead of CuPy's exp/abs/where/divide chain).
template <typename T, int ACT>
__global__ void act_fwd(const T* __restrict__ x, T* __restrict__ y, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x)
        y[i] = act<T, ACT>(x[i]);
}

// Gradient of act at its output y (relu, tanh, sigmoid) or input x (gelus).
template <typename T, int ACT>
__global__ void act_bwd(const T* __restrict__ g, const T* __restrict__ v, T* __restrict__ gx,
                        i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x) {
        const T a = v[i];
        T d;
        if (ACT == 1) { gx[i] = a <= T(0) ? T(0) : g[i]; continue; }  // NaN passes g (torch)
        if (ACT == 2) d = T(1) - a * a;
        else if (ACT == 3) d = a * (T(1) - a);
        else if (ACT == 4) {
            const T k = T(0.7978845608028654);
            const T t = tanh(k * (a + T(0.044715) * a * a * a));
            d = T(0.5) * (T(1) + t) + T(0.5) * a * (T(1) - t * t) * k *
                (T(1) + T(3) * T(0.044715) * a * a);
        } else if (ACT == 5) {
            d = T(0.5) * erfc(a * T(-0.7071067811865476)) +
                a * exp(T(-0.5) * a * a) * T(0.3989422804014327);
        } else d = T(1);
        gx[i] = g[i] * d;
    }
}
""", tuple(f"bias_act<{t},{a}>" for t in FLOAT_TYPES for a in ACTS.values())
    + tuple(f"add_bias_<{t}>" for t in FLOAT_TYPES)
    + tuple(f"col_sum<{t}>" for t in FLOAT_TYPES)
    + tuple(f"act_fwd<{t},{a}>" for t in FLOAT_TYPES for a in ACTS.values())
    + tuple(f"act_bwd<{t},{a}>" for t in FLOAT_TYPES for a in ACTS.values()))

# --- same-shape binary arithmetic with 16-byte loads/stores (bandwidth-bound ops) ----------
BINOPS = {"add": 0, "sub": 1, "mul": 2}

BINARY = Source("binary", r"""
typedef long long i64;

template <typename T> struct Vec;
template <> struct Vec<float> { typedef float4 type; };
template <> struct Vec<double> { typedef double2 type; };

template <int OP, typename T> __device__ __forceinline__ T bop(T a, T b) {
    return OP == 0 ? a + b : (OP == 1 ? a - b : a * b);
}
template <int OP> __device__ __forceinline__ float4 vop(float4 a, float4 b) {
    return make_float4(bop<OP>(a.x, b.x), bop<OP>(a.y, b.y), bop<OP>(a.z, b.z),
                       bop<OP>(a.w, b.w));
}
template <int OP> __device__ __forceinline__ double2 vop(double2 a, double2 b) {
    return make_double2(bop<OP>(a.x, b.x), bop<OP>(a.y, b.y));
}

// c = a OP b on n contiguous elements, all three 16-byte aligned: nv = n / W vectors
// through 16-byte loads/stores (grid-stride), the n % W tail element by element.
template <typename T, int OP>
__global__ void binary_vec(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ c,
                           i64 n) {
    typedef typename Vec<T>::type V;
    const int W = sizeof(V) / sizeof(T);
    const i64 nv = n / W;
    const V* __restrict__ av = reinterpret_cast<const V*>(a);
    const V* __restrict__ bv = reinterpret_cast<const V*>(b);
    V* __restrict__ cv = reinterpret_cast<V*>(c);
    const i64 stride = (i64)gridDim.x * blockDim.x;
    const i64 start = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    for (i64 i = start; i < nv; i += stride) cv[i] = vop<OP>(av[i], bv[i]);
    for (i64 i = nv * W + start; i < n; i += stride) c[i] = bop<OP>(a[i], b[i]);
}
""", tuple(f"binary_vec<{t},{o}>" for t in FLOAT_TYPES for o in BINOPS.values()))

# --- im2col / col2im (NCHW), the layout of tensorlib.ops.nn_conv -------------------------
# I is the index type: int when every index fits (the wrappers check), else long long.
# 64-bit integer division costs tens of instructions on a GPU, and these kernels divide
# several times per element: with long long throughout, W3's im2col ran at a few percent
# of memory bandwidth.
CONV = Source("conv", r"""
// col[(c*KH + ki)*KW + kj, (n*OH + oh)*OW + ow] = x[n, c, oh*SH - PT + ki*DH, ow*SW - PL + kj*DW]
// (0 outside the image): a (C*KH*KW, N*OH*OW) matrix. blockIdx.y walks the rows k and
// blockIdx.z the images n, so (c, ki, kj) is worked out once per row and the only division
// per element is oh = p / OW; threads along a plane write consecutive columns.
template <typename T, typename I>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ col, I N, I C, I H, I W,
                       int KH, int KW, int SH, int SW, int PT, int PL, int DH, int DW,
                       I OH, I OW) {
    const I P = OH * OW, L = N * P, K = C * KH * KW;
    for (I k = blockIdx.y; k < K; k += gridDim.y) {
        const I kj = k % KW, ki = (k / KW) % KH, c = k / ((I)KH * KW);
        const I h0 = ki * DH - PT, w0 = kj * DW - PL;
        for (I n = blockIdx.z; n < N; n += gridDim.z) {
            const T* __restrict__ xc = x + (n * C + c) * H * W;
            T* __restrict__ row = col + k * L + n * P;
            for (I p = (I)blockIdx.x * blockDim.x + threadIdx.x; p < P;
                 p += (I)gridDim.x * blockDim.x) {
                const I oh = p / OW, ow = p - oh * OW;
                const I h = oh * SH + h0, w = ow * SW + w0;
                row[p] = (h >= 0 && h < H && w >= 0 && w < W) ? xc[h * W + w] : T(0);
            }
        }
    }
}

// The adjoint of im2col: each input pixel sums the col entries that read it (a gather,
// so no atomics and a deterministic result). One thread per element of x.
template <typename T, typename I>
__global__ void col2im(const T* __restrict__ col, T* __restrict__ x, I N, I C, I H, I W,
                       int KH, int KW, int SH, int SW, int PT, int PL, int DH, int DW,
                       I OH, I OW) {
    const I L = N * OH * OW, n_all = N * C * H * W;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n_all;
         i += (I)gridDim.x * blockDim.x) {
        const I w = i % W, t0 = i / W, h = t0 % H, t1 = t0 / H, c = t1 % C, n = t1 / C;
        T acc = T(0);
        for (int ki = 0; ki < KH; ++ki) {
            const I th = h + PT - (I)ki * DH;
            if (th < 0) break;                    // th only falls as ki grows
            if (SH != 1 && th % SH) continue;
            const I oh = th / SH;
            if (oh >= OH) continue;
            const T* __restrict__ crow = col + ((c * KH + ki) * KW) * L + (n * OH + oh) * OW;
            for (int kj = 0; kj < KW; ++kj) {
                const I tw = w + PL - (I)kj * DW;
                if (tw < 0) break;
                if (SW != 1 && tw % SW) continue;
                const I ow = tw / SW;
                if (ow >= OW) continue;
                acc += crow[(I)kj * L + ow];
            }
        }
        x[i] = acc;
    }
}
""", tuple(f"{k}<{t},{i}>" for k in ("im2col", "col2im") for t in FLOAT_TYPES
           for i in ("int", "long long")))

# --- pooling ---------------------------------------------------------------------------------
POOL = Source("pool", COMMON + r"""
// Max pooling over NCHW planes; argmax is the flat index h*W + w inside the input plane
// (padding counts as -inf, so it is never chosen unless a window is all padding).
template <typename T>
__global__ void maxpool2d_fwd(const T* __restrict__ x, T* __restrict__ y, i64* __restrict__ arg,
                              i64 NC, i64 H, i64 W, int KH, int KW, int SH, int SW, int PH,
                              int PW, int DH, int DW, i64 OH, i64 OW) {
    const i64 n_all = NC * OH * OW;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n_all;
         i += (i64)gridDim.x * blockDim.x) {
        const i64 ow = i % OW, oh = (i / OW) % OH, p = i / (OW * OH);
        const T* xp = x + p * H * W;
        T best = neg_inf<T>();
        i64 bi = -1;
        for (int ki = 0; ki < KH; ++ki) {
            const i64 h = oh * SH - PH + (i64)ki * DH;
            if (h < 0 || h >= H) continue;
            for (int kj = 0; kj < KW; ++kj) {
                const i64 w = ow * SW - PW + (i64)kj * DW;
                if (w < 0 || w >= W) continue;
                const T v = xp[h * W + w];
                // the first maximum wins; a NaN wins over numbers and then stays
                if (bi < 0 || v > best || (isnan(v) && !isnan(best))) { best = v; bi = h * W + w; }
            }
        }
        y[i] = best;
        arg[i] = bi < 0 ? 0 : bi;
    }
}

// gx (zeroed by the caller) += g scattered to the argmax positions (out-of-range ones skipped).
template <typename T>
__global__ void maxpool2d_bwd(const T* __restrict__ g, const i64* __restrict__ arg,
                              T* __restrict__ gx, i64 NC, i64 HW, i64 L) {
    const i64 n_all = NC * L;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n_all;
         i += (i64)gridDim.x * blockDim.x)
    {
        const i64 a = arg[i];
        if (a >= 0 && a < HW) atomicAdd(gx + (i / L) * HW + a, g[i]);   // never write outside
    }
}
""", tuple(f"{k}<{t}>" for k in ("maxpool2d_fwd", "maxpool2d_bwd") for t in FLOAT_TYPES))

# --- layer norm over the last axis -------------------------------------------------------------
NORM = Source("norm", COMMON + r"""
// One block per row: mean and 1/std (biased variance, two-pass for accuracy), then
// y = (x - mean) * rstd * w + b (w, b may be null).
template <typename T>
__global__ void layernorm_fwd(const T* __restrict__ x, const T* __restrict__ w,
                              const T* __restrict__ b, T* __restrict__ y, T* __restrict__ mean,
                              T* __restrict__ rstd, i64 rows, i64 cols, T eps) {
    __shared__ T sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T s = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
        const T mu = block_sum(s, sh) / T(cols);
        T q = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) { const T d = xr[j] - mu; q += d * d; }
        const T rs = T(1) / sqrt(block_sum(q, sh) / T(cols) + eps);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) {
            T v = (xr[j] - mu) * rs;
            if (w) v *= w[j];
            if (b) v += b[j];
            y[r * cols + j] = v;
        }
        if (threadIdx.x == 0) { mean[r] = mu; rstd[r] = rs; }
    }
}

// gx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)) with gw = g * w (w may be null),
// plus (gmean - grstd * rstd^2 * xhat) / cols when the statistics, outputs of the op too,
// have gradients (gmean, grstd: one per row, may be null).
template <typename T>
__global__ void layernorm_bwd(const T* __restrict__ x, const T* __restrict__ g,
                              const T* __restrict__ w, const T* __restrict__ mean,
                              const T* __restrict__ rstd, const T* __restrict__ gmean,
                              const T* __restrict__ grstd, T* __restrict__ gx, i64 rows,
                              i64 cols) {
    __shared__ T sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        const T* gr = g + r * cols;
        const T mu = mean[r], rs = rstd[r];
        T a = T(0), c = T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) {
            const T gw = w ? gr[j] * w[j] : gr[j];
            a += gw;
            c += gw * (xr[j] - mu) * rs;
        }
        a = block_sum(a, sh) / T(cols);
        c = block_sum(c, sh) / T(cols);
        const T gm = gmean ? gmean[r] / T(cols) : T(0);
        const T gs = grstd ? grstd[r] * rs * rs / T(cols) : T(0);
        for (i64 j = threadIdx.x; j < cols; j += blockDim.x) {
            const T gw = w ? gr[j] * w[j] : gr[j];
            const T xh = (xr[j] - mu) * rs;
            gx[r * cols + j] = rs * (gw - a - xh * c) + gm - gs * xh;
        }
    }
}
""", tuple(f"{k}<{t}>" for k in ("layernorm_fwd", "layernorm_bwd") for t in FLOAT_TYPES))

# --- embedding backward ---------------------------------------------------------------------------
EMBEDDING = Source("embedding", COMMON + r"""

// idx[r * istride] is row r's index: a strided column of an index matrix (x[:, t] in a
// recurrent loop) is read in place, with no copy kernel before each call.
// gw (zeroed by the caller) [idx[i], :] += g[i, :]; rows equal to padding_idx, and indices
// outside [0, V), are skipped.
template <typename T>
__global__ void embedding_bwd(const i64* __restrict__ idx, i64 istride, const T* __restrict__ g,
                              T* __restrict__ gw, i64 n, i64 D, i64 padding_idx, i64 V) {
    const i64 n_all = n * D;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n_all;
         i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / D, j = i - r * D, t = idx[r * istride];
        if (t != padding_idx && t >= 0 && t < V) atomicAdd(gw + t * D + j, g[i]);
    }
}

// out[i, :] = w[idx[i], :], or NaN for an index outside [0, V): the range is checked here,
// on the device, as a gather and a select in one pass.
template <typename T>
__global__ void embedding_fwd(const i64* __restrict__ idx, i64 istride, const T* __restrict__ w,
                              T* __restrict__ out, i64 n, i64 D, i64 V) {
    const i64 n_all = n * D;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n_all;
         i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / D, j = i - r * D, t = idx[r * istride];
        out[i] = (t >= 0 && t < V) ? w[t * D + j] : qnan<T>();
    }
}
""", tuple(f"embedding_{d}<{t}>" for d in ("bwd", "fwd") for t in FLOAT_TYPES))

# --- scatter max/min ------------------------------------------------------------------------------
SCATTER = Source("scatter", COMMON + r"""
template <typename T> struct Bits;
template <> struct Bits<float> {
    typedef unsigned int U;
    static __device__ __forceinline__ U of(float x) { return __float_as_uint(x); }
    static __device__ __forceinline__ float value(U u) { return __uint_as_float(u); }
};
template <> struct Bits<double> {
    typedef unsigned long long U;
    static __device__ __forceinline__ U of(double x) { return (U)__double_as_longlong(x); }
    static __device__ __forceinline__ double value(U u) { return __longlong_as_double((i64)u); }
};

// out[lin[i]] = maximum (MAX) or minimum of itself and v[i], for every i at once. A
// compare-and-swap loop on the value's bits: the result is exactly one of the values (the
// gradient's ties are found by equality), and NaN wins, as NumPy's maximum/minimum. A
// target outside [0, size) is skipped (never a write outside out).
template <typename T, bool MAX>
__global__ void scatter_extreme(const i64* __restrict__ lin, const T* __restrict__ v,
                                T* out, i64 n, i64 size) {
    typedef typename Bits<T>::U U;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x) {
        const T x = v[i];
        const i64 t = lin[i];
        if (t < 0 || t >= size) continue;
        U* p = reinterpret_cast<U*>(out + t);
        U old = *p;
        while (true) {
            const T cur = Bits<T>::value(old);
            const bool wins = isnan(x) ? !isnan(cur)
                                       : (!isnan(cur) && (MAX ? x > cur : x < cur));
            if (!wins) break;
            const U seen = atomicCAS(p, old, Bits<T>::of(x));
            if (seen == old) break;
            old = seen;
        }
    }
}
""", tuple(f"scatter_extreme<{t}, {m}>" for t in FLOAT_TYPES for m in ("true", "false")))

# --- LSTM cell (gate order i, f, g, o as in PyTorch) ---------------------------------------------
LSTM = Source("lstm", r"""
typedef long long i64;

template <typename T> __device__ __forceinline__ T sigm(T v) {
    const T e = exp(-fabs(v));
    return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// gates: (B, 4H) pre-activations, plus hg (B, 4H), b1 and b2 (4H) where not null (the
// hidden projection and the two biases, added in the CPU's order); c0: (B, H). Writes h, c
// (B, H) and the activated gates acts (B, 4H) that the backward reads.
template <typename T>
__global__ void lstm_cell_fwd(const T* __restrict__ gates, const T* __restrict__ c0,
                              const T* __restrict__ hg, const T* __restrict__ b1,
                              const T* __restrict__ b2,
                              T* __restrict__ h, T* __restrict__ c, T* __restrict__ acts,
                              i64 B, i64 H) {
    const i64 n_all = B * H;
    for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < n_all;
         k += (i64)gridDim.x * blockDim.x) {
        const i64 b = k / H, j = k - b * H, base = b * 4 * H + j;
        T pre[4];
        for (int q = 0; q < 4; ++q) {
            T v = gates[base + q * H];
            if (hg) v += hg[base + q * H];
            if (b1) v += b1[j + q * H];
            if (b2) v += b2[j + q * H];
            pre[q] = v;
        }
        const T ig = sigm(pre[0]), fg = sigm(pre[1]);
        const T gg = tanh(pre[2]), og = sigm(pre[3]);
        const T cn = fg * c0[k] + ig * gg;
        c[k] = cn;
        h[k] = og * tanh(cn);
        acts[base] = ig; acts[base + H] = fg; acts[base + 2 * H] = gg; acts[base + 3 * H] = og;
    }
}

// From dh, dc (B, H) and da (B, 4H), the gradient of the activated gates (each may be
// null), acts, c0 and c: d_gates (B, 4H), d_c0 (B, H).
template <typename T>
__global__ void lstm_cell_bwd(const T* __restrict__ dh, const T* __restrict__ dc,
                              const T* __restrict__ da, const T* __restrict__ acts,
                              const T* __restrict__ c0, const T* __restrict__ c,
                              T* __restrict__ dgates, T* __restrict__ dc0, i64 B, i64 H) {
    const i64 n_all = B * H;
    for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < n_all;
         k += (i64)gridDim.x * blockDim.x) {
        const i64 b = k / H, j = k - b * H, base = b * 4 * H + j;
        const T ig = acts[base], fg = acts[base + H], gg = acts[base + 2 * H],
                og = acts[base + 3 * H];
        const T tc = tanh(c[k]);
        const T gh = dh ? dh[k] : T(0);
        const T gc = (dc ? dc[k] : T(0)) + gh * og * (T(1) - tc * tc);
        T a0 = T(0), a1 = T(0), a2 = T(0), a3 = T(0);
        if (da) { a0 = da[base]; a1 = da[base + H]; a2 = da[base + 2 * H]; a3 = da[base + 3 * H]; }
        dgates[base] = (gc * gg + a0) * ig * (T(1) - ig);
        dgates[base + H] = (gc * c0[k] + a1) * fg * (T(1) - fg);
        dgates[base + 2 * H] = (gc * ig + a2) * (T(1) - gg * gg);
        dgates[base + 3 * H] = (gh * tc + a3) * og * (T(1) - og);
        dc0[k] = gc * fg;
    }
}
""", tuple(f"{k}<{t}>" for k in ("lstm_cell_fwd", "lstm_cell_bwd") for t in FLOAT_TYPES))

# --- optimizer updates, in place -----------------------------------------------------------------
OPTIM = Source("optim", r"""
typedef long long i64;

// SGD (PyTorch semantics): d = g + wd * p; buf = first ? d : momentum * buf + (1 - dampening) * d;
// step = nesterov ? d + momentum * buf : buf; p -= lr * step. buf may be null (no momentum).
template <typename T>
__global__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, i64 n,
                           T lr, T momentum, T dampening, T wd, int nesterov, int first) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x) {
        T d = g[i];
        if (wd != T(0)) d += wd * p[i];
        if (buf) {
            const T b = first ? d : momentum * buf[i] + (T(1) - dampening) * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] -= lr * d;
    }
}

// Adam / AdamW: bc1 = 1 - beta1^t, bc2 = 1 - beta2^t; decoupled selects AdamW's weight decay.
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, i64 n, T lr, T beta1, T beta2, T eps, T wd,
                            T bc1, T bc2, int decoupled) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (i64)gridDim.x * blockDim.x) {
        T gi = g[i];
        T pi = p[i];
        if (wd != T(0)) {
            if (decoupled) pi -= lr * wd * pi;
            else gi += wd * pi;
        }
        const T mi = beta1 * m[i] + (T(1) - beta1) * gi;
        const T vi = beta2 * v[i] + (T(1) - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
    }
}
""", tuple(f"{k}<{t}>" for k in ("sgd_update", "adam_update") for t in FLOAT_TYPES))

ALL: tuple[Source, ...] = (SOFTMAX, ACTIVATION, BINARY, CONV, POOL, NORM, EMBEDDING, SCATTER,
                           LSTM, OPTIM)
BY_NAME = {s.name: s for s in ALL}
