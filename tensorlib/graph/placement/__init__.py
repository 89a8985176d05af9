"""Placing a graph over several devices: constraints, a cost model, a greedy placer,
the partition into per-device subgraphs with Send/Recv, and the threaded runtime.

>>> placement = tl.graph.place(g, ["cpu:0", "cpu:1"])   # rewrites Node.device
>>> g.run({x: batch})        # each device's part on its own thread

``cpu:N`` are virtual CPU devices of this process (one executor thread each),
which is how placement is exercised without GPUs; ``cuda:N`` are GPUs;
``/worker:K/cpu:0`` are remote workers on Ray (:mod:`tensorlib.distributed`).
:func:`data_parallel` rewrites a captured training step into one replica per
device with averaged gradients.
"""
from .costs import PROFILES, DeviceProfile, measure, transfer_time
from .partition import Partition, partition
from .placer import Placement, place
from .replicate import data_parallel
from .runtime import PlacedPlan, Rendezvous, StepAborted

__all__ = ["PROFILES", "DeviceProfile", "Partition", "PlacedPlan", "Placement", "Rendezvous",
           "StepAborted", "data_parallel", "measure", "partition", "place", "transfer_time"]
