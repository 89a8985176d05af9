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

import functools
import queue
import re
import threading
import weakref

from ..._device import Device
from ..executor import needed_nodes
from ..ir import REPLICATED_OPS, Graph, Node, Value
from .partition import partition


class StepAborted(RuntimeError):
    """Raised in a device's thread when another device failed the step."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a remote worker (the ``__cause__`` of the error
    a placed graph's run re-raises in this process), as text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


_NODE_REF = re.compile(r"\b[KQRXWUB](\d+)\b")     # what a generated line calls: K<node id>...
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failing_node(error: BaseException, plan) -> int | None:
    """The id of the node of executor ``plan`` whose line of the generated code raised
    ``error`` (from its traceback), or None."""
    code, source = getattr(plan, "_code", None), getattr(plan, "source", None)
    if code is None or source is None:
        return None
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == code.co_filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    lines = source.splitlines()
    if line is None or not 0 < line <= len(lines):
        return None
    m = _NODE_REF.search(lines[line - 1])
    return int(m.group(1)) if m else None


def describe_node(graph: Graph, node: Node) -> str:
    """``node %3 = cholesky``, with ``, traced at t.py:7: `code``` when the graph keeps the
    user's line that made it (``graph.node_sources``, see :meth:`Graph.describe_node`)."""
    return graph.describe_node(node)


def unwrap_remote(error: BaseException) -> BaseException:
    """A Ray task error as the exception the worker raised (its type and message, without
    Ray's colour codes and actor ids); the remote traceback is its ``__cause__`` (a
    :class:`RemoteTraceback`) and ``remote_traceback``. Other errors come back unchanged."""
    cause = getattr(error, "cause", None)
    if not isinstance(cause, BaseException) or "RayTaskError" not in type(error).__name__:
        return error
    text = _ANSI.sub("", getattr(error, "traceback_str", None) or str(error)).rstrip()
    try:
        cause.remote_traceback = text
    except AttributeError:      # an exception type with __slots__
        pass
    cause.__cause__ = RemoteTraceback(text)
    cause.__suppress_context__ = True
    return cause


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


class Endpoint:
    """A send or recv node's end of one edge between two devices of this process."""

    __slots__ = ("rendezvous", "key", "device")

    def __init__(self, rendezvous: Rendezvous, key: tuple, device: Device):
        self.rendezvous = rendezvous
        self.key = key
        self.device = device

    def send(self, array) -> None:
        # a copy: the sender's memory plan may reuse the buffer at once
        self.rendezvous.send(self.key, array.copy())

    def recv(self):
        from ...backends import to_device
        return to_device(self.rendezvous.recv(self.key), self.device)


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
        with _RUNTIMES:
            t = self.threads.get(device)
            if t is None:
                t = self.threads[device] = _DeviceThread(device)
            return t


_RUNTIMES = threading.Lock()    # creating a graph's runtime and its threads


def _stop_threads(threads) -> None:
    for t in list(threads.values()):
        t.stop()


def _runtime(graph: Graph) -> _GraphRuntime:
    with _RUNTIMES:
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
    all of them finished computing without error, so a step that fails while computing
    changes no state anywhere."""

    def __init__(self):
        self._cv = threading.Condition()

    def start(self, parties: int, remote_wait) -> None:
        self.parties = parties
        self.arrived = 0
        self.remote_wait = remote_wait      # the last arrival waits for the remote parts
        self.verdict: BaseException | bool | None = None

    def fail(self, error: BaseException) -> None:
        with self._cv:
            if self.verdict is None:        # after a pass, the writes have begun
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
            if self.verdict is not True:    # chained: a failed remote wait shows its cause
                raise StepAborted("the step failed on another device; nothing was written"
                                  ) from self.verdict


class _Step:
    """One run of a PlacedPlan: its results, errors and remote futures."""

    def __init__(self, n_fetches: int):
        self.results: list = [None] * n_fetches
        self.errors: list = []
        self.futures: list = []
        self.nodes: dict[int, str] = {}     # id(error) -> the node that raised it, described
        self.done = threading.Semaphore(0)


class PlacedPlan:
    """The partitions of one (fetches, targets) set of a placed graph, and their threads.

    Partitions on remote workers (``/worker:K/...``) are loaded into their worker once and
    run there each step; edges that leave this process go through the cluster's exchange
    (see :mod:`tensorlib.distributed`)."""

    def __init__(self, graph: Graph, fetches: list[Value], targets: list[Node]):
        self.graph = graph
        self.fetches = list(fetches)
        self._targets = list(targets)
        self._active: _Step | None = None      # the step running now
        rt = _runtime(graph)
        self._lock = rt.lock
        with self._lock:
            self._build(rt)

    def _build(self, rt: _GraphRuntime) -> None:
        graph = self.graph
        self.rendezvous = Rendezvous()
        self._cluster = self._clock = None
        needed = needed_nodes(graph, self.fetches, self._targets)
        if any(Device(n.device).worker is not None for n in needed):
            from ...distributed import current
            from ...distributed.endpoints import StepClock
            self._cluster = current()
            if self._cluster is None:
                raise RuntimeError(f"graph {graph.name!r} is placed on remote workers: start "
                                   "them with tl.distributed.init() first")
            self._clock = StepClock(self._cluster.next_plan_id())
        self._gate = _CommitGate()
        self.partitions = partition(graph, self.fetches, self._targets, self._endpoint,
                                    barrier=self._gate, nodes=needed)
        self.placeholders = [n for p in self.partitions for n in p.graph.nodes
                             if n.op == "placeholder"]
        self._local = [p for p in self.partitions if p.device.worker is None]
        self._remote = [p for p in self.partitions if p.device.worker is not None]
        for p in self._remote:
            self._load(p)
        self._prefetch = [p.graph.bindings[n] for p in self._local for n in p.graph.nodes
                          if n.op == "recv" and hasattr(p.graph.bindings[n], "prefetch")]
        self._threads = [rt.thread(p.device) for p in self._local[1:]]
        self._home = [Device(graph.traced_device(v)) for v in self.fetches]
        if self._remote:
            weakref.finalize(self, _unload, list(self._cluster.workers), self._clock.plan_id)

    def _endpoint(self, key: tuple, dst: Device):
        if Device(key[0]).worker is None and dst.worker is None:
            return Endpoint(self.rendezvous, key, dst)
        from ...distributed.endpoints import RemoteEndpoint
        return RemoteEndpoint(self._cluster.exchange, self._clock, key, str(dst))

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

    def _abort_if_failed(self, step: _Step, step_no: int, future) -> None:
        # Ray calls this from its own thread, possibly after the step returned and the next
        # one began: it must abort only its own step (aborting the running one made the
        # next step after a failure fail too, under load)
        error = future.exception()
        if error is not None and step is self._active:
            self._abort(error, step_no)

    def _abort(self, error: BaseException, step_no: int | None = None) -> None:
        self.rendezvous.abort(error)
        self._gate.fail(error)
        if self._clock is not None:
            n = self._clock.step if step_no is None else step_no
            self._cluster.exchange.abort.remote((self._clock.plan_id, n))

    def _check_cluster(self, rt: _GraphRuntime) -> None:
        from ...distributed import current
        now = current()
        if now is self._cluster:
            return
        if now is None:
            raise RuntimeError(f"graph {self.graph.name!r} is placed on remote workers, but "
                               "the cluster was shut down: start one with "
                               "tl.distributed.init()")
        self._build(rt)             # load the remote parts into the new cluster

    # --- one step ------------------------------------------------------------------------
    def __call__(self, feeds: list, input_tensors: list | None = None) -> list:
        step = _Step(len(self.fetches))
        with self._lock:
            self._active = step
            if self._remote:
                self._check_cluster(_runtime(self.graph))
            self.rendezvous.start()
            self._gate.start(len(self._local), lambda: self._collect_remote(step))
            self._start_remote(step, feeds)
            for part, thread in zip(self._local[1:], self._threads):
                thread.jobs.put(self._job(step, part, feeds, input_tensors))
            if self._local:     # the first device's part runs in this thread
                self._job(step, self._local[0], feeds, input_tensors)()
            for _ in self._local:
                step.done.acquire()
            if step.futures:    # a local part failed before the gate: collect the rest
                try:
                    self._collect_remote(step)
                except Exception:   # noqa: BLE001 - already in step.errors
                    pass
            self._active = None
        return self._finish(step)

    def _job(self, step: _Step, part, feeds: list, input_tensors):
        from ...backends import to_device

        def run():
            try:
                local = list(feeds)
                for n in part.plan.placeholders:   # feeds are host arrays
                    i = n.attrs["index"]
                    local[i] = to_device(local[i], part.device)
                outs = _on_device(part.device, part.plan, local, input_tensors)
                for pos, a in zip(part.fetch_positions, outs):
                    step.results[pos] = a
            except BaseException as e:   # noqa: BLE001 - reported to the caller
                self._note_node(step, part, e, failing_node(e, part.plan))
                step.errors.append((part.device, e))
                self._abort(e)
            finally:
                step.done.release()
        return run

    def _start_remote(self, step: _Step, feeds: list) -> None:
        if not self._remote:
            return
        self._clock.step += 1
        for ep in self._prefetch:
            ep.prefetch()
        for part in self._remote:
            mine = {n.attrs["index"]: feeds[n.attrs["index"]] for n in part.graph.nodes
                    if n.op == "placeholder"}
            fut = self._cluster.workers[part.device.worker].run.remote(
                self._clock.plan_id, str(part.device), self._clock.step, mine)
            # a worker that dies (or fails before it could abort the step itself) must not
            # leave the local parts waiting in recv or at the gate
            fut.future().add_done_callback(
                functools.partial(self._abort_if_failed, step, self._clock.step))
            step.futures.append((part, fut))

    def _collect_remote(self, step: _Step) -> None:
        """The remote parts' results; they (no writes there: variables stay in this
        process) must have finished before any local write."""
        if not step.futures:    # only local parts: Ray need not be installed
            return
        import ray
        failed = None
        for part, fut in step.futures:
            try:
                for pos, a in zip(part.fetch_positions, ray.get(fut)):
                    step.results[pos] = a
            except Exception as e:   # noqa: BLE001 - reported to the caller
                e = unwrap_remote(e)
                self._note_node(step, part, e, getattr(e, "tensorlib_node", None))
                step.errors.append((part.device, e))
                failed = failed or e
        step.futures.clear()
        if failed is not None:
            self.rendezvous.abort(failed)
            raise failed

    def _note_node(self, step: _Step, part, error: BaseException, node_id) -> None:
        node = (part.origin or {}).get(node_id) if node_id is not None else None
        if node is not None and not isinstance(error, StepAborted):
            step.nodes[id(error)] = describe_node(self.graph, node)

    def _finish(self, step: _Step) -> list:
        from ...backends import to_device
        if step.errors and self._remote:    # every part is done: nothing is in flight
            self._cluster.exchange.forget.remote((self._clock.plan_id, self._clock.step))
        first = next(((d, e) for d, e in step.errors if not isinstance(e, StepAborted)),
                     step.errors[0] if step.errors else None)
        if first is not None:
            dev, err = first
            node = step.nodes.get(id(err))
            err.add_note(f"(raised {'by ' + node + ', ' if node else ''}on device {dev} while "
                         f"running placed graph {self.graph.name!r}; the step was stopped on "
                         "every device)")
            raise err
        # results go back to the device the eager code made them on (a GPU's to the host...)
        return [a if _is_on(a, home) else to_device(a, home)
                for a, home in zip(step.results, self._home)]


def _is_on(array, device: Device) -> bool:
    on_gpu = hasattr(array, "__cuda_array_interface__")
    return (device.type == "cuda") == on_gpu and (
        not on_gpu or array.device.id == device.index)


def _on_device(device: Device, plan, feeds, input_tensors):
    if device.type != "cuda":
        return plan(feeds, input_tensors)
    from ...backends import cupy
    with cupy().cuda.Device(device.index):
        return plan(feeds, input_tensors)


def spans_devices(nodes) -> bool:
    """Whether ``nodes`` (a plan's) compute on more than one device."""
    devs = {n.device for n in nodes if n.op not in REPLICATED_OPS}
    return len({str(Device(d)) for d in devs}) > 1
