"""tensorlib's W2/W3/W4/W4c training steps alone, in this process: for A/B runs of two
checkouts, which PyTorch's presence would only slow down.

    python benchmarks/steps.py                          # this checkout
    PYTHONPATH=/path/to/other/checkout python /path/to/other/checkout/benchmarks/steps.py

Alternate the two commands a few times on an idle machine; each prints the median ms per
step of ``--rounds`` rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads_nn as W  # noqa: E402
from gpu import _rounds  # noqa: E402  (the same warm-up and timing as the GPU benchmark)

import tensorlib as tl  # noqa: E402

STEPS = {"W2": (W.tl_mlp, 50), "W3": (W.tl_convnet, 15), "W4": (W.tl_lstm, 15),
         "W4c": (lambda: tl.function(W.tl_lstm()), 15)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default=",".join(STEPS), help="comma-separated ids")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="one round of two steps each")
    args = p.parse_args(argv)
    out = []
    for name in (s.strip() for s in args.only.split(",") if s.strip()):
        make, n = STEPS[name]
        rounds, n = (1, 2) if args.quick else (args.rounds, n)
        times = _rounds(make(), lambda: None, n, rounds, warmup=1 if args.quick else 3)
        out.append(f"{name} {statistics.median(times) * 1e3:.2f} ms")
    print(f"{tl.__file__}: " + "  ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
