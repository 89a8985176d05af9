"""Compatibility front ends: ``tensorlib.compat.v1`` runs TF1-style graph/session code."""
from . import v1

__all__ = ["v1"]
