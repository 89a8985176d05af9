"""tl.signal.windows and the tl.*_window functions against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
W = torch.signal.windows

NAMES = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_hamming",
         "hamming", "hann", "kaiser", "nuttall"]
TOL = {"float64": 1e-12, "float32": 1e-6}


def _cmp(a, b, dt):
    assert a.dtype == getattr(tl, dt) and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=TOL[dt])


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(NAMES), M=st.integers(0, 40), sym=st.booleans(),
       dt=st.sampled_from(["float64", "float32"]))
def test_windows_match_torch(name, M, sym, dt):
    _cmp(getattr(tl.signal.windows, name)(M, sym=sym, dtype=getattr(tl, dt)),
         getattr(W, name)(M, sym=sym, dtype=getattr(torch, dt)), dt)


@settings(max_examples=60, deadline=None)
@given(M=st.integers(0, 30), sym=st.booleans(), p=st.floats(0.05, 20),
       c=st.floats(-5, 30), a=st.lists(st.floats(-2, 2), min_size=1, max_size=5))
def test_window_parameters_match_torch(M, sym, p, c, a):
    f64 = dict(sym=sym, dtype=tl.float64)
    t64 = dict(sym=sym, dtype=torch.float64)
    _cmp(tl.signal.windows.kaiser(M, beta=p, **f64), W.kaiser(M, beta=p, **t64), "float64")
    _cmp(tl.signal.windows.gaussian(M, std=p, **f64), W.gaussian(M, std=p, **t64), "float64")
    _cmp(tl.signal.windows.exponential(M, tau=p, **f64), W.exponential(M, tau=p, **t64),
         "float64")
    if not sym:
        _cmp(tl.signal.windows.exponential(M, center=c, tau=p, **f64),
             W.exponential(M, center=c, tau=p, **t64), "float64")
    alpha = min(p / 20, 1.0)
    _cmp(tl.signal.windows.general_hamming(M, alpha=alpha, **f64),
         W.general_hamming(M, alpha=alpha, **t64), "float64")
    _cmp(tl.signal.windows.general_cosine(M, a=a, **f64), W.general_cosine(M, a=a, **t64),
         "float64")


@settings(max_examples=60, deadline=None)
@given(N=st.integers(0, 40), periodic=st.booleans(), beta=st.floats(0, 20),
       dt=st.sampled_from(["float64", "float32"]))
def test_torch_window_functions(N, periodic, beta, dt):
    d, td = getattr(tl, dt), getattr(torch, dt)
    for name in ("hann", "hamming", "blackman", "bartlett"):
        _cmp(getattr(tl, f"{name}_window")(N, periodic, dtype=d),
             getattr(torch, f"{name}_window")(N, periodic, dtype=td), dt)
    _cmp(tl.kaiser_window(N, periodic, beta, dtype=d),
         torch.kaiser_window(N, periodic, beta, dtype=td), dt)
    _cmp(tl.hamming_window(N, periodic, 0.6, 0.3, dtype=d),
         torch.hamming_window(N, periodic, 0.6, 0.3, dtype=td), dt)
    # one implementation: periodic window_length N is the sym=False window of N points
    np.testing.assert_array_equal(tl.hann_window(N, periodic, dtype=d).numpy(),
                                  tl.signal.windows.hann(N, sym=not periodic, dtype=d).numpy())


def test_defaults_and_flags():
    w = tl.signal.windows.hann(5)
    assert w.dtype == tl.float32 and not w.requires_grad
    w = tl.signal.windows.gaussian(5, requires_grad=True, dtype=tl.float64)
    assert w.requires_grad
    x = tl.tensor(np.arange(5.0), requires_grad=True)
    t = torch.arange(5.0, dtype=torch.float64, requires_grad=True)
    (x * w).sum().backward()
    (t * W.gaussian(5, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    assert tl.signal.windows.hann(3, layout=tl.strided).shape == (3,)


@pytest.mark.parametrize("call,exc", [
    (lambda w: w.hann(-1), ValueError),
    (lambda w: w.kaiser(-3), ValueError),
    (lambda w: w.hann(3, dtype="float16"), ValueError),
    (lambda w: w.hann(3, dtype="int64"), ValueError),
    (lambda w: w.hann(2.5), TypeError),
    (lambda w: w.general_cosine(3, a=[]), ValueError),
    (lambda w: w.general_cosine(3, a=3), TypeError),
    (lambda w: w.kaiser(3, beta=-1), ValueError),
    (lambda w: w.exponential(3, tau=0), ValueError),
    (lambda w: w.exponential(3, center=1.0), ValueError),
    (lambda w: w.gaussian(3, std=0), ValueError),
])
def test_errors_as_torch(call, exc):
    with pytest.raises(exc):
        call(_TorchNames())
    with pytest.raises(exc):
        call(tl.signal.windows)


class _TorchNames:
    """torch.signal.windows with dtypes given by name, as the tl calls above."""

    def __getattr__(self, name):
        f = getattr(W, name)

        def call(*args, dtype=None, **kw):
            if isinstance(dtype, str):
                dtype = getattr(torch, dtype)
            return f(*args, dtype=dtype, **kw)
        return call


def test_window_function_errors():
    with pytest.raises(ValueError, match="hann_window"):
        tl.hann_window(-1)
    with pytest.raises(TypeError, match="kaiser_window"):
        tl.kaiser_window(3, dtype=tl.int64)
