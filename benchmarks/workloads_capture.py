"""W7 (../shared/BENCHMARKS.md): a captured training step (``tl.function`` over forward,
backward and SGD update) against the same step run eagerly, for W2, W3 and W4.

    python benchmarks/workloads_capture.py [--quick] [--rounds 3]

Both run the step builders of ``workloads_nn`` (same models, data and SGD kernel) in
one process, alternating eager and captured rounds; the figure is the median ms per
step of each and the speed-up eager / captured. ``WORKLOADS`` lists them for
benchmarks/run.py.
"""
from __future__ import annotations

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorlib as tl  # noqa: E402
from harness import Workload, time_per_call  # noqa: E402
from workloads_nn import tl_convnet, tl_lstm, tl_mlp  # noqa: E402

BUILDERS = {"W2": (tl_mlp, 20), "W3": (tl_convnet, 5), "W4": (tl_lstm, 10)}
_CACHE: dict = {}


def _steps(wid: str):
    if wid not in _CACHE:
        build, _ = BUILDERS[wid]
        eager = build()
        captured = tl.function(build())
        captured()           # trace once (not timed)
        _CACHE[wid] = (eager, captured)
    return _CACHE[wid]


def measure(wid: str, quick: bool = False, rounds: int = 3) -> dict:
    """{'eager': [ms...], 'captured': [ms...]} over ``rounds`` alternating rounds."""
    eager, captured = _steps(wid)
    n = 1 if quick else BUILDERS[wid][1]
    out: dict = {"eager": [], "captured": []}
    for _ in range(1 if quick else rounds):
        out["eager"].append(time_per_call(eager, n, warmup=1) * 1e3)
        out["captured"].append(time_per_call(captured, n, warmup=1) * 1e3)
    if captured.trace_count != 1:
        raise RuntimeError(f"{wid}: the captured step retraced: {captured.retrace_reasons}")
    return out


def w7(wid: str):
    def run(quick: bool) -> float:
        r = measure(wid, quick, rounds=1)
        return r["eager"][0] / r["captured"][0]
    return run


WORKLOADS = [Workload("W7", f"{w} step captured: speed-up over eager", "x (higher is better)",
                      {"tensorlib": w7(w)}, lower_is_better=False) for w in BUILDERS]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    print(f"W7: captured (tl.function) vs eager training step, median of {rounds} rounds")
    print(f"{'workload':<10}{'eager ms':>12}{'captured ms':>14}{'speed-up':>10}"
          f"{'spread (capt.)':>16}")
    for wid in BUILDERS:
        r = measure(wid, quick, rounds)
        e, c = statistics.median(r["eager"]), statistics.median(r["captured"])
        spread = (max(r["captured"]) - min(r["captured"])) / c * 100 if c else 0.0
        print(f"{wid:<10}{e:>12.2f}{c:>14.2f}{e / c:>9.2f}x{spread:>15.0f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
