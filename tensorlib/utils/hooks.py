"""``torch.utils.hooks``' ``RemovableHandle``: what ``register_*hook`` methods return, and a
handle library code can make for its own hook dicts."""
from __future__ import annotations

import abc
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["RemovableHandle", "unserializable_hook"]


class RemovableHandle(metaclass=abc.ABCMeta):  # noqa: B024  (ABC for register())
    """A handle that removes a hook from ``hooks_dict`` (and ``extra_dict``, one dict or a
    list of them) by its ``id``, as PyTorch's: make it, then store the hook under
    ``handle.id``. ``remove()`` (also on leaving a ``with`` block) takes it out. The handles
    tensorlib's modules, tensors and optimizers return are instances too."""

    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = _ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extras = extra_dict if isinstance(extra_dict, list) else (
            [] if extra_dict is None else [extra_dict])
        self.extra_dict_ref = tuple(_ref(d) for d in extras)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _ref(d: Any) -> Callable[[], Any]:
    """A weak reference when the dict allows one (an OrderedDict), as PyTorch keeps; a plain
    dict cannot be weakly referenced, so it is held."""
    try:
        return weakref.ref(d)
    except TypeError:
        return lambda: d


def unserializable_hook(f: Callable) -> Callable:
    """Mark a tensor hook as not to be saved with the tensor (PyTorch's decorator; tensorlib
    never saves hooks, so it only marks)."""
    f.__torch_unserializable__ = True
    return f


def _register_library_handles() -> None:
    from .._tensor import _HookHandle
    from ..nn.module import _Handle
    RemovableHandle.register(_Handle)
    RemovableHandle.register(_HookHandle)


_register_library_handles()
