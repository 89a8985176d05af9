"""PyTorch's ``torch.utils.data`` path: the names of :mod:`tensorlib.data`, and its submodule
paths (``torch.utils.data.dataloader``, ``.sampler``, ``.dataset``, ``.distributed``,
``._utils.collate``; importable once this module is) bound to the tensorlib
modules that hold the same names."""
import sys as _sys

from ..data import *  # noqa: F403
from ..data import __all__  # noqa: F401
from ..data import collate as _collate
from ..data import _utils, dataloader, dataset, distributed, sampler  # noqa: F401

_sys.modules[f"{__name__}.dataloader"] = dataloader
_sys.modules[f"{__name__}.dataset"] = dataset
_sys.modules[f"{__name__}.sampler"] = sampler
_sys.modules[f"{__name__}.distributed"] = distributed
_sys.modules[f"{__name__}._utils"] = _utils
_sys.modules[f"{__name__}._utils.collate"] = _collate
