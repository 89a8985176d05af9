"""Registry-driven op test cases.

Each module in this package appends ``Case`` entries to ``CASES``; the tests in
``tests/ops/test_ops_registry.py`` run every case (forward against its NumPy
reference, gradcheck and gradgradcheck in float64) and fail when a registered
op has no case. Add a case next to the ops family you add.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st


@dataclass
class Case:
    op: str                         # the registry entry this case exercises
    fn: Callable                    # fn(*tensors) -> Tensor or tuple, via the public API
    inputs: Callable                # inputs(draw) -> arrays, or (arrays, params): params are
                                    # keyword arguments passed to both fn and ref
    ref: Callable | None = None     # ref(*arrays) -> np.ndarray or tuple, the NumPy reference
    grad: bool = True               # run gradcheck on the float inputs
    gradgrad: bool = True           # run gradgradcheck
    diff: tuple[int, ...] | None = None  # which inputs get requires_grad (default: floats)
    name: str = ""                  # id suffix when an op has several cases
    atol: float = 1e-5
    rtol: float = 1e-4
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.op + (f"-{self.name}" if self.name else "")


CASES: list[Case] = []
# ops whose every behaviour is exercised through another op's case (say which)
COVERED_ELSEWHERE: dict[str, str] = {
    # a random draw: its distribution, generator and errors are tested there
    "multinomial_draw": "tests/ops/test_multinomial_sampling_and_stats_ops.py",
    # complex results for real and complex inputs: values, gradients (second order too)
    # against PyTorch there
    "linalg_eig": "tests/complex/test_complex_linalg.py",
    # the no-graph cumprod backward kernel: values against PyTorch's gradients there
    "cumprod_grad": "tests/kernels/test_softmax_gelu_tanh_scatter_amax.py",
    # ops that only graph capture emits (traced sizes in H/W or in slice bounds): their tests
    # trace, replay at other sizes, check gradients (second order too) and ONNX there
    "resize": "tests/capture/test_dynamic_height_width.py",
    "resize_grad": "tests/capture/test_dynamic_height_width.py",
    "slice_sized": "tests/capture/test_dynamic_height_width.py",
    "slice_sized_grad": "tests/capture/test_dynamic_height_width.py",
}


def add(*args, **kwargs) -> Case:
    c = Case(*args, **kwargs)
    CASES.append(c)
    return c


# --- strategies shared by the case modules ---------------------------------------------
def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple)


def broadcastable(draw, shape):
    """A shape that broadcasts with ``shape``: some dims set to 1, maybe fewer dims."""
    drop = draw(st.integers(0, len(shape)))
    s = list(shape[drop:])
    for i in range(len(s)):
        if draw(st.booleans()):
            s[i] = 1
    return tuple(s)


def arr(draw, shape, low=-2.0, high=2.0, away_from=None, dtype=np.float64):
    """A random float64 array drawn through hypothesis' seed (fast, reproducible)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, size=shape)
    if away_from is not None:
        # keep inputs away from kinks/singularities so finite differences are valid
        a = np.where(np.abs(a - away_from) < 0.1, a + 0.25, a)
    if draw(st.booleans()) and a.ndim >= 2:
        a = np.asfortranarray(a)   # non-contiguous layouts too
    return a.astype(dtype)


def carr(draw, shape, low=-2.0, high=2.0, away_from_zero=False):
    """A random complex128 array (real and imaginary parts uniform in [low, high));
    ``away_from_zero``: no element within 0.3 of 0 (kinks of abs, angle, sgn)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    z = rng.uniform(low, high, size=shape) + 1j * rng.uniform(low, high, size=shape)
    if away_from_zero:
        z = np.where(np.abs(z) < 0.3, z + 0.5 + 0.5j, z)
    return z


def draw_inputs(case: Case, draw) -> tuple[list, dict]:
    """A case's inputs as (arrays, params): ``inputs`` may return either form."""
    got = case.inputs(draw)
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict):
        return list(got[0]), got[1]
    return list(got), {}


def load_all() -> list[Case]:
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
    return CASES
