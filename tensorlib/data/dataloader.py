"""``DataLoader``: batches of samples, optionally shuffled with a seed."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..random import Generator
from .dataset import Dataset


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, keeping the samples' structure.

    Tensors and arrays are stacked on a new first axis; Python numbers become a tensor;
    tuples/lists and dicts are collated field by field; strings become a list.
    """
    from ..creation import tensor
    if not samples:
        raise ValueError("default_collate: empty batch")
    first = samples[0]
    if isinstance(first, Tensor):
        shapes = {tuple(s.shape) for s in samples}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: tensors in a batch must have equal shapes, got "
                             f"{sorted(shapes)}")
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


class DataLoader:
    """Iterate over a dataset in batches.

    >>> loader = tl.data.DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    >>> for x, y in loader: ...

    With ``shuffle`` each epoch draws a new order from ``generator`` (or from a
    generator seeded with ``seed``; or from the global generator, which
    ``tl.manual_seed`` seeds). ``drop_last`` drops a final short batch.
    ``device`` moves each batch there; ``pin_memory`` first copies CPU batches into
    page-locked host memory, from which host-to-GPU copies run at full bus speed (without
    a GPU it warns once and has no effect, as in PyTorch).
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable | None = None,
                 generator: Generator | None = None, seed: int | None = None,
                 device=None, pin_memory: bool = False):
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass generator or seed, not both")
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
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        from ..random import rng
        return rng(self.generator).permutation(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self._move(self.dataset[int(i)])
            return
        bs = self.batch_size
        fast = getattr(self.dataset, "get_batch", None) if self.collate_fn is None else None
        collate = self.collate_fn or default_collate
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            if len(idx) < bs and self.drop_last:
                return
            if fast is not None:
                batch = fast(idx)
            else:
                batch = collate([self.dataset[int(i)] for i in idx])
            yield self._move(batch)

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
