"""Random numbers: a global seedable generator and explicit ``Generator`` objects."""
from __future__ import annotations

import numpy as np


class Generator:
    """A random stream (NumPy's PCG64 underneath).

    >>> g = tl.Generator().manual_seed(0)
    >>> tl.randn(2, generator=g)
    """

    def __init__(self, seed: int | None = None):
        self._rng = np.random.default_rng(seed)

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._rng = np.random.default_rng(int(seed))
        return self

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, st: dict) -> None:
        self._rng.bit_generator.state = st

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator used by ``rand``, ``randn``, dropout and initializers."""
    return default_generator.manual_seed(seed)


def rng(generator: Generator | None = None) -> np.random.Generator:
    return (generator or default_generator)._rng
