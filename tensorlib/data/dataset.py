"""Datasets: the indexable collections a DataLoader batches."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..random import Generator, rng


class Dataset:
    """An indexable collection of samples: define ``__getitem__`` and ``__len__``.

    A dataset may also define ``get_batch(indices)`` (an int64 array) returning a whole
    batch at once, as ``default_collate`` of its samples would (tuple samples: a list);
    ``DataLoader`` then uses it instead of one ``__getitem__`` per sample
    (this is what makes ``TensorDataset`` fast). Only a ``get_batch`` of the dataset's own
    class counts (not one an instance ``__getattr__`` forwards from a wrapped dataset), and
    a subclass that overrides ``__getitem__`` or ``__getitems__`` but not ``get_batch`` (an
    augmenting ``TensorDataset``) is read through its override, which always runs.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: define ``__iter__`` (a generator over a file, a database
    cursor, synthetic data). A DataLoader batches consecutive samples.

    >>> class Counting(tl.data.IterableDataset):
    ...     def __iter__(self):
    ...         yield from (tl.tensor(i) for i in range(10))
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index: int):
        raise TypeError(f"{type(self).__name__} is an IterableDataset: iterate over it")

    def __len__(self) -> int:
        # TypeError (not NotImplementedError): list() and len() hints treat it as "unknown"
        raise TypeError(f"{type(self).__name__} is an IterableDataset without __len__")

    def __add__(self, other: IterableDataset) -> ChainDataset:
        return ChainDataset([self, other])


def _refuse_streams(datasets, who: str, instead: str) -> None:
    for d in datasets:
        if isinstance(d, IterableDataset):
            raise TypeError(f"{who}: {type(d).__name__} is an IterableDataset (a stream, "
                            f"without indices); {instead}")


class ChainDataset(IterableDataset):
    """IterableDatasets one after another, read on the fly (as PyTorch's).

    >>> stream = tl.data.ChainDataset([part1, part2])      # or part1 + part2
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def _parts(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset chains IterableDatasets, got "
                                f"{type(d).__name__}: use ConcatDataset for map-style ones")
            yield d

    def __iter__(self):
        for d in self._parts():
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self._parts())


class StackDataset(Dataset):
    """Datasets of equal length side by side: sample i is the tuple of their i-th samples,
    or, given by keyword, the dict of them (as PyTorch's).

    >>> ds = tl.data.StackDataset(images, captions)           # ds[0] == (image, caption)
    >>> ds = tl.data.StackDataset(image=images, text=captions)
    """

    def __init__(self, *args: Dataset, **kwargs: Dataset):
        if args and kwargs:
            raise ValueError("StackDataset: give the datasets by position (tuple samples) or "
                             "by keyword (dict samples), not both")
        if not args and not kwargs:
            raise ValueError("StackDataset needs at least one dataset")
        parts = list(args) or list(kwargs.values())
        _refuse_streams(parts, "StackDataset", "zip the streams in an IterableDataset")
        lengths = [len(d) for d in parts]
        if len(set(lengths)) != 1:
            raise ValueError(f"StackDataset: the datasets must have the same length, got "
                             f"{lengths}")
        self.datasets = args if args else kwargs
        self._length = lengths[0]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list) -> list:
        """The samples at ``indices``, each dataset read through its ``__getitems__`` where
        it has one (as PyTorch's)."""
        def read(d):
            many = getattr(d, "__getitems__", None)
            got = many(indices) if callable(many) else [d[i] for i in indices]
            if len(got) != len(indices):
                raise ValueError(f"StackDataset: the nested dataset's __getitems__ gave "
                                 f"{len(got)} samples for {len(indices)} indices")
            return got
        if isinstance(self.datasets, dict):
            cols = {k: read(d) for k, d in self.datasets.items()}
            return [{k: c[j] for k, c in cols.items()} for j in range(len(indices))]
        return list(zip(*(read(d) for d in self.datasets)))


def batch_getter(dataset):
    """``dataset.get_batch`` when it gives what the sample-by-sample path would: defined on
    the dataset's class (never an instance attribute or one an instance ``__getattr__``
    forwards from a wrapped dataset), with no ``__getitem__`` or ``__getitems__`` overridden
    below the class that defines it (the batch path would skip the override); else None."""
    mro = type(dataset).__mro__
    owner = next((c for c in mro if "get_batch" in c.__dict__), None)
    if owner is None or not callable(owner.__dict__["get_batch"]):
        return None
    for c in mro:
        if c is owner:
            return dataset.get_batch
        if "__getitem__" in c.__dict__ or "__getitems__" in c.__dict__:
            return None
    return None


def _as_array(t) -> np.ndarray:
    if isinstance(t, Tensor):
        return t._host()
    return np.asarray(t)


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors (or arrays) that share their first dimension.

    >>> ds = tl.data.TensorDataset(images, labels)
    >>> x, y = ds[0]
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        n = {len(t) for t in tensors}
        if len(n) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: all tensors must have the same first dimension, "
                             f"got shapes {shapes}")
        self.tensors = tensors
        self._key: tuple = ()

    @property
    def _arrays(self) -> list:
        """The host arrays of ``self.tensors`` as they are now: a reassigned ``tensors`` or a
        tensor's replaced ``.data`` is read (as PyTorch's), device copies made once."""
        key = tuple((id(t), id(getattr(t, "_data", t))) for t in self.tensors)
        if key != self._key:
            self._key, self._cache = key, [_as_array(t) for t in self.tensors]
        return self._cache

    def __len__(self) -> int:
        return len(self._arrays[0])

    def __getitem__(self, index):
        """One sample (an int), or a batch (a slice, a list or an index tensor): a tuple of
        one tensor per field, as PyTorch's ``TensorDataset``. An int or a slice gives views
        (writes reach the tensors); a tensor that requires grad is indexed by a tensorlib op,
        so the sample keeps the autograd graph."""
        n = len(self)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not -n <= index < n:
                raise IndexError(f"TensorDataset index {index} out of range for {n} samples")
            return self._take(index)
        if isinstance(index, slice):
            return self._take(index)
        idx = np.asarray(index._host() if hasattr(index, "_host") else index)
        if idx.dtype.kind not in "iub":
            raise TypeError(f"TensorDataset: index with an int, a slice, or a list/tensor of "
                            f"ints, got {type(index).__name__}")
        if idx.dtype.kind in "iu" and idx.size and not (-n <= idx.min() and idx.max() < n):
            raise IndexError(f"TensorDataset index out of range for {n} samples")
        return self._take(idx)

    def _take(self, index) -> tuple:
        return tuple(t[index] if isinstance(t, Tensor) and t.requires_grad
                     else _to_tensor(a[index])
                     for t, a in zip(self.tensors, self._arrays))

    def get_batch(self, indices: np.ndarray) -> list[Tensor]:
        # a list, as default_collate makes of the tuple samples (PyTorch's batch type)
        return list(self._take(indices))


def _to_tensor(a) -> Tensor:
    # a view of the dataset's array where indexing gave one (an int, a slice), as PyTorch's
    from ..creation import from_numpy, tensor
    if isinstance(a, np.ndarray):
        return from_numpy(a)
    return tensor(np.asarray(a))


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (a map-style dataset). ``indices`` is kept
    as given (``random_split`` gives lists), as PyTorch's; bulk reads go through the
    dataset's ``__getitems__`` where it has one.

    >>> first_ten = tl.data.Subset(ds, range(10))
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        _refuse_streams([dataset], "Subset", "take items in its __iter__ (itertools.islice) "
                        "or shard it with get_worker_info()")
        self.dataset = dataset
        self.indices = indices          # as given (a list from random_split), as PyTorch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):    # PyTorch's Subset[[i, j]]: the dataset's own
            return self.dataset[[_key(self.indices[i]) for i in index]]    # list indexing
        return self.dataset[_key(self.indices[index])]

    def __getitems__(self, indices: list) -> list:
        """The samples at ``indices``, through the dataset's ``__getitems__`` where it has
        one (PyTorch's bulk-read protocol), else one ``dataset[i]`` each."""
        keys = [_key(self.indices[i]) for i in indices]
        many = getattr(self.dataset, "__getitems__", None)
        if callable(many):
            return many(keys)
        return [self.dataset[k] for k in keys]

    def get_batch(self, indices: np.ndarray):
        inner = batch_getter(self.dataset)
        if inner is None:
            from .collate import default_collate
            return default_collate(self.__getitems__(indices.tolist()))
        own = self.indices
        if isinstance(own, Tensor):
            own = own._host()
        if isinstance(own, np.ndarray):
            keys = own[indices]
        else:
            keys = [own[i] for i in indices.tolist()]
        return inner(np.asarray(keys, dtype=np.int64).reshape(-1))


def _key(i):
    """A subset's index as the wrapped dataset's key: NumPy and 0-d tensor ints as ints."""
    if isinstance(i, np.integer):
        return int(i)
    if isinstance(i, Tensor) and i.ndim == 0:
        return int(i.item())
    return i


class ConcatDataset(Dataset):
    """Map-style datasets one after another (ChainDataset chains IterableDatasets).

    >>> both = tl.data.ConcatDataset([train, extra])          # or train + extra
    """

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        _refuse_streams(self.datasets, "ConcatDataset", "use ChainDataset for streams")
        self.cumulative = np.cumsum([len(d) for d in self.datasets])

    @property
    def cumulative_sizes(self) -> list[int]:
        """The running totals of the datasets' lengths (PyTorch's name)."""
        return [int(c) for c in self.cumulative]

    def __len__(self) -> int:
        return int(self.cumulative[-1])

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset index {index} out of range for {n} samples")
        index %= n
        i = int(np.searchsorted(self.cumulative, index, side="right"))
        start = int(self.cumulative[i - 1]) if i else 0
        return self.datasets[i][index - start]


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Generator | None = None) -> list[Subset]:
    """Split into non-overlapping random subsets of the given lengths (or fractions
    summing to 1; remainders go round-robin to the first subsets, as in PyTorch).

    >>> train, val = tl.data.random_split(ds, [0.8, 0.2], generator=tl.Generator(0))
    """
    _refuse_streams([dataset], "random_split", "split the stream in its __iter__")
    n = len(dataset)
    if isinstance(lengths, Tensor):     # a tensor of lengths, as PyTorch accepts
        lengths = lengths.tolist()
    lengths = [x.item() if isinstance(x, Tensor) else x for x in lengths]
    if lengths and all(isinstance(x, float) for x in lengths) and \
            math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1 + 1e-9:
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(x, (int, np.integer)) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions "
                         f"summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, but the "
                         f"dataset has {n} samples")
    perm = rng(generator).permutation(n).tolist()     # lists of indices, as PyTorch
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[start:start + k]))
        start += k
    return out
