"""``skip_init``: a module built without its initial values (PyTorch's ``nn.utils.skip_init``)."""
from __future__ import annotations

import inspect
from typing import Any

from ..module import Module


def skip_init(module_cls: type[Module], *args: Any, **kwargs: Any) -> Module:
    """``module_cls(*args, **kwargs)`` with its parameters and buffers left uninitialised (as
    ``tl.empty``), for code that initialises them itself, as PyTorch's ``skip_init``: the
    class must take a ``device`` argument, which gives the result's device (default
    ``"cpu"``). tensorlib has no ``meta`` device, so the constructor's initialisers still
    run (the saving in time PyTorch gets is not there); the values are then replaced by
    uninitialised ones of the same shapes and dtypes.

    >>> m = tl.nn.utils.skip_init(tl.nn.Linear, 5, 1)
    """
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"skip_init: expected a Module class; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("skip_init: the module must support a 'device' arg to skip "
                           "initialization")
    device = kwargs.pop("device", None) or "cpu"
    return module_cls(*args, device=device, **kwargs).to_empty(device=device)
