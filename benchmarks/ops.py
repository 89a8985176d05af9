"""Single ops at interactive sizes, tensorlib against PyTorch: the cases a user trial found
slowest (a cube of negative numbers, sigmoid, gelu, topk, the backward of a reflect pad...).

    python benchmarks/ops.py [--quick]                       # this checkout
    PYTHONPATH=/other/checkout python benchmarks/ops.py     # another one, for before/after

Prints µs per call (the minimum of 5 rounds; each round a loop of a few calls), tensorlib and
PyTorch (when installed) and the ratio. Results are kept alive between calls as a user's
would be only for the last call, so each call allocates its output as in a real step.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F


def _time(fn, quick: bool) -> float:
    fn()
    best = float("inf")
    for _ in range(1 if quick else 5):
        n = 1 if quick else 5
        t0 = time.perf_counter()
        for _ in range(n):
            out = fn()
        best = min(best, (time.perf_counter() - t0) / n)
        del out
    return best * 1e6


def cases(lib):
    """(name, function) pairs for ``lib`` in ("tl", "torch")."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    big = rng.standard_normal((4096, 1024)).astype(np.float32)
    img = rng.standard_normal((16, 64, 32, 32)).astype(np.float32)
    act = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    small = rng.standard_normal((64, 128, 4, 4)).astype(np.float32)       # a DCGAN's 4x4 maps
    w4 = (rng.standard_normal((256, 128, 4, 4)) * 0.05).astype(np.float32)
    if lib == "tl":
        x, xb, xa = tl.tensor(a), tl.tensor(big), tl.tensor(act)
        p = tl.tensor(img, requires_grad=True)
        bn = tl.nn.BatchNorm2d(64).eval()
        ctx = tl.no_grad

        def pad_fb():
            p.grad = None
            F.pad(p, (2, 2, 2, 2), mode="reflect").sum().backward()

        gw = tl.tensor(np.ones(64, np.float32), requires_grad=True)
        dw = tl.tensor(rng.standard_normal((64, 1, 3, 3)).astype(np.float32),
                       requires_grad=True)

        def gn_fb():
            p.grad = None
            F.group_norm(p, 8, gw).sum().backward()

        def dw_fb():
            p.grad = None
            F.conv2d(p, dw, padding=1, groups=64).sum().backward()
        bnt = tl.nn.BatchNorm2d(64)
        gy = tl.tensor(rng.standard_normal(img.shape).astype(np.float32))

        def bn_fb():    # a dense output gradient: sum()'s broadcast one is a slow path in torch
            p.grad = None
            bnt(p).backward(gy)
        return [
            ("x ** 3 (1024^2)", lambda: x ** 3),
            ("sigmoid (1024^2)", lambda: tl.sigmoid(x)),
            ("erf (1024^2)", lambda: tl.erf(x)),
            ("gelu (1024^2)", lambda: F.gelu(x)),
            ("silu (1024^2)", lambda: F.silu(x)),
            ("leaky_relu (1024^2)", lambda: F.leaky_relu(x, 0.2)),
            ("elu (1024^2)", lambda: F.elu(x)),
            ("softplus (1024^2)", lambda: F.softplus(x)),
            ("mish (1024^2)", lambda: F.mish(x)),
            ("conv 128->256 k4 s2 on 4x4, batch 64", lambda: _under(
                ctx, lambda a: F.conv2d(a, tl.tensor(w4), stride=2, padding=1),
                tl.tensor(small))),
            ("relu (1024^2)", lambda: tl.relu(x)),
            ("clamp(-1, 1) (1024^2)", lambda: x.clamp(-1, 1)),
            ("topk k=10, rows (4096x1024)", lambda: tl.topk(xb, 10, axis=1)),
            ("norm, rows (4096x1024)", lambda: tl.norm(xb, axis=1)),
            ("pad reflect 2, fwd+bwd (16,64,32,32)", pad_fb),
            ("batch_norm eval (32,64,32,32)", lambda: _under(ctx, bn, xa)),
            ("batch_norm train, fwd+bwd (16,64,32,32)", bn_fb),
            ("group_norm 8 groups, fwd+bwd (16,64,32,32)", gn_fb),
            ("depthwise conv 3x3, fwd+bwd (16,64,32,32)", dw_fb),
            ("scatter_reduce amax, fwd+bwd (20000x64 -> 2000)", _segment_pool(tl, "amax")),
            ("scatter_reduce mean, fwd+bwd (20000x64 -> 2000)", _segment_pool(tl, "mean")),
            ("scatter_add_ expanded index (50000x64 -> 5000)", _gnn_scatter(tl, "scatter_add_")),
            ("gather, fwd+bwd (5000x64 -> 50000)", _gnn_scatter(tl, "gather")),
            ("embedding_bag sum, 1-d+offsets (200000x64, 8192 bags of 30)", _emb_bag(tl)),
            ("stft n_fft=400 hop 160 (16 x 1 s at 16 kHz)", _spectrogram(tl, 400, False)),
            ("istft n_fft=512 hop 160 (16 x 1 s at 16 kHz)", _spectrogram(tl, 512, True)),
            ("matvec 4096x1024 @ 1024", lambda: xb @ x[0]),
            ("x.T.contiguous() (1024^2)", lambda: x.T.contiguous()),
            ("permute NCHW->NHWC, contiguous (32,64,32,32)",
             lambda: xa.permute(0, 2, 3, 1).contiguous()),
        ] + _shared(tl)
    import torch
    x, xb = torch.tensor(a), torch.tensor(big)
    xa = torch.tensor(act)
    p = torch.tensor(img, requires_grad=True)
    bn = torch.nn.BatchNorm2d(64).eval()

    def tpad_fb():
        p.grad = None
        torch.nn.functional.pad(p, (2, 2, 2, 2), mode="reflect").sum().backward()

    gw = torch.ones(64, requires_grad=True)
    dw = torch.tensor(rng.standard_normal((64, 1, 3, 3)).astype(np.float32),
                      requires_grad=True)

    def tgn_fb():
        p.grad = None
        torch.nn.functional.group_norm(p, 8, gw).sum().backward()

    def tdw_fb():
        p.grad = None
        torch.nn.functional.conv2d(p, dw, padding=1, groups=64).sum().backward()
    tbnt = torch.nn.BatchNorm2d(64)
    tgy = torch.tensor(rng.standard_normal(img.shape).astype(np.float32))

    def tbn_fb():
        p.grad = None
        tbnt(p).backward(tgy)
    return [
        ("x ** 3 (1024^2)", lambda: x ** 3),
        ("sigmoid (1024^2)", lambda: torch.sigmoid(x)),
        ("erf (1024^2)", lambda: torch.erf(x)),
        ("gelu (1024^2)", lambda: torch.nn.functional.gelu(x)),
        ("silu (1024^2)", lambda: torch.nn.functional.silu(x)),
        ("leaky_relu (1024^2)", lambda: torch.nn.functional.leaky_relu(x, 0.2)),
        ("elu (1024^2)", lambda: torch.nn.functional.elu(x)),
        ("softplus (1024^2)", lambda: torch.nn.functional.softplus(x)),
        ("mish (1024^2)", lambda: torch.nn.functional.mish(x)),
        ("conv 128->256 k4 s2 on 4x4, batch 64", lambda: _under(
            torch.no_grad, lambda a: torch.nn.functional.conv2d(
                a, torch.tensor(w4), stride=2, padding=1), torch.tensor(small))),
        ("relu (1024^2)", lambda: torch.relu(x)),
        ("clamp(-1, 1) (1024^2)", lambda: x.clamp(-1, 1)),
        ("topk k=10, rows (4096x1024)", lambda: torch.topk(xb, 10, dim=1)),
        ("norm, rows (4096x1024)", lambda: torch.linalg.vector_norm(xb, dim=1)),
        ("pad reflect 2, fwd+bwd (16,64,32,32)", tpad_fb),
        ("batch_norm eval (32,64,32,32)", lambda: _under(torch.no_grad, bn, xa)),
        ("batch_norm train, fwd+bwd (16,64,32,32)", tbn_fb),
        ("group_norm 8 groups, fwd+bwd (16,64,32,32)", tgn_fb),
        ("depthwise conv 3x3, fwd+bwd (16,64,32,32)", tdw_fb),
        ("scatter_reduce amax, fwd+bwd (20000x64 -> 2000)", _segment_pool(torch, "amax")),
        ("scatter_reduce mean, fwd+bwd (20000x64 -> 2000)", _segment_pool(torch, "mean")),
        ("scatter_add_ expanded index (50000x64 -> 5000)", _gnn_scatter(torch, "scatter_add_")),
        ("gather, fwd+bwd (5000x64 -> 50000)", _gnn_scatter(torch, "gather")),
        ("embedding_bag sum, 1-d+offsets (200000x64, 8192 bags of 30)", _emb_bag(torch)),
        ("stft n_fft=400 hop 160 (16 x 1 s at 16 kHz)", _spectrogram(torch, 400, False)),
        ("istft n_fft=512 hop 160 (16 x 1 s at 16 kHz)", _spectrogram(torch, 512, True)),
        ("matvec 4096x1024 @ 1024", lambda: xb @ x[0]),
        ("x.T.contiguous() (1024^2)", lambda: x.T.contiguous()),
        ("permute NCHW->NHWC, contiguous (32,64,32,32)",
         lambda: xa.permute(0, 2, 3, 1).contiguous()),
    ] + _shared(torch)


def _shared(lib):
    """Cases written once for both libraries (session 14's kernels: softmax, nll, the
    scans, nan-reductions, mode, cdist p=1)."""
    rng = np.random.default_rng(1)
    F = lib.nn.functional
    att = lib.tensor(rng.standard_normal((64, 32, 128)).astype(np.float32), requires_grad=True)
    seg = lib.tensor(rng.standard_normal((256, 64, 64)).astype(np.float32))
    logits = lib.tensor(rng.standard_normal((256, 1000)).astype(np.float32),
                        requires_grad=True)
    target = lib.tensor(rng.integers(0, 1000, 256))
    wide = lib.tensor(rng.standard_normal((64, 4096)).astype(np.float32), requires_grad=True)
    nan = rng.standard_normal((1024, 1024)).astype(np.float32)
    nan[rng.random(nan.shape) < 0.1] = np.nan
    nan = lib.tensor(nan)
    votes = lib.tensor(rng.integers(0, 50, (64, 4096)))
    pa = lib.tensor(rng.standard_normal((256, 64)).astype(np.float32), requires_grad=True)
    pb = lib.tensor(rng.standard_normal((256, 64)).astype(np.float32))

    def fb(fn, *leaves):
        def run():
            for t in leaves:
                t.grad = None
            fn().sum().backward()
        return run
    return [
        ("softmax last dim, fwd+bwd (64,32,128)", fb(lambda: F.softmax(att, -1), att)),
        ("log_softmax last dim (256,64,64)", lambda: F.log_softmax(seg, -1)),
        ("softmax dim 1 (256,64,64)", lambda: F.softmax(seg, 1)),
        ("log_softmax + nll_loss, fwd+bwd (256x1000)",
         fb(lambda: F.nll_loss(F.log_softmax(logits, 1), target), logits)),
        ("cummax last dim, fwd+bwd (64x4096)", fb(lambda: lib.cummax(wide, 1)[0], wide)),
        ("nansum dim -1 (1024^2, 10% NaN)", lambda: lib.nansum(nan, -1)),
        ("mode dim -1 (64x4096 ints)", lambda: lib.mode(votes, -1)),
        ("cdist p=1, fwd+bwd (256x64, 256x64)", fb(lambda: lib.cdist(pa, pb, p=1), pa)),
    ] + _rnn_inference(lib, rng) + _training_overhead(lib, rng) + _session19(lib, rng) \
        + _session20(lib, rng) + _session21(lib, rng) + _session21b(lib, rng) \
        + _session21c(lib, rng) + _session21d(lib, rng)


def _training_overhead(lib, rng):
    """Session 18's performance trial: a 3-operand einsum and Bilinear, a full norm, the
    optimizers' per-parameter cost, zero_grad without set_to_none, batch collation, a tiny op."""
    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    a, b, c = lib.tensor(f32(64, 32)), lib.tensor(f32(16, 32, 32)), lib.tensor(f32(64, 32))
    bil, x2 = lib.nn.Bilinear(32, 32, 16), lib.tensor(f32(64, 32))
    big, tiny = lib.tensor(f32(64, 256, 256)), lib.tensor(f32(16))

    def with_grads(n, shape):
        ps = [lib.nn.Parameter(lib.tensor(f32(*shape))) for _ in range(n)]
        for p in ps:
            p.grad = lib.tensor(f32(*shape))
        return ps
    sgd = lib.optim.SGD(with_grads(200, (64, 64)), lr=1e-3)
    nadam = lib.optim.NAdam(with_grads(200, (64, 64)), lr=1e-3)
    zero = lib.optim.SGD(with_grads(1000, (16,)), lr=1e-3)
    rows = [lib.tensor(f32(784)) for _ in range(64)]
    pairs = [(r, lib.tensor(i)) for i, r in enumerate(rows)]
    collate = (lib.data.default_collate if lib is tl
               else __import__("torch.utils.data").utils.data.default_collate)
    h = lib.tensor(f32(16, 32, 16, 16)).half()          # what autocast feeds between convs
    h2 = lib.tensor(f32(16, 32, 16, 16)).half()
    bn16 = lib.nn.BatchNorm2d(32).half()
    return [
        ("einsum bn,anm,bm->ba (64x32, 16x32x32, 64x32)",
         lambda: lib.einsum("bn,anm,bm->ba", a, b, c)),
        ("nn.Bilinear(32, 32, 16) on 64x32", lambda: bil(x2, x2)),
        ("norm(), all of (64,256,256)", lambda: big.norm()),
        ("SGD step, 200 params of 64x64", sgd.step),
        ("NAdam step, 200 params of 64x64", nadam.step),
        ("zero_grad(set_to_none=False), 1000 params of 16",
         lambda: zero.zero_grad(set_to_none=False)),
        ("stack 64 rows of 784", lambda: lib.stack(rows)),
        ("default_collate 64 (row, 0-d) pairs", lambda: collate(pairs)),
        ("relu, 16 elements", lambda: lib.relu(tiny)),
        ("sum(), 16 elements", lambda: tiny.sum()),
        ("float16 -> float32 cast, 131k", lambda: h.float()),
        ("F.relu float16, 131k", lambda: lib.nn.functional.relu(h)),
        ("F.gelu float16, 131k", lambda: lib.nn.functional.gelu(h)),
        ("float16 + float16, 131k", lambda: h + h2),
        ("BatchNorm2d float16, train (16,32,16,16)", lambda: bn16(h)),
    ]


def _session19(lib, rng):
    """Session 19: float32 reductions (the _reduce.h kernels), hardswish/SiLU backward,
    leaky_relu, small-batch LSTM inference, linear interpolation."""
    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    F = lib.nn.functional
    v, m, tall = lib.tensor(f32(1 << 22)), lib.tensor(f32(4096, 256)), lib.tensor(f32(100000, 4))
    act = lib.tensor(f32(512, 1024), requires_grad=True)
    sig = lib.tensor(f32(8, 32, 4000), requires_grad=True)
    lstm = lib.nn.LSTM(80, 512, batch_first=True).eval()
    seq = lib.tensor(f32(2, 50, 80))

    def fb(fn, leaf):
        def run():
            leaf.grad = None
            fn().sum().backward()
        return run

    def lstm_run():
        with lib.no_grad():
            return lstm(seq)[0]
    return [
        ("sum(), 4M floats", lambda: v.sum()),
        ("sum(dim=-1) (4096,256)", lambda: m.sum(-1)),
        ("amax(dim=-1) (4096,256)", lambda: m.amax(-1)),
        ("sum(dim=0) (100000,4)", lambda: tall.sum(0)),
        ("var(dim=0) (100000,4)", lambda: tall.var(0)),
        ("hardswish fwd+bwd (512,1024)", fb(lambda: F.hardswish(act), act)),
        ("silu fwd+bwd (512,1024)", fb(lambda: F.silu(act), act)),
        ("leaky_relu (4M)", lambda: F.leaky_relu(v, 0.2)),
        ("LSTM(80, 512) inference, batch 2, T 50", lstm_run),
        ("interpolate linear x2 fwd+bwd (8,32,4000)",
         fb(lambda: F.interpolate(sig, scale_factor=2, mode="linear"), sig)),
    ]


def _session20(lib, rng):
    """Session 20: values-only decompositions, the batched LU kernel, lerp, in-place row
    writes, grid_sample, sparse embedding steps, categorical sampling, lgamma, cdist."""
    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    F = lib.nn.functional
    sq = f32(300, 300)
    m, sym = lib.tensor(sq), lib.tensor(sq + sq.T)
    lus = lib.tensor(rng.standard_normal((256, 16, 16)))
    ema, online = lib.tensor(f32(1024, 1024)), lib.tensor(f32(1024, 1024))
    queue, keys = lib.tensor(f32(65536, 128)), lib.tensor(f32(256, 128))
    rows = lib.tensor(rng.permutation(65536)[:256])
    img = lib.tensor(f32(64, 3, 96, 96))
    grid = lib.tensor((rng.random((64, 64, 64, 2)) * 2 - 1).astype(np.float32))
    emb = lib.nn.Embedding(100000, 64, sparse=True)
    sadam = lib.optim.SparseAdam(list(emb.parameters()), lr=1e-3)
    ids = lib.tensor(rng.integers(0, 100000, 4096))
    probs = lib.tensor(rng.random((4, 100000)).astype(np.float32))
    gam = lib.tensor(rng.uniform(0.5, 2.5, 1 << 20))
    pa, pb = lib.tensor(f32(1024, 64)), lib.tensor(f32(1024, 64))

    def sparse_step():
        sadam.zero_grad()
        emb(ids).sum().backward()
        sadam.step()
    return [
        ("svdvals (300,300)", lambda: lib.linalg.svdvals(m)),
        ("eigvalsh (300,300)", lambda: lib.linalg.eigvalsh(sym)),
        ("lu_factor float64 (256,16,16)", lambda: lib.linalg.lu_factor(lus)),
        ("lerp_ (1024,1024) weight 0.01", lambda: ema.lerp_(online, 0.01)),
        ("index_copy_ 256 rows into (65536,128)", lambda: queue.index_copy_(0, rows, keys)),
        ("grid_sample bilinear (64,3,96,96) -> 64x64",
         lambda: F.grid_sample(img, grid, align_corners=False)),
        ("Embedding(100k, 64, sparse) + SparseAdam step, 4096 ids", sparse_step),
        ("multinomial 4 x 100k, 4096 draws", lambda: lib.multinomial(probs, 4096, True)),
        ("lgamma float64, 1M in [0.5, 2.5]", lambda: lib.lgamma(gam)),
        ("cdist p=2 (1024,64) x (1024,64)", lambda: lib.cdist(pa, pb)),
    ]



def _session21(lib, rng):
    """Session 21: exact GELU forward/backward on vector registers (_gelu_vec.h), the
    float32 embedding-bag sums (_bag.h), the time-series trial's losses and slicing, the
    branch-free where, complex numbers and the FFTs."""
    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    F = lib.nn.functional
    x1, x4 = lib.tensor(f32(1 << 20) * 3), lib.tensor(f32(1 << 22) * 3)
    xg = lib.tensor(f32(1 << 20) * 3, requires_grad=True)
    gg = lib.tensor(f32(1 << 20))
    table = lib.tensor(f32(100000, 64))
    bags = lib.tensor(rng.integers(0, 100000, (4096, 20)))
    psw = lib.tensor(rng.random((4096, 20)).astype(np.float32))

    def gelu_fb():
        xg.grad = None
        F.gelu(xg).backward(gg)
    xs = f32(256, 2048)
    pl, yl = lib.tensor(xs, requires_grad=True), lib.tensor(xs * 0.5)
    nan = xs.copy()
    nan[::7] = np.nan
    xn, xs, series = lib.tensor(nan), lib.tensor(xs), lib.tensor(f32(20000, 4))

    def huber_fb():
        pl.grad = None
        F.huber_loss(pl, yl, delta=0.5).backward()

    def smooth_fb():
        pl.grad = None
        F.smooth_l1_loss(pl, yl, beta=0.5).backward()

    mask = lib.tensor(rng.random((256, 2048)) < 0.5)
    ph = lib.tensor(f32(256, 2048) * 2, requires_grad=True)

    def hardtanh_fb():
        ph.grad = None
        F.hardtanh(ph).sum().backward()

    def c64(*shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(
            np.complex64)
    sig = lib.tensor(f32(64, 4096))
    sig_g = lib.tensor(f32(64, 4096), requires_grad=True)
    img = lib.tensor(c64(16, 256, 256))
    z1, w1 = lib.tensor(c64(1 << 20)), lib.tensor(c64(1 << 20))
    za, zb = lib.tensor(c64(256, 256).astype(np.complex128)), lib.tensor(
        c64(256, 256).astype(np.complex128))

    def spec_fb():
        sig_g.grad = None
        s = lib.fft.rfft(sig_g)
        lib.fft.irfft(s * s.conj(), n=4096).sum().backward()
    return [
        ("F.gelu exact float32, 1M", lambda: F.gelu(x1)),
        ("F.gelu exact float32, 4M", lambda: F.gelu(x4)),
        ("F.gelu exact float32 forward + backward, 1M", gelu_fb),
        ("embedding_bag sum (100k,64), 4096 bags of 20", lambda: F.embedding_bag(
            bags, table, mode="sum")),
        ("embedding_bag mean (100k,64), 4096 bags of 20", lambda: F.embedding_bag(
            bags, table, mode="mean")),
        ("embedding_bag sum + per_sample_weights (100k,64), 4096x20", lambda: F.embedding_bag(
            bags, table, mode="sum", per_sample_weights=psw)),
        # the time-series trial: fused huber/smooth_l1 and nan_to_num, one-sided clamp, slicing
        ("F.huber_loss(delta=0.5) forward + backward (256, 2048)", huber_fb),
        ("F.smooth_l1_loss(beta=0.5) forward + backward (256, 2048)", smooth_fb),
        ("nan_to_num (256, 2048), 1/7 NaN rows", lambda: lib.nan_to_num(xn)),
        ("clamp(min=0) (256, 2048)", lambda: xs.clamp(min=0)),
        ("x[100:196] of a (20000, 4) series", lambda: series[100:196]),
        # the branch-free where (_ops.where_bits) and what runs through it
        ("where(random mask, x, 0.) (256, 2048)", lambda: lib.where(mask, xs, 0.0)),
        ("F.hardtanh forward + backward (256, 2048)", hardtanh_fb),
        # complex numbers and tl.fft / torch.fft
        ("fft.rfft float32 (64, 4096)", lambda: lib.fft.rfft(sig)),
        ("fft.fft2 complex64 (16, 256, 256)", lambda: lib.fft.fft2(img)),
        ("complex64 z * w + z.conj() (1M)", lambda: z1 * w1 + z1.conj()),
        ("complex128 matmul (256, 256) @ (256, 256)", lambda: za @ zb),
        ("rfft -> |.|^2 -> irfft forward + backward (64, 4096)", spec_fb),
    ]

def _session21b(lib, rng):
    """Session 21b: lgamma / digamma kernels (_gamma.h), causal attention by query blocks."""
    F = lib.nn.functional
    g32 = lib.tensor((rng.standard_normal(1 << 20) * 5).astype(np.float32))
    g64 = lib.tensor(rng.standard_normal(1 << 20) * 5)
    qkv = [lib.tensor(rng.standard_normal((2, 4, 1024, 64)).astype(np.float32),
                      requires_grad=True) for _ in range(3)]

    def causal_fb():
        for t in qkv:
            t.grad = None
        F.scaled_dot_product_attention(*qkv, is_causal=True).sum().backward()
    return [
        ("lgamma float32, 1M (N(0, 25))", lambda: lib.lgamma(g32)),
        ("lgamma float64, 1M (N(0, 25))", lambda: lib.lgamma(g64)),
        ("digamma float32, 1M (N(0, 25))", lambda: lib.digamma(g32)),
        ("digamma float64, 1M (N(0, 25))", lambda: lib.digamma(g64)),
        ("sdpa is_causal forward (2,4,1024,64) float32",
         lambda: F.scaled_dot_product_attention(*[t.detach() for t in qkv], is_causal=True)),
        ("sdpa is_causal forward + backward (2,4,1024,64) float32", causal_fb),
    ]


def _session21c(lib, rng):
    """Session 21c: lgamma's vector kernel (_gamma.h), values near the roots and poles."""
    g32 = lib.tensor((rng.standard_normal(1 << 20) * 5).astype(np.float32))
    g64 = lib.tensor(rng.standard_normal(1 << 20) * 5)
    u64 = lib.tensor(rng.uniform(0.5, 2.5, 1 << 20))
    return [
        ("lgamma float32, 1M (N(0, 25)) [21c]", lambda: lib.lgamma(g32)),
        ("lgamma float64, 1M (N(0, 25)) [21c]", lambda: lib.lgamma(g64)),
        ("lgamma float64, 1M (U(0.5, 2.5), the roots)", lambda: lib.lgamma(u64)),
    ]


def _session21d(lib, rng):
    """Session 21d: grid_sample's fused 4-d forward (_grid2d.h), both modes, float32."""
    F = lib.nn.functional

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    img, feat = lib.tensor(f32(64, 3, 96, 96)), lib.tensor(f32(8, 32, 64, 64))
    g1 = lib.tensor(rng.uniform(-1.1, 1.1, (64, 64, 64, 2)).astype(np.float32))
    g2 = lib.tensor(rng.uniform(-1.1, 1.1, (8, 64, 64, 2)).astype(np.float32))
    out = []
    for mode in ("nearest", "bilinear"):
        out += [
            (f"grid_sample {mode} (64,3,96,96) at (64,64,64,2) [21d]",
             lambda m=mode: F.grid_sample(img, g1, mode=m, align_corners=False)),
            (f"grid_sample {mode} (8,32,64,64) at (8,64,64,2) [21d]",
             lambda m=mode: F.grid_sample(feat, g2, mode=m, align_corners=False)),
        ]
    out.append(("grid_sample bilinear reflection (8,32,64,64) at (8,64,64,2) [21d]",
                lambda: F.grid_sample(feat, g2, padding_mode="reflection",
                                      align_corners=True)))
    return out


def _rnn_inference(lib, rng):
    """Session 15: small recurrent layers in eval (the deploy trial's models): 2 layers,
    bidirectional, batch_first, input (8, 50, 5)."""
    x = lib.tensor(rng.standard_normal((8, 50, 5)).astype(np.float32))
    out = []
    for kind, H in (("LSTM", 7), ("GRU", 7), ("LSTM", 64)):
        m = getattr(lib.nn, kind)(5, H, num_layers=2, bidirectional=True,
                                  batch_first=True).eval()

        def run(m=m):
            with lib.no_grad():
                return m(x)[0]
        out.append((f"{kind} H={H} inference, 2 layers bidir (8,50,5)", run))
    return out


def _segment_pool(lib, reduce: str):
    """A GNN's message pooling: 20000 edges' 64-wide messages reduced onto 2000 nodes,
    forward and backward (the same code for tensorlib and PyTorch)."""
    rng = np.random.default_rng(1)
    idx = np.broadcast_to(rng.integers(0, 2000, 20000)[:, None], (20000, 64)).copy()
    msg = lib.tensor(rng.standard_normal((20000, 64)).astype(np.float32), requires_grad=True)
    index, base = lib.tensor(idx), lib.zeros(2000, 64)

    def run():
        msg.grad = None
        base.scatter_reduce(0, index, msg, reduce, include_self=False).sum().backward()
    return run


def _gnn_scatter(lib, op: str):
    """A GNN's scatter ops at a user trial's sizes: 50000 edges' 64-wide messages and 5000
    nodes, the edge index expanded over the features (``scatter_add_``), or node features
    gathered per edge, forward and backward (``gather``); the same code for both libraries."""
    rng = np.random.default_rng(2)
    idx = lib.tensor(rng.integers(0, 5000, 50000))[:, None].expand(-1, 64)
    msg = lib.tensor(rng.standard_normal((50000, 64)).astype(np.float32))
    nodes = lib.tensor(rng.standard_normal((5000, 64)).astype(np.float32), requires_grad=True)
    base = lib.zeros(5000, 64)
    if op == "scatter_add_":
        return lambda: base.clone().scatter_add_(0, idx, msg)

    def gather_fb():
        nodes.grad = None
        nodes.gather(0, idx).sum().backward()
    return gather_fb


def _emb_bag(lib):
    """A recommender's bag lookup (no_grad): 8192 bags of 30 ids in a 200000 x 64 table."""
    rng = np.random.default_rng(3)
    ids, off = lib.tensor(rng.integers(0, 200000, 8192 * 30)), lib.tensor(np.arange(8192) * 30)
    w = lib.tensor(rng.standard_normal((200000, 64)).astype(np.float32))
    return lambda: _under(lib.no_grad, lambda i: lib.nn.functional.embedding_bag(
        i, w, off, mode="sum"), ids)


def _spectrogram(lib, n_fft: int, inverse: bool):
    """An audio trial's front end: 16 one-second clips at 16 kHz, hop 160, a Hann window;
    stft, or istft of its spectrum (the same code for both libraries: PyTorch's complex
    spectrum viewed as real and imaginary pairs is tensorlib's layout)."""
    x = lib.tensor(np.random.default_rng(3).standard_normal((16, 16000)).astype(np.float32))
    w = lib.hann_window(n_fft)
    pairs = lib is tl       # tensorlib has no complex dtype

    def stft():
        s = lib.stft(x, n_fft, 160, window=w, return_complex=not pairs)
        return s if pairs else lib.view_as_real(s)
    if not inverse:
        return stft
    spec = lib.stft(x, n_fft, 160, window=w, return_complex=not pairs)
    return lambda: lib.istft(spec, n_fft, 160, window=w)


def _under(ctx, module, x):
    with ctx():
        return module(x)


def main(argv=None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    ours = [(name, _time(fn, quick)) for name, fn in cases("tl")]
    try:
        theirs = dict((name, _time(fn, quick)) for name, fn in cases("torch"))
    except ImportError:
        theirs = {}
    print(f"{tl.__file__}")
    print("| op | tensorlib µs | PyTorch µs | ratio |\n|---|---|---|---|")
    for name, t in ours:
        o = theirs.get(name)
        print(f"| {name} | {t:.0f} | {o:.0f} | {t / o:.2f} |" if o
              else f"| {name} | {t:.0f} | — | — |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
