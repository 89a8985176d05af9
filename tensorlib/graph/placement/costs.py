"""The placer's cost model: how long a node takes on a device and an edge between two.

A node's time comes from its op's ``cost`` rule (flops and bytes, see the
registry) and the device's :class:`DeviceProfile` (a roofline: the slower of
compute and memory traffic, plus a fixed launch overhead), or from times
measured by :func:`measure` on an earlier run. An edge between devices costs a
latency plus its bytes over the link's bandwidth (:func:`transfer_time`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..._device import Device
from ..ir import EDGE_OPS, SOURCE_OPS, Graph, Node

_FREE = SOURCE_OPS | EDGE_OPS | {"assign"}     # no work of their own to price


@dataclass(frozen=True)
class DeviceProfile:
    """What the cost model assumes of one kind of device.

    flops: arithmetic per second; bandwidth: memory bytes per second; overhead:
    seconds per op (Python dispatch, a kernel launch).
    """

    flops: float
    bandwidth: float
    overhead: float


# rough figures for one CPU core (a virtual cpu:N device runs on about one) and one
# data-centre GPU; measured times (measure) replace them where they matter
PROFILES = {"cpu": DeviceProfile(flops=1e11, bandwidth=1e10, overhead=4e-6),
            "cuda": DeviceProfile(flops=5e13, bandwidth=2e12, overhead=1e-5)}

# (latency s, bandwidth B/s) of a link: within one process's host memory (a copy), host <->
# GPU, GPU <-> GPU on one machine, and between workers (machines)
# measured on a 2-core VM: a handoff between two Python threads costs some 20 us; a value
# through a local Ray cluster's exchange actor 1.3 ms when small, 8 ms at 1 MB, 11 ms at 4 MB
LINKS = {"host": (2e-5, 1e10), "pcie": (2e-5, 2e10), "peer": (2e-5, 5e10),
         "network": (2e-3, 4e8)}

# seconds per extra device in a step: waking a local device's thread and joining it; a
# call into a remote worker (a Ray actor task and its reply)
DISPATCH = {"local": 5e-5, "remote": 2e-3}


def dispatch_time(dev: Device) -> float:
    """What using ``dev`` in a step costs on top of its work."""
    return DISPATCH["remote" if dev.worker is not None else "local"]


def memory_space(dev: Device) -> tuple:
    """Devices with one memory space share arrays without a copy (``cpu:0`` and ``cpu:1``
    of one process)."""
    return (dev.worker, "host") if dev.type == "cpu" else (dev.worker, "cuda", dev.index)


def transfer_time(nbytes: int, src: Device, dst: Device) -> float:
    """Seconds to move ``nbytes`` from ``src`` to ``dst`` (0 on one device)."""
    if src is dst:
        return 0.0
    if src.worker != dst.worker:
        link = "network"
    elif src.type == "cpu" and dst.type == "cpu":
        link = "host"
    elif src.type == "cuda" and dst.type == "cuda":
        link = "peer"
    else:
        link = "pcie"
    latency, bw = LINKS[link]
    return latency + nbytes / bw


def value_bytes(shape, dtype, none_dim: int) -> int:
    n = 1
    for d in shape:
        n *= none_dim if d is None else int(d)
    return n * np.dtype(dtype).itemsize


def node_cost(node: Node, none_dim: int) -> tuple[float, float]:
    """``(flops, bytes)`` of a node from its op's ``cost`` rule; ``None`` dims count as
    ``none_dim``. An op without a rule counts one flop per output element and the bytes
    of its inputs and outputs."""
    if node.op in _FREE:
        return 0.0, 0.0

    def spec(v):
        return tuple(none_dim if d is None else d for d in v.shape), v.dtype
    ins = [spec(v) for v in node.inputs]
    outs = [spec(v) for v in node.outputs]
    rule = None
    if node.op != "fused":
        from ...ops.registry import REGISTRY
        op = REGISTRY.get(node.op)
        rule = op.cost if op is not None else None
    if rule is not None:
        try:
            fl, by = rule(ins, outs if len(outs) > 1 else outs[0], **node.attrs)
            return float(fl), float(by)
        except (ValueError, TypeError, KeyError, IndexError):   # priced by the fallback
            pass
    fl = sum(int(np.prod(s)) for s, _ in outs)
    by = sum(value_bytes(s, d, none_dim) for s, d in ins + outs)
    if node.op == "fused":
        fl *= len(node.attrs["program"])
    return float(fl), float(by)


def compute_time(node: Node, dev: Device, none_dim: int,
                 measured: dict | None = None) -> float:
    """Seconds ``node`` takes on ``dev``: measured where :func:`measure` saw it on a device
    of that type, else the roofline of its cost on the device's profile."""
    if measured is not None:
        t = measured.get((node.id, dev.type))
        if t is not None:
            return t
    if node.op in _FREE:
        return 0.0
    prof = PROFILES[dev.type]
    fl, by = node_cost(node, none_dim)
    return prof.overhead + max(fl / prof.flops, by / prof.bandwidth)


def measure(graph: Graph, feeds: dict, repeats: int = 3) -> dict:
    """Time each node of ``graph`` on the device it is on, running it op by op with
    ``feeds`` (as for ``Graph.run``); returns ``{(node id, device type): seconds}`` (the best
    of ``repeats``), for ``place(..., measured=...)``. Variables are read, never written.

    >>> times = tl.graph.placement.measure(g, {x: batch})
    >>> tl.graph.placement.place(g, ["cpu:0", "cpu:1"], measured=times)
    """
    from ..executor import _asarray, _feed_index, _kernel, needed_nodes
    from ..passes.fusion import fused_kernel
    from ..runtime import _random, _read_grad
    env: dict = {}
    arrays = {}
    for k, a in feeds.items():
        i = _feed_index(graph, k)
        arrays[i] = a._data if hasattr(a, "_data") else np.asarray(a, graph.inputs[i].dtype)
    out: dict = {}
    for n in needed_nodes(graph, graph.outputs, graph.assigns):
        if n.op == "assign":
            continue
        if n.op == "placeholder":
            if n.attrs["index"] not in arrays:
                raise ValueError(f"measure: graph input {n.outputs[0].label()} must be fed")
            res = (arrays[n.attrs["index"]],)
        elif n.op == "variable":
            owner = graph.bindings[n][0]
            res = (_read_grad(owner, n.name) if n.attrs.get("slot") == "grad"
                   else owner._data,)
        elif n.op == "constant":
            res = (n.attrs["value"],)
        elif n.op == "random":
            res = (_random(graph.bindings.get(n), n.attrs,
                            *[env[v.id] for v in n.inputs]),)
        else:
            k = fused_kernel(n) if n.op == "fused" else _kernel(n)[1]
            args = [env[v.id] for v in n.inputs]
            dev = Device(n.device)
            best = float("inf")
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                r = k(*args, **n.attrs) if n.op != "fused" else k(*args)
                if dev.type == "cuda":
                    from ...backends import cupy
                    cupy().cuda.Device(dev.index).synchronize()
                best = min(best, time.perf_counter() - t0)
            res = r if isinstance(r, tuple) else (_asarray(r),)
            out[(n.id, dev.type)] = best
        for v, a in zip(n.outputs, res):
            env[v.id] = a
    return out
