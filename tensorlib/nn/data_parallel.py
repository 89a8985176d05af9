"""``nn.DataParallel`` for ported training scripts: a single-process pass-through.

PyTorch's ``DataParallel`` copies the module to each GPU and splits every batch among them.
tensorlib runs one process on one device, so the wrapper calls the module directly; what
ported code relies on works: ``model.module``, checkpoints whose keys carry the
``module.`` prefix, ``device_ids`` / ``output_device`` / ``dim``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._tensor import Tensor
from .module import Module

__all__ = ["DataParallel"]


def _index(d: Any, what: str) -> int:
    from .._device import Device
    if isinstance(d, bool):
        raise TypeError(f"DataParallel: {what} must be GPU indices or devices, got {d!r}")
    if isinstance(d, int):
        return d
    dev = d if isinstance(d, Device) else None
    if dev is None:
        try:
            from .. import device
            dev = device(d)
        except Exception as e:
            raise TypeError(f"DataParallel: {what} must be GPU indices or devices, got "
                            f"{d!r}") from e
    if dev.type != "cuda":
        raise ValueError(f"DataParallel: {what} must name CUDA devices, got {d!r}")
    return int(dev.index or 0)


def _to(obj: Any, device: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj if obj.device == device else obj.to(device)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    if isinstance(obj, Mapping):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


class DataParallel(Module):
    """Wraps ``module`` as ``torch.nn.DataParallel`` does, running it in this process on
    one device: ``forward`` calls ``module``; ``state_dict`` keys start with ``module.``.

    Without a CUDA GPU, ``device_ids`` and ``output_device`` are ignored (PyTorch's
    behaviour: ``device_ids`` becomes ``[]``), with a warning when ``device_ids`` names
    several devices (PyTorch says nothing): the batch is not split; a captured training step
    is split over ``cpu:N`` devices by :func:`tensorlib.graph.data_parallel`. With GPUs,
    the inputs are moved to the first
    (the module's parameters must already be there, as PyTorch requires): by default
    (``device_ids=None``) the whole batch runs there, with a warning when there are several
    GPUs (the same results, without PyTorch's split); naming several GPUs raises a
    ValueError, since splitting a batch over GPUs needs processes tensorlib does not start.

    >>> model = nn.DataParallel(nn.Linear(4, 2))
    >>> list(model.state_dict())
    ['module.weight', 'module.bias']
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None,
                 output_device: Any = None, dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        from .. import cuda
        self.module = module
        self.dim = dim
        if not cuda.is_available():
            if device_ids is not None and len(list(device_ids)) > 1:
                import warnings
                # torch is silent here; naming several devices (tensorlib's virtual cpu:N
                # among them) says the user expects a split, which this wrapper never makes
                warnings.warn(
                    f"DataParallel: no CUDA GPU, so the whole batch runs on one device in "
                    f"this process and device_ids={list(device_ids)!r} is ignored (as "
                    "torch.nn.DataParallel on CPU: device_ids becomes []). To split a "
                    "training step's batch over cpu:N devices, capture the step and use "
                    "tl.graph.data_parallel(step, devices)", UserWarning, stacklevel=2)
            self.device_ids: list[int] = []
            self.output_device = None
            self.src_device_obj = None
            return
        if device_ids is None:
            ids = [0]
            if cuda.device_count() > 1:
                import warnings
                warnings.warn(f"DataParallel: {cuda.device_count()} GPUs, but tensorlib runs "
                              "the whole batch on cuda:0 in this process (run one process per "
                              "GPU with tl.distributed to use them all)", stacklevel=2)
        else:
            ids = [_index(d, "device_ids") for d in device_ids]
        if len(ids) > 1:
            raise ValueError(
                f"DataParallel: device_ids {ids} name {len(ids)} GPUs, but tensorlib runs one "
                "process on one device and cannot split a batch over several; pass "
                "device_ids=[k] for one GPU (or run one process per GPU with "
                "tl.distributed)")
        if not ids:
            raise ValueError("DataParallel: device_ids is empty")
        self.device_ids = ids
        self.output_device = ids[0] if output_device is None else _index(output_device,
                                                                          "output_device")
        from .. import device as _device
        self.src_device_obj = _device(f"cuda:{ids[0]}")
        for t in [*module.parameters(), *module.buffers()]:
            if t.device != self.src_device_obj:
                raise RuntimeError(
                    f"DataParallel: module must have its parameters and buffers on device "
                    f"{self.src_device_obj} (device_ids[0]) but found one of them on device: "
                    f"{t.device}")

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        dev = self.src_device_obj
        out = self.module(*_to(inputs, dev), **_to(kwargs, dev))
        if self.output_device != self.device_ids[0]:
            from .. import device as _device
            out = _to(out, _device(f"cuda:{self.output_device}"))
        return out
