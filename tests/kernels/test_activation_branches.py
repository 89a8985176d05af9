"""The activations written without where() over a sign mask (leaky_relu, elu, silu, softplus,
mish) against PyTorch, on values that probe each branch: signed zeros, the softplus
threshold, large magnitudes, and slopes/alphas/betas on both sides of 1."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

EDGES = [0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 19.99, 20.0, 20.01, 25.0, -25.0, 88.0, -88.0,
         100.0, -100.0, 1e4, -1e4, np.inf, -np.inf]
CASES = {
    "leaky_relu(0.01)": (lambda t: F.leaky_relu(t), lambda t: TF.leaky_relu(t)),
    "leaky_relu(0.2)": (lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
    "leaky_relu(1)": (lambda t: F.leaky_relu(t, 1.0), lambda t: TF.leaky_relu(t, 1.0)),
    "leaky_relu(3)": (lambda t: F.leaky_relu(t, 3.0), lambda t: TF.leaky_relu(t, 3.0)),
    "leaky_relu(-0.5)": (lambda t: F.leaky_relu(t, -0.5), lambda t: TF.leaky_relu(t, -0.5)),
    "elu": (F.elu, TF.elu),
    "elu(2)": (lambda t: F.elu(t, 2.0), lambda t: TF.elu(t, 2.0)),
    "elu(0.3)": (lambda t: F.elu(t, 0.3), lambda t: TF.elu(t, 0.3)),
    "silu": (F.silu, TF.silu),
    "softplus": (F.softplus, TF.softplus),
    "softplus(2, 10)": (lambda t: F.softplus(t, 2.0, 10.0), lambda t: TF.softplus(t, 2.0, 10.0)),
    "softplus(0.5)": (lambda t: F.softplus(t, 0.5), lambda t: TF.softplus(t, 0.5)),
    "mish": (F.mish, TF.mish),
}


def _compare(name, x, dtype):
    ours, theirs = CASES[name]
    x = x.astype(dtype)
    g = np.linspace(-1.5, 2.0, x.size).astype(dtype)
    t = tl.tensor(x, requires_grad=True)
    tt = torch.tensor(x, requires_grad=True)
    y, yt = ours(t), theirs(tt)
    y.backward(tl.tensor(g))
    yt.backward(torch.tensor(g))
    tol = dict(rtol=2e-6, atol=1e-30) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), err_msg=name, **tol)
    fin = np.isfinite(x)        # (gradients at +-inf: PyTorch's own differ by op)
    np.testing.assert_allclose(t.grad.numpy()[fin], tt.grad.numpy()[fin], err_msg=name,
                               **tol)
    if not name.startswith("elu"):     # (elu(-0.0) is +0.0 here, -0.0 in PyTorch)
        assert np.array_equal(np.signbit(y.detach().numpy()),
                              np.signbit(yt.detach().numpy())), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_edges_match_pytorch(name, dtype):
    _compare(name, np.array(EDGES), dtype)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(CASES)),
       st.lists(st.floats(-60, 60, allow_nan=False, width=32), min_size=1, max_size=40))
def test_random_values_match_pytorch(name, xs):
    _compare(name, np.array(xs), np.float32)
