"""Where the GPU time of the G1 steps goes (run by scripts/gpu_check.sh on a GPU).

    python scripts/gpu_profile.py                # needs CuPy, a GPU and PyTorch (for CUPTI)
    python scripts/gpu_profile.py --device cpu   # the op breakdown only (a check of the script)

``kernel_summary``: every CUDA kernel the process launched during 3 steps (CuPy's and
tensorlib's included), recorded by CUPTI through torch.profiler: launches and kernel time
per step against wall time per step. Kernel time far below wall time means the host (Python
and launch overhead) sets the pace. ``op_breakdown``: the captured plan re-compiled with a
device synchronisation after every statement, summed by op.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), os.path.join(os.path.dirname(_HERE), "benchmarks")]
import tensorlib as tl  # noqa: E402
from workloads_nn import tl_convnet, tl_lstm, tl_mlp  # noqa: E402

SYNC = [lambda: None]     # the device synchronisation (set by main for cuda)


def _sync():
    SYNC[0]()


def entry_of(f):
    return next(iter(f._cache.values()))[0]


def kernel_summary(name: str, step, steps: int = 3, top: int = 10) -> None:
    """Launches, kernel time and wall time per step, and the ``top`` kernels by time."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from gpu import _rounds        # G1's timing loop (benchmarks/ is on the path)
    wall = _rounds(step, _sync, steps, 1)[0] * 1e3
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        _sync()
        torch.cuda.synchronize()
    rows = [(e.key, e.count,
             getattr(e, "device_time_total", 0) or getattr(e, "cuda_time_total", 0))
            for e in prof.key_averages()]
    rows = [r for r in rows if r[2] > 0]
    n = sum(r[1] for r in rows) / steps
    busy = sum(r[2] for r in rows) / steps / 1e3
    print(f"{name} kernels: {n:.0f} launches/step, kernel time {busy:.3f} ms/step, "
          f"wall {wall:.3f} ms/step")
    for k, c, t in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"  {name}k {k[:60]:<60} {c / steps:6.0f}/step {t / steps / 1e3:8.3f} ms/step")


def op_breakdown(name: str, make, reps: int = 5, top: int = 12) -> None:
    """GPU time by op kind: the captured plan re-compiled with a device synchronisation after
    every statement (so each line's time is its kernels' time plus one launch)."""
    f = tl.function(make())
    for _ in range(3):
        f()
    plan = entry_of(f).plan
    ops = {}
    for n in plan.nodes:
        for v in n.outputs:
            ops[f"v{v.id}"] = n.op
    body = plan.source.splitlines()
    times = defaultdict(float)
    ns = dict(plan._fn.__globals__)
    clock = [0.0]

    def tick(label):
        _sync()
        t = time.perf_counter()
        times[label] += t - clock[0]
        clock[0] = t
    ns["_tick"] = tick
    lines = [body[0], "    _tick('start')"]
    for ln in body[1:]:
        if ln.strip().startswith("return"):
            lines.append(ln)
            continue
        lines.append(ln)
        m = re.match(r"\s*(v\d+)", ln)
        label = ops.get(m.group(1), "?") if m else ln.strip().split("(")[0]
        lines.append(f"    _tick({label!r})")
    exec(compile("\n".join(lines) + "\n", "<instrumented>", "exec"), ns)
    for _ in range(reps):
        _sync()
        clock[0] = time.perf_counter()
        ns["_run"]([], [])
    times.pop("start", None)
    total = sum(times.values()) / reps * 1e3
    print(f"{name} breakdown: {total:.3f} ms per step with a sync per op; top ops:")
    for k, v in sorted(times.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {name}  {k:<28} {v / reps * 1e3:8.3f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--batch", type=int, default=256, help="W3's batch (G1: 256)")
    a = ap.parse_args(argv)
    dev = a.device
    if dev == "cuda":
        if not tl.cuda.is_available():
            print("scripts/gpu_profile.py: no CUDA GPU here; nothing measured")
            return 0
        import cupy as cp
        SYNC[0] = cp.cuda.Device().synchronize
    for name, make in (("W3c", lambda: tl_convnet(a.batch, dev)),
                       ("W4c", lambda: tl_lstm(device=dev))):
        op_breakdown(name, make)
    if dev == "cuda":
        for name, make in (("W2", lambda: tl_mlp(128, dev)),
                           ("W3", lambda: tl_convnet(a.batch, dev)),
                           ("W4", lambda: tl_lstm(device=dev)),
                           ("W4c", lambda: tl.function(tl_lstm(device=dev)))):
            try:
                kernel_summary(name, make())
            except Exception as e:   # CUPTI may be unavailable: report, go on
                print(f"{name} kernels: FAILED {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
