"""log_softmax of large logits (numerics trial F4): x - max kept apart from the log-sum, so
-ffast-math cannot fold the log into a large max."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4, 1e6, 1e38])
@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax_large_logits(dtype, scale, dim):
    row = np.array([scale, scale, scale - 1, scale - 2, -scale], dtype)
    x = np.stack([row, row[::-1].copy()], axis=0)
    if dim == 0:
        x = np.ascontiguousarray(x.T)
    want = torch.nn.functional.log_softmax(torch.tensor(x), dim=dim).numpy()
    t = tl.tensor(x, requires_grad=True)
    y = F.log_softmax(t, dim=dim)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    g = np.arange(x.size, dtype=dtype).reshape(x.shape)
    y.backward(tl.tensor(g))
    tt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.log_softmax(tt, dim=dim).backward(torch.tensor(g))
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
