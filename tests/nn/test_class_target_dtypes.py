"""cross_entropy / nll_loss class-index target dtypes as PyTorch 2.13 on CPU: int64 and uint8
accepted (values and gradients match), int32 / int16 / int8 / bool refused with an error
naming the function; float (probability) targets stay accepted by cross_entropy."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.errors import DTypeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

X = np.random.default_rng(0).standard_normal((4, 3))
T = np.array([0, 2, 1, 2])


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("dt", ["int64", "uint8"])
def test_accepted_dtypes_match(name, dt):
    res = []
    for lib, fns in ((torch, TF), (tl, F)):
        x = lib.tensor(X).requires_grad_(True)
        loss = getattr(fns, name)(x, lib.tensor(T).to(getattr(lib, dt)))
        loss.backward()
        res.append((loss.item(), x.grad.numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-12)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-12)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("dt", ["int32", "int16", "int8", "bool"])
def test_refused_dtypes_as_torch(name, dt):
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        getattr(TF, name)(torch.tensor(X), torch.tensor(T).to(getattr(torch, dt)))
    with pytest.raises(DTypeError, match=rf"{name}: expected target dtype to be int64 or "
                                         rf"uint8.*got {dt}"):
        getattr(F, name)(tl.tensor(X), tl.tensor(T).to(getattr(tl, dt)))


def test_probability_target_still_accepted():
    p = np.full((4, 3), 1 / 3)
    want = TF.cross_entropy(torch.tensor(X), torch.tensor(p)).item()
    got = F.cross_entropy(tl.tensor(X), tl.tensor(p)).item()
    np.testing.assert_allclose(got, want, rtol=1e-12)
