"""The op registry and the op definitions (one module per family)."""
from . import elementwise, indexing, linalg, reduction, shape  # noqa: F401  (registers ops)
from .registry import REGISTRY, OpDef, get, register

__all__ = ["REGISTRY", "OpDef", "get", "register"]
