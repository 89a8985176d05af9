"""Worker processes for an ``IterableDataset``, as PyTorch's DataLoader runs them: each
worker iterates its own copy of the dataset (sharded by :func:`get_worker_info` in
``__iter__``), batches and collates there; the main process takes the batches round-robin,
worker by worker, skipping workers whose stream has ended.

Each worker has a task pipe (main -> worker: "start an epoch", "make the next batch",
None to stop) and a result pipe (worker -> main). Tasks go round-robin to the workers
that have not ended, at most ``prefetch_factor * num_workers`` in flight; results are
handed out in task order. Results carry the epoch they belong to, so a result left over
from an epoch broken off early (persistent workers) is dropped.
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any

from . import worker as _w

_SHUTDOWN_GRACE_S = 5.0     # then stragglers (stuck in a slow __iter__) are terminated
_POLL_S = 1.0               # how often an idle worker checks that its parent still lives


class Fetcher:
    """Batches from one iterator over an IterableDataset, as PyTorch's
    ``_IterableDatasetFetcher``: ``next_batch()`` raises StopIteration at the end; a short
    last batch unless ``drop_last``; with ``batch_size`` None each item on its own."""

    def __init__(self, it: Iterator[Any], batch_size: int | None, drop_last: bool,
                 collate: Callable):
        self.it, self.batch_size, self.drop_last, self.collate = it, batch_size, drop_last, collate
        self.ended = False

    def next_batch(self) -> Any:
        if self.ended:
            raise StopIteration
        if self.batch_size is None:
            return self.collate(next(self.it))
        items = list(itertools.islice(self.it, self.batch_size))
        self.ended = len(items) < self.batch_size    # the iterator is not asked again
        if not items or (self.drop_last and self.ended):
            raise StopIteration
        return self.collate(items)

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                batch = self.next_batch()
            except StopIteration:
                return
            yield batch


class _Gone(Exception):
    """The main process closed the result pipe (it has stopped, or is stopping, us)."""


def _send(results, epoch, idx, kind, value, wid):
    try:
        results.send((epoch, idx, kind, value))
        return
    except OSError:
        raise _Gone from None
    except Exception:       # the batch itself cannot cross processes: say so instead
        error = _w.capture_error(f"in DataLoader worker process {wid} (sending a batch to "
                                 "the main process)")
    try:
        results.send((epoch, idx, "error", error))
    except Exception:
        raise _Gone from None


def _worker_loop(*args):
    try:
        _serve(*args)
    except (KeyboardInterrupt, _Gone):
        pass        # Ctrl-C reaches the main process too, which stops the workers


def _serve(wid, num_workers, dataset, batch_size, drop_last, collate, base_seed, init_fn,
           tasks, results, parent_pid):
    _w.become_worker(wid, num_workers, base_seed, dataset)
    where = f"in DataLoader worker process {wid}"
    init_error = None
    if init_fn is not None:
        try:
            init_fn(wid)
        except Exception:
            init_error = _w.capture_error(where)
    fetcher, pending_error, ended = None, init_error, True
    while True:
        try:
            if not tasks.poll(_POLL_S):
                if os.getppid() != parent_pid:      # orphaned: the main process died
                    return
                continue
            msg = tasks.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        epoch, idx = msg
        if idx is None:                             # a new epoch: a fresh iterator
            ended, pending_error = False, init_error
            if init_error is None:
                try:
                    fetcher = Fetcher(iter(dataset), batch_size, drop_last, collate)
                except Exception:
                    pending_error = _w.capture_error(where)
            continue
        if ended:                                   # the main process learns it soon
            continue
        if pending_error is not None:
            _send(results, epoch, idx, "error", pending_error, wid)
            pending_error, ended = None, True
            continue
        try:
            batch = fetcher.next_batch()
        except StopIteration:
            ended = True
            _send(results, epoch, idx, "end", None, wid)
            continue
        except Exception:
            _send(results, epoch, idx, "error", _w.capture_error(where), wid)
            continue
        _send(results, epoch, idx, "batch", batch, wid)


class IterableWorkers:
    """``num_workers`` processes, each running its own copy of ``dataset``'s iterator."""

    def __init__(self, dataset, num_workers: int, batch_size: int | None, drop_last: bool,
                 collate: Callable, base_seed: int, init_fn, ctx, prefetch_factor: int,
                 timeout: float):
        self.prefetch = prefetch_factor * num_workers
        self.timeout = timeout
        self.epoch = 0
        self.procs, self.tasks, self.results = [], [], []
        try:
            for wid in range(num_workers):
                task_r, task_w = ctx.Pipe(duplex=False)
                res_r, res_w = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_worker_loop, daemon=True,
                                args=(wid, num_workers, dataset, batch_size, drop_last,
                                      collate, base_seed, init_fn, task_r, res_w,
                                      os.getpid()))
                p.start()
                task_r.close()          # the worker's ends: only the worker keeps them
                res_w.close()
                self.procs.append(p)
                self.tasks.append(task_w)
                self.results.append(res_r)
        except BaseException:
            self.shutdown()
            raise

    # --- one epoch ---------------------------------------------------------------------
    def run_epoch(self) -> Iterator[Any]:
        """The epoch's batches, in PyTorch's order. Raises the workers' errors."""
        self.epoch += 1
        epoch, n = self.epoch, len(self.procs)
        for t in self.tasks:
            t.send((epoch, None))
        active = [True] * n
        owner: dict[int, int] = {}          # task index -> worker
        ready: dict[int, tuple] = {}        # task index -> (kind, value), arrived early
        cycle = itertools.cycle(range(n))
        sent = received = 0

        def put_task():
            nonlocal sent
            for _ in range(n):
                w = next(cycle)
                if active[w]:
                    break
            else:
                return
            self.tasks[w].send((epoch, sent))
            owner[sent] = w
            sent += 1

        for _ in range(self.prefetch):
            put_task()
        while True:
            # skip the tasks of workers that have ended and will not answer them
            while received < sent and received not in ready and not active[owner[received]]:
                del owner[received]
                received += 1
            if received >= sent:
                return
            if received not in ready:
                for _ in range(self._receive(epoch, owner, ready, active)):
                    put_task()          # as PyTorch: the end message frees a task slot
                continue
            kind, value = ready.pop(received)
            del owner[received]
            received += 1
            if kind == "error":
                _w.reraise(value)
            put_task()
            yield value

    def _receive(self, epoch, owner, ready, active) -> int:
        """Wait for results (at most ``timeout`` seconds) and file them under their task;
        the number of workers that said their stream has ended."""
        deadline = None if not self.timeout else time.monotonic() + self.timeout
        sentinels = [p.sentinel for p in self.procs]
        while True:
            left = _POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
            got = wait(self.results + sentinels, timeout=left)
            got = [c for c in got if c in self.results]
            if got:
                break
            self._check_alive()     # a sentinel fired with nothing left to read: died
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(f"DataLoader timed out after {self.timeout:g} seconds (no "
                                   f"batch from the workers within timeout={self.timeout} s)")
        ended = 0
        for conn in got:
            w = self.results.index(conn)
            try:
                e, idx, kind, value = conn.recv()
            except (EOFError, OSError):
                self.procs[w].join(1.0)     # it closed the pipe as it died: let it finish
                self._check_alive()
                raise RuntimeError(f"DataLoader worker {w} closed its pipe") from None
            if e != epoch:
                continue                    # left over from an epoch broken off early
            if kind == "end":
                active[w] = False
                ended += 1
            else:
                ready[idx] = (kind, value)
        return ended

    def _check_alive(self) -> None:
        for w, p in enumerate(self.procs):
            if not p.is_alive():
                raise RuntimeError(f"DataLoader worker {w} (pid {p.pid}) exited "
                                   f"unexpectedly with exit code {p.exitcode}")

    # --- the end -------------------------------------------------------------------------
    def shutdown(self, grace: float = _SHUTDOWN_GRACE_S) -> None:
        """Stop the workers: ask them, read what they still send (a worker blocked on a
        full pipe could not hear the request), terminate any that outlive ``grace`` seconds
        (after an error or a timeout, none: a stuck worker is not waited for)."""
        for t in self.tasks:
            try:
                t.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + grace
        live = [r for r in self.results if not r.closed]
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            for r in wait(live + [p.sentinel for p in self.procs if p.is_alive()],
                          timeout=0.1):
                if r in live:
                    try:
                        r.recv_bytes()
                    except (EOFError, OSError):
                        live.remove(r)
        for p in self.procs:
            if p.is_alive():
                p.terminate()
            p.join()
        for c in self.tasks + self.results:
            c.close()
        self.procs, self.tasks, self.results = [], [], []
