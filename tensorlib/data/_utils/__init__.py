"""PyTorch's ``torch.utils.data._utils`` path (``_utils.collate``), for ported custom
collates."""
from . import collate

__all__ = ["collate"]
