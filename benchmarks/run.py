"""Run the benchmark workloads side by side with PyTorch and NumPy; print a ratio table.

    python benchmarks/run.py              # all workloads, 5 rounds each
    python benchmarks/run.py --quick      # a few steps each (the test suite runs this)
    python benchmarks/run.py --only W1,W5 --rounds 3 --json out.json

Each (workload, framework) pair runs in its own process: tensorlib and PyTorch both use
OpenMP (and can share one libgomp), so in one process the first to load it would set the
thread behaviour for both. ``--quick`` runs everything in this process.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Workload, run, summarize, table  # noqa: E402

MODULES = ["workloads_core", "workloads_nn", "workloads_capture"]
FRAMEWORKS = ["tensorlib", "torch", "numpy"]


def collect() -> list[Workload]:
    out: list[Workload] = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        for i, w in enumerate(getattr(mod, "WORKLOADS", [])):
            if not isinstance(w, Workload):
                raise TypeError(f"{name}.WORKLOADS must hold harness.Workload objects, got {w!r}")
            w.key = f"{name}:{i}"
            out.append(w)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few steps per workload")
    p.add_argument("--rounds", type=int, default=None, help="rounds per workload (median)")
    p.add_argument("--only", default="", help="comma-separated workload ids")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--json", default=None, help="write raw results here")
    p.add_argument("--worker", nargs=2, metavar=("KEY", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # one (workload, framework) in this process; values as JSON on stdout
        key, fw = args.worker
        w = next(w for w in collect() if w.key == key)
        run([w], args.rounds or 5, args.quick, [fw])
        print("RESULT " + json.dumps(w.results.get(fw, [])))
        return 0
    rounds = args.rounds or (1 if args.quick else 5)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    workloads = [w for w in collect() if not wanted or w.id in wanted]
    frameworks = [f for f in args.frameworks.split(",") if f]
    if args.quick:
        run(workloads, rounds, args.quick, frameworks)
    else:
        for w in workloads:
            for fw in frameworks:
                if fw in w.impls:
                    vals = _in_subprocess(w.key, fw, rounds)
                    if vals:
                        w.results[fw] = vals
    print(table(workloads, frameworks))
    if args.json:
        data = [{"id": w.id, "title": w.title, "unit": w.unit,
                 "results": {fw: {"values": v, "median": summarize(v)[0]}
                             for fw, v in w.results.items()}} for w in workloads]
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


def framework_env(fw: str) -> dict[str, str]:
    """The environment a framework's worker runs in: importing tensorlib (the harness does)
    tunes glibc's heap for the whole process (tensorlib._malloc), which a PyTorch or NumPy
    user would not have; their workers run with glibc's defaults."""
    env = dict(os.environ)
    if fw != "tensorlib":
        env["TENSORLIB_MALLOPT"] = "0"
    return env


def _in_subprocess(key: str, fw: str, rounds: int) -> list[float]:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", key, fw,
                           "--rounds", str(rounds)], capture_output=True, text=True,
                          env=framework_env(fw))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
        if line.strip():
            print(line)
    if proc.returncode:
        print(f"{key} {fw}: failed\n{proc.stderr[-2000:]}")
    return []


if __name__ == "__main__":
    sys.exit(main())
