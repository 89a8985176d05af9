"""Micro-benchmarks: each Cython kernel in tensorlib/_ops.pyx against the NumPy
expression it replaces (the op's xp fallback, which CuPy also runs), and tensorlib's float32
GEMM (tensorlib/_sgemm.h, where the CPU has AVX-512) against NumPy's BLAS.

    OMP_NUM_THREADS=1 python benchmarks/kernels.py [--quick]

Shapes are the ones W3/W4 use. Prints µs per call (median of 5 rounds) and the speed-up.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from tensorlib import _ops
from tensorlib.ops import nn_act, nn_conv, nn_layers, nn_loss, nn_norm, nn_pool, nn_rnn

rng = np.random.default_rng(0)
f32 = np.float32


def _us(fn, quick):
    fn()
    n = 2 if quick else 10
    vals = []
    for _ in range(1 if quick else 5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        vals.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(vals)


def cases():
    geo = dict(stride=(1, 1), padding=(2, 2, 2, 2), dilation=(1, 1))
    x2 = rng.standard_normal((64, 32, 14, 14)).astype(f32)
    cols = nn_conv._im2col_cpu(np, x2, 5, 5, Ho=14, Wo=14, **geo)
    yield ("im2col (64,32,14,14) k5 p2",
           lambda: nn_conv._im2col_xp(np, x2, 5, 5, Ho=14, Wo=14, **geo),
           lambda: nn_conv._im2col_cpu(np, x2, 5, 5, Ho=14, Wo=14, **geo))
    yield ("col2im -> (64,32,14,14) k5 p2",
           lambda: nn_conv._col2im_xp(np, cols, x2.shape, 5, 5, Ho=14, Wo=14, **geo),
           lambda: nn_conv._col2im_cpu(np, cols, x2.shape, 5, 5, Ho=14, Wo=14, **geo))
    x1 = rng.standard_normal((64, 32, 28, 28)).astype(f32)
    pk = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    _, idx = nn_pool._max_fwd_cpu(x1, **pk)
    g = rng.standard_normal((64, 32, 14, 14)).astype(f32)
    yield ("max_pool2d fwd (64,32,28,28) k2", lambda: nn_pool._max_fwd(np, x1, **pk),
           lambda: nn_pool._max_fwd_cpu(x1, **pk))
    pg = dict(pk, kernel=(2, 2))
    o, i = np.empty((64, 32, 14, 14), f32), np.empty((64, 32, 14, 14), np.int64)
    yield ("max_pool2d 2x2 fast path vs general kernel",
           lambda: _ops.max_pool2d(x1, o, i, 2, 2, 2, 2, 0, 0, 1, 1),
           lambda: nn_pool._max_fwd_cpu(x1, **pg))
    gr = rng.standard_normal(x1.shape).astype(f32)
    yield ("relu backward (64,32,28,28)", lambda: nn_act._relu_grad_fwd(np, gr, x1),
           lambda: nn_act._relu_grad_cpu(gr, x1))
    w2 = rng.standard_normal((64, 32, 5, 5)).astype(f32)
    cg = dict(stride=(1, 1), padding=(2, 2, 2, 2), dilation=(1, 1), groups=1)
    yield ("conv2d fwd (64,32,14,14) 64x5x5: whole-batch im2col + BLAS vs per-image",
           lambda: nn_conv._conv_impl(nn_conv._im2col_cpu, np, x2, w2, **cg),
           lambda: nn_conv._conv_cpu(x2, w2, **cg))
    g2 = rng.standard_normal((64, 64, 14, 14)).astype(f32)
    yield ("conv2d input grad: whole batch vs per-image",
           lambda: nn_conv._input_grad_impl(nn_conv._col2im_cpu, np, g2, w2, input_hw=(14, 14),
                                            **cg),
           lambda: nn_conv._input_grad_cpu(g2, w2, input_hw=(14, 14), **cg))
    yield ("conv2d weight grad: whole batch vs per-image",
           lambda: nn_conv._weight_grad_impl(nn_conv._im2col_cpu, np, x2, g2, kernel=(5, 5),
                                             **cg),
           lambda: nn_conv._weight_grad_cpu(x2, g2, kernel=(5, 5), **cg))
    from tensorlib import _gemm
    for (m, k, n, tb, what) in ((64, 800, 1568, False, "W3 conv2, 8 images"),
                                (64, 3136, 1024, True, "W3 fc1, weight transposed"),
                                (1024, 1024, 1024, False, "W5")):
        ga = rng.standard_normal((m, k)).astype(f32)
        gb = rng.standard_normal((n, k)).astype(f32).T if tb else \
            rng.standard_normal((k, n)).astype(f32)
        yield (f"float32 matmul {m}x{k}x{n} ({what}): BLAS vs tensorlib._gemm",
               lambda ga=ga, gb=gb: np.matmul(ga, gb), lambda ga=ga, gb=gb: _gemm.matmul(ga, gb))
    from tensorlib import _blas
    for (m, k, n) in ((2048, 512, 8), (256, 4096, 16), (128, 512, 10)):
        sa = rng.standard_normal((m, k)).astype(f32)
        sb = rng.standard_normal((k, n)).astype(f32)

        def blas_one_mm(sa=sa, sb=sb):
            with _blas.one_thread():
                return np.matmul(sa, sb)
        yield (f"float32 matmul {m}x{k}x{n} (few columns): one-thread BLAS vs tensorlib._gemm",
               blas_one_mm, lambda sa=sa, sb=sb: _gemm.matmul(sa, sb))
    for (m, k, tr) in ((4096, 4096, False), (4096, 4096, True)):
        ma = rng.standard_normal((k, m)).astype(f32).T if tr else \
            rng.standard_normal((m, k)).astype(f32)
        va = rng.standard_normal((k, 1)).astype(f32)

        def blas_one(ma=ma, va=va):
            with _blas.one_thread():     # how tensorlib ran it before its own loops
                return np.matmul(ma, va)
        yield (f"float32 matvec {m}x{k}{' (transposed)' if tr else ''}: one-thread BLAS vs "
               "tensorlib._gemm", blas_one, lambda ma=ma, va=va: _gemm.matmul(ma, va))
    from tensorlib.ops import linalg
    for sub, shapes in (("bij,bjk->bik", ((32, 64, 64), (32, 64, 64))),
                        ("bhqd,bhkd->bhqk", ((8, 4, 32, 16), (8, 4, 32, 16)))):
        es = [rng.standard_normal(sh).astype(f32) for sh in shapes]
        yield (f"einsum {sub} {shapes[0]}: one C loop vs planned path",
               lambda sub=sub, es=es: np.einsum(sub, *es),
               lambda sub=sub, es=es: linalg._einsum_fwd(np, *es, subscripts=sub))
    yield ("max_pool2d bwd -> (64,32,28,28)",
           lambda: nn_pool._max_grad_fwd(np, g, idx, input_hw=(28, 28)),
           lambda: nn_pool._max_grad_cpu(g, idx, input_hw=(28, 28)))
    for K, V, D in ((32, 64, 64), (4096, 1000, 256)):
        ge = rng.standard_normal((K, D)).astype(f32)
        ie = rng.integers(0, V, K)
        yield (f"embedding bwd {K} rows -> ({V},{D})",
               lambda ge=ge, ie=ie, V=V: nn_layers._emb_grad_fwd(np, ge, ie, num_weights=V,
                                                                 padding_idx=None),
               lambda ge=ge, ie=ie, V=V: nn_layers._emb_grad_cpu(ge, ie, num_weights=V,
                                                                 padding_idx=None))
    for N in (64, 128):
        lg = rng.standard_normal((N, 10)).astype(f32)
        t = rng.integers(0, 10, N)
        kw = dict(ignore_index=-100, reduction="mean", label_smoothing=0.0)
        yield (f"cross_entropy fwd ({N},10)", lambda lg=lg, t=t: nn_loss._ce_fwd(np, lg, t, **kw),
               lambda lg=lg, t=t: nn_loss._ce_cpu(lg, t, **kw))
    p = rng.standard_normal(3136 * 1024).astype(f32)
    gp = rng.standard_normal(p.size).astype(f32)
    buf = np.zeros_like(p)

    def np_sgd_m():
        buf.__imul__(0.9)
        buf.__iadd__(gp)
        p.__isub__(0.01 * buf)
    yield ("sgd update 3.2M params", lambda: p.__isub__(0.01 * gp),
           lambda: _ops.sgd_update(p, gp, p, 0.01, 0.0, 0.0, 0.0, False, False))
    yield ("sgd momentum update 3.2M", np_sgd_m,
           lambda: _ops.sgd_update(p, gp, buf, 0.01, 0.9, 0.0, 0.0, False, False))
    m, v = np.zeros_like(p), np.zeros_like(p)

    def np_adam():
        m.__imul__(0.9)
        m.__iadd__(0.1 * gp)
        v.__imul__(0.999)
        v.__iadd__(0.001 * gp * gp)
        p.__isub__(0.001 / 0.1 * m / (np.sqrt(v / 0.001) + 1e-8))
    yield ("adam update 3.2M params", np_adam,
           lambda: _ops.adam_update(p, gp, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 0.1, 0.001))
    gates = (rng.standard_normal((32, 1024)) * 3).astype(f32)
    c = rng.standard_normal((32, 256)).astype(f32)
    _, c_new, acts = nn_rnn._cell_fwd(np, gates, c)
    gh, gc = rng.standard_normal((2, 32, 256)).astype(f32)
    ga = np.zeros_like(gates)
    xl = rng.standard_normal((32, 128, 512)).astype(f32)
    wl, bl = np.ones(512, f32), np.zeros(512, f32)
    _, ml, rl = nn_norm._ln_fwd(np, xl, wl, bl, eps=1e-5, ndim=1, affine="wb")
    gl, zl = rng.standard_normal(xl.shape).astype(f32), np.zeros_like(ml)
    yield ("layer_norm fwd (32,128,512)",
           lambda: nn_norm._ln_fwd(np, xl, wl, bl, eps=1e-5, ndim=1, affine="wb"),
           lambda: nn_norm._ln_cpu(xl, wl, bl, eps=1e-5, ndim=1, affine="wb"))
    yield ("layer_norm bwd (32,128,512)",
           lambda: nn_norm._ln_grad_fwd(np, xl, ml, rl, gl, zl, zl, wl, ndim=1),
           lambda: nn_norm._ln_grad_cpu(xl, ml, rl, gl, zl, zl, wl, ndim=1))
    yield ("lstm_cell fwd (32, 4x256)", lambda: nn_rnn._cell_fwd(np, gates, c),
           lambda: nn_rnn._cell_cpu(gates, c))
    yield ("lstm_cell bwd (32, 4x256)",
           lambda: nn_rnn._cell_grad_fwd(np, acts, c, c_new, gh, gc, ga),
           lambda: nn_rnn._cell_grad_cpu(acts, c, c_new, gh, gc, ga))


def main(argv=None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    rows = [("kernel", "NumPy µs", "Cython µs", "speed-up")]
    for name, np_fn, cy_fn in cases():
        a, b = _us(np_fn, quick), _us(cy_fn, quick)
        rows.append((name, f"{a:.0f}", f"{b:.0f}", f"{a / b:.1f}x"))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for k, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(wd) for c, wd in zip(r, w)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (wd + 2) for wd in w) + "|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
