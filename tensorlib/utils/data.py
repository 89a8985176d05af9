"""PyTorch's ``torch.utils.data`` path: the names of :mod:`tensorlib.data`."""
from ..data import *  # noqa: F403
from ..data import __all__  # noqa: F401
