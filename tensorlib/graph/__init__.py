"""Graph capture: from the eager tape to a static dataflow graph.

``tl.capture()`` and ``@tl.function`` record the ops that run through the
``apply`` funnel into a :class:`Graph` (see :mod:`tensorlib.graph.ir` for the
IR); passes optimise it; :mod:`~tensorlib.graph.autodiff` adds symbolic
gradients; the executor replays it with feeds and fetches.
"""
from .capture import CaptureError, Function, TensorSpec, capture, function
from .executor import Plan
from .ir import Graph, Node, Value
from .placement import Placement, data_parallel, place

__all__ = ["CaptureError", "Function", "Graph", "Node", "Placement", "Plan", "TensorSpec",
           "Value", "capture", "data_parallel", "function", "place"]
