"""Samplers: the order (and choice) of dataset indices a DataLoader reads, as PyTorch's.

>>> w = 1.0 / class_counts[labels]                      # rare classes drawn as often
>>> s = tl.data.WeightedRandomSampler(w, num_samples=len(w))
>>> loader = tl.data.DataLoader(ds, batch_size=64, sampler=s)
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized

import numpy as np

from .._tensor import Tensor
from ..random import Generator, rng


class Sampler:
    """Yields dataset indices; define ``__iter__`` (and ``__len__`` for ``len(loader)``)."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random order each epoch; with ``replacement``, ``num_samples`` independent
    draws (default: the dataset's length). Without replacement, a ``num_samples`` beyond the
    dataset's length chains several random orders, as PyTorch's. Draws come from
    ``generator`` or the global generator (``tl.manual_seed``). As PyTorch, ``replacement``
    must be a bool (TypeError) and ``num_samples`` (the dataset's length when not given)
    a positive integer (ValueError)."""

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator: Generator | None = None):
        self.data_source = data_source
        if not isinstance(replacement, (bool, np.bool_)):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        self.generator = generator
        n = self.num_samples
        if not _is_int(n) or n <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={n}")
        if num_samples is not None:
            self._num_samples = int(num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, g = len(self.data_source), rng(self.generator)
        if self.replacement:
            return iter(g.integers(0, n, self.num_samples).tolist())
        k = self.num_samples
        orders = [g.permutation(n) for _ in range(-(-k // n))] if n else []
        return iter(np.concatenate(orders)[:k].tolist() if orders else [])

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order each epoch."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[rng(self.generator).permutation(len(self.indices))].tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probability proportional to ``weights`` (one per
    sample; need not sum to 1), with replacement by default: class-balanced sampling.

    >>> s = tl.data.WeightedRandomSampler([0.1, 0.9], num_samples=4, generator=tl.Generator(0))
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator: Generator | None = None):
        w = weights._host() if isinstance(weights, Tensor) else np.asarray(weights)
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if w.size == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and "
                             "not all zero")
        self.weights = w
        self.num_samples = _count(num_samples, "WeightedRandomSampler")
        self.replacement = bool(replacement)
        if not self.replacement and self.num_samples > int((w > 0).sum()):
            raise ValueError(f"WeightedRandomSampler: {self.num_samples} samples without "
                             f"replacement, but only {int((w > 0).sum())} weights are "
                             "positive")
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        idx = rng(self.generator).choice(len(p), size=self.num_samples,
                                         replace=self.replacement, p=p)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``); give it to ``DataLoader(batch_sampler=...)``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool):
        self.sampler = sampler
        self.batch_size = _count(batch_size, "BatchSampler")
        if self.batch_size == 0:
            raise ValueError("BatchSampler: batch_size must be positive")
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list]:
        batch: list = []
        for i in self.sampler:      # keys as given (a dict-backed dataset's str keys), as PyTorch
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class DistributedSampler(Sampler):
    """The share of the dataset's indices that replica ``rank`` of ``num_replicas`` reads
    (data-parallel training), as PyTorch's: every ``num_replicas``-th index from ``rank``
    of the (shuffled, with ``shuffle``) order, padded by repeating its start so each
    replica gets the same count, or cut to a multiple of ``num_replicas`` with
    ``drop_last``. Shuffling draws from a generator seeded with ``seed + epoch``: the same
    order on every replica; call ``set_epoch`` before each epoch for a new one.

    >>> s = tl.data.DistributedSampler(ds, num_replicas=4, rank=1, seed=0)
    >>> loader = tl.data.DataLoader(ds, batch_size=32, sampler=s)
    >>> for epoch in range(3):
    ...     s.set_epoch(epoch)
    """

    def __init__(self, dataset: Sized, num_replicas: int, rank: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        n = _count(num_replicas, "DistributedSampler num_replicas")
        if not n:
            raise ValueError("DistributedSampler: num_replicas must be positive")
        r = _count(rank, "DistributedSampler rank")
        if r is None or r >= n:
            raise ValueError(f"DistributedSampler: rank must be in [0, {n - 1}], got {rank!r}")
        self.dataset, self.num_replicas, self.rank = dataset, n, r
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        total = len(dataset)
        if self.drop_last and total % n:
            self.num_samples = -(-(total - n) // n)
        else:
            self.num_samples = -(-total // n)
        self.total_size = self.num_samples * n

    def __iter__(self) -> Iterator[int]:
        total = len(self.dataset)
        if self.shuffle:
            order = rng(Generator(self.seed + self.epoch)).permutation(total)
        else:
            order = np.arange(total)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > total:
            if total == 0:
                raise ValueError("DistributedSampler: the dataset is empty")
            order = np.resize(order, self.total_size)      # repeats from the start
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order ``shuffle`` draws: call it before each epoch."""
        self.epoch = int(epoch)


def _is_int(n) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def _count(n, who: str):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{who}: expected a non-negative integer, got {n!r}")
    return int(n)
