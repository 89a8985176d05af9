"""Registered op calls per training step of W2, W3 or W4, by op (eager, on the CPU).

    python benchmarks/op_counts.py              # W4
    python benchmarks/op_counts.py W2 W3 W4
    python benchmarks/op_counts.py --every-sum  # as on a GPU: every running sum handed over

Counts each call of an op's CPU kernel during one step after a warm-up step: the ops the
``apply`` funnel runs, forward and backward (the walk's own in-place gradient sums are not
ops and are not counted). Fewer calls means less host time per step on a GPU, where each is
at least one kernel launch.
"""
from __future__ import annotations

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads_nn import tl_convnet, tl_lstm, tl_mlp  # noqa: E402

from tensorlib.ops.registry import REGISTRY  # noqa: E402

MAKE = {"W2": lambda: tl_mlp(128), "W3": lambda: tl_convnet(8), "W4": tl_lstm}


def count(step) -> collections.Counter:
    """Op calls by name during one call of ``step``."""
    calls: collections.Counter = collections.Counter()
    saved = {}
    for name, op in REGISTRY.items():
        saved[name] = op.cpu

        def counted(*a, _k=op.cpu, _n=name, **kw):
            calls[_n] += 1
            return _k(*a, **kw)
        op.cpu = counted
    try:
        step()
    finally:
        for name, k in saved.items():
            REGISTRY[name].cpu = k
    return calls


def main(argv: list[str]) -> int:
    if "--every-sum" in argv:
        # on the host the walk hands rules only large gradient sums (tensorlib._core)
        from tensorlib import _core
        if hasattr(_core, "set_host_sum_min"):     # (an older checkout has none)
            _core.set_host_sum_min(0)
        argv = [a for a in argv if a != "--every-sum"]
    for wid in argv or ["W4"]:
        step = MAKE[wid]()
        step()
        calls = count(step)
        top = ", ".join(f"{n} {c}" for n, c in calls.most_common(12))
        print(f"{wid}: {sum(calls.values())} op calls per step: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
