"""The CPU radix argsort (long axes): the same permutation as PyTorch's stable sort for
every dtype, NaN/inf/-0.0, ties, descending, any axis."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib.ops import sorting

torch = pytest.importorskip("torch")


def _check(a, dim=-1):
    t, T = tl.tensor(a), torch.tensor(a)
    for desc in (False, True):
        got = t.argsort(dim=dim, descending=desc).numpy()
        want = T.argsort(dim=dim, descending=desc, stable=True).numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{a.dtype} desc={desc}")
        v, i = t.sort(dim=dim, descending=desc)
        np.testing.assert_array_equal(i.numpy(), want)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "int16",
                                   "int8", "uint8", "bool"])
def test_matches_torch_stable_sort(dtype):
    rng = np.random.default_rng(0)
    n = 3 * sorting._RADIX_MIN
    if dtype == "bool":
        a = rng.random(n) < 0.5
    elif dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)
        a[:4] = [info.min, info.max, 0, info.min]
    else:
        a = (rng.standard_normal(n) * 3).round(1).astype(dtype)    # many ties
        a[:8] = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, -0.0, np.nan]
    _check(a)


def test_along_other_axes_and_batches():
    rng = np.random.default_rng(1)
    a = rng.integers(-5, 5, (3, sorting._RADIX_MIN + 7, 2))
    _check(a, dim=1)
    _check(rng.standard_normal((4, 2 * sorting._RADIX_MIN)).astype(np.float32), dim=-1)


def test_topk_on_the_radix_path():
    a = np.random.default_rng(2).integers(0, 50, 4 * sorting._RADIX_MIN)
    v, i = tl.tensor(a).topk(300)
    tv, ti = torch.tensor(a).topk(300)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(a[i.numpy()], tv.numpy())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(sorting._RADIX_MIN, 3000), lo=st.integers(-2**62, 2**62),
       span=st.sampled_from([1, 3, 1000, 2**40, 2**62]), seed=st.integers(0, 2**16))
def test_int64_ranges(n, lo, span, seed):
    a = lo + np.random.default_rng(seed).integers(0, span, n)
    _check(a)
