"""Autograd: the tape, the backward engine, grad modes, custom Functions, checks."""
from . import functional
from .anomaly import detect_anomaly
from .checkpoint import checkpoint
from .engine import AnomalyError, backward, grad
from .function import Context, Function
from .gradcheck import gradcheck, gradgradcheck
from .mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .node import Node

__all__ = [
    "AnomalyError", "Context", "Function", "Node", "backward", "checkpoint", "detect_anomaly",
    "enable_grad", "functional", "grad", "gradcheck", "gradgradcheck", "inference_mode",
    "is_grad_enabled", "no_grad", "set_grad_enabled",
]
