"""Per-sample gradients of a small MLP: ``tl.vmap(tl.func.grad(loss))`` against a Python loop
over the examples and against ``torch.func.vmap(torch.func.grad(...))`` on the same machine.

    python benchmarks/vmap_per_sample.py [--batch 64] [--repeat 20]

Prints the median time of one batch of per-sample gradients for each (timed in interleaved
rounds), and checks that the three give the same gradients.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F

SIZES = (784, 128, 10)      # an MNIST-sized MLP: 784 -> 128 -> ReLU -> 10


def _params(rng):
    (i, h, o) = SIZES
    return {"w1": rng.standard_normal((h, i)).astype(np.float32) * 0.05,
            "b1": np.zeros(h, np.float32),
            "w2": rng.standard_normal((o, h)).astype(np.float32) * 0.1,
            "b2": np.zeros(o, np.float32)}


def tl_loss(p, x, y):
    h = F.relu(F.linear(x, p["w1"], p["b1"]))
    return F.cross_entropy(F.linear(h, p["w2"], p["b2"]), y)


def _median_ms(fns: dict, repeat: int) -> dict:
    """Median ms per call of each function, timed in interleaved rounds (on a shared
    machine a slow spell then hits every candidate alike)."""
    for fn in fns.values():
        fn()                                # warm up
    times: dict = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    raw = _params(rng)
    xs = rng.standard_normal((args.batch, SIZES[0])).astype(np.float32)
    ys = rng.integers(0, SIZES[-1], args.batch)

    params = {k: tl.tensor(v) for k, v in raw.items()}
    x, y = tl.tensor(xs), tl.tensor(ys)
    per_sample = tl.vmap(tl.func.grad(tl_loss), in_dims=(None, 0, 0))
    one = tl.func.grad(tl_loss)

    def loop():
        gs = [one(params, x[i], y[i]) for i in range(args.batch)]
        return {k: tl.stack([g[k] for g in gs]) for k in params}

    fns = {"tensorlib vmap(grad)": lambda: per_sample(params, x, y),
           "tensorlib loop of grad": loop}
    got, ref = per_sample(params, x, y), loop()
    for k in params:
        np.testing.assert_allclose(got[k].numpy(), ref[k].numpy(), rtol=1e-4, atol=1e-5)
    try:
        import torch
        from torch.func import grad, vmap
        tp = {k: torch.tensor(v) for k, v in raw.items()}
        tx, ty = torch.tensor(xs), torch.tensor(ys)

        def t_loss(p, x, y):
            h = torch.relu(torch.nn.functional.linear(x, p["w1"], p["b1"]))
            out = torch.nn.functional.linear(h, p["w2"], p["b2"])
            return torch.nn.functional.cross_entropy(out.unsqueeze(0), y.unsqueeze(0))
        t_ps = vmap(grad(t_loss), in_dims=(None, 0, 0))
        fns["torch.func vmap(grad)"] = lambda: t_ps(tp, tx, ty)
        tg = t_ps(tp, tx, ty)
        for k in params:
            np.testing.assert_allclose(got[k].numpy(), tg[k].numpy(), rtol=1e-4, atol=1e-5)
    except ImportError:
        pass
    results = _median_ms(fns, args.repeat)
    print(f"per-sample gradients, MLP {SIZES}, batch {args.batch}, torch threads "
          f"{_torch_threads()}, tensorlib threads {tl.get_num_threads()}")
    for name, ms in results.items():
        print(f"  {name:26s} {ms:8.2f} ms")


def _torch_threads():
    try:
        import torch
        return torch.get_num_threads()
    except ImportError:
        return "-"


if __name__ == "__main__":
    main()
