"""Complex tensors through shape, view and indexing ops: values and gradients against
PyTorch (complex128 and complex64), and second order for a few."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def crand(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


def both(f_tl, f_torch, *arrays, dtype=np.complex128, order2=False):
    """f on tensorlib and torch leaves; compares the values and the gradients of the real
    loss Re(sum(f * conj(w)))."""
    tl_in = [tl.tensor(a, requires_grad=a.dtype.kind in "fc") for a in arrays]
    th_in = [torch.tensor(a, requires_grad=a.dtype.kind in "fc") for a in arrays]
    out, ref = f_tl(*tl_in), f_torch(*th_in)
    assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    tol = 1e-4 if dtype == np.complex64 else 1e-10
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    w = crand(*ref.shape).astype(out.numpy().dtype)
    loss = (out * tl.tensor(w).conj()).real.sum()
    rloss = (ref * torch.tensor(w).conj()).real.sum()
    diff = [i for i, a in enumerate(arrays) if a.dtype.kind in "fc"]
    gs = tl.grad(loss, [tl_in[i] for i in diff], create_graph=order2)
    rgs = torch.autograd.grad(rloss, [th_in[i] for i in diff], create_graph=order2)
    for g, rg in zip(gs, rgs):
        assert g.dtype == out.dtype if arrays[0].dtype.kind == "c" else True
        np.testing.assert_allclose(g.numpy(), rg.detach().numpy(), rtol=tol, atol=tol)
    if order2:
        # a real function of the gradients, differentiated again
        s = sum((g * g.conj()).real.sum() + (g * g).imag.sum() for g in gs)
        rs = sum((g * g.conj()).real.sum() + (g * g).imag.sum() for g in rgs)
        g2 = tl.grad(s, [tl_in[i] for i in diff], allow_unused=True)
        rg2 = torch.autograd.grad(rs, [th_in[i] for i in diff], allow_unused=True)
        for a, b in zip(g2, rg2):
            if b is None:
                assert a is None or not a.numpy().any()
            else:
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


X = crand(3, 4, 5)

SHAPE_CASES = {
    "reshape": (lambda x: x.reshape(4, 15), lambda x: x.reshape(4, 15)),
    "view": (lambda x: x.view(12, 5), lambda x: x.view(12, 5)),
    "transpose": (lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    "contiguous_T": (lambda x: x.transpose(1, 2).contiguous(),
                     lambda x: x.transpose(1, 2).contiguous()),
    "mT_big": (lambda x: x.reshape(1, 60).expand(40, 60).mT.contiguous() * 1,
               lambda x: x.reshape(1, 60).expand(40, 60).mT.contiguous() * 1),
    "cat": (lambda x: tl.cat([x, x * 2], 1), lambda x: torch.cat([x, x * 2], 1)),
    "stack": (lambda x: tl.stack([x, x[:, :1].expand(3, 4, 5)], 0),
              lambda x: torch.stack([x, x[:, :1].expand(3, 4, 5)], 0)),
    "split": (lambda x: tl.split(x, 2, 1)[1], lambda x: torch.split(x, 2, 1)[1]),
    "chunk": (lambda x: x.chunk(2, 2)[0], lambda x: x.chunk(2, 2)[0]),
    "pad": (lambda x: tl.nn.functional.pad(x, (1, 2, 0, 1)),
            lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1))),
    "flip": (lambda x: tl.flip(x, (0, 2)), lambda x: torch.flip(x, (0, 2))),
    "roll": (lambda x: tl.roll(x, 2, 1), lambda x: torch.roll(x, 2, 1)),
    "repeat": (lambda x: x.repeat(2, 1, 2), lambda x: x.repeat(2, 1, 2)),
    "tile": (lambda x: tl.tile(x, (2, 1)), lambda x: torch.tile(x, (2, 1))),
    "tril": (lambda x: tl.tril(x, -1), lambda x: torch.tril(x, -1)),
    "triu": (lambda x: tl.triu(x, 1), lambda x: torch.triu(x, 1)),
    "movedim": (lambda x: tl.movedim(x, 0, 2), lambda x: torch.movedim(x, 0, 2)),
    "unfold": (lambda x: x.unfold(2, 2, 1), lambda x: x.unfold(2, 2, 1)),
    "narrow": (lambda x: x.narrow(1, 1, 2), lambda x: x.narrow(1, 1, 2)),
    "expand": (lambda x: x[:, :1].expand(3, 4, 5), lambda x: x[:, :1].expand(3, 4, 5)),
    "squeeze": (lambda x: x[:, :1].squeeze(1).unsqueeze(0),
                lambda x: x[:, :1].squeeze(1).unsqueeze(0)),
    "flatten": (lambda x: x.flatten(1), lambda x: x.flatten(1)),
    "diagonal": (lambda x: x.diagonal(1, 1, 2), lambda x: x.diagonal(1, 1, 2)),
    "diag_embed": (lambda x: tl.diag_embed(x), lambda x: torch.diag_embed(x)),
    "trace": (lambda x: tl.trace(x[0]), lambda x: torch.trace(x[0])),
    "diag": (lambda x: tl.diag(x[0, 0]), lambda x: torch.diag(x[0, 0])),
    "ravel": (lambda x: tl.ravel(x), lambda x: torch.ravel(x)),
    "unflatten": (lambda x: x.unflatten(1, (2, 2)), lambda x: x.unflatten(1, (2, 2))),
    "swapaxes": (lambda x: tl.swapaxes(x, 0, 1), lambda x: torch.swapaxes(x, 0, 1)),
    "rot90": (lambda x: tl.rot90(x, 1, (0, 2)), lambda x: torch.rot90(x, 1, (0, 2))),
    "repeat_interleave": (lambda x: tl.repeat_interleave(x, 2, dim=1),
                          lambda x: torch.repeat_interleave(x, 2, dim=1)),
    "diagonal_scatter": (lambda x: tl.diagonal_scatter(x[0], x[1, 0, :4] * 2),
                         lambda x: torch.diagonal_scatter(x[0], x[1, 0, :4] * 2)),
    "index_fill": (lambda x: x.index_fill(1, tl.tensor([0, 2]), 2j),
                   lambda x: x.index_fill(1, torch.tensor([0, 2]), 2j)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_CASES))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_shape_ops(name, dtype):
    f, g = SHAPE_CASES[name]
    both(f, g, X.astype(dtype), dtype=dtype)


IDX = np.array([2, 0, 2])
MASK = RNG.random((3, 4, 5)) > 0.5

INDEX_CASES = {
    "int": (lambda x: x[1, -1], lambda x: x[1, -1]),
    "slice": (lambda x: x[::2, 1:3, ::-1] if False else x[::2, 1:3],
              lambda x: x[::2, 1:3]),
    "mask": (lambda x: x[tl.tensor(MASK)], lambda x: x[torch.tensor(MASK)]),
    "index_tensor": (lambda x: x[tl.tensor(IDX), :, tl.tensor(IDX)],
                     lambda x: x[torch.tensor(IDX), :, torch.tensor(IDX)]),
    "mixed": (lambda x: x[0, :, tl.tensor(IDX)], lambda x: x[0, :, torch.tensor(IDX)]),
    "index_select": (lambda x: x.index_select(2, tl.tensor(IDX)),
                     lambda x: x.index_select(2, torch.tensor(IDX))),
    "gather": (lambda x: tl.gather(x, 1, tl.tensor(np.zeros((3, 2, 5), np.int64) + 3)),
               lambda x: torch.gather(x, 1, torch.tensor(np.zeros((3, 2, 5), np.int64) + 3))),
    "take": (lambda x: tl.take(x, tl.tensor([0, 7, 7, 59])),
             lambda x: torch.take(x, torch.tensor([0, 7, 7, 59]))),
    "take_along_dim": (lambda x: tl.take_along_dim(x, tl.tensor(np.argsort(X.real, 2)), 2),
                       lambda x: torch.take_along_dim(x, torch.tensor(np.argsort(X.real, 2)),
                                                      2)),
    "masked_select": (lambda x: tl.masked_select(x, tl.tensor(MASK)),
                      lambda x: torch.masked_select(x, torch.tensor(MASK))),
    "masked_fill": (lambda x: x.masked_fill(tl.tensor(MASK), 1 - 2j),
                    lambda x: x.masked_fill(torch.tensor(MASK), 1 - 2j)),
}


@pytest.mark.parametrize("name", sorted(INDEX_CASES))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_index_reads(name, dtype):
    f, g = INDEX_CASES[name]
    both(f, g, X.astype(dtype), dtype=dtype)


SRC = crand(3, 4, 5)
IDX2 = RNG.integers(0, 3, (3, 4, 5))
WRITE_CASES = {
    "scatter": (lambda x, s: x.scatter(0, tl.tensor(np.argsort(RNG_PERM, 0)), s),
                lambda x, s: x.scatter(0, torch.tensor(np.argsort(RNG_PERM, 0)), s)),
    "scatter_add": (lambda x, s: x.scatter_add(0, tl.tensor(IDX2), s),
                    lambda x, s: x.scatter_add(0, torch.tensor(IDX2), s)),
    # PyTorch has no complex gradient for scatter_reduce: the reference is its definition
    "scatter_reduce_sum": (
        lambda x, s: x.scatter_reduce(0, tl.tensor(IDX2), s, "sum"),
        lambda x, s: x.scatter_add(0, torch.tensor(IDX2), s)),
    "scatter_reduce_mean": (
        lambda x, s: x.scatter_reduce(0, tl.tensor(IDX2), s, "mean", include_self=False),
        lambda x, s: _torch_scatter_mean(x, s)),
    "index_add": (lambda x, s: x.index_add(0, tl.tensor(IDX), s),
                  lambda x, s: x.index_add(0, torch.tensor(IDX), s)),
    "index_copy": (lambda x, s: x.index_copy(0, tl.tensor([2, 0, 1]), s),
                   lambda x, s: x.index_copy(0, torch.tensor([2, 0, 1]), s)),
    "index_put": (lambda x, s: x.index_put((tl.tensor(IDX),), s, accumulate=True),
                  lambda x, s: x.index_put((torch.tensor(IDX),), s, accumulate=True)),
    "masked_scatter": (lambda x, s: x.masked_scatter(tl.tensor(MASK), s),
                       lambda x, s: x.masked_scatter(torch.tensor(MASK), s)),
    "setitem_mask": (lambda x, s: _set(x, tl.tensor(MASK), s[tl.tensor(MASK)]),
                     lambda x, s: _set(x, torch.tensor(MASK), s[torch.tensor(MASK)])),
    "setitem_slice": (lambda x, s: _set(x, (slice(1, 3), 0), s[0, :2]),
                      lambda x, s: _set(x, (slice(1, 3), 0), s[0, :2])),
    "setitem_index": (lambda x, s: _set(x, (tl.tensor([0, 2]),), s[:2]),
                      lambda x, s: _set(x, (torch.tensor([0, 2]),), s[:2])),
    "put": (lambda x, s: x.put(tl.tensor([1, 5, 9]), s[0, 0, :3]),
            lambda x, s: x.put(torch.tensor([1, 5, 9]), s[0, 0, :3])),
}
RNG_PERM = RNG.random((3, 4, 5))


def _torch_scatter_mean(x, s):
    idx = torch.tensor(IDX2)
    real = x.real.dtype
    cnt = torch.zeros(x.shape, dtype=real).scatter_add(0, idx, torch.ones(s.shape, dtype=real))
    total = torch.zeros_like(x).scatter_add(0, idx, s)
    return torch.where(cnt > 0, total / cnt.clamp(min=1), x)


def test_scatter_reduce_values_match_torch():
    for reduce in ("sum", "mean"):
        for include_self in (True, False):
            out = tl.tensor(X).scatter_reduce(0, tl.tensor(IDX2), tl.tensor(SRC), reduce,
                                              include_self=include_self)
            ref = torch.tensor(X).scatter_reduce(0, torch.tensor(IDX2), torch.tensor(SRC),
                                                 reduce, include_self=include_self)
            np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)


def _set(x, key, v):
    y = x * 1
    y[key] = v
    return y


@pytest.mark.parametrize("name", sorted(WRITE_CASES))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_index_writes(name, dtype):
    f, g = WRITE_CASES[name]
    both(f, g, X.astype(dtype), SRC.astype(dtype), dtype=dtype)


@pytest.mark.parametrize("name", ["index_tensor", "gather", "masked_fill"])
def test_index_second_order(name):
    f, g = INDEX_CASES[name]
    both(lambda x: f(x * x), lambda x: g(x * x), X, order2=True)


def test_scatter_add_second_order():
    f, g = WRITE_CASES["scatter_add"]
    both(lambda x, s: f(x, s * s), lambda x, s: g(x, s * s), X, SRC, order2=True)


def test_scatter_reduce_extremes_refuse_complex():
    x = tl.tensor(X)
    for reduce in ("amax", "amin", "prod"):
        with pytest.raises(TypeError, match="scatter_reduce: reduce="):
            x.scatter_reduce(0, tl.tensor(IDX2), tl.tensor(SRC), reduce)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(-3, 3))
def test_getitem_slices_hypothesis(n, m, start):
    a = crand(n, m)
    both(lambda x: x[start:, ::2], lambda x: x[start:, ::2], a)
