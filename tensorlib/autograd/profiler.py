"""PyTorch's older profiler names: ``tl.autograd.profiler.profile`` and ``record_function``.

The same recorder as :mod:`tensorlib.profiler`, with ``torch.autograd.profiler.profile``'s
signature (``enabled`` first, no schedule) and its ``function_events`` / ``table``.

>>> with tl.autograd.profiler.profile(record_shapes=True) as prof:
...     (x @ x).sum().backward()
>>> print(prof.key_averages().table(sort_by="self_cpu_time_total"))
"""
from __future__ import annotations

from typing import Any

from .. import profiler as _profiler
from ..profiler import EventList, FunctionEvent, FunctionEventAvg, record_function

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "profile", "record_function"]


class profile(_profiler.profile):  # noqa: N801  (PyTorch's name)
    """``torch.autograd.profiler.profile``: record the ops run inside the ``with`` block.
    ``use_cuda`` / ``use_device``: ops on a GPU are timed on the host (launch time)."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False,
                 use_device: str | None = None, record_shapes: bool = False,
                 with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False,
                 use_kineto: bool = False, use_cpu: bool = True,
                 experimental_config: Any = None):
        super().__init__(record_shapes=record_shapes, profile_memory=profile_memory,
                         with_stack=with_stack, with_flops=with_flops,
                         with_modules=with_modules, enabled=enabled)

    @property
    def function_events(self) -> EventList:
        """Every recorded event, in start order."""
        return self.events()

    @property
    def self_cpu_time_total(self) -> float:
        return self.events().self_cpu_time_total

    def table(self, sort_by: str | None = None, row_limit: int = 100,
              max_name_column_width: int = 55, header: str | None = None,
              top_level_events_only: bool = False) -> str:
        """The table of every event (one row per call), as PyTorch's ``prof.table()``."""
        return self.events().table(sort_by, row_limit, max_name_column_width, header,
                                   top_level_events_only)

    def total_average(self) -> FunctionEventAvg:
        return self.events().total_average()

    def __str__(self) -> str:
        return self.table()
