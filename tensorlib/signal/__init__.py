"""Signal processing, as ``torch.signal``: ``tl.signal.windows``."""
from . import windows

__all__ = ["windows"]
