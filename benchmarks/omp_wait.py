"""What OpenMP's wait policy costs tensorlib's threaded kernels: each setting in its own process.

    python benchmarks/omp_wait.py                   # passive (tensorlib's default), 3000 spins
    python benchmarks/omp_wait.py --spin 1000,3000,10000
    python benchmarks/omp_wait.py --quick           # a few calls each (the tests run this)

libgomp reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when the first OpenMP library
loads, so every setting needs a fresh process. Each op is timed on one thread and on all of
them, called back to back (a Python loop: a few µs between calls) and with a 300 µs pause of
serial work between calls, after which a passive team is asleep and a short spin has ended.
The difference between one thread and all of them, back to back, is the wake-up's cost.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = (1 << 20, 1 << 22)     # floats: from 1 << 20 the elementwise maps and sums thread
GAP_S = 300e-6


def _child(quick: bool) -> dict:
    import numpy as np

    import tensorlib as tl

    calls = 5 if quick else 300
    rng = np.random.default_rng(0)
    res = {}
    for size in SIZES[:1] if quick else SIZES:
        x = tl.tensor(rng.standard_normal(size, dtype=np.float32))
        for name, fn in (("relu", lambda: tl.relu(x)), ("sum", lambda: x.sum())):
            for threads in (1, 0):
                tl.set_num_threads(threads or os.cpu_count() or 1)
                for gap in (0.0, GAP_S):
                    fn()
                    ts = []
                    for _ in range(calls):
                        if gap:
                            end = time.perf_counter() + gap
                            while time.perf_counter() < end:    # serial work, not a sleep
                                pass
                        t0 = time.perf_counter()
                        fn()
                        ts.append(time.perf_counter() - t0)
                    key = f"{name} {size} {'all' if threads == 0 else 1} {'gap' if gap else 'b2b'}"
                    res[key] = float(np.median(ts)) * 1e6
    return res


def _run(spin: str | None, quick: bool) -> dict:
    env = dict(os.environ)
    env.pop("GOMP_SPINCOUNT", None)
    if spin is not None:
        env["GOMP_SPINCOUNT"] = spin
    proc = subprocess.run([sys.executable, __file__, "--child"] + (["--quick"] if quick else []),
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spin", default="3000", help="comma-separated GOMP_SPINCOUNT values")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.quick)))
        return 0
    settings = [None] + [s for s in args.spin.split(",") if s]
    results = {s: _run(s, args.quick) for s in settings}
    names = [("passive" if s is None else f"spin {s}") for s in settings]
    print(f"µs per call (median); OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}"
          f" unless a spin count is set; {os.cpu_count()} CPUs")
    print("| op, floats, threads, calls | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key in results[None]:
        name, size, threads, gap = key.split()
        label = f"{name} {size}, {threads} thread{'s' if threads != '1' else ''}, " + (
            "back to back" if gap == "b2b" else f"{GAP_S * 1e6:.0f} µs apart")
        print(f"| {label} | " + " | ".join(f"{results[s][key]:.0f}" for s in settings) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
