"""``tensorlib.utils.data``: PyTorch's import path for :mod:`tensorlib.data`, so
``from torch.utils.data import DataLoader`` ports as ``from tensorlib.utils.data import
DataLoader``."""
from . import data

__all__ = ["data"]
