"""G1: tensorlib on a CUDA GPU against PyTorch CUDA, in one run (see ../shared/BENCHMARKS.md).

    python benchmarks/gpu.py [--quick] [--rounds 5] [--json results.json]

W2 (MLP step, batch 128), W3 (convnet step, batch 256), W4 (char-LSTM step) and a
large elementwise add whose achieved bandwidth is compared with the card's peak
(``--peak-gbs``; by default the card's own, 2 x memory clock x bus width as the driver
reports them). Every time is the median of ``--rounds`` rounds of ``--steps`` steps each,
synchronising the device around each round. Without a GPU it prints why and exits 0
(``--require-gpu`` makes that an error).
The models, data and SGD are those of benchmarks/workloads_nn.py (the CPU figures), built
on cuda: tensorlib's functional ops on raw parameters against PyTorch's nn modules. W2c,
W3c and W4c time the same tensorlib steps captured (one ``tl.function`` each); W4c is
compared with PyTorch's nn.LSTM (cuDNN), as on the CPU. ``--profile W4`` (or W2, W3)
prints where the host spends tensorlib's eager step (cProfile, by own time).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# run as ``python benchmarks/gpu.py`` from a checkout that is not installed: the repo root
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]
import tensorlib as tl  # noqa: E402
from workloads_nn import tl_convnet, tl_lstm, tl_mlp, torch_model  # noqa: E402


# --- timing ---------------------------------------------------------------------------
def _rounds(step, sync, steps: int, rounds: int, warmup: int = 3,
            host: list | None = None) -> list[float]:
    """Seconds per step of each round. ``host`` (a list) also gets each round's seconds per
    step before the final synchronisation: the host's own time to issue a step, which equals
    the step time when the host, not the GPU, is the bottleneck."""
    for _ in range(warmup):
        step()
    sync()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        t1 = time.perf_counter()
        sync()
        out.append((time.perf_counter() - t0) / steps)
        if host is not None:
            host.append((t1 - t0) / steps)
    return out


def _tl_sync():
    tl.cuda.synchronize()


def _no_sync():
    pass


# --- the models: benchmarks/workloads_nn.py's W2/W3/W4 builders, on a device ----------------
def _tl(builder, captured: bool):
    """A step maker for a workloads_nn builder; captured: one tl.function over the step."""
    def make():
        step = builder()
        return tl.function(step) if captured else step
    return make


def _torch(kind: str, batch: int, device: str):
    return lambda: torch_model(kind, batch, device)


def profile_step(make, sync=_tl_sync, steps: int = 3, top: int = 25) -> str:
    """cProfile of ``steps`` steps (after one warm-up), the ``top`` functions by own time: where
    the host spends a GPU step (Python, CuPy launches, or waiting in a synchronisation)."""
    import cProfile
    import io
    import pstats
    step = make()
    step()
    sync()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    sync()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def find_syncs(make) -> str:
    """Run one step with CuPy's synchronisation detector armed: where the step makes the
    host wait for the device (a copy to the host, a Python bool of a device value), with
    the frames of tensorlib and of this benchmark. The detector sees CuPy's own
    synchronisations only (and CuPy marks it deprecated), so "none" is a lower bound."""
    import traceback
    import warnings

    import cupyx
    step = make()
    step()
    _tl_sync()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with cupyx.allow_synchronize(False):
                step()
    except cupyx.DeviceSynchronized as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if "tensorlib" in f.filename or "benchmarks" in f.filename]
        where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"
                            for f in reversed(frames[-6:]))
        return f"synchronises: {where}"
    finally:
        _tl_sync()
    return "no host synchronisation detected"


# --- bandwidth ----------------------------------------------------------------------------------
def bandwidth(n: int, rounds: int, steps: int, torch=None) -> dict:
    """Achieved GB/s of c = a + b on n float32 elements (3 * 4n bytes moved per call)."""
    rng = np.random.default_rng(0)
    a = tl.tensor(rng.standard_normal(n, dtype=np.float32), device="cuda")
    b = tl.tensor(rng.standard_normal(n, dtype=np.float32), device="cuda")
    nbytes = 3 * 4 * n
    res = {}
    t = _rounds(lambda: a + b, _tl_sync, steps, rounds)
    res["tensorlib"] = [nbytes / s / 1e9 for s in t]
    import cupy as cp
    ca, cb = a._data, b._data
    out = cp.empty_like(ca)
    t = _rounds(lambda: cp.add(ca, cb, out=out), _tl_sync, steps, rounds)
    res["cupy (out=)"] = [nbytes / s / 1e9 for s in t]
    if torch is not None:
        ta, tb = torch.as_tensor(ca, device="cuda"), torch.as_tensor(cb, device="cuda")
        t = _rounds(lambda: ta + tb, torch.cuda.synchronize, steps, rounds)
        res["torch"] = [nbytes / s / 1e9 for s in t]
    return res


# --- driver --------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps: checks the harness only")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--peak-gbs", type=float, default=None,
                    help="the card's peak memory bandwidth in GB/s (default: from the "
                    "driver's memory clock and bus width; H100 SXM 3350, H200 4800)")
    ap.add_argument("--elements", type=int, default=1 << 28)
    ap.add_argument("--only", default="", help="comma list of W2,W3,W4,W2c,W3c,W4c,BW")
    ap.add_argument("--profile", default="", help="comma list of W2,W3,W4: cProfile the "
                    "tensorlib eager step (3 steps) and print the top functions")
    ap.add_argument("--find-syncs", default="", help="comma list of W2,W3,W4 (W2c... for the "
                    "captured steps): report where one step makes the host wait for the GPU")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cpu: run the same harness on the CPU (a check of this script, "
                    "no G1 figure; BW needs cuda)")
    ap.add_argument("--require-gpu", action="store_true")
    a = ap.parse_args(argv)
    dev = a.device
    if dev == "cuda" and not tl.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA GPU here (tl.cuda.is_available() is False); "
              "nothing measured")
        return 1 if a.require_gpu else 0
    if a.quick:
        a.rounds, a.steps, a.elements = 2, 2, 1 << 20
    only = set(a.only.split(",")) if a.only else {"W2", "W3", "W4", "W2c", "W3c", "W4c",
                                                   "BW"}
    torch = _import_torch(dev)
    tl_sync = _tl_sync if dev == "cuda" else _no_sync
    torch_sync = torch.cuda.synchronize if torch is not None and dev == "cuda" else _no_sync
    meta = _meta(dev, torch)
    meta.update(rounds=a.rounds, steps=a.steps, quick=a.quick)
    print(f"G1 on {meta['card']} (cc {meta['compute_capability']}), torch {meta['torch']}, "
          f"cupy {meta['cupy']}, {a.rounds} rounds x {a.steps} steps")
    rows = []

    def record(wid, title, unit, tl_fn, torch_fn, torch_label="torch"):
        entry = {"id": wid, "title": title, "unit": unit}
        for name, fn, sync in (("tensorlib", tl_fn, tl_sync), (torch_label, torch_fn, torch_sync)):
            if fn is None:
                continue
            try:
                host: list = []
                ts = _rounds(fn(), sync, a.steps, a.rounds, host=host)
                entry[name] = [t * 1e3 for t in ts]
                entry[name + "_host"] = [t * 1e3 for t in host]
            except Exception as e:  # report and go on: one broken workload must not hide others
                entry[name + "_error"] = f"{type(e).__name__}: {e}"
                print(f"  {wid} {name}: FAILED {type(e).__name__}: {e}")
        rows.append(entry)
        _print_row(entry, torch_label)

    workloads = [   # id, title, tensorlib step maker, PyTorch (kind, batch), its label
        ("W2", "MLP 784-512-512-10 step, batch 128", lambda: tl_mlp(128, dev),
         ("mlp", 128), "torch"),
        ("W3", "convnet step, batch 256", lambda: tl_convnet(256, dev),
         ("convnet", 256), "torch"),
        ("W4", "char-LSTM step (seq 32, batch 32)", lambda: tl_lstm(device=dev),
         ("lstm", 32), "torch LSTMCell")]
    for wid, title, make, (kind, batch), label in workloads:
        if wid in only:
            record(wid, title, "ms", _tl(make, False),
                   _torch(kind, batch, dev) if torch is not None else None, label)
            if wid == "W3" and torch is not None and dev == "cuda":
                _fp32_convs_row(rows[-1], a, torch, _torch(kind, batch, dev), torch_sync)
        if wid + "c" in only:   # captured: against the same PyTorch eager step, W4 vs nn.LSTM
            if wid == "W4":
                kind, label = "nnlstm", "torch nn.LSTM"
            record(wid + "c", title + ", tensorlib captured", "ms", _tl(make, True),
                   _torch(kind, batch, dev) if torch is not None else None, label)
    if "BW" in only and dev == "cuda":
        rows.append(_bandwidth_row(a, torch))
    profiles = {}
    makers = {w[0]: w[2] for w in workloads}
    for wid in filter(None, a.profile.split(",")):
        profiles[wid] = profile_step(makers[wid], tl_sync)
        print(f"--- profile of tensorlib's eager {wid} step on {dev} (3 steps) ---")
        print(profiles[wid])
    syncs = {}
    for wid in filter(None, a.find_syncs.split(",")):
        try:
            syncs[wid] = (find_syncs(_tl(makers[wid.rstrip("c")], wid.endswith("c")))
                          if dev == "cuda" else "not checked: needs cuda")
        except Exception as e:   # a diagnostic: never the reason the figures are lost
            syncs[wid] = f"check failed: {type(e).__name__}: {e}"
        print(f"  syncs {wid}: {syncs[wid]}")
    result = {"meta": meta, "rows": rows, "profiles": profiles, "syncs": syncs,
              "memory": {"max_allocated_mib": tl.cuda.max_memory_allocated() / 2**20}}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"results written to {a.json}")
    return 0


def _fp32_convs_row(entry: dict, a, torch, make, sync) -> None:
    """PyTorch runs convolutions in TF32 by default (torch.backends.cudnn.allow_tf32); tensorlib
    computes them in float32. Time PyTorch's W3 step again with TF32 off, for the like-for-like
    ratio, and note it on the W3 row."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        ts = [t * 1e3 for t in _rounds(make(), sync, a.steps, a.rounds)]
    except Exception as e:  # a second figure: never the reason the first is lost
        print(f"  W3 torch without TF32: FAILED {type(e).__name__}: {e}")
        return
    finally:
        torch.backends.cudnn.allow_tf32 = old
    entry["torch_fp32_convs"] = ts
    t = entry.get("tensorlib")
    r = statistics.median(t) / statistics.median(ts) if t else None
    entry["ratio_fp32_convs"] = r
    print(f"  W3         torch with float32 convolutions (allow_tf32 off) "
          f"{statistics.median(ts):8.3f} ms" + (f"  ratio {r:.2f}" if r else ""), flush=True)


def _import_torch(dev: str):
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: tensorlib figures only")
        return None
    if dev == "cuda" and not torch.cuda.is_available():
        print("PyTorch has no CUDA here: tensorlib figures only")
        return None
    return torch


def _meta(dev: str, torch) -> dict:
    meta = {"device": dev, "torch": getattr(torch, "__version__", None),
            "python": sys.version.split()[0]}
    if dev != "cuda":
        import platform
        return dict(meta, card=f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
                    compute_capability="-", cupy=None)
    props = tl.cuda.get_device_properties()
    return dict(meta, card=props["name"],
                compute_capability=f"{props['major']}.{props['minor']}",
                memory_gib=round(props["total_memory"] / 2**30, 1),
                cupy=__import__("cupy").__version__)


def card_peak_gbs(device: int = 0) -> float | None:
    """The card's DRAM bandwidth in GB/s: two transfers per memory clock (HBM and GDDR are
    double data rate) over the bus width, as the driver reports them; None if it does not."""
    try:
        from cupy.cuda import runtime
        khz = runtime.deviceGetAttribute(runtime.cudaDevAttrMemoryClockRate, device)
        bits = runtime.deviceGetAttribute(runtime.cudaDevAttrGlobalMemoryBusWidth, device)
    except Exception:   # noqa: BLE001 - an old driver or CuPy: the caller says which peak
        return None
    return 2 * khz * 1e3 * bits / 8 / 1e9 if khz and bits else None


def _bandwidth_row(a, torch) -> dict:
    if a.peak_gbs is None:
        a.peak_gbs = card_peak_gbs() or 3350.0
    try:
        bw = bandwidth(a.elements, a.rounds, a.steps * 2, torch)
        med = statistics.median(bw["tensorlib"])
        print(f"  BW  c = a + b ({a.elements} float32): " + ", ".join(
            f"{k} {statistics.median(v):.0f} GB/s" for k, v in bw.items())
            + f"; tensorlib = {100 * med / a.peak_gbs:.0f}% of {a.peak_gbs:.0f} GB/s peak"
              " (target >= 80%)")
        return {"id": "BW", "title": f"c = a + b, {a.elements} float32", "unit": "GB/s",
                "peak_gbs": a.peak_gbs, **bw, "fraction_of_peak": med / a.peak_gbs}
    except Exception as e:
        print(f"  BW: FAILED {type(e).__name__}: {e}")
        return {"id": "BW", "error": f"{type(e).__name__}: {e}"}


def _print_row(entry, other):
    t = entry.get("tensorlib")
    o = entry.get(other)
    parts = [f"  {entry['id']:<10} {entry['title']:<42}"]
    for name, v in (("tensorlib", t), (other, o)):
        if v:
            parts.append(f"{name} {statistics.median(v):8.3f} ms (spread {min(v):.3f}-"
                         f"{max(v):.3f}")
            h = entry.get(name + "_host")
            parts[-1] += f"; host {statistics.median(h):.3f})" if h else ")"
    if t and o:
        r = statistics.median(t) / statistics.median(o)
        entry["ratio"] = r
        parts.append(f"ratio {r:.2f} (target <= 1.5)")
    print("  ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
