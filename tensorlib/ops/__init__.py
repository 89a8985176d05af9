"""The op registry and the op definitions (one module per family)."""
from . import elementwise, indexing, linalg, matrix, reduction, shape, sorting  # noqa: F401,E501  (registers ops)
from . import nn_act, nn_attention, nn_conv, nn_layers, nn_loss, nn_norm, nn_pool, nn_rnn  # noqa: F401,E501
from . import decompositions, fill, value_guard  # noqa: F401
from . import fourier, nn_grid, nn_resize_linear  # noqa: F401
from .registry import REGISTRY, OpDef, get, register

__all__ = ["REGISTRY", "OpDef", "get", "register"]
