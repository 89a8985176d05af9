"""Gaps a computer-vision trial found: unbatched F.unfold / F.fold, and
is_contiguous(memory_format=...)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kw", [{}, {"padding": 1, "stride": 2}, {"dilation": 2}])
def test_unbatched_unfold_and_fold_match_torch(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 7))
    xt, tt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    u, tu = F.unfold(xt, 3, **kw), torch.nn.functional.unfold(tt, 3, **kw)
    assert tuple(u.shape) == tuple(tu.shape)
    np.testing.assert_allclose(u.detach().numpy(), tu.detach().numpy(), rtol=1e-12)
    f = F.fold(u, (6, 7), 3, **kw)
    tf = torch.nn.functional.fold(tu, (6, 7), 3, **kw)
    assert tuple(f.shape) == tuple(tf.shape) == (3, 6, 7)
    np.testing.assert_allclose(f.detach().numpy(), tf.detach().numpy(), rtol=1e-12)
    w = rng.standard_normal(f.shape)
    (f * tl.tensor(w)).sum().backward()
    (tf * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), tt.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="unfold"):
        F.unfold(tl.ones(4, 4), 2)


def test_is_contiguous_takes_a_memory_format():
    x = tl.randn(2, 3, 4, 5)
    assert not x.is_contiguous(memory_format=tl.channels_last)     # (PyTorch: False too)
    assert x.contiguous(memory_format=tl.channels_last).is_contiguous(
        memory_format=tl.channels_last)
    assert not x.transpose(1, 2).is_contiguous(memory_format=tl.contiguous_format)
    with pytest.raises(TypeError, match="memory_format"):
        x.is_contiguous(memory_format="channels_last")
