"""``DataLoader``: batches of samples, optionally shuffled with a seed."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..random import Generator
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset, batch_getter
from .worker import (WorkerInfo, become_worker, capture_error, get_worker_info, reraise,
                     seed_python_rngs)

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


_WORKER: tuple = ()


def _worker_init(dataset, collate_fn, base_seed: int, counter, num_workers: int,
                 worker_init_fn) -> None:
    global _WORKER
    with counter.get_lock():
        wid = int(counter.value)
        counter.value += 1
    _WORKER = (dataset, collate_fn, base_seed)
    become_worker(wid, num_workers, base_seed, dataset)
    if worker_init_fn is not None:
        worker_init_fn(wid)


def _worker_load(job):
    """(True, batch), or (False, the error as :func:`~.worker.capture_error` gives it): an
    exception the main process could not rebuild would otherwise break the pool."""
    from ..random import manual_seed
    k, idx, base, batched = job
    dataset, collate_fn, _ = _WORKER
    try:
        # per batch: the same draws whichever worker builds it, other draws in each batch
        # and each epoch (base is drawn per epoch), for tensorlib's generator, np.random
        # and random alike
        manual_seed(base + k)
        seed_python_rngs(base, 0, k)
        load = _load if batched else _load_one
        return True, load(dataset, collate_fn, idx)
    except Exception:
        info = get_worker_info()
        return False, capture_error(f"in DataLoader worker process {info.id}")


class _InfiniteConstantSampler:
    """``None`` forever: the sampler PyTorch reports for an ``IterableDataset``."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class DataLoader:
    """Iterate over a dataset in batches.

    >>> loader = tl.data.DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    >>> for x, y in loader: ...

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
    workers, however few its batches (each worker starts, ``worker_init_fn`` runs in it).

    ``sampler`` (a :mod:`~tensorlib.data.sampler` or any iterable of indices: weighted,
    subset, with replacement) gives the order instead of ``shuffle``; ``batch_sampler``
    gives whole batches of indices instead of ``batch_size``/``shuffle``/``sampler``/
    ``drop_last``. With ``batch_size=None`` each sample is passed through ``collate_fn``
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
        ``IterableDataset`` an endless sampler of ``None``. The loader's own order does not
        read it (iterating it draws from the generator)."""
        if self._sampler is not None:
            return self._sampler
        if self._default_sampler is None:
            from .sampler import RandomSampler, SequentialSampler
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
        :attr:`sampler` (``None`` with ``batch_size=None``). Not read by the loader's own
        iteration."""
        if self._batch_sampler is not None:
            return self._batch_sampler
        if self.batch_size is None:
            return None
        if self._default_batch_sampler is None:
            from .sampler import BatchSampler
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

    def _order(self) -> np.ndarray | list:
        if self._sampler is not None:
            return _int_keys(list(self._sampler))
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        from ..random import rng
        return rng(self.generator).permutation(n)

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
            workers.shutdown()
            raise
        if workers is not self._pool:
            workers.shutdown()

    def __iter__(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            yield from self._from_iterable()
            return
        batched = True
        if self._batch_sampler is not None:
            batches = [_int_keys(list(b)) for b in self._batch_sampler]
        else:
            order = self._order()
            if self.batch_size is None:         # one sample per key, unbatched
                batched = False
                batches = order.tolist() if isinstance(order, np.ndarray) else order
            else:
                bs = self.batch_size
                batches = [order[s:s + bs] for s in range(0, len(order), bs)]
                if batches and len(batches[-1]) < bs and self.drop_last:
                    batches.pop()
        if self.num_workers:
            # whatever the number of batches: worker_init_fn, get_worker_info() and the
            # workers' seeding are all observable, as in PyTorch
            yield from (self._move(b) for b in self._in_workers(batches, batched))
            return
        load = _load if batched else _load_one
        for idx in batches:
            yield self._move(load(self.dataset, self.collate_fn, idx))

    def _in_workers(self, batches, batched: bool):
        import collections
        import concurrent.futures
        from ..random import rng
        base = int(rng(self.generator).integers(0, 2**31 - 1))
        ex = self._pool if self._pool is not None else self._start(base)
        pending: collections.deque = collections.deque()
        try:
            if not batches:     # the workers start (worker_init_fn runs) even so, as PyTorch
                ex.submit(int).result(timeout=self.timeout or None)
            jobs = iter((k, idx, base, batched) for k, idx in enumerate(batches))
            n = ex._max_workers
            for job in jobs:        # a window of batches in flight, not the whole epoch
                pending.append(ex.submit(_worker_load, job))
                if len(pending) >= self.prefetch_factor * n:
                    break
            while pending:
                try:
                    ok, value = pending.popleft().result(timeout=self.timeout or None)
                except concurrent.futures.TimeoutError:
                    raise RuntimeError(f"DataLoader: no batch from the workers within "
                                       f"timeout={self.timeout} s") from None
                if not ok:
                    reraise(value)
                nxt = next(jobs, None)
                if nxt is not None:
                    pending.append(ex.submit(_worker_load, nxt))
                yield value
        except GeneratorExit:       # the loop was broken off: persistent workers stay
            for f in pending:
                f.cancel()
            if ex is not self._pool:
                self._stop(ex)
            raise
        except BaseException:       # an error, a timeout, a dead worker: start afresh
            self._stop(ex)
            raise
        if ex is not self._pool:
            self._stop(ex)

    def _start(self, base: int):
        import weakref
        from concurrent.futures import ProcessPoolExecutor
        # fork shares the dataset with the workers without pickling it; elsewhere each
        # worker unpickles it once. A process pool (not multiprocessing.Pool) notices a
        # worker that died (killed for memory, say) instead of waiting for it forever.
        ctx = self._context()
        n = self.num_workers        # all of them, as PyTorch, however few the batches
        counter = ctx.Value("i", 0)      # hands out the worker ids
        ex = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                 initargs=(self.dataset, self.collate_fn, base, counter, n,
                                           self.worker_init_fn))
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
