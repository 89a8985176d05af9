"""``DataLoader``: batches of samples, optionally shuffled with a seed."""
from __future__ import annotations

import itertools
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..random import Generator
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset, batch_getter
from .sampler import BatchSampler, RandomSampler, SequentialSampler, index_arrays
from .worker import (WorkerInfo, become_worker, capture_error, drop_shm, from_shm,
                     get_worker_info, reraise, seed_python_rngs, shm_usable, to_shm)

__all__ = ["DataLoader", "WorkerInfo", "default_collate", "default_convert",
           "get_worker_info"]


def _load(dataset, collate_fn, idx):
    """One batch: ``idx`` is an int64 array (integer keys: the ``get_batch`` fast path may
    read it) or a list of the sampler's keys as given (any type, as PyTorch)."""
    if isinstance(idx, np.ndarray):
        fast = batch_getter(dataset) if collate_fn is None else None
        if fast is not None:
            return fast(idx)
        idx = idx.tolist()
    many = getattr(dataset, "__getitems__", None)      # PyTorch's many-samples protocol
    samples = many(idx) if many else [dataset[i] for i in idx]
    return (collate_fn or default_collate)(samples)


def _load_one(dataset, collate_fn, key):
    """One unbatched sample (``batch_size=None``) through ``collate_fn``."""
    return (collate_fn or default_convert)(dataset[key])


def _int_keys(keys: list) -> np.ndarray | list:
    """``keys`` as an int64 array when all are integers (the fast batch path), else the
    list as given: bulk-indexing lists, str keys of a dict-backed dataset."""
    if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        return np.asarray(keys, dtype=np.int64)
    return keys


def _rebatch(arrays: Iterator[np.ndarray], bs: int, drop_last: bool) -> Iterator[np.ndarray]:
    """Batches of ``bs`` keys from a stream of index arrays (a library sampler's order)."""
    rest = np.empty(0, np.int64)
    for a in arrays:
        if len(rest):
            a = np.concatenate([rest, a])
        stop = len(a) - len(a) % bs
        for s in range(0, stop, bs):
            yield a[s:s + bs]
        rest = a[stop:]
    if len(rest) and not drop_last:
        yield rest


def _chunks(keys: Iterator[Any], bs: int, drop_last: bool) -> Iterator[np.ndarray | list]:
    """Batches of ``bs`` keys pulled from any sampler as it yields them (it may be endless,
    or decide later keys from what happened earlier in the epoch)."""
    while True:
        batch = list(itertools.islice(keys, bs))
        if not batch or (drop_last and len(batch) < bs):
            return
        yield _int_keys(batch)


class _LoaderIter:
    """What ``iter(loader)`` gives (PyTorch's ``_BaseDataLoaderIter``): the epoch's
    batches, with ``len()`` the loader's."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._gen = loader._epoch()

    def _reset(self) -> None:
        # a new epoch on the same (persistent) workers: the old one is closed, so it never
        # waits for results the workers now drop as stale
        self._gen.close()
        self._gen = self._loader._epoch()

    def __iter__(self) -> _LoaderIter:
        return self

    def __next__(self) -> Any:
        return next(self._gen)

    def __len__(self) -> int:
        return len(self._loader)


_NONE = object()
_WORKER: tuple = ()
_INIT_ERROR: tuple | None = None


def _worker_init(dataset, collate_fn, base_seed: int, counter, num_workers: int,
                 worker_init_fn, shm_prefix: str | None = None) -> None:
    global _WORKER, _INIT_ERROR
    with counter.get_lock():
        wid = int(counter.value)
        counter.value += 1
    _WORKER = (dataset, collate_fn, shm_prefix)
    become_worker(wid, num_workers, base_seed, dataset)
    if worker_init_fn is not None:
        try:
            worker_init_fn(wid)
        except Exception:
            # kept for the first job to report: an initializer's exception would break the
            # pool, and the main process would see only BrokenProcessPool
            _INIT_ERROR = capture_error(f"in DataLoader worker process {wid}")


def _worker_ping(_=None):
    """(True, None) once a worker has started, or its ``worker_init_fn`` error."""
    return (False, _INIT_ERROR) if _INIT_ERROR is not None else (True, None)


def _refuse_graphs(batch) -> None:
    """A batch tensor in an autograd graph cannot cross to the main process (as PyTorch's
    workers, which refuse to serialize it): say so, rather than a pickling error."""
    from .._tensor import Tensor
    from .worker import _map_structure

    def check(x):
        if isinstance(x, Tensor) and x.requires_grad:
            raise RuntimeError(
                "DataLoader worker: a batch tensor requires grad (it is part of an autograd "
                "graph, e.g. from a TensorDataset over a tensor with requires_grad=True), and "
                "graphs cannot cross process boundaries. Use num_workers=0 to keep the "
                "gradients, or .detach() the dataset's tensors to transfer the data alone.")
        return x
    _map_structure(check, batch)


def _worker_load(job):
    """(True, batch), or (False, the error as :func:`~.worker.capture_error` gives it): an
    exception the main process could not rebuild would otherwise break the pool."""
    from ..random import manual_seed
    k, idx, base, batched = job
    if _INIT_ERROR is not None:
        return False, _INIT_ERROR
    dataset, collate_fn, shm_prefix = _WORKER
    try:
        # per batch: the same draws whichever worker builds it, other draws in each batch
        # and each epoch (base is drawn per epoch), for tensorlib's generator, np.random
        # and random alike
        manual_seed(base + k)
        seed_python_rngs(base, 0, k)
        load = _load if batched else _load_one
        batch = load(dataset, collate_fn, idx)
        _refuse_graphs(batch)
    except Exception:
        info = get_worker_info()
        return False, capture_error(f"in DataLoader worker process {info.id}")
    if shm_prefix is not None:
        try:
            batch = to_shm(batch, shm_prefix)
        except OSError:         # /dev/shm full or gone: the pipe still works
            pass
    return True, batch


_SHM_LOCK = threading.Lock()


def _unshare(future) -> None:
    """Map a finished job's shared-memory arrays back, once, whoever asks first: the main
    thread reading it, or the pool's callback (which also frees the files of a result
    nobody reads: a batch in flight when the loop was broken off)."""
    with _SHM_LOCK:
        if hasattr(future, "_tl_value"):
            return
        future._tl_value = None
        if future.cancelled() or future.exception() is not None:
            return
        ok, value = future.result()
        future._tl_value = (ok, from_shm(value) if ok else value)


class WorkerTimeoutError(RuntimeError):
    """No batch from the workers within the DataLoader's ``timeout`` (a RuntimeError, as
    PyTorch raises)."""


class _InfiniteConstantSampler:
    """``None`` forever: the sampler PyTorch reports for an ``IterableDataset``."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class DataLoader:
    """Iterate over a dataset in batches (``torch.utils.data.DataLoader``).

    Samples ``dataset[i]`` are grouped ``batch_size`` at a time and collated: tensors and
    arrays stacked along a new first dim, tuples collated field by field.

    >>> ds = tl.data.TensorDataset(tl.arange(10.0).reshape(5, 2), tl.arange(5))
    >>> loader = tl.data.DataLoader(ds, batch_size=2, shuffle=True, seed=0)
    >>> [tuple(y.shape) for x, y in loader]
    [(2,), (2,), (1,)]
    >>> len(loader)
    3

    With ``shuffle`` each epoch draws a new order from ``generator`` (or from a
    generator seeded with ``seed``; or from the global generator, which
    ``tl.manual_seed`` seeds). ``drop_last`` drops a final short batch.
    ``device`` moves each batch there; ``pin_memory`` first copies CPU batches into
    page-locked host memory, from which host-to-GPU copies run at full bus speed (without
    a GPU it warns once and has no effect, as in PyTorch). ``num_workers`` > 0 builds the
    batches in that many worker processes (for datasets whose ``__getitem__`` does real
    work: decoding, augmentation), in the same order; tensorlib's global generator is
    seeded per batch from one draw per epoch (of ``generator``, or the global one), so
    random augmentations differ between batches and repeat after ``tl.manual_seed``
    whichever worker builds a batch. NumPy's global generator (``np.random``) and Python's
    ``random`` are seeded per batch from the same draw in each worker (PyTorch seeds them
    per worker and epoch), so augmentations written with them differ between batches and
    epochs too and repeat after ``tl.manual_seed``. That draw moves the generator on: later
    epochs shuffle differently than with ``num_workers=0``. ``worker_init_fn(worker_id)``
    runs once in each worker when it starts (after that worker's seeding), as PyTorch's;
    :func:`get_worker_info` tells the dataset which worker it runs in. An error in a worker
    is raised here with the worker's traceback, as PyTorch does (the worker's exception
    type where it takes a message, else RuntimeError); a worker that dies raises too.
    ``prefetch_factor`` batches per worker (default 2; only with ``num_workers`` > 0, as
    PyTorch) are in flight at once. With ``num_workers`` > 0 every epoch runs in the
    workers, however few its batches (each worker starts, ``worker_init_fn`` runs in it);
    an error in ``worker_init_fn`` is raised here like one in ``__getitem__``. ``timeout``
    > 0 raises RuntimeError when no batch comes within that many seconds, and stops the
    workers without waiting for a stuck one. Large batch arrays come back from the workers
    through shared memory (``/dev/shm``), not the pipe. With ``persistent_workers`` each
    ``iter(loader)`` restarts one shared iterator, as PyTorch's. ``len(iter(loader))`` is
    ``len(loader)``.

    ``sampler`` (a :mod:`~tensorlib.data.sampler` or any iterable of indices: weighted,
    subset, with replacement) gives the order instead of ``shuffle``; ``batch_sampler``
    gives whole batches of indices instead of ``batch_size``/``shuffle``/``sampler``/
    ``drop_last``. The loader iterates :attr:`batch_sampler` (built on :attr:`sampler`)
    as PyTorch's, pulling keys as the sampler yields them: an endless sampler streams.
    With ``batch_size=None`` each sample is passed through ``collate_fn``
    (default :func:`~tensorlib.data.collate.default_convert`: arrays become tensors). The
    sampler's keys reach ``__getitem__`` as given, as PyTorch's: a ``BatchSampler`` as
    ``sampler`` with ``batch_size=None`` hands the dataset whole lists of indices (bulk
    reads), str keys suit a dict-backed dataset. Batches of tuple samples are lists (as
    PyTorch's ``default_collate``), the ``TensorDataset`` fast path's included.

    An :class:`~tensorlib.data.dataset.IterableDataset` is read in its own order,
    consecutive items batched. With ``num_workers`` > 0 each worker iterates its own copy
    (as PyTorch: shard the stream in ``__iter__`` with :func:`get_worker_info`, or every
    worker yields all of it), batching and collating there, ``drop_last`` per worker; the
    batches come round-robin, worker 0, 1, ..., skipping workers whose stream has ended.
    Each worker's generators are seeded once from ``seed + worker id``, the seed drawn
    per epoch (once, with ``persistent_workers``). ``len(loader)`` uses the dataset's
    ``__len__``; the loader warns when an epoch gives more batches than that.

    >>> class Shards(tl.data.IterableDataset):
    ...     def __iter__(self):
    ...         info = tl.data.get_worker_info()
    ...         k, n = (0, 1) if info is None else (info.id, info.num_workers)
    ...         yield from (np.float32(i) for i in range(k, 10, n))
    >>> [b.tolist() for b in tl.data.DataLoader(Shards(), batch_size=2, num_workers=2)]
    [[0.0, 2.0], [1.0, 3.0], [4.0, 6.0], [5.0, 7.0], [8.0], [9.0]]
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable | None = None,
                 generator: Generator | None = None, seed: int | None = None,
                 device=None, pin_memory: bool = False, num_workers: int = 0,
                 worker_init_fn: Callable[[int], Any] | None = None, sampler=None,
                 batch_sampler=None, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, timeout: float = 0,
                 multiprocessing_context=None, in_order: bool = True,
                 pin_memory_device: str = ""):
        # PyTorch's in_order=False lets workers' batches come back as they finish; here
        # they always come in order, which that setting permits (pin_memory_device: the
        # device pin_memory prepares for, as PyTorch's)
        self.in_order, self.pin_memory_device = bool(in_order), str(pin_memory_device)
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass generator or seed, not both")
        if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got "
                             f"{num_workers!r}")
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise TypeError(f"DataLoader: worker_init_fn must be callable, got "
                            f"{type(worker_init_fn).__name__}")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler gives whole batches: leave batch_size, "
                             "shuffle, sampler and drop_last out")
        if batch_sampler is None and batch_size is not None and \
                not isinstance(drop_last, (bool, np.bool_)):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: a sampler sets the order; leave shuffle out (use "
                             "RandomSampler to shuffle)")
        if isinstance(dataset, IterableDataset):
            if shuffle or sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader: an IterableDataset yields its own order: no "
                                 "shuffle, sampler or batch_sampler")
        if not num_workers and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing.let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers and prefetch_factor is None:
            prefetch_factor = 2
        if num_workers and (not isinstance(prefetch_factor, (int, np.integer))
                            or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor must be a positive integer, got "
                             f"{prefetch_factor!r}")
        if persistent_workers and not num_workers:
            raise ValueError("DataLoader: persistent_workers needs num_workers > 0")
        if not timeout >= 0:
            raise ValueError(f"DataLoader: timeout must be >= 0 seconds, got {timeout!r}")
        self.persistent_workers = bool(persistent_workers)
        self.timeout = float(timeout)
        self.multiprocessing_context = multiprocessing_context
        self._pool = None           # kept between epochs with persistent_workers
        self._len_told = None       # what len() said, for an IterableDataset
        # the samplers the user gave drive iteration (the fast index paths below); the public
        # attributes show PyTorch's defaults without being consulted for the order
        self._sampler = sampler
        self._batch_sampler = batch_sampler
        self._default_sampler = self._default_batch_sampler = None
        self._iterator = None       # shared by iter() calls with persistent workers, as PyTorch
        self.prefetch_factor = None if prefetch_factor is None else int(prefetch_factor)
        self.num_workers = int(num_workers)
        self.worker_init_fn = worker_init_fn
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator if generator is not None else (
            Generator(seed) if seed is not None else None)
        self.device = device
        self.pin_memory = bool(pin_memory)
        if self.pin_memory:
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("DataLoader: pin_memory=True but no CUDA GPU is available; "
                              "batches stay in ordinary memory", stacklevel=2)
                self.pin_memory = False

    @property
    def sampler(self):
        """The index sampler, as PyTorch's: the one given, else a ``SequentialSampler``
        (``RandomSampler`` with ``shuffle=True``, drawing from ``generator``); for an
        ``IterableDataset`` an endless sampler of ``None``. It sets the loader's order: setting
        ``loader.sampler.generator`` pins the shuffle, as in PyTorch."""
        if self._sampler is not None:
            return self._sampler
        if self._default_sampler is None:
            if isinstance(self.dataset, IterableDataset):
                self._default_sampler = _InfiniteConstantSampler()
            elif self.shuffle:
                self._default_sampler = RandomSampler(self.dataset, generator=self.generator)
            else:
                self._default_sampler = SequentialSampler(self.dataset)
        return self._default_sampler

    @sampler.setter
    def sampler(self, value) -> None:
        raise ValueError("DataLoader: sampler attribute should not be set after the "
                         "DataLoader is initialized (pass sampler= to DataLoader)")

    @property
    def batch_sampler(self):
        """The batch sampler, as PyTorch's: the one given, else a ``BatchSampler`` over
        :attr:`sampler` (``None`` with ``batch_size=None``); the loader iterates it."""
        if self._batch_sampler is not None:
            return self._batch_sampler
        if self.batch_size is None:
            return None
        if self._default_batch_sampler is None:
            self._default_batch_sampler = BatchSampler(self.sampler, self.batch_size,
                                                       self.drop_last)
        return self._default_batch_sampler

    @batch_sampler.setter
    def batch_sampler(self, value) -> None:
        raise ValueError("DataLoader: batch_sampler attribute should not be set after the "
                         "DataLoader is initialized (pass batch_sampler= to DataLoader)")

    def __len__(self) -> int:
        if self._batch_sampler is not None:
            return len(self._batch_sampler)
        n = len(self._sampler if self._sampler is not None else self.dataset)
        if self.batch_size is not None:
            n = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if isinstance(self.dataset, IterableDataset):
            self._len_told = (n, self._most_batches(n))     # checked while iterating
        return n

    def _most_batches(self, n_batches: int) -> int:
        """The most batches a correctly sharded stream of ``len(dataset)`` samples gives:
        each worker batches its own shard, so each may end on a short batch."""
        w, bs = self.num_workers, self.batch_size
        if w <= 1 or bs is None or self.drop_last:
            return n_batches
        return (len(self.dataset) + w * (bs - 1)) // bs

    def _keys(self) -> tuple[Iterator[Any], bool]:
        """The epoch's keys, drawn lazily from :attr:`batch_sampler` (batches of keys, and
        True) or, with ``batch_size=None``, from :attr:`sampler` (single keys, and False).
        A library sampler hands over its order as int64 arrays (the fast path); any other
        is iterated as it yields (endless samplers stream)."""
        if self._sampler is None and self._batch_sampler is None and not len(self.dataset):
            return iter(()), self.batch_size is not None
        if self._batch_sampler is None and self.batch_size is None:
            arrays = index_arrays(self.sampler)
            if arrays is not None:
                return (i for a in arrays for i in a.tolist()), False
            return iter(self.sampler), False
        bs = self.batch_sampler
        if type(bs) is BatchSampler:
            arrays = index_arrays(bs.sampler)
            if arrays is not None:
                return _rebatch(arrays, bs.batch_size, bs.drop_last), True
            return _chunks(iter(bs.sampler), bs.batch_size, bs.drop_last), True
        return (_int_keys(list(b)) for b in bs), True

    def _from_iterable(self) -> Iterator[Any]:
        if self.num_workers:
            batches = self._iterable_in_workers()
        else:
            from .iterable_workers import Fetcher
            batches = Fetcher(iter(self.dataset), self.batch_size, self.drop_last,
                              self._collate())
        told, most = self._len_told or (None, None)
        for k, batch in enumerate(batches, 1):
            if most is not None and k == most + 1:
                warnings.warn(f"DataLoader: len() said {told} batches"
                              + (f" (at most {most} with {self.num_workers} workers each "
                                 "batching its own shard)" if most != told else "")
                              + f", but the IterableDataset {self.dataset!r} gives more"
                              + (": with num_workers > 0 each worker iterates its own "
                                 "copy of it; shard the stream in __iter__ with "
                                 "tl.data.get_worker_info()" if self.num_workers else ""),
                              stacklevel=2)
            yield self._move(batch)

    def _iterable_in_workers(self) -> Iterator[Any]:
        import weakref
        from ..random import rng
        from .iterable_workers import IterableWorkers
        base = int(rng(self.generator).integers(0, 2**31 - 1))     # per epoch, as PyTorch
        workers = self._pool
        if workers is None:
            workers = IterableWorkers(
                self.dataset, self.num_workers, self.batch_size, self.drop_last,
                self._collate(), base, self.worker_init_fn, self._context(), self.prefetch_factor,
                self.timeout)
            if self.persistent_workers:
                self._pool = workers
                weakref.finalize(self, workers.shutdown)
        try:
            yield from workers.run_epoch()
        except GeneratorExit:       # the loop was broken off: persistent workers stay
            if workers is not self._pool:
                workers.shutdown()
            raise
        except BaseException:       # an error, a timeout, a dead worker: start afresh
            if workers is self._pool:
                self._pool = None
            workers.shutdown(grace=0.0)
            raise
        if workers is not self._pool:
            workers.shutdown()

    def __iter__(self) -> _LoaderIter:
        if self.persistent_workers and self.num_workers:
            # one iterator, reset by each iter() (as PyTorch): two live ones would share the
            # workers, and one would wait forever for results dropped as another epoch's
            if self._iterator is None:
                self._iterator = _LoaderIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _LoaderIter(self)

    def _epoch(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            yield from self._from_iterable()
            return
        keys, batched = self._keys()
        if self.num_workers:
            # whatever the number of batches: worker_init_fn, get_worker_info() and the
            # workers' seeding are all observable, as in PyTorch
            yield from (self._move(b) for b in self._in_workers(keys, batched))
            return
        load = _load if batched else _load_one
        for idx in keys:
            yield self._move(load(self.dataset, self.collate_fn, idx))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pool"] = state["_iterator"] = None     # processes and open epochs stay here
        return state

    def _in_workers(self, keys: Iterator[Any], batched: bool):
        import collections
        from ..random import rng
        keys = iter(keys)
        first = next(keys, _NONE)   # the sampler draws before the workers' seed, as ever
        base = int(rng(self.generator).integers(0, 2**31 - 1))
        ex = self._pool if self._pool is not None else self._start(base)
        pending: collections.deque = collections.deque()
        try:
            if first is _NONE:  # the workers start (worker_init_fn runs) even so, as PyTorch
                ok, value = self._result(ex, ex.submit(_worker_ping))
                if not ok:
                    reraise(value)
            else:
                jobs = ((k, idx, base, batched)
                        for k, idx in enumerate(itertools.chain([first], keys)))
                n = ex._max_workers
                for job in jobs:        # a window of batches in flight, not the whole epoch
                    pending.append(self._submit(ex, job))
                    if len(pending) >= self.prefetch_factor * n:
                        break
            while pending:
                ok, value = self._result(ex, pending.popleft())
                if not ok:
                    reraise(value)
                nxt = next(jobs, None)
                if nxt is not None:
                    pending.append(self._submit(ex, nxt))
                yield value
        except GeneratorExit:       # the loop was broken off: persistent workers stay
            for f in pending:
                f.cancel()
            if ex is not self._pool:
                self._stop(ex)
            raise
        except WorkerTimeoutError:  # a worker may never return: do not wait for it
            self._kill(ex)
            raise
        except BaseException:       # an error, a dead worker: start afresh
            self._stop(ex)
            raise
        if ex is not self._pool:
            self._stop(ex)

    def _result(self, ex, future):
        """A job's result, within ``timeout``; a dead worker's pool raises as PyTorch's."""
        import concurrent.futures
        from concurrent.futures.process import BrokenProcessPool
        try:
            value = future.result(timeout=self.timeout or None)
            if getattr(ex, "_tl_shm", None) is None:
                return value
            _unshare(future)
            return future._tl_value
        except concurrent.futures.TimeoutError:
            raise WorkerTimeoutError(
                f"DataLoader timed out after {self.timeout:g} seconds (no batch from the "
                f"workers within timeout={self.timeout} s)") from None
        except BrokenProcessPool as e:
            procs = list((ex._processes or {}).values())
            dead = [p for p in procs if p.exitcode not in (None, -15)] or procs
            pids = ", ".join(str(p.pid) for p in dead)
            raise BrokenProcessPool(f"DataLoader worker (pid(s) {pids}) exited "
                                    "unexpectedly") from e

    @staticmethod
    def _submit(ex, job):
        future = ex.submit(_worker_load, job)
        if getattr(ex, "_tl_shm", None) is not None:
            future.add_done_callback(_unshare)
        return future

    def _start(self, base: int):
        import os
        import weakref
        from concurrent.futures import ProcessPoolExecutor
        # fork shares the dataset with the workers without pickling it; elsewhere each
        # worker unpickles it once. A process pool (not multiprocessing.Pool) notices a
        # worker that died (killed for memory, say) instead of waiting for it forever.
        ctx = self._context()
        n = self.num_workers        # all of them, as PyTorch, however few the batches
        counter = ctx.Value("i", 0)      # hands out the worker ids
        # large batch arrays come back through shared-memory files of this prefix
        shm = f"tl-dl-{os.getpid()}-{os.urandom(6).hex()}-" if shm_usable() else None
        ex = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                 initargs=(self.dataset, self.collate_fn, base, counter, n,
                                           self.worker_init_fn, shm))
        ex._tl_shm = shm
        if self.persistent_workers:
            self._pool = ex
            weakref.finalize(self, ex.shutdown, wait=False, cancel_futures=True)
        return ex

    def _collate(self) -> Callable:
        if self.collate_fn is not None:
            return self.collate_fn
        return default_convert if self.batch_size is None else default_collate

    def _context(self):
        import multiprocessing as mp
        ctx = self.multiprocessing_context
        if ctx is None or isinstance(ctx, str):
            ctx = mp.get_context(ctx or ("fork" if "fork" in mp.get_all_start_methods()
                                         else "spawn"))
        return ctx

    def _stop(self, ex) -> None:
        if ex is self._pool:
            self._pool = None
        ex.shutdown(wait=True, cancel_futures=True)
        if getattr(ex, "_tl_shm", None) is not None:
            drop_shm(ex._tl_shm)

    def _kill(self, ex) -> None:
        """Stop the workers without waiting for the jobs they run (a stuck read)."""
        if ex is self._pool:
            self._pool = None
        procs = list((ex._processes or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(1.0)
        if getattr(ex, "_tl_shm", None) is not None:
            drop_shm(ex._tl_shm)      # a batch the stopped workers were writing

    def _move(self, batch):
        if self.device is None and not self.pin_memory:
            return batch
        if isinstance(batch, Tensor):
            if self.pin_memory and batch.device.type == "cpu":
                from ..cuda import pin_memory
                batch = pin_memory(batch)
            return batch if self.device is None else batch.to(self.device)
        if isinstance(batch, Mapping):
            return {k: self._move(v) for k, v in batch.items()}
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):
            return type(batch)(*(self._move(v) for v in batch))
        if isinstance(batch, (tuple, list)):
            return type(batch)(self._move(v) for v in batch)
        return batch
