"""unique, argwhere, nonzero, bincount, searchsorted (eager, against NumPy and PyTorch; capture
refuses them) and bernoulli / multinomial (statistics, checks, fresh draws when captured)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph import CaptureError

rng = np.random.default_rng(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=0, max_size=12), st.booleans(), st.booleans())
def test_unique_matches_numpy(values, inverse, counts):
    a = np.array(values, dtype=np.int64)
    got = tl.unique(tl.tensor(a), return_inverse=inverse, return_counts=counts)
    want = np.unique(a, return_inverse=inverse, return_counts=counts)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)
    if inverse:
        np.testing.assert_array_equal(got[0].numpy()[got[1].numpy()], a)


def test_unique_axis_and_floats():
    a = np.array([[1, 2], [3, 4], [1, 2]])
    np.testing.assert_array_equal(tl.unique(tl.tensor(a), axis=0).numpy(), np.unique(a, axis=0))
    f = np.array([0.5, np.nan, 0.5, -1.0])
    np.testing.assert_array_equal(tl.unique(tl.tensor(f)).numpy(), np.unique(f))


def test_argwhere_and_nonzero():
    torch = pytest.importorskip("torch")
    a = rng.integers(0, 2, (3, 4, 2))
    np.testing.assert_array_equal(tl.argwhere(tl.tensor(a)).numpy(),
                                  torch.nonzero(torch.tensor(a)).numpy())
    got = tl.nonzero(tl.tensor(a))
    for g, w in zip(got, np.nonzero(a)):
        np.testing.assert_array_equal(g.numpy(), w)
    x = tl.tensor(a * 1.5)
    np.testing.assert_array_equal(x[tl.nonzero(x)].numpy(), (a * 1.5)[np.nonzero(a)])
    assert tl.argwhere(tl.zeros(2, 3)).shape == (0, 2)


def test_bincount_and_searchsorted():
    x = rng.integers(0, 6, 20)
    w = rng.standard_normal(20)
    np.testing.assert_array_equal(tl.bincount(tl.tensor(x)).numpy(), np.bincount(x))
    np.testing.assert_allclose(tl.bincount(tl.tensor(x), tl.tensor(w), minlength=9).numpy(),
                               np.bincount(x, w, minlength=9))
    with pytest.raises(ValueError, match="must not be negative"):
        tl.bincount(tl.tensor([1, -1]))
    with pytest.raises(ValueError, match="1-d integer tensor"):
        tl.bincount(tl.ones(3))
    a = np.sort(rng.standard_normal(8))
    v = np.concatenate([rng.standard_normal(5), a[:2]])
    for side in ("left", "right"):
        np.testing.assert_array_equal(tl.searchsorted(tl.tensor(a), tl.tensor(v), side).numpy(),
                                      np.searchsorted(a, v, side))
    with pytest.raises(ValueError, match="side must be"):
        tl.searchsorted(tl.tensor(a), tl.tensor(v), "middle")


@pytest.mark.parametrize("fn", [tl.unique, tl.argwhere, tl.nonzero, tl.bincount,
                                lambda x: tl.searchsorted(x, x, sorter=tl.argsort(x))])
def test_capture_refuses_the_eager_ops(fn):
    x = tl.tensor([0, 1, 1, 3])
    with pytest.raises(CaptureError, match="while tracing"):
        with tl.capture(x):
            fn(x)


def test_bernoulli_statistics_and_checks():
    tl.manual_seed(0)
    p = tl.tensor(np.linspace(0.05, 0.95, 6))
    s = np.stack([tl.bernoulli(p).numpy() for _ in range(4000)])
    assert set(np.unique(s)) <= {0.0, 1.0} and s.dtype == np.float64
    np.testing.assert_allclose(s.mean(0), p.numpy(), atol=0.03)
    with pytest.raises(ValueError, match="lie in \\[0, 1\\]"):
        tl.bernoulli(tl.tensor([0.5, 1.5]))
    with pytest.raises(TypeError, match="floating point"):
        tl.bernoulli(tl.tensor([0, 1]))


def test_multinomial_with_replacement_frequencies():
    tl.manual_seed(1)
    w = np.array([[1.0, 0.0, 3.0, 6.0], [0.0, 0.0, 1.0, 0.0]])
    s = tl.multinomial(tl.tensor(w), 20000, replacement=True).numpy()
    assert s.shape == (2, 20000) and s.dtype == np.int64
    np.testing.assert_allclose(np.bincount(s[0], minlength=4) / 20000, w[0] / w[0].sum(),
                               atol=0.012)
    assert (s[1] == 2).all()


def test_multinomial_without_replacement():
    tl.manual_seed(2)
    w = np.array([1.0, 0.0, 3.0, 6.0])
    draws = np.stack([tl.multinomial(tl.tensor(w), 3).numpy() for _ in range(3000)])
    assert all(len(set(d)) == 3 and 1 not in d for d in draws)
    # the first draw follows the weights
    np.testing.assert_allclose(np.bincount(draws[:, 0], minlength=4) / 3000, w / w.sum(),
                               atol=0.03)
    with pytest.raises(ValueError, match="only 3 non-zero"):
        tl.multinomial(tl.tensor(w), 4)
    with pytest.raises(ValueError, match="cannot draw 5 samples"):
        tl.multinomial(tl.tensor(w), 5)
    with pytest.raises(ValueError, match="sums to 0"):
        tl.multinomial(tl.zeros(3), 1)
    with pytest.raises(ValueError, match="non-negative"):
        tl.multinomial(tl.tensor([1.0, -1.0]), 1)


def test_sampling_is_captured_as_fresh_draws():
    @tl.function
    def f(p):
        return tl.multinomial(p, 2), tl.bernoulli(p * 0.5)
    p = tl.tensor([0.2, 0.3, 0.5])
    for seed in (1, 2, 3):
        tl.manual_seed(seed)
        got = f(p)
        tl.manual_seed(seed)
        want = f.fn(p)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert f.trace_count == 1
