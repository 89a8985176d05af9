"""Autograd: the tape, the backward engine, grad modes, custom Functions, checks."""
from . import forward_ad, functional, graph
from .anomaly import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                      set_detect_anomaly)
from .checkpoint import checkpoint
from .engine import AnomalyError, backward, grad
from .function import Context, Function, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                   is_inference_tensor, no_grad, set_grad_enabled)
from .node import Node

__all__ = [
    "AnomalyError", "Context", "Function", "GradcheckError", "Node", "backward", "checkpoint",
    "detect_anomaly",
    "enable_grad", "forward_ad", "functional", "grad", "gradcheck", "gradgradcheck", "graph",
    "inference_mode", "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_grad_enabled",
    "is_inference_mode_enabled", "is_inference_tensor", "no_grad", "once_differentiable",
    "set_detect_anomaly", "set_grad_enabled", "Variable",
]


def Variable(data, requires_grad: bool = False, volatile: bool = False):  # noqa: N802
    """PyTorch's legacy ``autograd.Variable(t, requires_grad=...)``: the tensor itself
    (Variables and tensors merged in PyTorch 0.4), requiring grad when asked."""
    if requires_grad:
        data.requires_grad_(True)
    return data


def __getattr__(name: str):
    # tl.autograd.viz without importing it first (it is loaded on use: matplotlib is optional)
    if name == "viz":
        import importlib
        return importlib.import_module(f"{__name__}.viz")
    if name == "profiler":     # tl.autograd.profiler: PyTorch's older name of tl.profiler
        import importlib
        return importlib.import_module(f"{__name__}.profiler")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
