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
            job = None      # the step's closure (feeds, results) is not kept until the next

    def stop(self) -> None:
        self.jobs.put(None)


class _GraphRuntime:
    """Per placed graph: one thread per device, shared by the plans of all its fetch sets,
    and the lock that runs one step of the graph at a time (two plans sharing a device's
    thread could otherwise each wait for the other)."""

    def __init__(self, graph: Graph):
        self.lock = threading.Lock()
        self.threads: dict[Device, _DeviceThread] = {}
        weakref.finalize(graph, _stop_threads, self.threads)

    def thread(self, device: Device) -> _DeviceThread:
        t = self.threads.get(device)
        if t is None:
            t = self.threads[device] = _DeviceThread(device)
        return t


def _stop_threads(threads) -> None:
    for t in list(threads.values()):
        t.stop()


def _runtime(graph: Graph) -> _GraphRuntime:
    rt = graph.__dict__.get("_placed_runtime")
    if rt is None:
        rt = graph.__dict__["_placed_runtime"] = _GraphRuntime(graph)
    return rt


def _unload(workers, plan_id) -> None:
    try:
        for w in workers:
            w.unload.remote(plan_id)
    except Exception:   # noqa: BLE001 - Ray already shut down: nothing left to free
        pass


class _CommitGate:
    """Every device of a step computes, then waits here; the writes (assigns) run only once
    all of them finished without error, so a failed step changes no state anywhere."""

    def __init__(self):
        self._cv = threading.Condition()

    def start(self, parties: int, remote_wait) -> None:
        self.parties = parties
        self.arrived = 0
        self.remote_wait = remote_wait      # the last arrival waits for the remote parts
        self.verdict: BaseException | bool | None = None

    def fail(self, error: BaseException) -> None:
        with self._cv:
            if self.verdict is None or self.verdict is True:
                self.verdict = error
            self._cv.notify_all()

    def __call__(self) -> None:
        with self._cv:
            self.arrived += 1
            last = self.arrived == self.parties and self.verdict is None
        if last:
            try:
                self.remote_wait()
                ok: BaseException | bool = True
            except BaseException as e:   # noqa: BLE001 - every device learns of it below
                ok = e
            with self._cv:
                if self.verdict is None:
                    self.verdict = ok
                self._cv.notify_all()
        with self._cv:
            while self.verdict is None:
                self._cv.wait()
            if self.verdict is not True:
                raise StepAborted("the step failed on another device; nothing was written")


class PlacedPlan:
    """The partitions of one (fetches, targets) set of a placed graph, and their threads.

    Partitions on remote workers (``/worker:K/...``) are loaded into their worker once and
    run there each step; edges that leave this process go through the cluster's exchange
    (see :mod:`tensorlib.distributed`)."""

    def __init__(self, graph: Graph, fetches: list[Value], targets: list[Node]):
        from .partition import Endpoint
        self.graph = graph
        self.fetches = list(fetches)
        self._targets = list(targets)
        self.rendezvous = Rendezvous()
        self._cluster = self._clock = None
        remote = any(Device(n.device).worker is not None for n in graph.nodes)
        if remote:
            from ...distributed import current
            from ...distributed.endpoints import RemoteEndpoint, StepClock
            self._cluster = current()
            if self._cluster is None:
                raise RuntimeError(f"graph {graph.name!r} is placed on remote workers: start "
                                   "them with tl.distributed.init() first")
            self._clock = StepClock(self._cluster.next_plan_id())

        def endpoint(key, dst):
            src = Device(key[0])
            if src.worker is None and dst.worker is None:
                return Endpoint(self.rendezvous, key, dst)
            return RemoteEndpoint(self._cluster.exchange, self._clock, key, str(dst))

        self._gate = _CommitGate()
        self.partitions = partition(graph, self.fetches, list(targets), endpoint,
                                    barrier=self._gate)
        self.placeholders = [n for p in self.partitions for n in p.graph.nodes
                             if n.op == "placeholder"]
        self._local = [p for p in self.partitions if p.device.worker is None]
        self._remote = [p for p in self.partitions if p.device.worker is not None]
        for p in self._remote:
            self._load(p)
        self._prefetch = [p.graph.bindings[n] for p in self._local for n in p.graph.nodes
                          if n.op == "recv" and hasattr(p.graph.bindings[n], "prefetch")]
        rt = _runtime(graph)
        self._lock = rt.lock
        self._threads = [rt.thread(p.device) for p in self._local[1:]]
        self._remote_results: list = []
        if remote:
            weakref.finalize(self, _unload, list(self._cluster.workers), self._clock.plan_id)

    def _load(self, part) -> None:
        import ray
        k = part.device.worker
        if k >= len(self._cluster.workers):
            raise ValueError(f"graph {self.graph.name!r} is placed on {part.device}, but the "
                             f"cluster has {len(self._cluster.workers)} workers")
        doc = part.graph.to_dict()
        doc["n_inputs"] = len(self.graph.inputs)
        ray.get(self._cluster.workers[k].load.remote(self._clock.plan_id, str(part.device),
                                                      doc))

    def _abort(self, error: BaseException) -> None:
        self.rendezvous.abort(error)
        self._gate.fail(error)
        if self._clock is not None:
            self._cluster.exchange.abort.remote((self._clock.plan_id, self._clock.step))

    def _check_cluster(self) -> None:
        from ...distributed import current
        now = current()
        if now is self._cluster:
            return
        if now is None:
            raise RuntimeError(f"graph {self.graph.name!r} is placed on remote workers, but "
                               "the cluster was shut down: start one with "
                               "tl.distributed.init()")
        self.__init__(self.graph, self.fetches, self._targets)    # load into the new one

    def __call__(self, feeds: list, input_tensors: list | None = None) -> list:
        from ...backends import to_device
        if self._remote:
            self._check_cluster()
        results: list = [None] * len(self.fetches)
        errors: list = []
        done = threading.Semaphore(0)

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
                    self._abort(e)
                finally:
                    done.release()
            return run

        def remote_wait():
            # the remote parts (no writes there: variables stay in this process) must have
            # finished before any local write
            import ray
            failed = None
            for part, fut in zip(self._remote, futures):
                try:
                    for pos, a in zip(part.fetch_positions, ray.get(fut)):
                        results[pos] = a
                except Exception as e:   # noqa: BLE001 - reported to the caller below
                    errors.append((part.device, e))
                    failed = failed or e
            futures.clear()
            if failed is not None:
                self.rendezvous.abort(failed)
                raise failed

        with self._lock:
            self.rendezvous.start()
            self._gate.start(len(self._local), remote_wait)
            futures: list = []
            if self._remote:
                self._clock.step += 1
                for ep in self._prefetch:
                    ep.prefetch()
                for part in self._remote:
                    mine = {n.attrs["index"]: feeds[n.attrs["index"]] for n in part.graph.nodes
                            if n.op == "placeholder"}
                    futures.append(self._cluster.workers[part.device.worker].run.remote(
                        self._clock.plan_id, str(part.device), self._clock.step, mine))
            for part, thread in zip(self._local[1:], self._threads):
                thread.jobs.put(job(part))
            if self._local:
                job(self._local[0])()      # the first device's part runs in this thread
            for _ in self._local:
                done.acquire()
            if futures:         # a local part failed before the gate: collect the rest
                try:
                    remote_wait()
                except Exception:   # noqa: BLE001 - already in errors
                    pass
        if errors and self._remote:     # every part is done: nothing of the step is in flight
            self._cluster.exchange.forget.remote((self._clock.plan_id, self._clock.step))
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
