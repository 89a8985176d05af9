"""G1: tensorlib on a CUDA GPU against PyTorch CUDA, in one run (see ../shared/BENCHMARKS.md).

    python benchmarks/gpu.py [--quick] [--rounds 5] [--json results.json]

W2 (MLP step, batch 128), W3 (convnet step, batch 256), W4 (char-LSTM step) and a
large elementwise add whose achieved bandwidth is compared with the card's peak
(``--peak-gbs``, default 3350 GB/s, an H100 SXM). Every time is the median of
``--rounds`` rounds of ``--steps`` steps each, synchronising the device around each
round. Without a GPU it prints why and exits 0 (``--require-gpu`` makes that an error).
Models are built from tensorlib's core and nn ops (no dependence on tl.nn modules), so
both frameworks run the same computation.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# run as ``python benchmarks/gpu.py`` from a checkout that is not installed: the repo root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tensorlib as tl  # noqa: E402


# --- timing ---------------------------------------------------------------------------
def _rounds(step, sync, steps: int, rounds: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        step()
    sync()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        out.append((time.perf_counter() - t0) / steps)
    return out


def _tl_sync():
    tl.cuda.synchronize()


# --- tensorlib models (core + nn ops) ------------------------------------------------------
def _param(rng, shape, fan_in, dev):
    a = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return tl.tensor(a, device=dev, requires_grad=True)


def _sgd(params, lr):
    with tl.no_grad():
        for p in params:
            p.sub_(p.grad * lr)
            p.grad = None


def _xent(logits, y):
    from tensorlib.ops.nn_loss import cross_entropy
    return cross_entropy(logits, y)


def tl_mlp(batch, dev):
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    ps = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        ps += [_param(rng, (i, o), i, dev), tl.zeros(o, device=dev, requires_grad=True)]
    x = tl.tensor(rng.standard_normal((batch, 784)).astype(np.float32), device=dev)
    y = tl.tensor(rng.integers(0, 10, batch), device=dev)

    def step():
        h = x
        for k in range(0, len(ps), 2):
            h = h @ ps[k] + ps[k + 1]
            if k < len(ps) - 2:
                h = tl.relu(h)
        loss = _xent(h, y)
        loss.backward()
        _sgd(ps, 0.01)
    return step


def _maxpool2(x):
    try:
        from tensorlib.nn import functional as F
        if hasattr(F, "max_pool2d"):
            return F.max_pool2d(x, 2)
    except ImportError:
        pass
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).amax(axis=(3, 5))


def tl_convnet(batch, dev):
    from tensorlib.ops.nn_conv import conv2d
    rng = np.random.default_rng(0)
    w1, b1 = _param(rng, (32, 1, 5, 5), 25, dev), tl.zeros(32, device=dev, requires_grad=True)
    w2, b2 = _param(rng, (64, 32, 5, 5), 800, dev), tl.zeros(64, device=dev, requires_grad=True)
    w3, b3 = _param(rng, (3136, 1024), 3136, dev), tl.zeros(1024, device=dev, requires_grad=True)
    w4, b4 = _param(rng, (1024, 10), 1024, dev), tl.zeros(10, device=dev, requires_grad=True)
    ps = [w1, b1, w2, b2, w3, b3, w4, b4]
    x = tl.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), device=dev)
    y = tl.tensor(rng.integers(0, 10, batch), device=dev)

    def step():
        h = _maxpool2(tl.relu(conv2d(x, w1, b1, padding=2)))
        h = _maxpool2(tl.relu(conv2d(h, w2, b2, padding=2)))
        h = tl.relu(h.reshape(batch, 3136) @ w3 + b3)
        loss = _xent(h @ w4 + b4, y)
        loss.backward()
        _sgd(ps, 0.01)
    return step


def tl_lstm(dev, vocab=64, emb=64, hidden=256, seq=32, batch=32):
    rng = np.random.default_rng(0)
    E = _param(rng, (vocab, emb), 1, dev)
    Wx = _param(rng, (emb, 4 * hidden), emb, dev)
    Wh = _param(rng, (hidden, 4 * hidden), hidden, dev)
    b = tl.zeros(4 * hidden, device=dev, requires_grad=True)
    Wo = _param(rng, (hidden, vocab), hidden, dev)
    bo = tl.zeros(vocab, device=dev, requires_grad=True)
    ps = [E, Wx, Wh, b, Wo, bo]
    tok = rng.integers(0, vocab, (seq + 1, batch))
    xs = [tl.tensor(tok[t], device=dev) for t in range(seq)]
    ys = [tl.tensor(tok[t + 1], device=dev) for t in range(seq)]
    H = hidden

    def step():
        h = tl.zeros(batch, H, device=dev)
        c = tl.zeros(batch, H, device=dev)
        loss = None
        for t in range(seq):
            g = E[xs[t]] @ Wx + h @ Wh + b
            i, f = tl.sigmoid(g[:, :H]), tl.sigmoid(g[:, H:2 * H])
            gg, o = tl.tanh(g[:, 2 * H:3 * H]), tl.sigmoid(g[:, 3 * H:])
            c = f * c + i * gg
            h = o * tl.tanh(c)
            lt = _xent(h @ Wo + bo, ys[t])
            loss = lt if loss is None else loss + lt
        (loss * (1.0 / seq)).backward()
        _sgd(ps, 0.01)
    return step


# --- the same in PyTorch --------------------------------------------------------------------
def torch_models(torch, dev):
    nn, F = torch.nn, torch.nn.functional

    def trainer(model, x, y, loss_fn):
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model, x, y).backward()
            opt.step()
        return step

    def mlp(batch):
        m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10)).to(dev)
        x = torch.randn(batch, 784, device=dev)
        y = torch.randint(0, 10, (batch,), device=dev)
        return trainer(m, x, y, lambda m, x, y: F.cross_entropy(m(x), y))

    def convnet(batch):
        m = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(),
                          nn.Linear(1024, 10)).to(dev)
        x = torch.randn(batch, 1, 28, 28, device=dev)
        y = torch.randint(0, 10, (batch,), device=dev)
        return trainer(m, x, y, lambda m, x, y: F.cross_entropy(m(x), y))

    def lstm(cell: bool, vocab=64, emb=64, hidden=256, seq=32, batch=32):
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(vocab, emb)
                self.rnn = nn.LSTMCell(emb, hidden) if cell else nn.LSTM(emb, hidden)
                self.out = nn.Linear(hidden, vocab)
        m = M().to(dev)
        tok = torch.randint(0, vocab, (seq + 1, batch), device=dev)

        def loss_fn(m, x, y):
            e = m.emb(x)
            if cell:
                h = torch.zeros(batch, hidden, device=dev)
                c = torch.zeros(batch, hidden, device=dev)
                outs = []
                for t in range(seq):
                    h, c = m.rnn(e[t], (h, c))
                    outs.append(h)
                hs = torch.stack(outs)
            else:
                hs, _ = m.rnn(e)
            return F.cross_entropy(m.out(hs).reshape(-1, vocab), y.reshape(-1))
        return trainer(m, tok[:-1], tok[1:], loss_fn)
    return mlp, convnet, lstm


# --- bandwidth ----------------------------------------------------------------------------------
def bandwidth(n: int, rounds: int, steps: int, torch=None) -> dict:
    """Achieved GB/s of c = a + b on n float32 elements (3 * 4n bytes moved per call)."""
    rng = np.random.default_rng(0)
    a = tl.tensor(rng.standard_normal(n, dtype=np.float32), device="cuda")
    b = tl.tensor(rng.standard_normal(n, dtype=np.float32), device="cuda")
    nbytes = 3 * 4 * n
    res = {}
    t = _rounds(lambda: a + b, _tl_sync, steps, rounds)
    res["tensorlib"] = [nbytes / s / 1e9 for s in t]
    import cupy as cp
    ca, cb = a._data, b._data
    out = cp.empty_like(ca)
    t = _rounds(lambda: cp.add(ca, cb, out=out), _tl_sync, steps, rounds)
    res["cupy (out=)"] = [nbytes / s / 1e9 for s in t]
    if torch is not None:
        ta, tb = torch.as_tensor(ca, device="cuda"), torch.as_tensor(cb, device="cuda")
        t = _rounds(lambda: ta + tb, torch.cuda.synchronize, steps, rounds)
        res["torch"] = [nbytes / s / 1e9 for s in t]
    return res


# --- driver --------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps: checks the harness only")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--peak-gbs", type=float, default=3350.0,
                    help="the card's peak memory bandwidth in GB/s (H100 SXM: 3350)")
    ap.add_argument("--elements", type=int, default=1 << 28)
    ap.add_argument("--only", default="", help="comma list of W2,W3,W4,BW")
    ap.add_argument("--require-gpu", action="store_true")
    a = ap.parse_args(argv)
    if not tl.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA GPU here (tl.cuda.is_available() is False); "
              "nothing measured")
        return 1 if a.require_gpu else 0
    if a.quick:
        a.rounds, a.steps, a.elements = 2, 2, 1 << 20
    only = set(a.only.split(",")) if a.only else {"W2", "W3", "W4", "BW"}
    try:
        import torch
        if not torch.cuda.is_available():
            print("PyTorch has no CUDA here: tensorlib figures only")
            torch = None
    except ImportError:
        print("PyTorch is not installed: tensorlib figures only")
        torch = None
    props = tl.cuda.get_device_properties()
    meta = {"card": props["name"], "compute_capability": f"{props['major']}.{props['minor']}",
            "memory_gib": round(props["total_memory"] / 2**30, 1),
            "torch": getattr(torch, "__version__", None),
            "cupy": __import__("cupy").__version__, "python": sys.version.split()[0],
            "rounds": a.rounds, "steps": a.steps, "quick": a.quick}
    print(f"G1 on {meta['card']} (cc {meta['compute_capability']}), torch {meta['torch']}, "
          f"cupy {meta['cupy']}, {a.rounds} rounds x {a.steps} steps")
    rows = []

    def record(wid, title, unit, tl_fn, torch_fn, torch_label="torch"):
        entry = {"id": wid, "title": title, "unit": unit}
        for name, fn, sync in (("tensorlib", tl_fn, _tl_sync),
                               (torch_label, torch_fn, getattr(torch, "cuda", None)
                                and torch.cuda.synchronize)):
            if fn is None:
                continue
            try:
                ts = _rounds(fn(), sync, a.steps, a.rounds)
                entry[name] = [t * 1e3 for t in ts]
            except Exception as e:  # report and go on: one broken workload must not hide others
                entry[name + "_error"] = f"{type(e).__name__}: {e}"
                print(f"  {wid} {name}: FAILED {type(e).__name__}: {e}")
        rows.append(entry)
        _print_row(entry, torch_label)

    tm = torch_models(torch, "cuda") if torch is not None else (None, None, None)
    if "W2" in only:
        record("W2", "MLP 784-512-512-10 step, batch 128", "ms",
               lambda: tl_mlp(128, "cuda"), tm[0] and (lambda: tm[0](128)))
    if "W3" in only:
        record("W3", "convnet step, batch 256", "ms",
               lambda: tl_convnet(256, "cuda"), tm[1] and (lambda: tm[1](256)))
    if "W4" in only:
        record("W4", "char-LSTM step (seq 32, batch 32)", "ms",
               lambda: tl_lstm("cuda"), tm[2] and (lambda: tm[2](True)), "torch LSTMCell")
        if torch is not None:
            entry = {"id": "W4-nnLSTM", "title": "char-LSTM step, torch nn.LSTM (cuDNN)",
                     "unit": "ms"}
            entry["torch nn.LSTM"] = [t * 1e3 for t in _rounds(tm[2](False),
                                                                torch.cuda.synchronize,
                                                                a.steps, a.rounds)]
            rows.append(entry)
            _print_row(entry, "torch nn.LSTM")
    if "BW" in only:
        try:
            bw = bandwidth(a.elements, a.rounds, a.steps * 2, torch)
            entry = {"id": "BW", "title": f"c = a + b, {a.elements} float32", "unit": "GB/s",
                     "peak_gbs": a.peak_gbs, **bw}
            med = statistics.median(bw["tensorlib"])
            entry["fraction_of_peak"] = med / a.peak_gbs
            rows.append(entry)
            print(f"  BW  c = a + b ({a.elements} float32): " + ", ".join(
                f"{k} {statistics.median(v):.0f} GB/s" for k, v in bw.items())
                + f"; tensorlib = {100 * med / a.peak_gbs:.0f}% of {a.peak_gbs:.0f} GB/s peak"
                  " (target >= 80%)")
        except Exception as e:
            rows.append({"id": "BW", "error": f"{type(e).__name__}: {e}"})
            print(f"  BW: FAILED {type(e).__name__}: {e}")
    result = {"meta": meta, "rows": rows,
              "memory": {"max_allocated_mib": tl.cuda.max_memory_allocated() / 2**20}}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"results written to {a.json}")
    return 0


def _print_row(entry, other):
    t = entry.get("tensorlib")
    o = entry.get(other)
    parts = [f"  {entry['id']:<10} {entry['title']:<42}"]
    for name, v in (("tensorlib", t), (other, o)):
        if v:
            parts.append(f"{name} {statistics.median(v):8.3f} ms (spread {min(v):.3f}-"
                         f"{max(v):.3f})")
    if t and o:
        r = statistics.median(t) / statistics.median(o)
        entry["ratio"] = r
        parts.append(f"ratio {r:.2f} (target <= 1.5)")
    print("  ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
