"""ONNX export and import.

- ``g.to_onnx(path, opset=17)`` / :func:`export_graph`: a captured graph to ONNX
  (``None`` dims become dynamic axes, variables become initializers).
- :func:`export`: capture a model on example inputs and export it in one call.
- :func:`load`: an ONNX model (for example from ``torch.onnx.export``) as a runnable
  :class:`~tensorlib.export.GraphModule` whose weights are trainable tensors.

Each registry op's lowering is ``REGISTRY[name].onnx`` (see :mod:`.rules`); the ops
with none are listed in ``docs/onnx_ops.md``. The ``onnx`` package is imported only
when a function here runs.
"""
from __future__ import annotations

from .context import UnsupportedOpError
from .exporter import DEFAULT_OPSET, export, export_graph, to_model
from .importer import IMPORTERS, load, supported_onnx_ops
from .rules import UNSUPPORTED, attach, unsupported_ops

attach()

__all__ = ["DEFAULT_OPSET", "IMPORTERS", "UNSUPPORTED", "UnsupportedOpError", "export",
           "export_graph", "load", "supported_onnx_ops", "to_model", "unsupported_ops"]
