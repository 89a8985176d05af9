"""PyTorch's ``torch.utils.data._utils.collate`` path: tensorlib's collate functions.

>>> from tensorlib.data._utils.collate import default_collate
"""
from ..collate import default_collate, default_convert

__all__ = ["default_collate", "default_convert"]
