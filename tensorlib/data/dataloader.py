"""``DataLoader``: batches of samples, optionally shuffled with a seed."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..random import Generator
from .dataset import Dataset, IterableDataset, batch_getter


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, keeping the samples' structure.

    Tensors and arrays are stacked on a new first axis; Python numbers become a tensor;
    tuples/lists and dicts are collated field by field; strings become a list.
    """
    from ..creation import tensor
    if not samples:
        raise ValueError("default_collate: empty batch")
    first = samples[0]
    if isinstance(first, (Tensor, np.ndarray, np.number)):
        shapes = {tuple(np.shape(s) if not isinstance(s, Tensor) else s.shape)
                  for s in samples}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: the samples of a batch must have equal shapes "
                             f"to be stacked, got {sorted(shapes)}: pad, crop or resize them "
                             "in the dataset, or pass DataLoader(collate_fn=...) to batch them "
                             "your own way")
    if isinstance(first, Tensor):
        from ..ops.shape import stack
        return stack(list(samples))
    if isinstance(first, np.ndarray) or isinstance(first, np.number):
        return tensor(np.stack([np.asarray(s) for s in samples]))
    if isinstance(first, (bool, int, float)):
        return tensor(samples)
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, Mapping):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple
        return type(first)(*(default_collate(list(f)) for f in zip(*samples)))
    if isinstance(first, (tuple, list)):
        if len({len(s) for s in samples}) != 1:
            raise ValueError("default_collate: samples in a batch have different lengths")
        out = [default_collate(list(f)) for f in zip(*samples)]
        return tuple(out) if isinstance(first, tuple) else out
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; "
                    "pass collate_fn")


def _load(dataset, collate_fn, idx):
    fast = batch_getter(dataset) if collate_fn is None else None
    if fast is not None:
        return fast(idx)
    return (collate_fn or default_collate)([dataset[int(i)] for i in idx])


_WORKER: tuple = ()
_WORKER_INFO = None


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a DataLoader worker process (as
    ``torch.utils.data.get_worker_info()``): ``id`` (0 .. ``num_workers`` - 1),
    ``num_workers``, ``seed`` (the worker's seed this epoch) and ``dataset`` (the worker's
    copy)."""

    __slots__ = ("id", "num_workers", "seed", "dataset")

    def __init__(self, id: int, num_workers: int, seed: int, dataset):
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self) -> str:
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, "
                f"seed={self.seed})")


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process, its :class:`WorkerInfo`; in the main process None
    (as ``torch.utils.data.get_worker_info``)."""
    return _WORKER_INFO


def _seed_python_rngs(*entropy: int) -> None:
    """Seed NumPy's global generator (``np.random``) and Python's ``random`` from
    ``entropy`` (two unrelated streams; a fork copies the parent's NumPy state, and
    augmentations written with ``np.random`` would repeat between workers and epochs)."""
    import random
    a, b = np.random.SeedSequence(list(entropy)).generate_state(2)
    np.random.seed(int(a))
    random.seed(int(b))


def _worker_init(dataset, collate_fn, base_seed: int, counter, num_workers: int,
                 worker_init_fn) -> None:
    global _WORKER, _WORKER_INFO
    from ..random import manual_seed
    with counter.get_lock():
        wid = int(counter.value)
        counter.value += 1
    seed = base_seed + wid
    _WORKER = (dataset, collate_fn, base_seed)
    _WORKER_INFO = WorkerInfo(wid, num_workers, seed, dataset)
    manual_seed(seed)
    _seed_python_rngs(base_seed, 1, wid)
    if worker_init_fn is not None:
        worker_init_fn(wid)


def _worker_load(job):
    """(True, batch), or (False, the error and its traceback as text): an exception the
    main process could not rebuild would otherwise break the pool."""
    import traceback
    from ..random import manual_seed
    k, idx, base = job
    dataset, collate_fn, _ = _WORKER
    try:
        # per batch: the same draws whichever worker builds it, other draws in each batch
        # and each epoch (base is drawn per epoch), for tensorlib's generator, np.random
        # and random alike
        manual_seed(base + k)
        _seed_python_rngs(base, 0, k)
        return True, _load(dataset, collate_fn, idx)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"


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
    is raised here as RuntimeError with the worker's traceback; a worker that dies raises
    too. ``prefetch_factor`` batches per worker are in flight at once.

    ``sampler`` (a :mod:`~tensorlib.data.sampler` or any iterable of indices: weighted,
    subset, with replacement) gives the order instead of ``shuffle``; ``batch_sampler``
    gives whole batches of indices instead of ``batch_size``/``shuffle``/``sampler``/
    ``drop_last``. An :class:`~tensorlib.data.dataset.IterableDataset` is read in its own
    order, consecutive items batched (in this process: ``num_workers`` must be 0).
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable | None = None,
                 generator: Generator | None = None, seed: int | None = None,
                 device=None, pin_memory: bool = False, num_workers: int = 0,
                 worker_init_fn: Callable[[int], Any] | None = None, sampler=None,
                 batch_sampler=None, prefetch_factor: int = 2,
                 persistent_workers: bool = False, timeout: float = 0,
                 multiprocessing_context=None):
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
            if num_workers:
                raise ValueError("DataLoader: an IterableDataset is read in this process; "
                                 "num_workers must be 0 (shard it yourself, or use a "
                                 "map-style Dataset for worker processes)")
        if not isinstance(prefetch_factor, (int, np.integer)) or prefetch_factor < 1:
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
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.prefetch_factor = int(prefetch_factor)
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

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler if self.sampler is not None else self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        from ..random import rng
        return rng(self.generator).permutation(n)

    def _from_iterable(self) -> Iterator[Any]:
        collate = self.collate_fn or default_collate
        if self.batch_size is None:
            for item in self.dataset:
                yield self._move(item)
            return
        batch: list = []
        for item in self.dataset:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield self._move(collate(batch))
                batch = []
        if batch and not self.drop_last:
            yield self._move(collate(batch))

    def __iter__(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            yield from self._from_iterable()
            return
        if self.batch_sampler is not None:
            batches = [np.asarray(list(b), dtype=np.int64) for b in self.batch_sampler]
        else:
            order = self._order()
            if self.batch_size is None:
                for i in order:
                    yield self._move(self.dataset[int(i)])
                return
            bs = self.batch_size
            batches = [order[s:s + bs] for s in range(0, len(order), bs)]
            if batches and len(batches[-1]) < bs and self.drop_last:
                batches.pop()
        if self.num_workers and len(batches) > 1:
            yield from (self._move(b) for b in self._in_workers(batches))
            return
        for idx in batches:
            yield self._move(_load(self.dataset, self.collate_fn, idx))

    def _in_workers(self, batches):
        import collections
        import concurrent.futures
        from ..random import rng
        base = int(rng(self.generator).integers(0, 2**31 - 1))
        ex = self._pool if self._pool is not None else self._start(len(batches), base)
        try:
            pending: collections.deque = collections.deque()
            jobs = iter((k, idx, base) for k, idx in enumerate(batches))
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
                    raise RuntimeError(f"DataLoader worker: {value}")
                nxt = next(jobs, None)
                if nxt is not None:
                    pending.append(ex.submit(_worker_load, nxt))
                yield value
        except BaseException:
            self._stop(ex)
            raise
        if ex is not self._pool:
            self._stop(ex)

    def _start(self, n_batches: int, base: int):
        import multiprocessing as mp
        import weakref
        from concurrent.futures import ProcessPoolExecutor
        # fork shares the dataset with the workers without pickling it; elsewhere each
        # worker unpickles it once. A process pool (not multiprocessing.Pool) notices a
        # worker that died (killed for memory, say) instead of waiting for it forever.
        ctx = self.multiprocessing_context
        if ctx is None or isinstance(ctx, str):
            ctx = mp.get_context(ctx or ("fork" if "fork" in mp.get_all_start_methods()
                                         else "spawn"))
        n = self.num_workers if self.persistent_workers else min(self.num_workers, n_batches)
        counter = ctx.Value("i", 0)      # hands out the worker ids
        ex = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                 initargs=(self.dataset, self.collate_fn, base, counter, n,
                                           self.worker_init_fn))
        if self.persistent_workers:
            self._pool = ex
            weakref.finalize(self, ex.shutdown, wait=False, cancel_futures=True)
        return ex

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
