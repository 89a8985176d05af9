"""Array-level wrappers around the CUDA sources: compile on first use, launch, return.

Every function takes and returns ``cupy.ndarray`` and trusts its caller for shapes
and index ranges (the registry op checks them in Python first). float16 inputs are
computed in float32 and cast back.
"""
from __future__ import annotations

import numpy as np

from ..backends import cupy as _cupy
from . import sources as S

_modules: dict = {}     # (source name, device id) -> cupy.RawModule
_funcs: dict = {}       # (name expression, device id) -> cupy.RawKernel
_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256
_MAX_BLOCKS = 65535 * 8


def function(source: S.Source, expr: str):
    """The compiled kernel ``expr`` of ``source`` on the current device (cached)."""
    cp = _cupy()
    dev = cp.cuda.runtime.getDevice()
    key = (expr, dev)
    f = _funcs.get(key)
    if f is None:
        mkey = (source.name, dev)
        mod = _modules.get(mkey)
        if mod is None:
            mod = cp.RawModule(code=source.code, options=S_OPTIONS, name_expressions=source.names)
            _modules[mkey] = mod
        f = _funcs[key] = mod.get_function(expr)
    return f


S_OPTIONS = ("--std=c++17",)


def _t(dtype) -> str:
    try:
        return _TYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"CUDA kernel: dtype {dtype} is not supported (float32/float64)") from None


def _grid(n: int) -> tuple[int]:
    return (max(1, min((n + _THREADS - 1) // _THREADS, _MAX_BLOCKS)),)


def _rows_grid(rows: int) -> tuple[int]:
    return (max(1, min(rows, _MAX_BLOCKS)),)


def _row_threads(cols: int) -> tuple[int]:
    t = 32
    while t < cols and t < 512:
        t *= 2
    return (t,)


def _work(x):
    """(contiguous array in a kernel dtype, dtype to return)."""
    return _as_c(x, np.float32 if x.dtype == np.float16 else None), x.dtype


def _as_c(a, dtype=None):
    """``a`` as a C-contiguous array of ``dtype`` (its own by default): ``a`` itself when it
    is one, without the host cost of a CuPy call (a recurrent step makes hundreds). Not
    ascontiguousarray: that turns a 0-d array into a 1-d one."""
    if (dtype is None or a.dtype == dtype) and a.flags.c_contiguous:
        return a
    return a.astype(a.dtype if dtype is None else dtype, order="C")


def _i64(v) -> np.int64:
    return np.int64(v)


_ONE = np.int64(1)


def _index_vec(idx):
    """(flat int64 vector, its element stride) for kernels that read ``idx[r * stride]``: a
    1-D int64 view, such as a column ``x[:, t]`` of an index matrix, as it is (no copy
    kernel on every call of a recurrent loop); other index arrays flattened, copied to
    int64 where they must be."""
    if idx.dtype == np.int64:
        if idx.ndim == 1 and idx.strides[0] % 8 == 0:
            return idx, np.int64(idx.strides[0] // 8)
        if idx.flags.c_contiguous:
            return idx.reshape(-1), _ONE
    return _as_c(idx, np.int64).reshape(-1), _ONE


# --- softmax family --------------------------------------------------------------------------
def _rows_last(x, axis):
    """x with ``axis`` moved last and made contiguous, plus how to undo it."""
    cp = _cupy()
    axis = axis % x.ndim if x.ndim else 0
    moved = x.ndim > 0 and axis != x.ndim - 1
    a = cp.moveaxis(x, axis, -1) if moved else x
    return a, moved, axis


def softmax(x, axis: int = -1, log: bool = False):
    """Softmax (or log-softmax) along ``axis``."""
    cp = _cupy()
    if x.size == 0:
        return cp.empty_like(x)
    a, moved, axis = _rows_last(x, axis)
    a, dt = _work(a)
    cols = a.shape[-1] if a.ndim else 1
    rows = a.size // cols
    y = cp.empty(a.shape, a.dtype)
    f = function(S.SOFTMAX, f"softmax_fwd<{_t(a.dtype)},{int(log)}>")
    f(_rows_grid(rows), _row_threads(cols), (a, y, _i64(rows), _i64(cols)))
    if moved:
        y = cp.ascontiguousarray(cp.moveaxis(y, -1, axis))
    return y.astype(dt, copy=False)


def softmax_backward(y, g, axis: int = -1, log: bool = False):
    """Gradient of (log-)softmax at output ``y`` for upstream ``g``."""
    cp = _cupy()
    if y.size == 0:
        return cp.empty_like(y)
    ya, moved, axis = _rows_last(y, axis)
    ga, _, _ = _rows_last(g, axis)
    ya, dt = _work(ya)
    ga = cp.ascontiguousarray(ga, dtype=ya.dtype)
    cols = ya.shape[-1] if ya.ndim else 1
    rows = ya.size // cols
    gx = cp.empty(ya.shape, ya.dtype)
    f = function(S.SOFTMAX, f"softmax_bwd<{_t(ya.dtype)},{int(log)}>")
    f(_rows_grid(rows), _row_threads(cols), (ya, ga, gx, _i64(rows), _i64(cols)))
    if moved:
        gx = cp.ascontiguousarray(cp.moveaxis(gx, -1, axis))
    return gx.astype(dt, copy=False)


def cross_entropy(logits, labels, ignore_index: int = -100):
    """Per-row loss and log-sum-exp of (N, C) logits against int labels (N,)."""
    cp = _cupy()
    x, dt = _work(logits)
    rows, cols = x.shape
    lab, ls = _index_vec(labels)
    loss = cp.empty(rows, x.dtype)
    lse = cp.empty(rows, x.dtype)
    if rows:
        f = function(S.SOFTMAX, f"xent_fwd<{_t(x.dtype)}>")
        f(_rows_grid(rows), _row_threads(cols),
          (x, lab, ls, loss, lse, _i64(rows), _i64(cols), _i64(ignore_index)))
    return loss.astype(dt, copy=False), lse


def cross_entropy_reduced(logits, labels, ignore_index: int, reduction: str):
    """0-d mean or sum of the per-row losses over the rows not ignored (two launches)."""
    cp = _cupy()
    lab, ls = _index_vec(labels)
    loss, _ = cross_entropy(logits, lab, ignore_index)
    lw, dt = _work(loss)
    out = cp.empty((), lw.dtype)
    f = function(S.SOFTMAX, f"xent_reduce<{_t(lw.dtype)},{int(reduction == 'mean')}>")
    f((1,), (_THREADS,), (lw, lab, ls, out, _i64(lw.size), _i64(ignore_index)))
    return out.astype(dt, copy=False)


def cross_entropy_backward(logits, labels, lse, gloss, ignore_index: int = -100):
    """d loss / d logits, with ``gloss`` the per-row upstream gradient (N,)."""
    cp = _cupy()
    x, dt = _work(logits)
    rows, cols = x.shape
    lab, ls = _index_vec(labels)
    gl = cp.ascontiguousarray(cp.broadcast_to(gloss, (rows,)), dtype=x.dtype)
    lse = cp.ascontiguousarray(lse, dtype=x.dtype)
    gx = cp.empty(x.shape, x.dtype)
    if x.size:
        f = function(S.SOFTMAX, f"xent_bwd<{_t(x.dtype)}>")
        f(_grid(x.size), (_THREADS,),
          (x, lab, ls, lse, gl, gx, _i64(rows), _i64(cols), _i64(ignore_index)))
    return gx.astype(dt, copy=False)


def cross_entropy_grad(logits, labels, g, ignore_index: int, reduction: str):
    """d loss / d logits of 2-D cross_entropy (no class weights, no smoothing) for upstream
    ``g`` ((N,) for reduction 'none', else 0-d); NaN rows for out-of-range labels."""
    cp = _cupy()
    x = _as_c(logits)
    rows, cols = x.shape
    lab, ls = _index_vec(labels)
    ga = _as_c(g, x.dtype).reshape(-1)
    # 'mean' divides by the count of rows not ignored: counted by each block for a few rows
    # (one launch), by a reduction before the kernel for many
    count = reduction == "mean" and rows <= _COUNT_IN_KERNEL
    den = (lab != ignore_index).sum(dtype=x.dtype) if reduction == "mean" and not count \
        else None
    gx = cp.empty(x.shape, x.dtype)
    if x.size:
        f = function(S.SOFTMAX, f"xent_grad<{_t(x.dtype)},{int(count)}>")
        f(_rows_grid(rows), _row_threads(cols),
          (x, lab, ls, ga, _i64(1 if ga.size > 1 else 0), den if den is not None else _null(),
           gx, _i64(rows), _i64(cols), _i64(ignore_index)))
    return gx


_COUNT_IN_KERNEL = 4096     # rows up to which every block of xent_grad counts the labels


# --- activations ---------------------------------------------------------------------------
def bias_act(x, b, act: str = "none", channel_axis: int = -1):
    """act(x + b) with ``b`` broadcast along ``channel_axis`` of ``x``."""
    cp = _cupy()
    a, dt = _work(x)
    bb = cp.ascontiguousarray(b, dtype=a.dtype)
    ax = channel_axis % a.ndim
    C = a.shape[ax]
    inner = int(np.prod(a.shape[ax + 1:], dtype=np.int64))
    y = cp.empty(a.shape, a.dtype)
    if a.size:
        f = function(S.ACTIVATION, f"bias_act<{_t(a.dtype)},{S.ACTS[act]}>")
        f(_grid(a.size), (_THREADS,), (a, bb, y, _i64(a.size), _i64(inner), _i64(C)))
    return y.astype(dt, copy=False)


def add_bias_(y, b) -> None:
    """In place: ``y += b`` along the last axis of C-contiguous float32/float64 ``y``, with
    ``b`` of y's dtype and last dimension (a linear layer's bias)."""
    if y.size:
        f = function(S.ACTIVATION, f"add_bias_<{_t(y.dtype)}>")
        C = y.shape[-1]
        f(_grid(y.size), (_THREADS,), (y, _as_c(b), _i64(y.size), _ONE, _i64(C)))


def col_sum(x, out=None, out2=None):
    """Column sums of a C-contiguous float32/float64 (rows, cols) matrix, deterministic; or
    added into ``out`` (and ``out2``: C-contiguous (cols,) arrays of x's dtype), then
    ``out`` is returned."""
    rows, cols = x.shape
    acc = out is not None
    if not acc:
        out = _cupy().empty(cols, x.dtype)
    if cols:
        f = function(S.ACTIVATION, f"col_sum<{_t(x.dtype)}>")
        f(((cols + 31) // 32,), (32, 8),
          (x, out, _null() if out2 is None else out2, _i64(rows), _i64(cols), _i64(acc)))
    return out


# alpha = beta = 1 for cuBLAS, read from host memory
_GEMM_ONE = {np.dtype(np.float32): np.ones(1, np.float32), np.dtype(np.float64): np.ones(1)}
_OP_N, _OP_T = 0, 1     # cublasOperation_t
_CUBLAS: list = []      # [CuPy's cuBLAS module, its handle getter], imported on first use


def _cublas():
    if not _CUBLAS:
        from cupy.cuda import device
        from cupy_backends.cuda.libs import cublas
        _CUBLAS.extend((cublas, device.get_cublas_handle))
    return _CUBLAS


def _gemm_operand(x) -> tuple[int, int]:
    """(cuBLAS op, leading dimension) of 2-D ``x`` read in place: a C-contiguous (r, s) array
    is the column-major (s, r) matrix, its transpose; an F-contiguous one is itself, hence
    transposed for cuBLAS. (0, 0) for any other layout."""
    if x.flags.c_contiguous:
        return _OP_N, x.shape[1]
    if x.flags.f_contiguous:
        return _OP_T, x.shape[0]
    return 0, 0


def add_product(c, a, b) -> bool:
    """``c += a @ b`` in place by one cuBLAS GEMM with beta = 1, for float32/float64 2-D
    arrays of one dtype, ``a`` and ``b`` C- or F-contiguous (a transposed view reads in
    place) and ``c`` C-contiguous; False, changing nothing, for anything else."""
    one = _GEMM_ONE.get(c.dtype)
    if (one is None or a.dtype != c.dtype or b.dtype != c.dtype or a.ndim != 2
            or b.ndim != 2 or c.ndim != 2 or not c.flags.c_contiguous
            or c.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]):
        return False
    m, k = a.shape
    n = b.shape[1]
    if not (m and n and k):
        return True     # nothing to add
    op_a, ld_a = _gemm_operand(a)
    op_b, ld_b = _gemm_operand(b)
    if ld_a == 0 or ld_b == 0:
        return False
    cublas, handle_of = _cublas()
    handle = handle_of()
    cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
    p = one.ctypes.data
    # row-major c (m, n) is column-major c.T (n, m) = b.T @ a.T
    (cublas.sgemm if c.dtype == np.float32 else cublas.dgemm)(
        handle, op_b, op_a, n, m, k, p, b.data.ptr, ld_b, a.data.ptr, ld_a, p, c.data.ptr, n)
    return True


def act_forward(x, act: str):
    """act(x) elementwise (float32/float64; any layout, computed on a contiguous copy)."""
    cp = _cupy()
    a = _as_c(x).reshape(-1)  # kernels see flat buffers, never 0-d arrays
    y = cp.empty(a.shape, a.dtype)
    if a.size:
        f = function(S.ACTIVATION, f"act_fwd<{_t(a.dtype)},{S.ACTS[act]}>")
        f(_grid(a.size), (_THREADS,), (a, y, _i64(a.size)))
    return y.reshape(x.shape)


def binary(a, b, op: str):
    """``a op b`` for same-shape, same-dtype (float32/float64) C-contiguous arrays whose data
    are 16-byte aligned (see :func:`binary_ok`), with 16-byte vector loads and stores."""
    c = _cupy().empty(a.shape, a.dtype)   # not empty_like: twice its host cost
    n = a.size
    if n:
        f = function(S.BINARY, f"binary_vec<{_t(a.dtype)},{S.BINOPS[op]}>")
        vec = 16 // a.itemsize
        f(_grid((n + vec - 1) // vec), (_THREADS,), (a, b, c, _i64(n)))
    return c


_VEC_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def binary_ok(a, b) -> bool:
    """Whether :func:`binary` takes ``a`` and ``b`` (else the CuPy ufunc does)."""
    return (a.ndim > 0 and a.shape == b.shape and a.dtype == b.dtype and a.dtype in _VEC_DTYPES
            and a.flags.c_contiguous and b.flags.c_contiguous
            and not (a.data.ptr | b.data.ptr) & 15)


def act_backward(g, v, act: str):
    """g * act'(.) where ``v`` is the output (relu, tanh, sigmoid) or input (gelus)."""
    cp = _cupy()
    shape = v.shape
    va, dt = _work(v)
    va = va.reshape(-1)  # kernels see flat buffers, never 0-d arrays
    if g.shape == shape and g.dtype == va.dtype and g.flags.c_contiguous:
        ga = g.reshape(-1)      # the kernel only reads it: no copy
    else:
        ga = cp.broadcast_to(g, shape).astype(va.dtype, order="C", copy=True).reshape(-1)
    gx = cp.empty(va.shape, va.dtype)
    if va.size:
        f = function(S.ACTIVATION, f"act_bwd<{_t(va.dtype)},{S.ACTS[act]}>")
        f(_grid(va.size), (_THREADS,), (ga, va, gx, _i64(va.size)))
    return gx.reshape(shape).astype(dt, copy=False)


# --- convolution helpers (layout of tensorlib.ops.nn_conv) ---------------------------------------
def conv_out(size: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _conv_index(*sizes):
    """The kernels' index type and its NumPy scalar: int32 when every index fits."""
    return ("int", np.int32) if max(sizes) < 2**31 else ("long long", np.int64)


def _conv_args(N, C, H, W, kh, kw, stride, padding, dilation, Ho, Wo, it):
    return (*map(it, (N, C, H, W)),
            *map(np.int32, (kh, kw, stride[0], stride[1], padding[0], padding[2], dilation[0],
                            dilation[1])), it(Ho), it(Wo))


def im2col(x, kh, kw, stride, padding, dilation, Ho, Wo):
    """(N, C, H, W) -> (C*kh*kw, N*Ho*Wo) patches; ``padding`` is (top, bottom, left, right)."""
    cp = _cupy()
    a, dt = _work(x)
    N, C, H, W = a.shape
    K = C * kh * kw
    col = cp.empty((K, N * Ho * Wo), a.dtype)
    if col.size:
        name, it = _conv_index(col.size, a.size)
        f = function(S.CONV, f"im2col<{_t(a.dtype)},{name}>")
        # x: the plane in blocks of 128; y: the rows; z: up to 16 images, each thread
        # looping over the rest (few, fuller blocks rather than one per element row)
        P = Ho * Wo
        f((max(1, min((P + 127) // 128, _MAX_BLOCKS)), min(K, 65535), min(N, 16)), (128,),
          (a, col, *_conv_args(N, C, H, W, kh, kw, stride, padding, dilation, Ho, Wo, it)))
    return col.astype(dt, copy=False)


def col2im(col, shape, kh, kw, stride, padding, dilation, Ho, Wo):
    """The adjoint of :func:`im2col`: (C*kh*kw, N*Ho*Wo) -> ``shape`` (N, C, H, W)."""
    cp = _cupy()
    a, dt = _work(col)
    N, C, H, W = shape
    x = cp.empty((N, C, H, W), a.dtype)
    if x.size:
        name, it = _conv_index(a.size, x.size)
        f = function(S.CONV, f"col2im<{_t(a.dtype)},{name}>")
        f(_grid(x.size), (_THREADS,),
          (a, x, *_conv_args(N, C, H, W, kh, kw, stride, padding, dilation, Ho, Wo, it)))
    return x.astype(dt, copy=False)


def im2col_xp(xp, *args):
    """:func:`im2col` with nn_conv's helper signature ``(xp, x, kh, kw, ...)``."""
    return im2col(*args)


def col2im_xp(xp, *args):
    """:func:`col2im` with nn_conv's helper signature ``(xp, cols, shape, kh, kw, ...)``."""
    return col2im(*args)


# --- pooling -------------------------------------------------------------------------------------
def maxpool2d(x, kernel, stride, padding=(0, 0), dilation=(1, 1), out_hw=None):
    """Max pooling of (N, C, H, W): (values, argmax as flat h*W+w inside each plane)."""
    cp = _cupy()
    a, dt = _work(x)
    N, C, H, W = a.shape
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = kernel, stride, padding, dilation
    OH, OW = out_hw or (conv_out(H, KH, SH, PH, PH, DH), conv_out(W, KW, SW, PW, PW, DW))
    y = cp.empty((N, C, OH, OW), a.dtype)
    arg = cp.empty((N, C, OH, OW), np.int64)
    if y.size:
        f = function(S.POOL, f"maxpool2d_fwd<{_t(a.dtype)}>")
        f(_grid(y.size), (_THREADS,),
          (a, y, arg, _i64(N * C), _i64(H), _i64(W),
           *map(np.int32, (KH, KW, SH, SW, PH, PW, DH, DW)), _i64(OH), _i64(OW)))
    return y.astype(dt, copy=False), arg


def maxpool2d_backward(g, arg, x_shape):
    """Scatter ``g`` (N, C, OH, OW) to the argmax positions of an (N, C, H, W) input."""
    cp = _cupy()
    ga, dt = _work(g)
    N, C, H, W = x_shape
    gx = cp.zeros((N, C, H, W), ga.dtype)
    if ga.size:
        L = ga.shape[-1] * ga.shape[-2]
        f = function(S.POOL, f"maxpool2d_bwd<{_t(ga.dtype)}>")
        f(_grid(ga.size), (_THREADS,),
          (ga, cp.ascontiguousarray(arg, dtype=np.int64), gx, _i64(N * C), _i64(H * W),
           _i64(L)))
    return gx.astype(dt, copy=False)


# --- layer norm ----------------------------------------------------------------------------------
def layer_norm(x, weight, bias, eps: float, n_last: int = 1):
    """Normalise over the last ``n_last`` axes: (y, mean, rstd) with mean/rstd per row."""
    cp = _cupy()
    a, dt = _work(x)
    cols = int(np.prod(a.shape[a.ndim - n_last:], dtype=np.int64))
    rows = a.size // cols if cols else 0
    w = None if weight is None else cp.ascontiguousarray(weight, dtype=a.dtype).reshape(-1)
    b = None if bias is None else cp.ascontiguousarray(bias, dtype=a.dtype).reshape(-1)
    y = cp.empty(a.shape, a.dtype)
    mean = cp.empty(rows, a.dtype)
    rstd = cp.empty(rows, a.dtype)
    if rows and cols:
        f = function(S.NORM, f"layernorm_fwd<{_t(a.dtype)}>")
        f(_rows_grid(rows), _row_threads(cols),
          (a, w if w is not None else _null(), b if b is not None else _null(), y, mean, rstd,
           _i64(rows), _i64(cols), a.dtype.type(eps)))
    return y.astype(dt, copy=False), mean, rstd


def layer_norm_backward_input(x, g, weight, mean, rstd, n_last: int = 1, gmean=None,
                              grstd=None):
    """d loss / d x of layer_norm (weight/bias gradients are plain reductions); ``gmean``
    and ``grstd`` (one per row, optional) are the gradients reaching the statistics."""
    cp = _cupy()
    a, dt = _work(x)
    ga = cp.ascontiguousarray(g, dtype=a.dtype)
    cols = int(np.prod(a.shape[a.ndim - n_last:], dtype=np.int64))
    rows = a.size // cols if cols else 0

    def rowwise(v):
        return _null() if v is None else cp.ascontiguousarray(v, dtype=a.dtype).reshape(-1)
    gx = cp.empty(a.shape, a.dtype)
    if rows and cols:
        f = function(S.NORM, f"layernorm_bwd<{_t(a.dtype)}>")
        f(_rows_grid(rows), _row_threads(cols),
          (a, ga, rowwise(weight), rowwise(mean), rowwise(rstd), rowwise(gmean), rowwise(grstd),
           gx, _i64(rows), _i64(cols)))
    return gx.astype(dt, copy=False)


def _null():
    return np.uint64(0)   # a null device pointer argument


# --- embedding -----------------------------------------------------------------------------------
def embedding_backward(idx, g, num_embeddings: int, padding_idx: int | None = None, out=None):
    """(V, D) gradient of an embedding table: rows of ``g`` (..., D) added at ``idx``; or
    added into ``out`` (C-contiguous, g's float32/float64 dtype), which is returned."""
    cp = _cupy()
    ga, dt = _work(g)
    D = ga.shape[-1]
    ii, st = _index_vec(idx)
    gw = cp.zeros((num_embeddings, D), ga.dtype) if out is None else out
    if ga.size:
        f = function(S.EMBEDDING, f"embedding_bwd<{_t(ga.dtype)}>")
        f(_grid(ga.size), (_THREADS,),
          (ii, st, ga.reshape(-1, D), gw, _i64(ii.size), _i64(D),
           _i64(-1 if padding_idx is None else padding_idx), _i64(num_embeddings)))
    return gw.astype(dt, copy=False)


def embedding_forward(weight, idx):
    """Rows ``weight[idx]`` (idx.shape + (D,)); NaN rows for indices outside [0, V)."""
    cp = _cupy()
    w = _as_c(weight)
    V, D = w.shape
    ii, st = _index_vec(idx)
    out = cp.empty((ii.size, D), w.dtype)
    if out.size:
        f = function(S.EMBEDDING, f"embedding_fwd<{_t(w.dtype)}>")
        f(_grid(out.size), (_THREADS,), (ii, st, w, out, _i64(ii.size), _i64(D), _i64(V)))
    return out.reshape(tuple(idx.shape) + (D,))


# --- scatter max/min -----------------------------------------------------------------------------
def scatter_extreme_(out, lin, v, maximum: bool) -> None:
    """In place: ``out[lin[i]]`` becomes the maximum (or minimum) of itself and ``v[i]``
    (``maximum.at``, NaN winning) for float32/float64 ``out`` (flat, contiguous) and ``v``
    of its dtype; a target outside ``out`` is skipped."""
    cp = _cupy()
    li = cp.ascontiguousarray(lin, dtype=np.int64).reshape(-1)
    vv = cp.ascontiguousarray(v, dtype=out.dtype).reshape(-1)
    if li.size:
        f = function(S.SCATTER, f"scatter_extreme<{_t(out.dtype)}, "
                                f"{'true' if maximum else 'false'}>")
        f(_grid(li.size), (_THREADS,), (li, vv, out, _i64(li.size), _i64(out.size)))


# --- LSTM cell -----------------------------------------------------------------------------------
def lstm_cell(gates, c0, hg=None, b1=None, b2=None):
    """From (B, 4H) pre-activation gates and c0 (B, H): (h, c, activated gates). ``hg``
    (B, 4H), ``b1`` and ``b2`` (4H,) are added to the gates first where given."""
    cp = _cupy()
    ga, dt = _work(gates)
    c0a = _as_c(c0, ga.dtype)
    B, H4 = ga.shape
    H = H4 // 4
    h = cp.empty((B, H), ga.dtype)
    c = cp.empty((B, H), ga.dtype)
    acts = cp.empty(ga.shape, ga.dtype)
    if h.size:
        f = function(S.LSTM, f"lstm_cell_fwd<{_t(ga.dtype)}>")
        hg, b1, b2 = (_null() if a is None else _as_c(a, ga.dtype) for a in (hg, b1, b2))
        f(_grid(h.size), (_THREADS,), (ga, c0a, hg, b1, b2, h, c, acts, _i64(B), _i64(H)))
    return h.astype(dt, copy=False), c.astype(dt, copy=False), acts.astype(dt, copy=False)


def lstm_cell_backward(dh, dc, acts, c0, c, dacts=None):
    """(d gates (B, 4H), d c0 (B, H)) from dh, dc, the activated gates' gradient ``dacts``
    (each None for zero) and the saved values."""
    cp = _cupy()
    acts, dt = _work(acts)
    wt = acts.dtype
    B, H4 = acts.shape
    H = H4 // 4

    def prep(a, shape=(B, H)):
        if a is None:
            return None
        return _as_c(a if a.shape == shape else cp.broadcast_to(a, shape), wt)
    dgates = cp.empty(acts.shape, acts.dtype)
    dc0 = cp.empty((B, H), wt)
    if dc0.size:
        f = function(S.LSTM, f"lstm_cell_bwd<{_t(wt)}>")
        dha, dca, daa = prep(dh), prep(dc), prep(dacts, (B, H4))
        f(_grid(dc0.size), (_THREADS,),
          (dha if dha is not None else _null(), dca if dca is not None else _null(),
           daa if daa is not None else _null(), acts, prep(c0), prep(c), dgates, dc0, _i64(B),
           _i64(H)))
    return dgates.astype(dt, copy=False), dc0.astype(dt, copy=False)


# --- optimizer updates (in place) ----------------------------------------------------------------
def sgd_update_(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                nesterov=False, first=False) -> None:
    """In-place SGD step on contiguous float32/float64 ``p`` (and momentum ``buf``)."""
    cp = _cupy()
    _inplace_ok("sgd_update_", p, buf)
    g = cp.ascontiguousarray(g, dtype=p.dtype)
    T = p.dtype.type
    if p.size:
        f = function(S.OPTIM, f"sgd_update<{_t(p.dtype)}>")
        f(_grid(p.size), (_THREADS,),
          (p, g, buf if buf is not None else _null(), _i64(p.size), T(lr), T(momentum),
           T(dampening), T(weight_decay), np.int32(bool(nesterov)), np.int32(bool(first))))


def adam_update_(p, g, m, v, step: int, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, decoupled=False, bias_corrections=None) -> None:
    """In-place Adam (or AdamW when ``decoupled``) step number ``step`` (from 1).

    ``bias_corrections`` (bc1, bc2) overrides 1 - beta1**step and 1 - beta2**step.
    """
    cp = _cupy()
    _inplace_ok("adam_update_", p, m, v)
    g = cp.ascontiguousarray(g, dtype=p.dtype)
    T = p.dtype.type
    bc1, bc2 = bias_corrections or (1 - beta1 ** step, 1 - beta2 ** step)
    if p.size:
        f = function(S.OPTIM, f"adam_update<{_t(p.dtype)}>")
        f(_grid(p.size), (_THREADS,),
          (p, g, m, v, _i64(p.size), T(lr), T(beta1), T(beta2), T(eps), T(weight_decay),
           T(bc1), T(bc2), np.int32(bool(decoupled))))


def _inplace_ok(name, p, *state) -> None:
    _t(p.dtype)
    for a in (p, *state):
        if a is not None and (not a.flags.c_contiguous or a.shape != p.shape
                              or a.dtype != p.dtype):
            raise ValueError(f"{name}: parameter and state must be C-contiguous arrays of one "
                             f"shape and dtype, got {a.shape} {a.dtype} for {p.shape} {p.dtype}")
