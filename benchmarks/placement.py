"""Placement over virtual CPU devices: a captured graph on one device vs placed on two.

A model of two independent towers (as in the whitepaper's model-parallel
examples) is captured twice, as an inference forward and as a training step
(forward, backward, SGD), and timed with ``Graph.run`` before and after
``tl.graph.place(g, ["cpu:0", "cpu:1"])``; and one MLP's training step on a
batch is timed against ``tl.graph.data_parallel`` of the step over the two
devices (each replica takes half the batch). Each figure is the best of 5 loops.
With tensorlib's kernels on one thread each, the two devices are two cores
working at once; with the default threads one large GEMM already uses every core.

    python benchmarks/placement.py            # full sizes
    python benchmarks/placement.py --quick    # tiny sizes (the test suite runs this)
    python benchmarks/placement.py --ray      # over the driver and two local Ray workers
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


def _data_parallel(width: int, depth: int, batch: int, devices: list[str]):
    """One MLP's training step at ``batch``, and the same step captured at a shard of the
    batch and rewritten by tl.graph.data_parallel over ``devices`` (same batch in all)."""
    tl.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width),
                                                              nn.ReLU())],
                          nn.Linear(width, 10))
    opt = tl.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = tl.randn(batch, width)
    y = tl.tensor(np.random.default_rng(0).integers(0, 10, batch))

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    graphs = []
    shard = batch // len(devices)
    for xb, yb in ((x, y), (x[:shard], y[:shard])):
        step(xb, yb)
        with tl.capture(xb, yb) as g:
            out = step(xb, yb)
        g.set_outputs(out)
        graphs.append(g)
    return graphs[0], tl.graph.data_parallel(graphs[1], devices), {0: x, 1: y}


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
    ap.add_argument("--ray", action="store_true")
    args = ap.parse_args(argv)
    width, depth, batch, loops = (32, 1, 8, 2) if args.quick else (1024, 3, 256, 10)
    if args.ray:
        tl.distributed.init(num_workers=2)
        devices = ["cpu", "/worker:0/cpu:0", "/worker:1/cpu:0"]
    else:
        devices = ["cpu:0", "cpu:1"]
    before = tl.get_num_threads()
    rows = []
    print(f"| graph (two towers, width {width}, depth {depth}, batch {batch}) | kernel threads "
          f"| one device ms | {' + '.join(devices)} ms | speed-up |")
    print("|---|---|---|---|---|")
    try:
        for threads in sorted({1, before}):
            tl.set_num_threads(threads)
            for kind in ("forward", "training step"):
                g, feeds = _capture(kind, width, depth, batch)
                one = _time(g, feeds, loops)
                g.place(devices)
                two = _time(g, feeds, loops)
                rows.append({"graph": kind, "threads": threads, "one": one, "two": two})
                print(f"| {kind} | {threads} | {one:.3f} | {two:.3f} | {one / two:.2f}x |")
            n = len(devices) * batch
            single, dp, feeds = _data_parallel(width, depth, n, devices)
            one, two = _time(single, feeds, loops), _time(dp, feeds, loops)
            rows.append({"graph": "data parallel", "threads": threads, "one": one, "two": two})
            print(f"| data-parallel step (one MLP, batch {n}) | {threads} | {one:.3f} "
                  f"| {two:.3f} | {one / two:.2f}x |")
    finally:
        tl.set_num_threads(before)
        if args.ray:
            tl.distributed.shutdown()
    return rows


if __name__ == "__main__":
    main()
