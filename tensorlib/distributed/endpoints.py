"""Send/Recv ends for edges that leave a process: values go through the cluster's Exchange
actor (Ray's object store), keyed by (plan, step, source, destination, value)."""
from __future__ import annotations

from ..graph.placement.runtime import StepAborted


class StepClock:
    """The step a plan's endpoints are in (set before each run)."""

    __slots__ = ("plan_id", "step")

    def __init__(self, plan_id: int):
        self.plan_id = plan_id
        self.step = 0


class RemoteEndpoint:
    """A send or recv node's end of an edge between processes. Ray serializes a sent value
    when ``put`` is submitted, so the receiver owns a copy, as with local sends."""

    __slots__ = ("exchange", "clock", "key", "device", "_pending")

    def __init__(self, exchange, clock: StepClock, key: tuple, device):
        self.exchange = exchange
        self.clock = clock
        self.key = tuple(key)
        self.device = device
        self._pending = None

    def prefetch(self) -> None:
        """Ask for this step's value now: the exchange answers when it arrives, so a part's
        receives overlap instead of costing a round trip each when they are reached."""
        self._pending = (self.clock.step, self.exchange.get.remote(self._full_key()))

    def _full_key(self) -> tuple:
        return (self.clock.plan_id, self.clock.step) + self.key

    def send(self, array) -> None:
        self.exchange.put.remote(self._full_key(), array)

    def recv(self):
        import ray

        from .._device import Device
        from ..backends import to_device
        from .actors import ABORTED
        pending, self._pending = self._pending, None
        ref = (pending[1] if pending is not None and pending[0] == self.clock.step
               else self.exchange.get.remote(self._full_key()))
        value = ray.get(ref)
        if isinstance(value, str) and value == ABORTED:
            raise StepAborted(f"recv {self.key}: the step was aborted")
        dev = Device(self.device)
        return to_device(value, Device(str(dev).rsplit("/", 1)[-1]))
