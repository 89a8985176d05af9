"""What DataLoader worker processes share: who they are (:func:`get_worker_info`), how their
random generators are seeded, and how their errors travel back to the main process.

>>> class Shards(tl.data.IterableDataset):
...     def __iter__(self):
...         info = tl.data.get_worker_info()        # None in the main process
...         k, n = (0, 1) if info is None else (info.id, info.num_workers)
...         yield from range(k, 100, n)
"""
from __future__ import annotations

import traceback

import numpy as np

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
    (as ``torch.utils.data.get_worker_info``).

    >>> info = tl.data.get_worker_info()
    """
    return _WORKER_INFO


def become_worker(wid: int, num_workers: int, base_seed: int, dataset) -> None:
    """Set this process up as worker ``wid``: its :class:`WorkerInfo` and its generators
    (tensorlib's seeded with ``base_seed + wid``, as PyTorch's)."""
    global _WORKER_INFO
    from ..random import manual_seed
    seed = base_seed + wid
    _WORKER_INFO = WorkerInfo(wid, num_workers, seed, dataset)
    manual_seed(seed)
    seed_python_rngs(base_seed, 1, wid)


def seed_python_rngs(*entropy: int) -> None:
    """Seed NumPy's global generator (``np.random``) and Python's ``random`` from
    ``entropy`` (two unrelated streams; a fork copies the parent's NumPy state, and
    augmentations written with ``np.random`` would repeat between workers and epochs)."""
    import random
    a, b = np.random.SeedSequence(list(entropy)).generate_state(2)
    np.random.seed(int(a))
    random.seed(int(b))


def capture_error(where: str) -> tuple:
    """The exception being handled, as ``(type or None, text)`` that can cross to the main
    process: the type only where the main process can rebuild it (a class defined inside
    a function cannot travel)."""
    from multiprocessing.reduction import ForkingPickler
    import sys
    etype = sys.exc_info()[0]
    text = (f"Caught {etype.__name__} {where}.\nOriginal {traceback.format_exc()}")
    try:
        ForkingPickler.dumps(etype)
    except Exception:
        etype = None
    return etype, text


def reraise(error: tuple) -> None:
    """Raise a worker's error here as PyTorch does: the worker's exception type with its
    traceback as the message where that type takes a message, else RuntimeError."""
    etype, text = error
    if etype is None:
        raise RuntimeError(text)
    if etype is KeyError:               # KeyError's str() would quote the traceback
        text = _KeyErrorMessage(text)
    try:
        exc = etype(text)
    except Exception:
        raise RuntimeError(text) from None
    raise exc


class _KeyErrorMessage(str):
    def __repr__(self):
        return self
