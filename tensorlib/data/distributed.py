"""PyTorch's ``torch.utils.data.distributed`` path: :class:`DistributedSampler`.

>>> from tensorlib.data.distributed import DistributedSampler
"""
from .sampler import DistributedSampler

__all__ = ["DistributedSampler"]
