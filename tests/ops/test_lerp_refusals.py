"""lerp / lerp_ refuse what PyTorch refuses, naming themselves (GAN trial: a float64 ``end``
was rounded into a float32 EMA copy silently; a shape mismatch blamed ``sub``)."""
import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("form", ["lerp", "lerp_", "function"])
def test_lerp_end_dtype_and_shape_as_torch(form):
    def call(lib, a, e, w):
        if form == "function":
            return lib.lerp(a, e, w)
        return getattr(a, form)(e, w)

    for lib in (torch, tl):
        with pytest.raises(RuntimeError, match=r"expected dtype.*`end`"):
            call(lib, lib.zeros(3), lib.ones(3, dtype=lib.float64), 0.5)
    with pytest.raises(tl.errors.ShapeError, match="lerp"):
        call(tl, tl.zeros(3), tl.ones(4), 0.5)
    with pytest.raises(RuntimeError):
        call(torch, torch.zeros(3), torch.ones(4), 0.5)
    a = np.array([0.0, 1.0, -2.0])
    e = np.array([4.0, 3.0, 2.0])
    w = np.array([0.25, 0.5, 0.75])
    got = call(tl, tl.tensor(a), tl.tensor(e), tl.tensor(w))
    want = call(torch, torch.tensor(a), torch.tensor(e), torch.tensor(w))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)
