"""Placement over virtual CPU devices: a captured graph on one device vs placed on two.

A model of two independent towers (as in the whitepaper's model-parallel
examples) is captured twice, as an inference forward and as a training step
(forward, backward, SGD), and timed with ``Graph.run`` before and after
``tl.graph.place(g, ["cpu:0", "cpu:1"])``. Each figure is the best of 5 loops.
With tensorlib's kernels on one thread each, the two devices are two cores
working at once; with the default threads one large GEMM already uses every core.

    python benchmarks/placement.py            # full sizes
    python benchmarks/placement.py --quick    # tiny sizes (the test suite runs this)
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F


def _towers(width: int, depth: int, classes: int):
    tl.manual_seed(0)
    return [nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width),
                                                              nn.ReLU())],
                          nn.Linear(width, classes)) for _ in range(2)]


def _capture(kind: str, width: int, depth: int, batch: int):
    towers = _towers(width, depth, 10)
    x = tl.randn(batch, width)
    y = tl.tensor(np.random.default_rng(0).integers(0, 10, batch))
    if kind == "forward":
        with tl.no_grad(), tl.capture(x) as g:
            out = towers[0](x) + towers[1](x)
    else:
        opt = tl.optim.SGD([p for t in towers for p in t.parameters()], lr=1e-3)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(towers[0](x) + towers[1](x), y)
            loss.backward()
            opt.step()
            return loss

        step()                  # once eagerly first, so .grad exists when it is captured
        with tl.capture(x, y) as g:
            out = step()
    g.set_outputs(out)
    return g, {0: x} if kind == "forward" else {0: x, 1: y}


def _time(g, feeds, loops: int) -> float:
    g.run(feeds)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(loops):
            g.run(feeds)
        best = min(best, (time.perf_counter() - t0) / loops)
    return best * 1e3


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    width, depth, batch, loops = (32, 1, 8, 2) if args.quick else (1024, 3, 256, 10)
    before = tl.get_num_threads()
    rows = []
    print(f"| graph (two towers, width {width}, depth {depth}, batch {batch}) | kernel threads "
          "| one device ms | cpu:0 + cpu:1 ms | speed-up |")
    print("|---|---|---|---|---|")
    try:
        for kind in ("forward", "training step"):
            for threads in sorted({1, before}):
                tl.set_num_threads(threads)
                g, feeds = _capture(kind, width, depth, batch)
                one = _time(g, feeds, loops)
                g.place(["cpu:0", "cpu:1"])
                two = _time(g, feeds, loops)
                rows.append({"graph": kind, "threads": threads, "one": one, "two": two})
                print(f"| {kind} | {threads} | {one:.3f} | {two:.3f} | {one / two:.2f}x |")
    finally:
        tl.set_num_threads(before)
    return rows


if __name__ == "__main__":
    main()
