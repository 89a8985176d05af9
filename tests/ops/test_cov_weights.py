"""cov's weight checks against PyTorch: negative weights raise, as torch.cov's."""
import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,w", [("aweights", [1.0, -1.0, 2.0]), ("fweights", [1, -1, 2])])
def test_negative_weights_raise_as_torch(name, w):
    x = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.5]])
    with pytest.raises(RuntimeError):
        torch.cov(torch.tensor(x), **{name: torch.tensor(w)})
    with pytest.raises(tl.errors.InputError, match=f"cov: {name} cannot be negative"):
        tl.cov(tl.tensor(x), **{name: tl.tensor(w)})


def test_weighted_cov_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6))
    fw, aw = np.array([1, 0, 2, 3, 1, 1]), rng.random(6)
    want = torch.cov(torch.tensor(x), fweights=torch.tensor(fw), aweights=torch.tensor(aw))
    got = tl.cov(tl.tensor(x), fweights=tl.tensor(fw), aweights=tl.tensor(aw))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_shape_and_dtype_errors_are_runtime_errors():
    with pytest.raises(RuntimeError, match="1-d or 2-d"):
        tl.cov(tl.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="one weight per observation"):
        tl.cov(tl.ones(2, 3), aweights=tl.ones(2))
    with pytest.raises(RuntimeError, match="fweights must be integers"):
        tl.cov(tl.ones(2, 3), fweights=tl.ones(3))
