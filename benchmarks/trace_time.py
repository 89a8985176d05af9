"""How long tl.function takes to capture a training step, by model size.

    python benchmarks/trace_time.py            # 1000 Linear(1, 1) layers, Adam
    python benchmarks/trace_time.py 200 2000

The first call traces, optimizes and compiles the step; later calls replay it. A Sequential
of ``n`` Linear(1, 1) layers has 2n parameters and Adam keeps two states for each: tracing
cost that grows faster than the step (a scan of the graph per new variable, say) shows here
first.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tensorlib as tl


def measure(n: int) -> tuple[float, float]:
    """(seconds of the first call, ms per later call) of a captured Adam step."""
    model = tl.nn.Sequential(*[tl.nn.Linear(1, 1) for _ in range(n)])
    x = tl.tensor(np.ones((1, 1), np.float32))
    opt = tl.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss
    f = tl.function(step)
    t = time.perf_counter()
    f()
    first = time.perf_counter() - t
    f()
    t = time.perf_counter()
    for _ in range(5):
        f()
    return first, (time.perf_counter() - t) / 5 * 1e3


def main(argv: list[str]) -> int:
    for n in [int(a) for a in argv] or [1000]:
        first, per = measure(n)
        print(f"{n} Linear(1, 1) layers, Adam: first call (capture) {first:.1f} s, "
              f"then {per:.1f} ms per call")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
