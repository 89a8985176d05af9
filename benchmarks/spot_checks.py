"""A few single cases, one library per run, for quick before/after comparisons of one change
(the full set is benchmarks/ops.py):

    OMP_NUM_THREADS=1 python benchmarks/spot_checks.py tl          # this checkout
    OMP_NUM_THREADS=1 PYTHONPATH=/other/checkout python benchmarks/spot_checks.py tl
    OMP_NUM_THREADS=1 python benchmarks/spot_checks.py torch
    python benchmarks/spot_checks.py tl --quick      # one call each (the tests run this)

Prints the best of 7 rounds of 5 calls per case, in ms (µs where marked).
"""
from __future__ import annotations

import sys
import time

import numpy as np


def _best(fn, n: int = 5, rounds: int = 7) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e3


def cases(lib) -> dict:
    """{name: function} for the module ``lib`` (tensorlib or torch)."""
    F = lib.nn.functional
    rng = np.random.default_rng(0)

    def t(a, grad=False):
        x = lib.tensor(a)
        return x.requires_grad_(True) if grad else x

    def step(fn, *leaves):
        def run():
            for leaf in leaves:
                leaf.grad = None
            fn().sum().backward()
        return run

    x = t(rng.standard_normal((1000, 1000)))
    p = t(rng.standard_normal((4096, 16)).astype(np.float32), True)
    s = t(rng.standard_normal((160, 4)).astype(np.float32))
    a = t(rng.standard_normal((8, 64, 13, 13)).astype(np.float32), True)
    v = t(rng.standard_normal((2, 16, 8, 32, 32)).astype(np.float32), True)
    w = t((rng.standard_normal((32, 16, 3, 3, 3)) * 0.05).astype(np.float32), True)
    ps = [t(rng.standard_normal(4).astype(np.float32), True) for _ in range(1000)]
    for q in ps:
        q.grad = t(rng.standard_normal(4).astype(np.float32))
    opt = lib.optim.Adam(ps, lr=1e-3)
    return {
        "cumsum float64 (1000,1000) dim 1": lambda: lib.cumsum(x, 1),
        "logcumsumexp float64 (1000,1000) dim 1": lambda: lib.logcumsumexp(x, 1),
        "pdist (4096,16) forward": lambda: F.pdist(p.detach()),
        "pdist (4096,16) forward+backward": step(lambda: F.pdist(p), p),
        "topk (160,4) k=2 [us]": lambda: lib.topk(s, 2),
        "adaptive_max_pool2d (8,64,13,13)->(4,4) fwd+bwd":
            step(lambda: F.adaptive_max_pool2d(a, (4, 4)), a),
        "conv3d 16->32 k3 (2,16,8,32,32) fwd+bwd": step(lambda: F.conv3d(v, w, padding=1), v, w),
        "Adam step, 1000 parameters of shape (4,)": lambda: opt.step(),
    }


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    argv = [a for a in argv if a != "--quick"]
    name = argv[1] if len(argv) > 1 else "tl"
    if name == "torch":
        import torch as lib
        lib.set_num_threads(1)
    else:
        import tensorlib as lib
    for case, fn in cases(lib).items():
        ms = _best(fn, 1, 1) if quick else _best(fn)
        shown = f"{ms * 1e3:9.1f} us" if "[us]" in case else f"{ms:9.2f} ms"
        print(f"{case:52s} {shown}")


if __name__ == "__main__":
    main(sys.argv)
