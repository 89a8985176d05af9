"""The placer: which device runs each node of a graph.

Constraints first (as in the TensorFlow whitepaper):

- a node captured inside ``with tl.device("cpu:1"):`` (``Node.pin``), or named in
  ``pins``, goes to that device; a pin to a device that is not offered or cannot
  run the op falls back to the greedy choice with a warning (``soft=True``);
- a variable, the assigns that update it and its ``.grad`` slot form one
  colocation group, placed where the variable's tensor memory is reachable
  without a copy (any ``cpu:N`` for a host tensor, its own GPU for a CUDA one);
- random draws of one generator share a device, so the stream's order is the
  eager order; random draws and fused CPU chains run on CPU devices only;
- a ``to_device`` node goes to the device it moves to.

Then a greedy simulation walks the nodes in topological order and puts each
one on the allowed device where it would finish soonest, given when each
device is free and when its inputs arrive there (transfers priced by
:mod:`.costs`). Placeholders and constants are free everywhere: the
partitioner gives each device its own copy. A split that would not beat the
best single device by more than the cost of running the extra devices' threads
(``costs.dispatch_time`` each) is dropped for that device, where the constraints
allow one device.
"""
from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..._device import Device
from ..ir import EDGE_OPS, REPLICATED_OPS, Graph, Node
from .costs import (PROFILES, compute_time, dispatch_time, memory_space, transfer_time,
                    value_bytes)



@dataclass
class Placement:
    """What :func:`place` decided (the graph's ``Node.device`` fields hold it too).

    ``makespan``: the simulated seconds of one run over the devices;
    ``serial``: the same graph simulated on the fastest single device;
    ``busy``: seconds of work per device; ``transfers``: ``(value id, source, destination,
    bytes)`` per edge that crosses devices.
    """

    devices: list[str]
    assignment: dict[int, str]
    makespan: float
    serial: float
    busy: dict[str, float]
    transfers: list[tuple] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Nodes per device (named as given to :func:`place`)."""
        out = {d: 0 for d in self.devices}
        for d in self.assignment.values():
            out[d] = out.get(d, 0) + 1
        return out

    def to_dict(self) -> dict:
        """Plain JSON, saved with the graph (node ids are the graph's)."""
        return {"devices": list(self.devices),
                "assignment": {str(k): d for k, d in self.assignment.items()},
                "makespan": self.makespan, "serial": self.serial, "busy": dict(self.busy),
                "transfers": [list(t) for t in self.transfers]}

    @classmethod
    def from_dict(cls, d: dict) -> Placement:
        return cls(list(d["devices"]), {int(k): v for k, v in d["assignment"].items()},
                   float(d["makespan"]), float(d["serial"]), dict(d["busy"]),
                   [tuple(t) for t in d.get("transfers", [])])

    def __repr__(self) -> str:
        per = ", ".join(f"{d}: {c} nodes" for d, c in self.counts().items())
        return (f"<Placement {per}; {len(self.transfers)} transfers; simulated "
                f"{self.makespan * 1e3:.3f} ms (one device {self.serial * 1e3:.3f} ms)>")


def place(graph: Graph, devices: Iterable, *, pins: Mapping | None = None,
          measured: Mapping | None = None, none_dim: int = 32, soft: bool = True) -> Placement:
    """Assign every node of ``graph`` a device from ``devices`` (rewrites ``Node.device`` in
    place) and return the :class:`Placement`. ``Graph.run`` then runs each device's part
    on its own thread, with Send/Recv between them.

    pins: ``{node, graph Value, captured Tensor, nn.Module or its qualified name: device}``,
    on top of the ``with tl.device(...)`` blocks seen at capture; a module pins the nodes
    traced in its forward (``graph.node_modules``) and their gradients. measured: node times from
    :func:`~tensorlib.graph.placement.measure`. none_dim: the size assumed for ``None``
    dims by the cost model. soft: a pin that cannot be honoured warns (else raises).

    >>> with tl.capture(x) as g:
    ...     with tl.device("cpu:1"):
    ...         h = tower_b(x)
    ...     y = tower_a(x) + h
    >>> g.set_outputs(y)
    >>> tl.graph.place(g, ["cpu:0", "cpu:1"])
    <Placement cpu:0: ... nodes, cpu:1: ... nodes; ...>
    """
    devs = _devices(devices)
    if any(n.op in EDGE_OPS for n in graph.nodes):
        raise ValueError("place: the graph is already partitioned (it has send/recv nodes); "
                         "place the graph that was captured")
    allowed, groups = _constraints(graph, devs, pins, soft)
    chosen, sim = _greedy(graph, devs, allowed, groups, measured, none_dim)
    chosen, makespan, busy, transfers, serial = _collapse(graph, devs, allowed, chosen, sim,
                                                          measured, none_dim)
    for n in graph.nodes:
        if str(chosen[n.id]) != n.device:
            for v in n.outputs:
                graph.traced_devices.setdefault(v.id, n.device)
        n.device = str(chosen[n.id])
    graph.invalidate()
    # reported under the names the caller used ("cpu:0" stays "cpu:0", Node.device is "cpu")
    names = {str(Device(d)): d if isinstance(d, str) else str(d)
             for d in ([devices] if isinstance(devices, (str, Device)) else devices)}
    name = {str(d): names.get(str(d), str(d)) for d in devs}
    graph.placement = Placement(
        [name[str(d)] for d in devs], {n.id: name.get(n.device, n.device) for n in graph.nodes},
        makespan, serial, {name[str(d)]: busy.get(d, 0.0) for d in devs},
        [(v, name.get(a, a), name.get(b, b), nb) for v, a, b, nb in transfers])
    return graph.placement


def _constraints(graph: Graph, devs: list[Device], pins, soft: bool):
    """The devices each node may go to (pins, kernels, memory, colocation groups) and the
    colocation groups ``{key: [nodes]}``."""
    req = _requests(graph, pins)
    groups = _colocation_groups(graph)
    unmet: dict = {}
    allowed = {n.id: _allowed(graph, n, devs, req.get(n.id), soft, unmet)
               for n in graph.nodes}
    for (want, why), nodes in unmet.items():
        ops = sorted({n.op for n in nodes})
        warnings.warn(f"place: {len(nodes)} node(s) ({', '.join(ops[:5])}"
                      f"{', ...' if len(ops) > 5 else ''}) are pinned to {want}, which {why}; "
                      "the placer chooses their devices instead", stacklevel=3)
    # a group may go only where all its members may
    for members in groups.values():
        common = [d for d in devs if all(d in allowed[m.id] for m in members)]
        asked = sorted({str(req[m.id]) for m in members if m.id in req})
        what = (f"variable or random stream {members[0].name or members[0].op!r} (node "
                f"{members[0].id}) must stay on one device with the {len(members) - 1} "
                "nodes that read or update the same state")
        if not common and asked and soft:
            # pins in several devices (dropout in two pinned towers): the soft-pin contract,
            # the state's nodes go to one device the placer picks, their values travel
            free = {m.id: _allowed(graph, m, devs, None, soft, {}) for m in members}
            common = [d for d in devs if all(d in free[m.id] for m in members)]
            if common:
                warnings.warn(f"place: {what}, but they are pinned to {asked}; the placer "
                              "chooses one device for them", stacklevel=3)
        if not common:
            raise ValueError(f"place: {what}, but they can share none of "
                             f"{[str(d) for d in devs]}"
                             + (f" (pinned to {asked})" if asked else ""))
        for m in members:
            allowed[m.id] = common
    return allowed, groups


def _greedy(graph: Graph, devs, allowed, groups, measured, none_dim):
    """Each node, in topological order, on the allowed device where it finishes soonest;
    variables with their first reader (and their group); replicated sources with a reader."""
    group_of = {m.id: key for key, members in groups.items() for m in members}
    sim = _Simulation(devs, measured, none_dim)
    chosen: dict[int, Device] = {}
    group_dev: dict = {}
    sinks = _update_sinks(graph, group_of)

    def fix_group(key, d):
        # the group's variables (read at the start of a run) are available there at once
        group_dev[key] = d
        for m in groups[key]:
            if m.op == "variable" and m.id not in chosen:
                chosen[m.id] = d
                sim.source(m, d)

    for n in graph.nodes:
        g = group_of.get(n.id)
        if n.op in REPLICATED_OPS or (n.op == "variable" and g not in group_dev):
            continue    # copied to each reader's device / placed with its first reader
        cands = [group_dev[g]] if g in group_dev else allowed[n.id]
        if len(cands) > 1:
            want = _colocated(n, chosen, sinks, group_dev)
            if want in cands:
                cands = [want]
        best = min(cands, key=lambda d: (sim.finish(n, d, chosen, allowed), devs.index(d)))
        for v in n.inputs:      # variables deferred so far land here, with their groups
            src = v.node
            if src is not None and src.op == "variable" and src.id not in chosen:
                fix_group(group_of[src.id], best if best in allowed[src.id]
                          else allowed[src.id][0])
        chosen[n.id] = best
        if g is not None and g not in group_dev:
            fix_group(g, best)
        sim.commit(n, best, chosen)
    # variables nobody reads (only assigned) and the replicated sources: any allowed device
    users = graph.consumers()
    for n in graph.nodes:
        if n.id in chosen:
            continue
        g = group_of.get(n.id)
        if g in group_dev:
            chosen[n.id] = group_dev[g]
            continue
        readers = [chosen[u.id] for u in users.get(n.outputs[0], []) if u.id in chosen] \
            if n.outputs else []
        ok = [d for d in readers if d in allowed[n.id]]
        chosen[n.id] = ok[0] if ok else allowed[n.id][0]
    return chosen, sim


def _colocated(n: Node, chosen, sinks, group_dev):
    """The device a colocation hint asks for ``n`` (None: the greedy choice)."""
    if n.coloc is not None:
        # a gradient node with the node it differentiates: it reads that node's inputs or
        # outputs, and a choice per node sends whole layers across devices
        return chosen.get(n.coloc)
    fixed = {group_dev[k] for k in sinks.get(n.id, ()) if k in group_dev}
    # an optimizer update with the variable it writes (the others it writes, such as its
    # state, follow it)
    return fixed.pop() if len(fixed) == 1 else None


def _update_sinks(graph: Graph, group_of: dict) -> dict[int, set]:
    """For each node that neither computes a gradient (``coloc``) nor feeds one (the
    forward), and whose results only feed assigns (the optimizer's update, its step
    counts): the colocation groups of those assigns. Empty for a graph without gradient
    nodes (an older file), whose forward cannot be told apart."""
    users = graph.consumers()
    results = {v.id for v in graph.outputs}
    if all(n.coloc is None for n in graph.nodes):
        return {}
    before: set[int] = set()        # value ids a gradient node reads, directly or not
    for n in reversed(graph.nodes):
        if n.coloc is not None or any(v.id in before for v in n.outputs):
            before.update(v.id for v in n.inputs)
    sink: dict[int, set | None] = {}
    for n in reversed(graph.nodes):
        if n.op == "assign":
            sink[n.id] = {group_of[n.id]}
            continue
        s: set | None = set()
        for v in n.outputs:
            if v.id in results:
                s = None
                break
            for u in users.get(v, ()):
                su = sink.get(u.id)
                if su is None:
                    s = None
                    break
                s |= su
            if s is None:
                break
        sink[n.id] = s or None
    return {n.id: sink[n.id] for n in graph.nodes
            if n.coloc is None and sink.get(n.id) and not any(v.id in before
                                                              for v in n.outputs)}


def _collapse(graph: Graph, devs, allowed, chosen, sim, measured, none_dim):
    """A split must pay for its extra devices' dispatch; else everything goes to the best
    single device the constraints allow, in the memory the graph was traced in (a plain
    plan on one device moves no feeds or results, so a CPU-traced graph may not collapse
    onto a GPU). Returns (chosen, makespan, busy, transfers, best serial time)."""
    home = {memory_space(Device(graph.traced_device(v))) for n in graph.nodes
            for v in n.outputs}
    serial = {d: sum(compute_time(n, d, none_dim, measured) for n in graph.nodes)
              for d in devs if all(d in allowed[n.id] for n in graph.nodes)
              and memory_space(d) in home}
    best_serial = min(serial.values()) if serial else min(
        sum(compute_time(n, d, none_dim, measured) for n in graph.nodes) for d in devs)
    used = set(chosen.values())
    extra = sorted(dispatch_time(d) for d in used)[:-1]
    if serial and len(used) > 1 and sim.makespan() + sum(extra) >= best_serial:
        one = min(serial, key=serial.get)
        return ({n.id: one for n in graph.nodes}, serial[one], {one: serial[one]}, [],
                best_serial)
    return chosen, sim.makespan(), sim.busy, sim.transfers, best_serial


def _devices(devices) -> list[Device]:
    if isinstance(devices, (str, Device)):
        devices = [devices]
    devs: list[Device] = []
    for d in devices:
        d = Device(d)
        if d not in devs:
            devs.append(d)
    if not devs:
        raise ValueError("place: give at least one device, e.g. ['cpu:0', 'cpu:1']")
    for d in devs:
        if d.worker is not None:
            from ...distributed import current
            cluster = current()
            if cluster is None or d.worker >= len(cluster.workers):
                raise ValueError(
                    f"place: device {d} is on remote worker {d.worker}, but "
                    + ("no cluster is running: start one with tl.distributed.init()"
                       if cluster is None else f"the cluster has {len(cluster.workers)}"
                       " workers"))
            if d.type != "cpu" or d.index != 0:
                raise NotImplementedError(f"place: remote workers offer /worker:K/cpu:0 only, "
                                          f"got {d}")
        elif d.type == "cuda":
            from ... import cuda
            if not cuda.is_available() or d.index >= cuda.device_count():
                raise ValueError(f"place: device {d} is not available here "
                                 f"({cuda.device_count()} CUDA devices)")
    return devs


def _requests(graph: Graph, pins) -> dict[int, Device]:
    """Node id -> the device a pin asks for (``pins`` over the capture's ``with`` blocks)."""
    from ...nn.module import Module
    req = {n.id: Device(n.pin) for n in graph.nodes if n.pin}
    by_module: dict[int, Device] = {}
    for key, dev in (pins or {}).items():
        if isinstance(key, (Module, str)):
            # a module's forward: the nodes traced inside it (and its submodules); an
            # explicit node pin below wins over it, a deeper module's over an outer one's
            path = _module_path(graph, key)
            for nid in _module_nodes(graph, path, key):
                depth = path.count(".") + 1 if path else 0
                if by_module.get(nid, (None, -1))[1] < depth:
                    by_module[nid] = (Device(dev), depth)
            continue
        node = key if isinstance(key, Node) else _pinned_value(graph, key).node
        if node is None:
            raise ValueError(f"place: pin {key!r} names no node of graph {graph.name!r}")
        req[node.id] = Device(dev)
    if by_module:
        # gradient nodes go with the forward node they differentiate (``coloc``)
        for n in graph.nodes:
            if n.id not in by_module and n.coloc is not None and n.coloc in by_module:
                by_module[n.id] = by_module[n.coloc]
        for nid, (dev, _) in by_module.items():
            req.setdefault(nid, dev)
    for n in graph.nodes:
        if n.op == "to_device":     # a move's result lives where it was moved to
            req[n.id] = Device(n.attrs["device"])
    return req


_PINS_ACCEPT = ("pins accept a graph Node, a graph Value, a tensor the capture saw (an "
                "input, a result, a Parameter), an nn.Module whose forward ran in the capture, "
                "or its qualified name ('encoder.layer1')")


def _module_path(graph: Graph, key) -> str:
    """The qualified name (``graph.node_modules``) a module pin stands for."""
    if isinstance(key, str):
        return key
    entry = graph.module_paths.get(id(key))
    if entry is None or entry[0]() is not key:
        seen = sorted({m for m in graph.node_modules.values() if m})
        raise ValueError(
            f"place: cannot pin module {type(key).__name__}: no forward of it ran while graph "
            f"{graph.name!r} was traced in this process (a loaded graph knows modules by "
            "qualified name: pin the name" + (f", one of {seen[:8]}" if seen else "") + ")")
    return entry[1]


def _module_nodes(graph: Graph, path: str, key) -> list[int]:
    pre = path + "."
    live = {n.id for n in graph.nodes}
    ids = [nid for nid, m in graph.node_modules.items()
           if nid in live and (not path or m == path or m.startswith(pre))]
    if not ids:
        seen = sorted({m for m in graph.node_modules.values() if m})
        what = f"module {type(key).__name__} ({path!r})" if not isinstance(key, str) \
            else f"module name {key!r}"
        raise ValueError(
            f"place: pin {what} names no node of graph {graph.name!r}: "
            + (f"its nodes were traced in modules {seen[:8]}" if seen else
               "the graph records no module for its nodes (traced outside any nn.Module, "
               "or made before node provenance was recorded)")
            + f". {_PINS_ACCEPT}")
    return ids


def _pinned_value(graph: Graph, key):
    try:
        return graph.value(key)
    except (KeyError, TypeError) as e:
        raise ValueError(f"place: pin key {type(key).__name__} is not a value of graph "
                         f"{graph.name!r}: {_PINS_ACCEPT}") from e


def _colocation_groups(graph: Graph) -> dict:
    groups: dict = {}
    for n in graph.nodes:
        key = None
        if n.op in ("variable", "assign"):
            key = (("var", _storage(graph.bindings[n][0])) if n in graph.bindings
                   else ("node", n.id))
        elif n.op == "random":
            key = ("rng", id(graph.bindings.get(n)))
        if key is not None:
            groups.setdefault(key, []).append(n)
    return groups


def _storage(t) -> int:
    """The memory a variable's tensor views (views of one array share a group)."""
    from ...backends import root_buffer
    a = getattr(t, "_data", None)
    return id(root_buffer(a)) if a is not None else id(t)


def _allowed(graph: Graph, n: Node, devs: list[Device], want: Device | None,
             soft: bool, unmet: dict) -> list[Device]:
    ok = [d for d in devs if _can_run(graph, n, d)]
    if not ok:
        why = (": variables, their updates and random draws stay in this process, so give "
               "a local device too (e.g. 'cpu')" if n.op in ("variable", "assign", "random")
               and all(d.worker is not None for d in devs) else "")
        raise ValueError(f"place: node {n.id} ({n.op}) can run on none of "
                         f"{[str(d) for d in devs]}{why}")
    if want is None:
        return ok
    if want in ok:
        return [want]
    why = ("is not among the placement's devices" if want not in devs
           else f"cannot run {n.op} there")
    if not soft:
        raise ValueError(f"place: node {n.id} ({n.op}) is pinned to {want}, which {why}")
    unmet.setdefault((str(want), why), []).append(n)     # one warning for them all
    return ok


def _can_run(graph: Graph, n: Node, d: Device) -> bool:
    if d.worker is not None and not _portable(n):
        return False
    if n.op == "random":                # this process's generator, drawn with NumPy
        return d.type == "cpu" and d.worker is None
    if n.op == "fused":
        return d.type == "cpu"          # a chain of NumPy ufuncs
    if n.op == "assign" and d.worker is not None:
        return False        # writes go to this process's tensors
    if n.op in ("variable", "assign"):
        owner = graph.bindings.get(n, (None,))[0]
        dev = getattr(owner, "_device", None)
        return dev is None or memory_space(dev) == memory_space(d)
    if n.op in REPLICATED_OPS:
        return True
    from ...ops.registry import REGISTRY
    op = REGISTRY.get(n.op)
    return op is not None and op.has_kernel(d.type)


class _Simulation:
    """When each device is free and when each value is available where."""

    def __init__(self, devs, measured, none_dim):
        self.devs = devs
        self.measured = measured
        self.none_dim = none_dim
        self.free = {d: 0.0 for d in devs}
        self.busy = {d: 0.0 for d in devs}
        self.ready: dict[int, float] = {}      # value id -> time on its device
        self.home: dict[int, Device] = {}      # value id -> device (absent: everywhere)
        self.arrive: dict[tuple, float] = {}   # (value id, device) -> arrival time
        self.transfers: list[tuple] = []
        self.gil: dict = {}       # process (worker index) -> sorted (start, end) dispatches

    def source(self, node, d):
        for v in node.outputs:
            self.ready[v.id] = 0.0
            self.home[v.id] = d

    def _avail(self, v, d, chosen, allowed, commit=False) -> float:
        src = v.node
        if src is None or src.op in REPLICATED_OPS:
            return 0.0
        if src.op == "variable" and src.id not in chosen:
            if d in allowed[src.id]:
                return 0.0          # would be placed here with its reader
            home, ready = allowed[src.id][0], 0.0
        else:
            home, ready = self.home[v.id], self.ready[v.id]
        if home is d:
            return ready
        key = (v.id, d)
        if key in self.arrive:
            return self.arrive[key]
        nbytes = value_bytes(v.shape, v.dtype, self.none_dim)
        t = ready + transfer_time(nbytes, home, d)
        if commit:
            self.arrive[key] = t
            self.transfers.append((v.id, str(home), str(d), nbytes))
        return t

    def _start(self, d, ready: float, dt: float) -> tuple[float, float]:
        """(start, end of the dispatch): the devices of one process dispatch their ops from
        Python threads, one at a time (the GIL), and only the kernels overlap."""
        start = max(self.free[d], ready)
        if dt <= 0.0:
            return start, start
        ov = min(dt, PROFILES[d.type].overhead)
        held = self.gil.get(d.worker, [])
        # the earliest gap in the dispatches made so far (nodes are simulated in graph
        # order, not in time order, so a later node may run before an earlier one)
        i = max(bisect.bisect_right(held, (start, float("inf"))) - 1, 0)
        for s, e in held[i:]:
            if start + ov <= s:
                break
            start = max(start, e)
        return start, start + ov

    def finish(self, n, d, chosen, allowed) -> float:
        ready = max([0.0] + [self._avail(v, d, chosen, allowed) for v in n.inputs])
        dt = compute_time(n, d, self.none_dim, self.measured)
        return self._start(d, ready, dt)[0] + dt

    def commit(self, n, d, chosen) -> None:
        ready = max([0.0] + [self._avail(v, d, chosen, {}, commit=True) for v in n.inputs])
        dt = compute_time(n, d, self.none_dim, self.measured)
        start, held = self._start(d, ready, dt)
        if dt > 0.0:
            bisect.insort(self.gil.setdefault(d.worker, []), (start, held))
        self.free[d] = start + dt
        self.busy[d] += dt
        for v in n.outputs:
            self.ready[v.id] = start + dt
            self.home[v.id] = d

    def makespan(self) -> float:
        return max(self.free.values(), default=0.0)


def _portable(n: Node) -> bool:
    """Whether a node can be shipped to a remote worker (its attributes encode as JSON)."""
    from ..ir import encode_attr
    try:
        for a in n.attrs.values():
            encode_attr(a)
    except TypeError:
        return False
    return True
