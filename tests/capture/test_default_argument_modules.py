"""Functions that reach their modules through default arguments (``lambda z, blk=blk: blk(z)``,
the loop idiom; ``def step(x, D=D, opt=opt)``): activation checkpointing finds their parameters
as PyTorch's does, and a captured training step traces once."""
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


def test_captured_step_with_model_and_optimizer_as_defaults_traces_once():
    D = tl.nn.Sequential(tl.nn.Conv2d(3, 4, 3, 1, 1), tl.nn.Flatten(), tl.nn.Linear(256, 1))
    E = tl.nn.Sequential(tl.nn.Conv2d(3, 4, 3, 1, 1), tl.nn.Flatten(), tl.nn.Linear(256, 1))
    E.load_state_dict(D.state_dict())
    oD = tl.optim.Adam(D.parameters(), lr=1e-3)
    oE = tl.optim.Adam(E.parameters(), lr=1e-3)

    def step(x, D=D, oD=oD):
        oD.zero_grad()
        loss = D(x).mean()
        loss.backward()
        oD.step()
        return loss.detach()

    f = tl.function(step)
    x = tl.randn(4, 3, 8, 8)
    for _ in range(3):
        got = f(x)
        want = step(x, E, oE)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert f.trace_count == 1, f.retrace_reasons
