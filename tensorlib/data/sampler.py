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
        _check_positive_int("num_samples", self.num_samples)
        if num_samples is not None:
            self._num_samples = int(num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        return (i for a in self._index_arrays() for i in a.tolist())

    def _index_arrays(self) -> Iterator[np.ndarray]:
        """The order as int64 arrays (the DataLoader's fast path), drawn lazily: a huge or
        repeated ``num_samples`` never holds all its indices at once."""
        n, k = len(self.data_source), self.num_samples
        if self.replacement:
            return _draws(self.generator, k, lambda g, m: g.integers(0, n, m))
        if not n:
            return iter(())

        def orders(g, m):       # chained random orders, as PyTorch's num_samples > n
            return np.concatenate([g.permutation(n) for _ in range(-(-m // n))])[:m]
        return _draws(self.generator, k, orders, chunk=n * max(1, _EAGER // n))

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order each epoch."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        return iter(next(self._index_arrays()).tolist())

    def _index_arrays(self) -> Iterator[np.ndarray]:
        return iter([self.indices[rng(self.generator).permutation(len(self.indices))]])

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
        _check_positive_int("num_samples", num_samples)
        _check_bool("replacement", replacement)
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = bool(replacement)
        if not self.replacement and self.num_samples > int((w > 0).sum()):
            raise ValueError(f"WeightedRandomSampler: {self.num_samples} samples without "
                             f"replacement, but only {int((w > 0).sum())} weights are "
                             "positive")
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        return (i for a in self._index_arrays() for i in a.tolist())

    def _index_arrays(self) -> Iterator[np.ndarray]:
        p = self.weights / self.weights.sum()
        if not self.replacement:        # one draw: num_samples <= len(weights)
            return iter([rng(self.generator).choice(len(p), size=self.num_samples,
                                                    replace=False, p=p)])
        return _draws(self.generator, self.num_samples,
                      lambda g, m: g.choice(len(p), size=m, replace=True, p=p))

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``); give it to ``DataLoader(batch_sampler=...)``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool):
        _check_positive_int("batch_size", batch_size)
        _check_bool("drop_last", drop_last)
        self.sampler = sampler
        self.batch_size = int(batch_size)
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
        return iter(next(self._index_arrays()).tolist())

    def _index_arrays(self) -> Iterator[np.ndarray]:
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
        return iter([order[self.rank:self.total_size:self.num_replicas]])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order ``shuffle`` draws: call it before each epoch."""
        self.epoch = int(epoch)


_EAGER = 1 << 16    # up to this many indices are drawn at once, straight from the generator


def _draws(generator: Generator | None, total: int, draw, chunk: int = _EAGER
           ) -> Iterator[np.ndarray]:
    """``total`` indices as arrays of ``draw(g, m)``, at most ``max(chunk, _EAGER)`` each.
    A short order is drawn at once from the generator (the draws a seed has always given);
    a longer one from a child generator seeded by one draw, so later chunks drawn while the
    epoch runs do not interleave with other draws of the same generator."""
    g = rng(generator)
    if total <= max(chunk, _EAGER):
        return iter([np.asarray(draw(g, total), dtype=np.int64)])
    child = np.random.default_rng(int(g.integers(0, 2**63 - 1)))

    def chunks() -> Iterator[np.ndarray]:
        left = total
        while left > 0:
            m = min(left, chunk)
            yield np.asarray(draw(child, m), dtype=np.int64)
            left -= m
    return chunks()


def index_arrays(sampler) -> Iterator[np.ndarray] | None:
    """The order of a library sampler as int64 arrays (the loader's fast path), or None for
    any other sampler (a subclass may override ``__iter__``: only its own iteration is
    faithful)."""
    if type(sampler) is SequentialSampler:
        return iter([np.arange(len(sampler.data_source))])
    if type(sampler) in (RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
                         DistributedSampler):
        return sampler._index_arrays()
    return None


def _is_int(n) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def _check_positive_int(name: str, value) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got "
                         f"{name}={value}")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} should be a boolean value, but got {name}={value}")


def _count(n, who: str):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{who}: expected a non-negative integer, got {n!r}")
    return int(n)
