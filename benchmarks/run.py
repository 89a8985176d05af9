"""Run the benchmark workloads side by side with PyTorch and NumPy; print a ratio table.

    python benchmarks/run.py              # all workloads, 5 rounds each
    python benchmarks/run.py --quick      # a few steps each (the test suite runs this)
    python benchmarks/run.py --only W1,W5 --rounds 3 --json out.json
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
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
        for w in getattr(mod, "WORKLOADS", []):
            if not isinstance(w, Workload):
                raise TypeError(f"{name}.WORKLOADS must hold harness.Workload objects, got {w!r}")
            out.append(w)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few steps per workload")
    p.add_argument("--rounds", type=int, default=None, help="rounds per workload (median)")
    p.add_argument("--only", default="", help="comma-separated workload ids")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--json", default=None, help="write raw results here")
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    workloads = [w for w in collect() if not wanted or w.id in wanted]
    frameworks = [f for f in args.frameworks.split(",") if f]
    run(workloads, rounds, args.quick, frameworks)
    print(table(workloads, frameworks))
    if args.json:
        data = [{"id": w.id, "title": w.title, "unit": w.unit,
                 "results": {fw: {"values": v, "median": summarize(v)[0]}
                             for fw, v in w.results.items()}} for w in workloads]
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
