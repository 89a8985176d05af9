import os
import sys as _sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# tests/ on sys.path: shared helpers (torch_ref, cases, placed_training) for tests in subfolders
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in _sys.path:
    _sys.path.insert(0, _TESTS_DIR)

settings.register_profile("ci", max_examples=8, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=100, deadline=None)


@pytest.fixture(autouse=True)
def _seed():
    import tensorlib as tl
    tl.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(params=[2, 1, 0])
def cap(request):
    """Each hand-vectorised kernel path in turn: AVX-512, AVX2, generic (a level the CPU
    lacks is capped to the best it has)."""
    from tensorlib import _ops
    old = _ops._vec_cap(request.param)
    yield request.param
    _ops._vec_cap(old)


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")
settings.register_profile("more", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
