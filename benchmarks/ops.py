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
    if not quick:   # (quick mode checks that every case runs: one call, no warm-up)
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
    ] + [case for group in (
        _rnn_inference, _training_overhead, _reductions_and_activations,
        _decompositions_and_sampling, _gelu_bag_and_losses, _lgamma_and_causal_attention,
        _lgamma_vector, _grid_sample_forward, _fused_losses_and_clamps, _multi_axis_fft,
        _grid_sample_few_channels, _conv_small_maps, _einsum_as_matmul, _small_matmuls,
        _conv_few_out_channels, _float64_axis0_and_small_solves, _float64_tall_reductions,
        _per_example_grads, _unique_searchsorted_isin, _ctc_loss, _pdist, _multinomial_small,
        _outer_broadcast_and_bce, _capture_guard_check, _conv_large_maps, _scans_f64,
        _strided_conv_grads, _conv3d, _small_selection,
    ) for case in group(lib, rng)]


def _scans_f64(lib, rng):
    """float64 scans along the last dim and a 1-D one (tensorlib: rows side by side in the
    sequential double scan, bit for bit PyTorch's), float64 cumprod and logcumsumexp."""
    cases = []
    for shape, dim in (((1000, 1000), 1), ((1000000,), 0), ((64, 100000), 1),
                       ((1000, 1000), 0)):
        x = lib.tensor(rng.standard_normal(shape))
        p = lib.tensor(1 + 1e-3 * rng.standard_normal(shape))
        tag = f"{shape} dim {dim} f64"
        cases += [(f"cumsum {tag}", lambda x=x, d=dim: x.cumsum(d)),
                  (f"cumprod {tag}", lambda p=p, d=dim: p.cumprod(d)),
                  (f"logcumsumexp {tag}", lambda x=x, d=dim: lib.logcumsumexp(x, d))]
    return cases


def _conv3d(lib, rng):
    """Dense float32 conv3d forward and forward + backward (input and weight gradients): a
    video trial's 16->32 k3, a C3D-like 64->64 k3 and a (3, 7, 7) stride (1, 2, 2) stem."""
    F = lib.nn.functional

    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def case(xs, ws, stride, pad):
        x = lib.tensor(arr(*xs), requires_grad=True)
        w = lib.tensor(arr(*ws, scale=0.05), requires_grad=True)

        def fwd():
            with lib.no_grad():
                F.conv3d(x, w, stride=stride, padding=pad)

        def step():
            x.grad = w.grad = None
            F.conv3d(x, w, stride=stride, padding=pad).sum().backward()
        k = "x".join(map(str, ws[2:]))
        name = f"conv3d {k} s{stride} {ws[1]}->{ws[0]} {xs}"
        return [(name + " fwd", fwd), (name + " fwd+bwd", step)]
    return (case((2, 16, 8, 32, 32), (32, 16, 3, 3, 3), 1, 1)
            + case((4, 64, 8, 28, 28), (64, 64, 3, 3, 3), 1, 1)
            + case((8, 3, 16, 56, 56), (64, 3, 3, 7, 7), (1, 2, 2), (1, 3, 3)))


def _strided_conv_grads(lib, rng):
    """Strided float32 convolutions' input gradients (ResNet's 3x3 and 1x1 stride-2
    downsamples, a 7x7 stride-2 stem, a stride-2 ConvTranspose2d forward, which is the same
    op) and the large-map forward tiles."""
    F = lib.nn.functional

    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def case(n, c, o, s, k, stride, pad):
        x = lib.tensor(arr(n, c, s, s), requires_grad=True)
        w = lib.tensor(arr(o, c, k, k, scale=0.05))
        ho = (s + 2 * pad - k) // stride + 1
        g = lib.tensor(arr(n, o, ho, ho))

        def step():
            x.grad = None
            F.conv2d(x, w, stride=stride, padding=pad).backward(g)
        return (f"conv2d {k}x{k} s{stride} {c}->{o} ({n},{c},{s},{s}), fwd + input grad", step)
    xt, wt = lib.tensor(arr(8, 128, 28, 28)), lib.tensor(arr(128, 64, 3, 3, scale=0.05))
    big = lib.tensor(arr(1, 64, 128, 128))
    wb = lib.tensor(arr(64, 64, 3, 3, scale=0.05))

    def fwd_big():
        with lib.no_grad():
            F.conv2d(big, wb, padding=1)
    return [case(8, 64, 128, 56, 3, 2, 1), case(8, 64, 128, 56, 1, 2, 0),
            case(2, 3, 64, 224, 7, 2, 3),
            ("conv_transpose2d 3x3 s2 128->64 (8,128,28,28)",
             lambda: F.conv_transpose2d(xt, wt, stride=2, padding=1, output_padding=1)),
            ("conv2d 3x3 64->64 (1,64,128,128) fwd, tiles", fwd_big)]

def _conv_large_maps(lib, rng):
    """Float32 3x3 convolutions on large maps (tensorlib: tiles of output rows,
    im2col of a tile in L2 and its GEMM): 64->64 at 64/128/256^2, 256->256 at 64^2, a
    stride-2 one; forward under no_grad and forward+backward (input and weight grads)."""
    F = lib.nn.functional

    def case(n, c, o, s, stride):
        x = lib.tensor(rng.standard_normal((n, c, s, s)).astype(np.float32),
                       requires_grad=True)
        w = lib.tensor((rng.standard_normal((o, c, 3, 3)) * 0.05).astype(np.float32),
                       requires_grad=True)
        b = lib.tensor(rng.standard_normal(o).astype(np.float32))

        def fwd():
            with lib.no_grad():
                F.conv2d(x, w, b, stride=stride, padding=1)

        def step():
            x.grad = w.grad = None
            F.conv2d(x, w, b, stride=stride, padding=1).sum().backward()
        tag = f"conv2d 3x3 {c}->{o} ({n},{c},{s},{s}) stride {stride}"
        return [(f"{tag} fwd [23i]", fwd), (f"{tag} fwd+bwd [23i]", step)]
    return (case(1, 64, 64, 256, 1) + case(1, 64, 64, 128, 1) + case(4, 64, 64, 64, 1)
            + case(1, 256, 256, 64, 1) + case(1, 64, 64, 256, 2))


def _capture_guard_check(lib, rng):
    """The per-call guard check of tl.function (tensorlib only: the state check
    alone, ``_Entry.check``) and the captured call against eager (PyTorch: eager), on a
    12-layer transformer encoder, a 100-module MLP and a Sequential of 1000 Linear(1, 1):
    forward under no_grad and an Adam training step."""
    nn = lib.nn

    def t32(*shape):
        return lib.tensor(rng.standard_normal(shape).astype(np.float32))
    models = {
        "transformer 12x(d64)": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
            64, 4, 128, dropout=0.0, batch_first=True), 12), (2, 8, 64)),
        "MLP 100 modules": (lambda: nn.Sequential(*[m for _ in range(50) for m in (
            nn.Linear(16, 16), nn.ReLU())]), (4, 16)),
        "Sequential 1000 Linear(1,1)": (lambda: nn.Sequential(
            *[nn.Linear(1, 1) for _ in range(1000)]), (1, 1)),
    }
    out = []
    for name, (make, shape) in models.items():
        model, x = make(), t32(*shape)
        opt = lib.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, x=x, opt=opt):
            opt.zero_grad()
            loss = model(x).sum()
            loss.backward()
            opt.step()
            return loss

        def fwd(model=model, x=x):
            with lib.no_grad():
                return model(x)
        if lib is tl:
            cf, cs = tl.function(lambda a, m=model: m(a)), tl.function(step)
            cs()
            cs()
            with tl.no_grad():      # traced after the step set the gradients it guards
                cf(x)
            ef = next(iter(cf._cache.values()))[0]
            es = next(iter(cs._cache.values()))[0]

            def run_fwd(cf=cf, x=x):
                with tl.no_grad():
                    return cf(x)
            out += [(f"guard check, forward of {name} [23c]", ef.check),
                    (f"guard check, Adam step of {name} [23c]", es.check),
                    (f"captured forward {name} [23c]", run_fwd),
                    (f"captured Adam step {name} [23c]", cs)]
        else:
            out += [(f"captured forward {name} [23c]", fwd),
                    (f"captured Adam step {name} [23c]", step)]
        out += [(f"eager forward {name} [23c]", fwd), (f"eager Adam step {name} [23c]", step)]
    return out


def _outer_broadcast_and_bce(lib, rng):
    """Outer-broadcast binary ops (a (I,1[,K]) op b (1,J[,K])), pairwise IoU
    forward and forward+backward, and binary_cross_entropy_with_logits on (100000, 80)
    (forward 'none', forward+backward 'mean', with pos_weight), float32."""
    F = lib.nn.functional
    a1, b1 = (lib.tensor(rng.random(s).astype(np.float32)) for s in ((20000, 1), (1, 100)))
    a3, b3 = (lib.tensor(rng.random(s).astype(np.float32)) for s in ((20000, 1, 2), (1, 100, 2)))
    p1, p2 = rng.random((20000, 2)), rng.random((100, 2))
    box1 = np.concatenate([p1, p1 + rng.random((20000, 2))], 1).astype(np.float32)
    box2 = np.concatenate([p2, p2 + rng.random((100, 2))], 1).astype(np.float32)
    bx1, bx2 = lib.tensor(box1, requires_grad=True), lib.tensor(box2)

    def iou(u, v):
        ar1 = (u[:, 2] - u[:, 0]) * (u[:, 3] - u[:, 1])
        ar2 = (v[:, 2] - v[:, 0]) * (v[:, 3] - v[:, 1])
        lt = lib.maximum(u[:, None, :2], v[None, :, :2])
        rb = lib.minimum(u[:, None, 2:], v[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        return inter / (ar1[:, None] + ar2[None, :] - inter)

    def iou_fb():
        bx1.grad = None
        iou(bx1, bx2).sum().backward()
    x = lib.tensor(rng.standard_normal((100000, 80)).astype(np.float32))
    xg = lib.tensor(rng.standard_normal((100000, 80)).astype(np.float32), requires_grad=True)
    y = lib.tensor((rng.random((100000, 80)) < 0.01).astype(np.float32))
    pw = lib.tensor((rng.random(80) + 0.5).astype(np.float32))

    def bce_fb(pos=None):
        xg.grad = None
        F.binary_cross_entropy_with_logits(xg, y, pos_weight=pos).backward()
    return [
        ("add (20000,1)+(1,100) [23h]", lambda: a1 + b1),
        ("maximum (20000,1),(1,100) [23h]", lambda: lib.maximum(a1, b1)),
        ("add (20000,1,2)+(1,100,2) [23h]", lambda: a3 + b3),
        ("maximum (20000,1,2),(1,100,2) [23h]", lambda: lib.maximum(a3, b3)),
        ("div (1,100,2)/(20000,1,2) [23h]", lambda: b3 / a3),
        ("pairwise IoU 20k x 100 [23h]", lambda: iou(bx1.detach(), bx2)),
        ("pairwise IoU 20k x 100 fwd+bwd [23h]", iou_fb),
        ("bce_with_logits (100000,80) 'none' [23h]",
         lambda: F.binary_cross_entropy_with_logits(x, y, reduction="none")),
        ("bce_with_logits (100000,80) mean fwd+bwd [23h]", bce_fb),
        ("bce_with_logits (100000,80) pos_weight mean fwd+bwd [23h]", lambda: bce_fb(pw)),
    ]


def _multinomial_small(lib, rng):
    """Multinomial at RL acting sizes (one draw by inverse CDF in either mode,
    one cumulative sum for the checks and the search), more draws, and Categorical.sample at
    batch 1 eager and (tensorlib) captured, where the draw op now checks the rows itself."""
    cases = []
    for shape in [(1, 2), (16, 2), (64, 6), (2048, 6)]:
        w = lib.tensor((rng.random(shape) + 0.1).astype(np.float32))
        for repl in (False, True):
            for k in (1, 2):
                cases.append((f"multinomial {shape} k={k} replacement={repl} [23f]",
                              lambda w=w, k=k, repl=repl: lib.multinomial(w, k, repl)))
    lg = lib.tensor(rng.standard_normal((1, 4)).astype(np.float32))
    D = lib.distributions
    cat = D.Categorical(logits=lg, validate_args=False)
    cases.append(("Categorical.sample() batch 1 [23f]", lambda: cat.sample()))

    def act(x):
        return D.Categorical(logits=x, validate_args=False).sample()
    cases.append(("Categorical(logits).sample() batch 1, eager [23f]", lambda: act(lg)))
    if lib is tl:
        cap = tl.function(act)
        cases.append(("Categorical(logits).sample() batch 1, captured [23f]",
                      lambda: cap(lg)))
    return cases


def _pdist(lib, rng):
    """pdist (p = 2) as the triangle alone, in row blocks of float32 GEMM
    products with the close pairs from differences, forward and backward (the recommender
    trial's sizes), and cdist p = 2 on tensorlib's GEMM."""
    F = lib.nn.functional
    a = lib.tensor(rng.standard_normal((4096, 16)).astype(np.float32), requires_grad=True)
    b = lib.tensor(rng.standard_normal((2048, 64)).astype(np.float32), requires_grad=True)
    c = lib.tensor(rng.standard_normal((2048, 16)).astype(np.float32))

    def fb(x):
        def run():
            x.grad = None
            F.pdist(x).sum().backward()
        return run
    return [
        ("pdist forward (4096, 16) [23g]", lambda: F.pdist(a.detach())),
        ("pdist fwd+bwd (4096, 16) [23g]", fb(a)),
        ("pdist fwd+bwd (2048, 64) [23g]", fb(b)),
        ("cdist p=2 (4096, 16) x (2048, 16) [23g]", lambda: lib.cdist(a.detach(), c)),
    ]


def _small_selection(lib, rng):
    """Small selections: adaptive max pooling with uneven windows (a direct kernel), topk at
    a MoE router's size (the kernel's per-call cost), kthvalue through topk."""
    F = lib.nn.functional
    px = lib.tensor(rng.standard_normal((8, 64, 13, 13)).astype(np.float32), requires_grad=True)
    router = lib.tensor(rng.standard_normal((160, 4)).astype(np.float32))
    v = lib.tensor(rng.standard_normal(100).astype(np.float32))
    m = lib.tensor(rng.standard_normal((16, 32)).astype(np.float32))

    def pool(out):
        def run():
            px.grad = None
            F.adaptive_max_pool2d(px, out).sum().backward()
        return run
    return [
        ("adaptive_max_pool2d fwd+bwd (8,64,13,13)->(4,4)", pool((4, 4))),
        ("adaptive_max_pool2d fwd+bwd (8,64,13,13)->(5,7)", pool((5, 7))),
        ("topk (160, 4) k=2", lambda: lib.topk(router, 2)),
        ("kthvalue (100,) k=7", lambda: lib.kthvalue(v, 7)),
        ("kthvalue (16, 32) k=5 dim=-1", lambda: lib.kthvalue(m, 5, -1)),
        ("kthvalue (16, 32) k=3 dim=0", lambda: lib.kthvalue(m, 3, 0)),
    ]


def _ctc_loss(lib, rng):
    """ctc_loss forward+backward at the speech trial's size (T=200, N=16, C=30,
    S=40; the backward reuses the forward's alphas; float64 exp clamped off its slow underflow
    path), and stft with a float64 window on a float32 signal (complex128, as PyTorch's) and
    with circular padding."""
    F = lib.nn.functional
    T, N, C, S = 200, 16, 30, 40
    tg = rng.integers(1, C, (N, S))
    il = rng.integers(150, 201, N)
    il[0] = 200
    tlen = rng.integers(20, 41, N)
    lens = (lib.tensor(tg), lib.tensor(il), lib.tensor(tlen))
    flat = lib.tensor(np.concatenate([tg[n, :tlen[n]] for n in range(N)]))
    lg = rng.standard_normal((T, N, C))
    xs = {dt: lib.tensor(lg.astype(dt), requires_grad=True) for dt in (np.float32, np.float64)}
    sig = lib.tensor(rng.standard_normal((32, 16000)).astype(np.float32))
    w64 = lib.hann_window(400, dtype=lib.float64)
    w32 = lib.hann_window(400)

    def ctc(x, targets=lens[0]):
        def run():
            x.grad = None
            F.ctc_loss(F.log_softmax(x, -1), targets, lens[1], lens[2]).backward()
        return run
    return [
        ("ctc_loss fwd+bwd T200 N16 C30 S40 f32 [23e]", ctc(xs[np.float32])),
        ("ctc_loss fwd+bwd T200 N16 C30 S40 f64 [23e]", ctc(xs[np.float64])),
        ("ctc_loss fwd+bwd concatenated targets f32 [23e]", ctc(xs[np.float32], flat)),
        ("ctc_loss forward T200 N16 C30 S40 f64 [23e]",
         lambda: F.ctc_loss(F.log_softmax(xs[np.float64].detach(), -1), *lens)),
        ("stft f32 signal, f64 window (32x16000, n_fft 512) [23e]",
         lambda: lib.stft(sig, 512, 160, 400, window=w64, return_complex=True)),
        ("stft pad_mode circular (32x16000, n_fft 512) [23e]",
         lambda: lib.stft(sig, 512, 160, 400, window=w32, pad_mode="circular",
                          return_complex=True)),
    ]



def _unique_searchsorted_isin(lib, rng):
    """unique / searchsorted / isin on 100k int64 ids in [0, 1e8) (one radix
    argsort instead of NumPy's hashing unique and random-order binary searches), and
    scatter_add / index_add with PyTorch's checked indices (GNN aggregation, 100k x 64)."""
    k = rng.integers(0, 10 ** 8, 100000)
    K, S = lib.tensor(k), lib.tensor(np.sort(k))
    Kh = lib.tensor(k[:50000])
    src = lib.tensor(rng.standard_normal((100000, 64)).astype(np.float32))
    col = lib.tensor(rng.integers(0, 10000, 100000))
    col2 = col.unsqueeze(1).expand(100000, 64)
    w = lib.tensor(rng.random(100000).astype(np.float32))
    return [
        ("unique 100k int64 [23d]", lambda: lib.unique(K)),
        ("unique return_inverse+counts 100k int64 [23d]",
         lambda: lib.unique(K, return_inverse=True, return_counts=True)),
        ("searchsorted 100k into 100k int64 [23d]", lambda: lib.searchsorted(S, K)),
        ("isin 100k in 50k int64 [23d]", lambda: lib.isin(K, Kh)),
        ("scatter_add dim 0 expanded index (100k, 64) -> 10k [23d]",
         lambda: lib.zeros(10000, 64).scatter_add(0, col2, src)),
        ("index_add dim 0 (100k, 64) -> 10k [23d]",
         lambda: lib.zeros(10000, 64).index_add(0, col, src)),
        ("scatter_add_ weighted degree 100k -> 10k [23d]",
         lambda: lib.zeros(10000).scatter_add_(0, col, w)),
    ]


def _per_example_grads(lib, rng):
    """Per-example gradients through vmap: vmap(grad) of an MLP (784-128-128-10,
    cross_entropy / log_softmax+nll), and a PINN's Laplacian (vmap of hessian of a tanh MLP)
    with the backward to the shared weights (their gradient contracted over the points)."""
    F, fn = lib.nn.functional, lib.func
    sizes = (784, 128, 128, 10)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"{2 * i}.weight"] = lib.tensor((rng.standard_normal((b, a)) * 0.05)
                                               .astype(np.float32))
        params[f"{2 * i}.bias"] = lib.tensor(np.zeros(b, np.float32))
    nn = lib.nn
    mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    xb = lib.tensor(rng.standard_normal((256, 784)).astype(np.float32))
    yb = lib.tensor(rng.integers(0, 10, 256))

    def ce(p, x, y):
        return F.cross_entropy(fn.functional_call(mlp, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    def nll(p, x, y):
        return F.nll_loss(F.log_softmax(fn.functional_call(mlp, p, (x,)), -1), y)
    W = [lib.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
         for s in ((32, 2), (32,), (32, 32), (32,), (1, 32), (1,))]
    pts = lib.tensor(rng.standard_normal((1000, 2)))

    def u(x):
        h = lib.tanh(W[0] @ x + W[1])
        return (W[4] @ lib.tanh(W[2] @ h + W[3]) + W[5]).sum()

    def pinn_step():
        for w in W:
            w.grad = None
        lap = fn.vmap(lambda x: lib.diagonal(fn.hessian(u)(x)).sum())(pts)
        (lap ** 2).mean().backward()
    return [
        ("vmap(grad) MLP 784-128-128-10 cross_entropy, batch 256 [23a]",
         lambda: fn.vmap(fn.grad(ce), in_dims=(None, 0, 0))(params, xb, yb)),
        ("vmap(grad) MLP 784-128-128-10 log_softmax+nll 1-d, batch 64 [23a]",
         lambda: fn.vmap(fn.grad(nll), in_dims=(None, 0, 0))(params, xb[:64], yb[:64])),
        ("PINN vmap(hessian) Laplacian + backward, 1000 points f64 [23a]", pinn_step),
    ]


def _float64_tall_reductions(lib, rng):
    """Float64 sums/means/variances over tall, narrow arrays and short last axes
    (the column cascade of _reduce.h shared with float32, the float64 row cascade), and the
    int64/float64 cumsum kernel along both axes."""
    def f64(*shape):
        return lib.tensor(rng.standard_normal(shape))
    tall = {s: f64(*s) for s in ((100000, 8), (1000000, 3), (50000, 32))}
    short = {s: f64(*s) for s in ((100000, 4), (200000, 16))}
    i64 = lib.tensor(rng.integers(-1000, 1000, (1000, 1000)))
    d64 = f64(1000, 1000)
    out = []
    for s, x in tall.items():
        out += [(f"sum dim 0 {s} f64 [23b]", lambda x=x: x.sum(0)),
                (f"mean dim 0 {s} f64 [23b]", lambda x=x: x.mean(0))]
    out.append(("var dim 0 (100000, 8) f64 [23b]", lambda: tall[(100000, 8)].var(0)))
    for s, x in short.items():
        out += [(f"sum dim 1 {s} f64 [23b]", lambda x=x: x.sum(1)),
                (f"mean dim 1 {s} f64 [23b]", lambda x=x: x.mean(1)),
                (f"var dim 1 {s} f64 [23b]", lambda x=x: x.var(1))]
    out += [("sum (1000000, 3) f64, all [23b]", lambda: tall[(1000000, 3)].sum())]
    for d in (0, 1):
        out += [(f"cumsum dim {d} (1000, 1000) int64 [23b]", lambda d=d: i64.cumsum(d)),
                (f"cumsum dim {d} (1000, 1000) f64 [23b]", lambda d=d: d64.cumsum(d))]
    return out

def _grid_sample_few_channels(lib, rng):
    """grid_sample's 4-d kernels (_grid2d.h) with few channels (C = 1, 3) and
    the fused backward (input and grid gradients in one pass), float32."""
    F = lib.nn.functional
    img = lib.tensor(rng.standard_normal((64, 3, 96, 96)).astype(np.float32))
    one = lib.tensor(rng.standard_normal((16, 1, 128, 128)).astype(np.float32))
    g1 = lib.tensor(rng.uniform(-1.1, 1.1, (64, 64, 64, 2)).astype(np.float32))
    g2 = lib.tensor(rng.uniform(-1.1, 1.1, (16, 128, 128, 2)).astype(np.float32))
    xs = [lib.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
          for s in ((64, 3, 96, 96), (8, 32, 64, 64))]
    gs = [lib.tensor(rng.uniform(-1.1, 1.1, s).astype(np.float32), requires_grad=True)
          for s in ((64, 64, 64, 2), (8, 64, 64, 2))]

    def fb(i, mode):
        def run():
            xs[i].grad = gs[i].grad = None
            F.grid_sample(xs[i], gs[i], mode=mode, align_corners=False).sum().backward()
        return run
    out = []
    for mode in ("nearest", "bilinear"):
        out += [
            (f"grid_sample {mode} (64,3,96,96) at (64,64,64,2) [22b]",
             lambda m=mode: F.grid_sample(img, g1, mode=m, align_corners=False)),
            (f"grid_sample {mode} reflection (64,3,96,96) at (64,64,64,2) [22b]",
             lambda m=mode: F.grid_sample(img, g1, mode=m, padding_mode="reflection",
                                          align_corners=True)),
            (f"grid_sample {mode} (16,1,128,128) at (16,128,128,2) [22b]",
             lambda m=mode: F.grid_sample(one, g2, mode=m, align_corners=False)),
            (f"grid_sample {mode} fwd+bwd (64,3,96,96) at (64,64,64,2) [22b]", fb(0, mode)),
            (f"grid_sample {mode} fwd+bwd (8,32,64,64) at (8,64,64,2) [22b]", fb(1, mode)),
        ]
    return out


def _multi_axis_fft(lib, rng):
    """Multi-axis FFTs as one pocketfft call (rfft2/irfft2/fftn...), forward and
    forward+backward, float32 and float64 (complex64 / complex128 for the complex ones)."""
    out = []
    for dt, cdt, tag in ((np.float32, np.complex64, "f32"), (np.float64, np.complex128, "f64")):
        r1, r2 = rng.standard_normal((64, 4096)).astype(dt), \
            rng.standard_normal((16, 256, 256)).astype(dt)
        c2 = (rng.standard_normal((16, 256, 256)) + 1j * rng.standard_normal((16, 256, 256)))
        c3 = rng.standard_normal((8, 64, 64, 64)) + 1j * rng.standard_normal((8, 64, 64, 64))
        cases = [("fft.rfft (64,4096)", lib.fft.rfft, r1),
                 ("fft.irfft (64,2049)", lib.fft.irfft, np.fft.rfft(r1).astype(cdt)),
                 ("fft.rfft2 (16,256,256)", lib.fft.rfft2, r2),
                 ("fft.irfft2 (16,256,129)", lib.fft.irfft2, np.fft.rfft2(r2).astype(cdt)),
                 ("fft.fft2 (16,256,256)", lib.fft.fft2, c2.astype(cdt)),
                 ("fft.ifft2 (16,256,256)", lib.fft.ifft2, c2.astype(cdt)),
                 ("fft.fftn 3-d (8,64,64,64)", lambda z: lib.fft.fftn(z, dim=(1, 2, 3)),
                  c3.astype(cdt))]
        for name, fn, a in cases:
            x = lib.tensor(a)
            xg = lib.tensor(a, requires_grad=True)

            def fb(fn=fn, xg=xg):
                xg.grad = None
                y = fn(xg)
                (y.real if lib.is_complex(y) else y).sum().backward()
            out += [(f"{name} {tag} [22c]", lambda fn=fn, x=x: fn(x)),
                    (f"{name} {tag} fwd+bwd [22c]", fb)]
    return out


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


def _reductions_and_activations(lib, rng):
    """Float32 reductions (the _reduce.h kernels), hardswish/SiLU backward,
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


def _decompositions_and_sampling(lib, rng):
    """Values-only decompositions, the batched LU kernel, lerp, in-place row
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



def _gelu_bag_and_losses(lib, rng):
    """Exact GELU forward/backward on vector registers (_gelu_vec.h), the
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

def _lgamma_and_causal_attention(lib, rng):
    """lgamma / digamma kernels (_gamma.h), causal attention by query blocks."""
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


def _float64_axis0_and_small_solves(lib, rng):
    """Float64 reductions along axis 0 of tall, narrow matrices (folded row
    blocks), GMM einsums with d=2 (BLAS), one-column triangular solves (trsv)."""
    x64 = lib.tensor(rng.standard_normal((20000, 4)))
    r = lib.tensor(rng.random((5000, 4)))
    d = lib.tensor(rng.standard_normal((5000, 4, 2)))
    tri = lib.tensor(np.tril(rng.standard_normal((1000, 1000))) + 30 * np.eye(1000))
    rhs = lib.tensor(rng.standard_normal((1000, 1)))
    return [
        ("sum(0) float64 (20000, 4) [22h]", lambda: x64.sum(0)),
        ("mean(0) float64 (20000, 4) [22h]", lambda: x64.mean(0)),
        ("var(0) float64 (20000, 4) [22h]", lambda: x64.var(0)),
        ("einsum nk,nki,nkj->kij (5000, 4, 2) [22h]",
         lambda: lib.einsum("nk,nki,nkj->kij", r, d, d)),
        ("einsum nki,nkj->kij (5000, 4, 2) [22h]", lambda: lib.einsum("nki,nkj->kij", d, d)),
        ("solve_triangular 1000, one rhs [22h]",
         lambda: lib.linalg.solve_triangular(tri, rhs, upper=False)),
    ]


def _lgamma_vector(lib, rng):
    """lgamma's vector kernel (_gamma.h), values near the roots and poles."""
    g32 = lib.tensor((rng.standard_normal(1 << 20) * 5).astype(np.float32))
    g64 = lib.tensor(rng.standard_normal(1 << 20) * 5)
    u64 = lib.tensor(rng.uniform(0.5, 2.5, 1 << 20))
    return [
        ("lgamma float32, 1M (N(0, 25)) [21c]", lambda: lib.lgamma(g32)),
        ("lgamma float64, 1M (N(0, 25)) [21c]", lambda: lib.lgamma(g64)),
        ("lgamma float64, 1M (U(0.5, 2.5), the roots)", lambda: lib.lgamma(u64)),
    ]


def _grid_sample_forward(lib, rng):
    """grid_sample's fused 4-d forward (_grid2d.h), both modes, float32."""
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


def _conv_small_maps(lib, rng):
    """Convolutions on small maps (a diffusion UNet's 7x7 and 14x14 levels,
    B=64) and, so that nothing regresses, 3x3 64->64 at 16/32/56 (B=32) and a 1-D conv;
    forward (no grad) and forward+backward, float32."""
    F = lib.nn.functional
    cases = [("conv2d 64->64 k3 p1 7x7 B64", F.conv2d, (64, 64, 7, 7), (64, 64, 3, 3),
              dict(padding=1)),
             ("conv2d 128->64 k3 p1 7x7 B64", F.conv2d, (64, 128, 7, 7), (64, 128, 3, 3),
              dict(padding=1)),
             ("conv2d 32->32 k3 s2 p1 14->7 B64", F.conv2d, (64, 32, 14, 14), (32, 32, 3, 3),
              dict(stride=2, padding=1)),
             ("conv_transpose2d 64->64 k4 s2 p1 7->14 B64", F.conv_transpose2d,
              (64, 64, 7, 7), (64, 64, 4, 4), dict(stride=2, padding=1)),
             ("conv2d 96->32 k3 p1 14x14 B64", F.conv2d, (64, 96, 14, 14), (32, 96, 3, 3),
              dict(padding=1)),
             ("conv1d 64->64 k3 p1 L128 B32", F.conv1d, (32, 64, 128), (64, 64, 3),
              dict(padding=1))]
    cases += [(f"conv2d 64->64 k3 p1 {s}x{s} B32", F.conv2d, (32, 64, s, s), (64, 64, 3, 3),
               dict(padding=1)) for s in (16, 32, 56)]
    # session 22b: few channels (shallow per-tap GEMMs) and a stride-1 transposed conv,
    # whose forward is the input-gradient kernel
    cases += [("conv2d 32->32 k3 p1 14x14 B64", F.conv2d, (64, 32, 14, 14),
               (32, 32, 3, 3), dict(padding=1)),
              ("conv_transpose2d 64->64 k3 s1 p1 7x7 B64", F.conv_transpose2d,
               (64, 64, 7, 7), (64, 64, 3, 3), dict(padding=1))]
    out = []
    for name, fn, xs, ws, kw in cases:
        x = rng.standard_normal(xs).astype(np.float32)
        w = (rng.standard_normal(ws) * 0.1).astype(np.float32)
        b = lib.tensor(rng.standard_normal(ws[1] if "transpose" in name else ws[0])
                       .astype(np.float32), requires_grad=True)
        X, W = lib.tensor(x), lib.tensor(w)
        Xg, Wg = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)

        def fwd(fn=fn, X=X, W=W, b=b, kw=kw):
            with lib.no_grad():
                return fn(X, W, b, **kw)

        def fb(fn=fn, X=Xg, W=Wg, b=b, kw=kw):
            X.grad = W.grad = b.grad = None
            fn(X, W, b, **kw).sum().backward()
        out += [(f"{name} [22d]", fwd), (f"{name} fwd+bwd [22d]", fb)]
    return out


def _small_matmuls(lib, rng):
    """Small float32/float64 matrix products on the faster of tensorlib's SGEMM
    and NumPy's BLAS (tensorlib/_gemm.py's crossover table): a @ b, a @ b.T, a.T @ b at
    n = 32..256, stacks of 16, F.linear and its backward at 64."""
    F = lib.nn.functional
    out = []
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        for n in (32, 64, 96, 128, 256):
            a = lib.tensor(rng.standard_normal((n, n)).astype(dt))
            b = lib.tensor(rng.standard_normal((n, n)).astype(dt))
            out += [(f"matmul NN {name} {n}^3 [22f]", lambda a=a, b=b: a @ b),
                    (f"matmul NT {name} {n}^3 [22f]", lambda a=a, b=b: a @ b.T),
                    (f"matmul TN {name} {n}^3 [22f]", lambda a=a, b=b: a.T @ b)]
    for n in (8, 32, 64, 128):
        a = lib.tensor(rng.standard_normal((16, n, n)).astype(np.float32))
        b = lib.tensor(rng.standard_normal((16, n, n)).astype(np.float32))
        out += [(f"bmm NN float32 (16,{n},{n}) [22f]", lambda a=a, b=b: a @ b),
                (f"bmm NT float32 (16,{n},{n}) [22f]",
                 lambda a=a, b=b: a @ b.transpose(-1, -2))]
    x = lib.tensor(rng.standard_normal((64, 64)).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal((64, 64)).astype(np.float32), requires_grad=True)
    bias = lib.tensor(rng.standard_normal(64).astype(np.float32), requires_grad=True)
    xd, wd, bd = x.detach(), w.detach(), bias.detach()

    def linear_fb():
        x.grad = w.grad = bias.grad = None
        F.linear(x, w, bias).sum().backward()

    def abt_fb():
        x.grad = w.grad = None
        (x @ w.T).sum().backward()
    return out + [
        ("F.linear float32 (64,64) x (64,64) [22f]", lambda: F.linear(xd, wd, bd)),
        ("F.linear fwd+bwd float32 (64,64) x (64,64) [22f]", linear_fb),
        ("A @ W.T fwd+bwd float32 64^3 [22f]", abt_fb),
    ]


def _einsum_as_matmul(lib, rng):
    """Einsum as one matrix product landing in the output's layout (forward
    and forward+backward: the gradients are C-ordered, no transposed views), max(dim=) on
    amax's fast path, a gather of whole trailing rows (an expanded index), histc, one_hot
    and int64 cumsum, float32."""
    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    S, E, C, d = 1024, 8, 320, 64
    cases = [("sec,ecd->sd", (rng.random((S, E, C)) < 0.05).astype(np.float32), f32(E, C, d)),
             ("bij,bjk->bik", f32(32, 128, 64), f32(32, 64, 128)),
             ("bhqd,bhkd->bhqk", f32(8, 8, 128, 64), f32(8, 8, 128, 64)),
             ("sd,ecd->sec", f32(S, d), f32(E, C, d)),
             ("ij,jk->ik", f32(512, 512), f32(512, 512))]
    out = []
    for sub, a, b in cases:
        ta, tb = lib.tensor(a), lib.tensor(b)
        la, lb = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        g = lib.ones(tuple(lib.einsum(sub, ta, tb).shape))

        def fb(s=sub, x=la, y=lb, g=g):
            x.grad = y.grad = None
            lib.einsum(s, x, y).backward(g)
        out += [(f"einsum {sub} [22e]", lambda s=sub, x=ta, y=tb: lib.einsum(s, x, y)),
                (f"einsum {sub} fwd+bwd [22e]", fb)]
    xm = lib.tensor(f32(8, 64, 512, 16), requires_grad=True)

    def max_fb():
        xm.grad = None
        xm.max(dim=-1)[0].sum().backward()
    xg = lib.tensor(f32(8, 8192, 64), requires_grad=True)
    ig = lib.tensor(rng.integers(0, 8192, (8, 8192, 1)))

    def gather_fb():
        xg.grad = None
        lib.gather(xg, 1, ig.expand(-1, -1, 64)).sum().backward()
    hv = lib.tensor(f32(8192))
    labels = lib.tensor(rng.integers(0, 2, (4096, 2)))
    ci = lib.tensor(rng.integers(-100, 100, (8192, 8)))
    return out + [
        ("max(dim=-1) values+indices (8,64,512,16) [22e]", lambda: xm.max(dim=-1)),
        ("max(dim=-1) fwd+bwd (8,64,512,16) [22e]", max_fb),
        ("gather expanded index fwd+bwd (8,8192,64) [22e]", gather_fb),
        ("histc 8192 values into 8 bins [22e]", lambda: lib.histc(hv, 8)),
        ("one_hot (4096,2) -> 8 classes [22e]",
         lambda: lib.nn.functional.one_hot(labels, 8)),
        ("cumsum int64 (8192,8) dim 0 [22e]", lambda: lib.cumsum(ci, 0)),
    ]


def _fused_losses_and_clamps(lib, rng):
    """Fused Huber / smooth L1 (loss + reduction, one-pass backward), hardtanh's
    and relu6's one-pass backward, one-pass nan_to_num (_fused_pointwise.h); (256, 2048)."""
    F = lib.nn.functional

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    p = lib.tensor(f32(256, 2048), requires_grad=True)
    y = lib.tensor(f32(256, 2048) * 0.5)
    gfull = lib.tensor(f32(256, 2048))
    ph = lib.tensor(f32(256, 2048) * 2, requires_grad=True)
    nan = f32(256, 2048)
    nan[::7] = np.nan
    nan[1::7, ::5] = np.inf
    nan[2::7, ::3] = -np.inf
    xn, xn64 = lib.tensor(nan), lib.tensor(nan.astype(np.float64))

    def fb(loss_fn, x, g=None):
        def run():
            x.grad = None
            out = loss_fn()
            out.backward(g) if g is not None else out.backward()
        return run
    return [
        ("F.huber_loss mean fwd+bwd (256, 2048) [22]",
         fb(lambda: F.huber_loss(p, y, delta=0.5), p)),
        ("F.huber_loss sum fwd+bwd (256, 2048) [22]",
         fb(lambda: F.huber_loss(p, y, reduction="sum"), p)),
        ("F.huber_loss none fwd+bwd (256, 2048) [22]",
         fb(lambda: F.huber_loss(p, y, reduction="none"), p, gfull)),
        ("F.huber_loss mean forward (256, 2048) [22]", lambda: F.huber_loss(p.detach(), y)),
        ("F.smooth_l1_loss mean fwd+bwd (256, 2048) [22]",
         fb(lambda: F.smooth_l1_loss(p, y, beta=0.5), p)),
        ("F.hardtanh fwd+bwd (256, 2048) [22]", fb(lambda: F.hardtanh(ph), ph, gfull)),
        ("F.relu6 fwd+bwd (256, 2048) [22]", fb(lambda: F.relu6(ph), ph, gfull)),
        ("nan_to_num float32 defaults (256, 2048) [22]", lambda: lib.nan_to_num(xn)),
        ("nan_to_num float32 explicit (256, 2048) [22]",
         lambda: lib.nan_to_num(xn, nan=0.0, posinf=1.0, neginf=-1.0)),
        ("nan_to_num float64 defaults (256, 2048) [22]", lambda: lib.nan_to_num(xn64)),
        ("F.logsigmoid fwd+bwd (256, 2048) [22]", fb(lambda: F.logsigmoid(ph), ph, gfull)),
    ]


def _rnn_inference(lib, rng):
    """Small recurrent layers in eval (the deploy trial's models): 2 layers,
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


def _conv_few_out_channels(lib, rng):
    """3x3 convolutions with few output channels on large maps (the shifted
    GEMMs), uint8 neighbour counts, float32 remainder/fmod by a scalar."""
    F = lib.nn.functional

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    x16, x3 = lib.tensor(f32(1, 16, 256, 256)), lib.tensor(f32(1, 3, 256, 256))
    w1, w2, w31 = lib.tensor(f32(1, 16, 3, 3)), lib.tensor(f32(2, 16, 3, 3)), \
        lib.tensor(f32(1, 3, 3, 3))
    xg = lib.tensor(f32(1, 16, 256, 256), requires_grad=True)
    wg = lib.tensor(f32(1, 16, 3, 3), requires_grad=True)
    mask = lib.tensor((rng.random((1, 1, 512, 512)) < 0.5).astype(np.uint8))
    ones = lib.tensor(np.ones((1, 1, 3, 3), np.uint8))
    h = lib.tensor(rng.random((1, 3, 512, 512)).astype(np.float32) * 7)

    def fb():
        xg.grad = wg.grad = None
        F.conv2d(xg, wg, padding=1).sum().backward()
    return [
        ("conv2d 3x3 16->1 (1,16,256,256) float32", lambda: F.conv2d(x16, w1, padding=1)),
        ("conv2d 3x3 16->2 (1,16,256,256) float32", lambda: F.conv2d(x16, w2, padding=1)),
        ("conv2d 3x3 3->1 (1,3,256,256) float32", lambda: F.conv2d(x3, w31, padding=1)),
        ("conv2d 3x3 16->1 (1,16,256,256) forward+backward", fb),
        ("conv2d uint8 3x3 neighbour count (1,1,512,512)",
         lambda: F.conv2d(mask, ones, padding=1)),
        ("remainder float32 by 6.0, (1,3,512,512)", lambda: lib.remainder(h, 6.0)),
        ("fmod float32 by 6.0, (1,3,512,512)", lambda: lib.fmod(h, 6.0)),
    ]


if __name__ == "__main__":
    sys.exit(main())
