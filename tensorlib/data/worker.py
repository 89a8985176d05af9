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


# --- moving large arrays through shared memory ----------------------------------------------
# Pickling an image batch through the pool's pipe copies it three times and is bound by
# the pipe; a file in /dev/shm is written once by the worker and mapped (not copied) here.
_SHM_DIR = "/dev/shm"
_SHM_MIN_BYTES = 1 << 20        # below this the pipe is as fast (and no file is made)


class ShmArray:
    """A worker's array, left in a shared-memory file for the main process to map."""

    __slots__ = ("path", "dtype", "shape", "tensor")

    def __init__(self, path: str, dtype, shape: tuple, tensor: bool):
        self.path, self.dtype, self.shape, self.tensor = path, dtype, shape, tensor


def shm_usable() -> bool:
    import os
    return os.path.isdir(_SHM_DIR) and os.access(_SHM_DIR, os.W_OK)


def _map_structure(fn, x):
    if isinstance(x, list):
        return [_map_structure(fn, v) for v in x]
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(_map_structure(fn, v) for v in x))
    if isinstance(x, tuple):
        return tuple(_map_structure(fn, v) for v in x)
    if type(x) is dict:
        return {k: _map_structure(fn, v) for k, v in x.items()}
    return fn(x)


def to_shm(batch, prefix: str):
    """``batch`` with its large CPU arrays and tensors (not requiring grad) moved to
    shared-memory files named ``prefix`` + a counter."""
    import itertools
    import os
    from .._tensor import Tensor
    counter = itertools.count()
    made: list[str] = []

    def move(x):
        is_tensor = type(x) is Tensor and x.device.type == "cpu" and not x.requires_grad
        a = x._data if is_tensor else x
        if not (is_tensor or type(x) is np.ndarray) or a.nbytes < _SHM_MIN_BYTES \
                or a.dtype.hasobject:
            return x
        path = f"{_SHM_DIR}/{prefix}{os.getpid()}-{next(counter)}-{os.urandom(4).hex()}"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        made.append(path)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(memoryview(np.ascontiguousarray(a)).cast("B"))
        finally:
            os.close(fd)
        return ShmArray(path, a.dtype, a.shape, is_tensor)
    try:
        return _map_structure(move, batch)
    except OSError:
        # /dev/shm full: the batch goes through the pipe, and no file of it stays behind
        for path in made:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise


def from_shm(batch):
    """``batch`` with its shared-memory files mapped back (zero-copy) and removed."""
    import mmap
    import os

    def back(x):
        if not isinstance(x, ShmArray):
            return x
        fd = os.open(x.path, os.O_RDWR)
        try:
            size = int(np.prod(x.shape)) * x.dtype.itemsize
            # the mapping outlives the file: it is freed with the last array using it
            buf = mmap.mmap(fd, size) if size else bytearray()
        finally:
            os.close(fd)
            os.unlink(x.path)
        a = np.frombuffer(buf, dtype=x.dtype).reshape(x.shape)
        if x.tensor:
            from ..creation import from_numpy
            return from_numpy(a)
        return a
    return _map_structure(back, batch)


def drop_shm(prefix: str) -> None:
    """Remove the shared-memory files of ``prefix`` left by workers stopped mid-batch."""
    import glob
    import os
    for path in glob.glob(f"{_SHM_DIR}/{glob.escape(prefix)}*"):
        try:
            os.unlink(path)
        except OSError:
            pass
