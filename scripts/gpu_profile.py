"""Where the GPU time of the G1 steps goes (run by scripts/gpu_check.sh on a GPU).

    python scripts/gpu_profile.py            # needs CuPy, a GPU and PyTorch (for CUPTI)
    PROBE_DEVICE=cpu python scripts/gpu_profile.py   # the op breakdown only, on the CPU

``kernel_summary``: every CUDA kernel the process launched during 3 steps (CuPy's and
tensorlib's included), recorded by CUPTI through torch.profiler: launches and kernel time
per step against wall time per step. Kernel time far below wall time means the host (Python
and launch overhead) sets the pace. ``op_breakdown``: the captured plan re-compiled with a
device synchronisation after every statement, summed by op.
"""
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), os.path.join(os.path.dirname(_HERE), "benchmarks")]
import cupy as cp  # noqa: E402

import tensorlib as tl  # noqa: E402
from workloads_nn import tl_convnet, tl_lstm, tl_mlp  # noqa: E402

DEV = os.environ.get("PROBE_DEVICE", "cuda")
SYNC = cp.cuda.Device().synchronize if DEV == "cuda" else (lambda: None)


def entry_of(f):
    return next(iter(f._cache.values()))[0]


def kernel_summary(name, step, steps=3, top=10):
    import torch
    from torch.profiler import ProfilerActivity, profile
    for _ in range(3):
        step()
    SYNC()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    SYNC()
    wall = (time.perf_counter() - t0) / steps * 1e3
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        SYNC()
        torch.cuda.synchronize()
    rows = [(e.key, e.count, getattr(e, "device_time_total", 0) or getattr(e, "cuda_time_total", 0))
            for e in prof.key_averages()]
    rows = [r for r in rows if r[2] > 0]
    n = sum(r[1] for r in rows) / steps
    busy = sum(r[2] for r in rows) / steps / 1e3
    print(f"{name} kernels: {n:.0f} launches/step, kernel time {busy:.3f} ms/step, "
          f"wall {wall:.3f} ms/step")
    for k, c, t in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"  {name}k {k[:60]:<60} {c / steps:6.0f}/step {t / steps / 1e3:8.3f} ms/step")


def op_breakdown(name, make, reps=5, top=12):
    """GPU time by op kind: the captured plan re-compiled with a device synchronisation after
    every statement (so each line's time is its kernels' time plus one launch)."""
    import re
    from collections import defaultdict
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
        SYNC()
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
        SYNC()
        clock[0] = time.perf_counter()
        ns["_run"]([], [])
    times.pop("start", None)
    total = sum(times.values()) / reps * 1e3
    print(f"{name} breakdown: {total:.3f} ms per step with a sync per op; top ops:")
    for k, v in sorted(times.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {name}  {k:<28} {v / reps * 1e3:8.3f} ms")


for name, make in (("W3c", lambda: tl_convnet(256, DEV)), ("W4c", lambda: tl_lstm(device=DEV))):
    try:
        op_breakdown(name, make)
    except Exception as e:
        print(f"{name} breakdown: FAILED {type(e).__name__}: {e}")


for name, make in (() if DEV != "cuda" else
                   (("W2", lambda: tl_mlp(128, "cuda")), ("W3", lambda: tl_convnet(256, "cuda")),
                    ("W4", lambda: tl_lstm(device="cuda")),
                    ("W4c", lambda: tl.function(tl_lstm(device="cuda"))))):
    try:
        kernel_summary(name, make())
    except Exception as e:
        print(f"{name} kernels: FAILED {type(e).__name__}: {e}")
