"""PyTorch's ``torch.nn.modules`` path, for ported code that spells it
(``torch.nn.modules.module.register_module_forward_hook``, ``from torch.nn.modules.loss import
_Loss``, ``nn.modules.batchnorm._BatchNorm``): the layer classes, and PyTorch's submodule
names bound to the ``tensorlib.nn`` modules that hold the same classes.

>>> import tensorlib.nn.modules.module as m
>>> m.Module is tl.nn.Module
True
"""
from __future__ import annotations

import sys as _sys

from .. import (activation, containers, conv, distance, dropout, linear, loss, module,
                normalization, padding, pooling, resample, rnn, transformer)
from .. import *  # noqa: F401,F403  (every layer class, as torch.nn.modules has them)

# torch.nn.modules.<name> -> the tensorlib.nn module that holds those classes
_ALIASES = {
    "module": module, "linear": linear, "conv": conv, "loss": loss, "pooling": pooling,
    "activation": activation, "dropout": dropout, "rnn": rnn, "transformer": transformer,
    "container": containers, "padding": padding, "distance": distance,
    "normalization": normalization, "batchnorm": normalization, "instancenorm": normalization,
    "sparse": dropout, "flatten": linear, "upsampling": resample, "pixelshuffle": resample,
    "fold": resample,
}
globals().update(_ALIASES)
for _name, _mod in _ALIASES.items():
    _sys.modules[f"{__name__}.{_name}"] = _mod
del _name, _mod
