"""Activation checkpointing of a function that reaches its module through a default argument
(``lambda z, blk=blk: blk(z)``, the loop idiom), against PyTorch."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib.utils.checkpoint import checkpoint

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("keyword", [False, True])
@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpoint_finds_modules_bound_as_defaults(keyword, reentrant):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((4, 4)) for _ in range(2)]
    x = rng.standard_normal((3, 4))

    def run(lib, ck, kw):
        blocks = []
        for w in ws:
            m = lib.nn.Linear(4, 4, bias=False).double()
            with lib.no_grad():
                m.weight.copy_(lib.tensor(w))
            blocks.append(m)
        h0 = lib.tensor(x, requires_grad=True)
        h = h0
        for blk in blocks:
            f = (eval("lambda z, *, blk=blk: blk(z).tanh()", {"blk": blk}) if keyword
                 else (lambda z, blk=blk: blk(z).tanh()))
            h = ck(f, h, **kw)
        (h ** 2).sum().backward()
        return [b.weight.grad.numpy() for b in blocks] + [h0.grad.numpy()]

    import torch.utils.checkpoint as tck
    want = run(torch, tck.checkpoint, {"use_reentrant": reentrant})
    got = run(tl, checkpoint, {"use_reentrant": reentrant})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
