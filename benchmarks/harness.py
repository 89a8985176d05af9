"""Timing helpers shared by the benchmark workloads: rounds, medians, spread, tables."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Workload:
    """One benchmark row: ``impls[framework](quick) -> value`` measured once per round."""

    id: str
    title: str
    unit: str
    impls: dict[str, Callable[[bool], float]]
    lower_is_better: bool = True
    notes: str = ""
    results: dict[str, list[float]] = field(default_factory=dict)


def time_per_call(fn: Callable[[], object], n: int, warmup: int = 3) -> float:
    """Seconds per call of ``fn``, over ``n`` calls after a warm-up."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def summarize(values: list[float]) -> tuple[float, float]:
    """Median and relative spread ((max - min) / median)."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return med, spread


def run(workloads: list[Workload], rounds: int, quick: bool, frameworks: list[str]) -> None:
    for w in workloads:
        for fw in frameworks:
            impl = w.impls.get(fw)
            if impl is None:
                continue
            vals = []
            for _ in range(rounds):
                try:
                    vals.append(impl(quick))
                except ImportError as e:  # e.g. PyTorch absent: leave that column empty
                    print(f"{w.id} {fw}: skipped ({e})")
                    break
            if vals:
                w.results[fw] = vals


def table(workloads: list[Workload], frameworks: list[str]) -> str:
    head = ["id", "workload", "unit"] + frameworks + ["ratio tl/torch"]
    rows = [head]
    for w in workloads:
        row = [w.id, w.title, w.unit]
        med = {}
        for fw in frameworks:
            if fw in w.results:
                m, s = summarize(w.results[fw])
                med[fw] = m
                row.append(f"{m:.3g} (±{100 * s / 2:.0f}%)")
            else:
                row.append("—")
        if "tensorlib" in med and "torch" in med and med["torch"]:
            r = med["tensorlib"] / med["torch"]
            if not w.lower_is_better:
                r = med["torch"] / med["tensorlib"]
            row.append(f"{r:.2f}")
        else:
            row.append("—")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(wd) for c, wd in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    return "\n".join(lines)
