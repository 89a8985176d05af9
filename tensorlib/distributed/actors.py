"""The Ray actors of a cluster: an exchange for values between processes, and a worker that
runs the subgraphs placed on its devices. Imported only once Ray is (``tl.distributed.init``).
"""
from __future__ import annotations

import asyncio

import ray

ABORTED = "__tensorlib_step_aborted__"


@ray.remote(num_cpus=0)
class Exchange:
    """Values in flight between processes, keyed by (plan, step, source, destination, value).

    ``put`` never waits; ``get`` waits for its key, or returns ``ABORTED`` once the step was
    aborted (by the device that failed)."""

    def __init__(self):
        self.slots: dict = {}
        self.events: dict = {}
        self.aborted: dict = {}     # (plan, step) -> None, oldest first, bounded

    async def put(self, key, value) -> None:
        self.slots[key] = value
        ev = self.events.pop(key, None)
        if ev is not None:
            ev.set()

    async def get(self, key):
        while key not in self.slots:
            if key[:2] in self.aborted:
                return ABORTED
            ev = self.events.setdefault(key, asyncio.Event())
            await ev.wait()
        return self.slots.pop(key)

    async def forget(self, plan_step) -> None:
        """A failed step is over everywhere: drop what it left (its abort mark, values)."""
        ps = tuple(plan_step)
        self.aborted.pop(ps, None)
        for key in [k for k in self.slots if k[:2] == ps]:
            del self.slots[key]

    async def abort(self, plan_step) -> None:
        self.aborted[tuple(plan_step)] = None
        while len(self.aborted) > 1024:     # a late abort after forget must not pile up
            del self.aborted[next(iter(self.aborted))]
        for key in [k for k in self.events if k[:2] == tuple(plan_step)]:
            self.events.pop(key).set()
        # what the failed step left behind
        for key in [k for k in self.slots if k[:2] == tuple(plan_step)]:
            del self.slots[key]


@ray.remote(max_concurrency=16)
class Worker:
    """One remote worker (``/worker:K/...``): holds the subgraphs placed on its devices and
    runs one of them per call (several at once, each in its own actor thread)."""

    def __init__(self, index: int, exchange):
        self.index = index
        self.exchange = exchange
        self.plans: dict = {}

    def load(self, plan_id: int, device: str, doc: dict) -> None:
        from tensorlib.graph.executor import Plan
        from tensorlib.graph.ir import Graph

        from .endpoints import RemoteEndpoint, StepClock
        g = Graph.from_dict(doc)
        clock = StepClock(plan_id)
        for n in g.nodes:
            if n.op in ("send", "recv"):
                g.bindings[n] = RemoteEndpoint(self.exchange, clock, tuple(n.attrs["key"]),
                                               n.device)
        ends = [n for n in g.nodes if n.op == "send"]
        recvs = [g.bindings[n] for n in g.nodes if n.op == "recv"]
        self.plans[(plan_id, device)] = (Plan(g, list(g.outputs), ends), clock,
                                         doc["n_inputs"], recvs)

    def run(self, plan_id: int, device: str, step: int, feeds: dict) -> list:
        plan, clock, n_inputs, recvs = self.plans[(plan_id, device)]
        clock.step = step
        for r in recvs:
            r.prefetch()
        arrays = [None] * n_inputs
        for i, a in feeds.items():
            arrays[int(i)] = a
        try:
            return plan(arrays, None)
        except BaseException as e:
            self.exchange.abort.remote((plan_id, step))
            from tensorlib.graph.placement.runtime import failing_node
            try:    # the driver names the node from it (the exception's __dict__ is pickled)
                e.tensorlib_node = failing_node(e, plan)
            except AttributeError:
                pass
            raise

    def unload(self, plan_id: int) -> None:
        for key in [k for k in self.plans if k[0] == plan_id]:
            del self.plans[key]

    def pid(self) -> int:
        import os
        return os.getpid()
