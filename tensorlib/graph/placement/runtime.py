"""Running a placed graph: a thread per device, a rendezvous for the Send/Recv edges.

:class:`PlacedPlan` has the executor Plan's interface (``plan(feeds, input_tensors)``
returns the fetched arrays), so ``Graph.run`` uses it for any fetch set whose
nodes span several devices. Each step hands every device's compiled subgraph
to that device's thread; the devices run at once (NumPy and tensorlib's
kernels release the GIL) and meet only at the rendezvous. If a device raises,
the step is aborted on all of them (each waiting ``recv`` wakes and stops) and
the caller gets the device's exception, noted with the device's name.
"""
from __future__ import annotations

import queue
import threading
import weakref

from ..._device import Device
from ..ir import Graph, Node, Value
from .partition import partition


class StepAborted(RuntimeError):
    """Raised in a device's thread when another device failed the step."""


class Rendezvous:
    """Values in flight between devices, keyed by (source, destination, value id, step).

    ``send`` never blocks; ``recv`` waits for its key or for :meth:`abort`."""

    def __init__(self):
        self._cv = threading.Condition()
        self._slots: dict[tuple, object] = {}
        self._step = 0
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._cv:
            self._step += 1
            self._slots.clear()     # what a failed step left behind
            self._error = None

    def send(self, key: tuple, array) -> None:
        with self._cv:
            self._slots[key + (self._step,)] = array
            self._cv.notify_all()

    def recv(self, key: tuple):
        k = key + (self._step,)
        with self._cv:
            while k not in self._slots:
                if self._error is not None:
                    raise StepAborted(f"recv {key}: the step was aborted") from None
                self._cv.wait()
            return self._slots.pop(k)

    def abort(self, error: BaseException) -> None:
        with self._cv:
            if self._error is None:
                self._error = error
            self._cv.notify_all()


class _DeviceThread:
    """A daemon thread that runs one device's jobs in order."""

    def __init__(self, device: Device):
        self.device = device
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name=f"tensorlib-{device}",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()

    def stop(self) -> None:
        self.jobs.put(None)


def _stop_all(threads) -> None:
    for t in threads:
        t.stop()


class PlacedPlan:
    """The partitions of one (fetches, targets) set of a placed graph, and their threads."""

    def __init__(self, graph: Graph, fetches: list[Value], targets: list[Node]):
        self.graph = graph
        self.fetches = list(fetches)
        self.rendezvous = Rendezvous()
        self.partitions = partition(graph, self.fetches, list(targets), self.rendezvous)
        self.placeholders = [n for p in self.partitions for n in p.plan.placeholders]
        self._threads = [_DeviceThread(p.device) for p in self.partitions[1:]]
        self._lock = threading.Lock()       # one step at a time: the rendezvous is per step
        weakref.finalize(self, _stop_all, list(self._threads))

    def __call__(self, feeds: list, input_tensors: list | None = None) -> list:
        from ...backends import to_device
        results: list = [None] * len(self.fetches)
        errors: list = []
        done = threading.Semaphore(0)
        rv = self.rendezvous

        def job(part):
            def run():
                try:
                    local = list(feeds)
                    for n in part.plan.placeholders:   # feeds are host arrays
                        i = n.attrs["index"]
                        local[i] = to_device(local[i], part.device)
                    outs = _on_device(part.device, part.plan, local, input_tensors)
                    for pos, a in zip(part.fetch_positions, outs):
                        results[pos] = a
                except BaseException as e:   # noqa: BLE001 - reported to the caller below
                    errors.append((part.device, e))
                    rv.abort(e)
                finally:
                    done.release()
            return run

        with self._lock:
            rv.start()
            for part, thread in zip(self.partitions[1:], self._threads):
                thread.jobs.put(job(part))
            job(self.partitions[0])()      # the first device's part runs in this thread
            for _ in self.partitions:
                done.acquire()
        first = next(((d, e) for d, e in errors if not isinstance(e, StepAborted)),
                     errors[0] if errors else None)
        if first is not None:
            dev, err = first
            err.add_note(f"(raised on device {dev} while running placed graph "
                         f"{self.graph.name!r}; the step was stopped on every device)")
            raise err
        return results


def _on_device(device: Device, plan, feeds, input_tensors):
    if device.type != "cuda":
        return plan(feeds, input_tensors)
    from ...backends import cupy
    with cupy().cuda.Device(device.index):
        return plan(feeds, input_tensors)


def spans_devices(nodes) -> bool:
    """Whether ``nodes`` (a plan's) compute on more than one device."""
    devs = {n.device for n in nodes if n.op not in ("placeholder", "constant")}
    return len({str(Device(d)) for d in devs}) > 1
