"""PyTorch APIs a graph-neural-network port reaches for, checked against PyTorch: ``unique``
and ``unique_consecutive`` with ``dim=`` (and ``sorted=``), the one-argument
``repeat_interleave(counts)`` with ``output_size=``, ``segment_reduce`` (forward, gradients
against PyTorch's, gradcheck and gradgradcheck in float64) and the PyTorch-style method
``x.nonzero()``."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph import CaptureError

torch = pytest.importorskip("torch")

REDUCES = ["sum", "mean", "max", "min", "prod"]


def _eq(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_array_equal(g.numpy(), w.numpy())


# --- unique / unique_consecutive with dim -----------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 7), st.integers(1, 3), st.integers(0, 1), st.booleans(), st.booleans(),
       st.booleans(), st.data())
def test_unique_dim_matches_torch(n, k, dim, inverse, counts, srt, data):
    shape = (n, k) if dim == 0 else (k, n)
    seed = data.draw(st.integers(0, 2**31))
    a = np.random.default_rng(seed).integers(0, 3, shape)
    got = tl.unique(tl.tensor(a), sorted=srt, return_inverse=inverse, return_counts=counts,
                    dim=dim)
    want = torch.unique(torch.tensor(a), sorted=srt, return_inverse=inverse,
                        return_counts=counts, dim=dim)
    _eq(got, want)


def test_unique_dedups_edge_index_columns():
    ei = np.array([[0, 1, 0, 2, 1], [1, 2, 1, 0, 2]])
    vals, inv, cnt = tl.tensor(ei).unique(dim=1, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(vals.numpy(), [[0, 1, 2], [1, 2, 0]])
    np.testing.assert_array_equal(vals.numpy()[:, inv.numpy()], ei)
    _eq((vals, inv, cnt), torch.unique(torch.tensor(ei), dim=1, return_inverse=True,
                                       return_counts=True))


@pytest.mark.parametrize("inverse", [False, True])
def test_unique_sorted_false_is_accepted_and_sorted_as_torch_cpu(inverse):
    a = np.array([[3, 1], [3, 2]])
    _eq(tl.unique(tl.tensor(a), sorted=False, return_inverse=inverse),
        torch.unique(torch.tensor(a), sorted=False, return_inverse=inverse))


def test_unique_nan_each_its_own_value_and_edge_shapes():
    f = np.array([np.nan, 1.0, np.nan, 1.0])
    _eq(tl.unique(tl.tensor(f), return_inverse=True, return_counts=True),
        torch.unique(torch.tensor(f), return_inverse=True, return_counts=True))
    _eq(tl.unique(tl.tensor(3), return_inverse=True, return_counts=True),
        torch.unique(torch.tensor(3), return_inverse=True, return_counts=True))
    z = np.zeros((0, 3))
    _eq(tl.unique(tl.tensor(z), dim=0, return_inverse=True, return_counts=True),
        torch.unique(torch.tensor(z), dim=0, return_inverse=True, return_counts=True))
    with pytest.raises(ValueError, match="0-size dims"):
        tl.unique(tl.zeros(3, 0), dim=0)
    with pytest.raises(TypeError, match="both axis= and dim="):
        tl.unique(tl.zeros(3), axis=0, dim=0)
    with pytest.raises(ValueError, match="0-d"):
        tl.unique(tl.tensor(1), dim=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 8), st.integers(1, 3), st.integers(-2, 1), st.booleans(), st.booleans(),
       st.integers(0, 2**31))
def test_unique_consecutive_dim_matches_torch(n, k, dim, inverse, counts, seed):
    a = np.random.default_rng(seed).integers(0, 2, (n, k) if dim in (0, -2) else (k, n))
    got = tl.unique_consecutive(tl.tensor(a), return_inverse=inverse, return_counts=counts,
                                dim=dim)
    want = torch.unique_consecutive(torch.tensor(a), return_inverse=inverse,
                                    return_counts=counts, dim=dim)
    _eq(got, want)
    _eq(tl.tensor(a).unique_consecutive(inverse, counts, dim), want)


# --- repeat_interleave(counts) -----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=8), st.sampled_from(["int64", "int32"]))
def test_repeat_interleave_of_counts_matches_torch(counts, dt):
    r = np.array(counts, dtype=dt)
    want = torch.repeat_interleave(torch.tensor(r))
    _eq(tl.repeat_interleave(tl.tensor(r)), want)
    _eq(tl.repeat_interleave(tl.tensor(r), output_size=int(r.sum())), want)


def test_repeat_interleave_batch_vector_and_output_size():
    sizes = tl.tensor([2, 3, 1])
    np.testing.assert_array_equal(tl.repeat_interleave(sizes).numpy(), [0, 0, 1, 1, 1, 2])
    x = np.array([[1, 2], [3, 4]])
    _eq(tl.repeat_interleave(tl.tensor(x), tl.tensor([1, 2]), dim=0, output_size=3),
        torch.repeat_interleave(torch.tensor(x), torch.tensor([1, 2]), dim=0, output_size=3))
    with pytest.raises(ValueError, match="output_size=4 but the repeats add up to 3"):
        tl.repeat_interleave(tl.tensor(x), tl.tensor([1, 2]), dim=0, output_size=4)
    with pytest.raises(ValueError, match="output_size=5"):
        tl.repeat_interleave(sizes, output_size=5)


def test_repeat_interleave_of_counts_errors():
    with pytest.raises(ValueError, match="1-d tensor of counts"):
        tl.repeat_interleave(tl.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="integer tensor"):
        tl.repeat_interleave(tl.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="must not be negative"):
        tl.repeat_interleave(tl.tensor([1, -1]))
    with pytest.raises(TypeError, match="no axis"):
        tl.repeat_interleave(tl.tensor([1, 2]), dim=0)


# --- segment_reduce ----------------------------------------------------------------------------
def _torch_grad(a, reduce, gout, **kw):
    t = torch.tensor(a, requires_grad=True)
    out = torch.segment_reduce(t, reduce, **kw)
    (g,) = torch.autograd.grad(out, t, torch.tensor(gout))
    return out.detach().numpy(), g.numpy()


def _tl_grad(a, reduce, gout, **kw):
    t = tl.tensor(a, requires_grad=True)
    out = tl.segment_reduce(t, reduce, **kw)
    (g,) = tl.grad(out, t, tl.tensor(gout))
    return out.numpy(), g.numpy()


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(REDUCES), st.lists(st.integers(0, 3), min_size=1, max_size=5),
       st.sampled_from([None, 0.0, 1.0, -1.5]), st.integers(0, 2), st.integers(0, 2**31))
def test_segment_reduce_forward_and_grad_match_torch(reduce, lengths, initial, trail, seed):
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    shape = (n,) + (2,) * trail
    # small integers: ties for max/min, zeros for prod
    a = rng.integers(-2, 3, shape).astype(np.float64)
    L = np.array(lengths)
    kw = dict(lengths=L, initial=initial)
    # a positive upstream gradient: PyTorch 2.13's max/min backward splits it evenly among
    # tied elements only where it is positive (a negative one reaches every tie whole)
    gout = rng.uniform(0.5, 2.0, (len(lengths),) + (2,) * trail)
    want, gwant = _torch_grad(a, reduce, gout, lengths=torch.tensor(L), initial=initial)
    got, ggot = _tl_grad(a, reduce, gout, **{**kw, "lengths": tl.tensor(L)})
    np.testing.assert_allclose(got, want, equal_nan=True)
    np.testing.assert_allclose(ggot, gwant, atol=1e-12)


@pytest.mark.parametrize("reduce", REDUCES)
def test_segment_reduce_batched_lengths_offsets_and_unsafe(reduce):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 6, 3))
    L = np.array([[2, 0, 4], [1, 3, 2]])
    gout = rng.standard_normal((2, 3, 3))
    want, gw = _torch_grad(a, reduce, gout, lengths=torch.tensor(L), axis=1)
    got, gg = _tl_grad(a, reduce, gout, lengths=tl.tensor(L), axis=-2)
    np.testing.assert_allclose(got, want, equal_nan=True)
    np.testing.assert_allclose(gg, gw, atol=1e-12)
    b = rng.standard_normal(7)
    for off in ([0, 3, 3, 7], [1, 2, 5]):            # bounds need not cover the data
        g2 = rng.standard_normal(len(off) - 1)
        want, gw = _torch_grad(b, reduce, g2, offsets=torch.tensor(off))
        got, gg = _tl_grad(b, reduce, g2, offsets=tl.tensor(off))
        np.testing.assert_allclose(got, want, equal_nan=True)
        np.testing.assert_allclose(gg, gw, atol=1e-12)
    want, gw = _torch_grad(b, reduce, g2, lengths=torch.tensor([2, 3]), unsafe=True)
    got, gg = _tl_grad(b, reduce, g2, lengths=tl.tensor([2, 3]), unsafe=True)
    np.testing.assert_allclose(got, want, equal_nan=True)
    np.testing.assert_allclose(gg, gw, atol=1e-12)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("initial", [None, 0.25])
def test_segment_reduce_gradcheck_and_gradgradcheck(reduce, initial):
    x = tl.tensor(np.random.default_rng(2).standard_normal((2, 5, 2)), requires_grad=True)
    L = tl.tensor([[2, 3], [4, 1]])

    def f(x):
        return tl.segment_reduce(x, reduce, lengths=L, axis=1, initial=initial)
    assert tl.autograd.gradcheck(f, [x])
    assert tl.autograd.gradgradcheck(f, [x])


def test_segment_reduce_max_tie_with_initial_goes_to_the_data():
    a = np.array([5.0, 3.0, 2.0, 2.0])
    for red, init in (("max", 5.0), ("min", 2.0)):
        want, gw = _torch_grad(a, red, np.ones(2), lengths=torch.tensor([2, 2]), initial=init)
        got, gg = _tl_grad(a, red, np.ones(2), lengths=tl.tensor([2, 2]), initial=init)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(gg, gw)


def test_segment_reduce_ties_share_a_negative_gradient_as_scatter_reduce():
    # PyTorch's segment_reduce hands a negative gradient whole to every tie (see above); its
    # scatter_reduce, and tensorlib's segment_reduce, share it evenly
    a = np.array([-1.0, 2.0, -1.0, 2.0])
    t = torch.tensor(a, requires_grad=True)
    out = torch.zeros(2, dtype=torch.float64).scatter_reduce(
        0, torch.tensor([0, 1, 0, 1]), t, "amax", include_self=False)
    (gw,) = torch.autograd.grad(out, t, torch.tensor([-3.0, 2.0], dtype=torch.float64))
    x = tl.tensor(a[[0, 2, 1, 3]], requires_grad=True)
    (gg,) = tl.grad(tl.segment_reduce(x, "max", lengths=tl.tensor([2, 2])), x,
                    tl.tensor([-3.0, 2.0], dtype=tl.float64))
    np.testing.assert_array_equal(gg.numpy(), gw.numpy()[[0, 2, 1, 3]])


def test_segment_reduce_of_no_elements_stays_on_the_tape():
    for reduce in REDUCES:
        x = tl.zeros(0, 3, dtype=tl.float64, requires_grad=True)
        out = tl.segment_reduce(x, reduce, lengths=tl.tensor([0, 0]))
        want = torch.segment_reduce(torch.zeros(0, 3, dtype=torch.float64), reduce,
                                    lengths=torch.tensor([0, 0]))
        np.testing.assert_array_equal(out.numpy(), want.numpy())
        (g,) = tl.grad(out, x, tl.ones(2, 3, dtype=tl.float64))
        assert tuple(g.shape) == (0, 3)


def test_segment_reduce_errors():
    x = tl.ones(4)
    with pytest.raises(TypeError, match="exactly one of lengths= or offsets="):
        tl.segment_reduce(x, "sum")
    with pytest.raises(TypeError, match="exactly one"):
        tl.segment_reduce(x, "sum", lengths=tl.tensor([4]), offsets=tl.tensor([0, 4]))
    with pytest.raises(ValueError, match="reduce must be one of"):
        tl.segment_reduce(x, "any", lengths=tl.tensor([4]))
    with pytest.raises(TypeError, match="floating point"):
        tl.segment_reduce(tl.tensor([1, 2]), "sum", lengths=tl.tensor([2]))
    with pytest.raises(TypeError, match="integer tensor"):
        tl.segment_reduce(x, "sum", lengths=tl.tensor([4.0]))
    with pytest.raises(ValueError, match=r"add up to \[3\] but the axis has 4"):
        tl.segment_reduce(x, "sum", lengths=tl.tensor([1, 2]))
    with pytest.raises(ValueError, match="no more than 4 with unsafe=True"):
        tl.segment_reduce(x, "sum", lengths=tl.tensor([3, 2]), unsafe=True)
    with pytest.raises(ValueError, match="must not be negative"):
        tl.segment_reduce(x, "sum", lengths=tl.tensor([5, -1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        tl.segment_reduce(x, "sum", offsets=tl.tensor([0, 3, 2]))
    with pytest.raises(ValueError, match="non-decreasing and within"):
        tl.segment_reduce(x, "sum", offsets=tl.tensor([0, 5]))
    with pytest.raises(ValueError, match="last dim of lengths"):
        tl.segment_reduce(tl.ones(2, 3), "sum", lengths=tl.tensor([3]), axis=1)
    with pytest.raises(ValueError, match=r"data's dims before the axis, \(2,\)"):
        tl.segment_reduce(tl.ones(2, 3), "sum", lengths=tl.tensor([[3]]), axis=1)


def test_segment_reduce_capture():
    # constant bounds are captured and replayed with new data; bounds that are graph inputs
    # are refused with the capture error (the ids are built on the host)
    @tl.function
    def pool(x):
        return tl.segment_reduce(x, "max", lengths=[2, 1])
    np.testing.assert_array_equal(pool(tl.tensor([1.0, 3.0, 2.0])).numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(pool(tl.tensor([5.0, 3.0, 7.0])).numpy(), [5.0, 7.0])
    x, L = tl.tensor([1.0, 3.0, 2.0]), tl.tensor([2, 1])
    with pytest.raises(CaptureError, match="while tracing"):
        with tl.capture(x, L):
            tl.segment_reduce(x, "sum", lengths=L)


@pytest.mark.parametrize("fn", [lambda t: tl.repeat_interleave(t),
                                lambda t: tl.unique(t, dim=0),
                                lambda t: tl.unique_consecutive(t, dim=0),
                                lambda t: t.nonzero()])
def test_data_dependent_sizes_refused_under_capture(fn):
    t = tl.tensor([1, 0, 2])
    with pytest.raises(CaptureError, match="while tracing"):
        with tl.capture(t):
            fn(t)


# --- nonzero: the method is PyTorch's, the function NumPy's -----------------------------------
def test_nonzero_method_follows_torch():
    a = np.random.default_rng(3).integers(0, 2, (3, 4))
    x, t = tl.tensor(a), torch.tensor(a)
    _eq(x.nonzero(), t.nonzero())
    _eq(x.nonzero(as_tuple=True), t.nonzero(as_tuple=True))
    _eq(tl.Tensor.nonzero(x), t.nonzero())
    mask = tl.tensor([0.0, 2.0, 0.0, 3.0]) > 0
    np.testing.assert_array_equal(mask.nonzero().view(-1).numpy(), [1, 3])
    for v in (3, 0):
        _eq(tl.tensor(v).nonzero(), torch.tensor(v).nonzero())
        _eq(tl.tensor(v).nonzero(as_tuple=True), torch.tensor(v).nonzero(as_tuple=True))
    _eq(tl.zeros(2, 0).nonzero(), torch.zeros(2, 0).nonzero())


def test_nonzero_function_stays_numpy():
    a = np.array([[0, 1], [2, 0]])
    got = tl.nonzero(tl.tensor(a))
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, np.nonzero(a)):
        np.testing.assert_array_equal(g.numpy(), w)
    _eq(tl.nonzero(tl.tensor(a), as_tuple=False), torch.nonzero(torch.tensor(a)))
    assert tl.nonzero.__name__ == "nonzero" and "NumPy" in tl.nonzero.__doc__
