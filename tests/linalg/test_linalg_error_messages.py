"""tl.linalg's cholesky / inv / solve (and their _ex forms with check_errors) raise
PyTorch's LinAlgError messages: the order of the failing leading minor or zero pivot, and the
batch element of a stack; the successful paths keep PyTorch's values and gradients."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _message(fn):
    try:
        fn()
    except RuntimeError as e:       # (torch's LinAlgError and tensorlib's both are)
        return type(e).__name__.lstrip("_"), str(e)
    raise AssertionError("no error raised")


def _both(make, call):
    """The (class name, message) of torch's and tensorlib's errors for one float64 input."""
    arrays = make()
    t = _message(lambda: call(torch, *[torch.tensor(a) for a in arrays]))
    x = _message(lambda: call(tl, *[tl.tensor(a) for a in arrays]))
    return t, x


def _stack(n, batch, bad, order):
    """``batch`` (a shape) of n x n SPD matrices, the flat element ``bad`` with its leading
    minor of order ``order`` not positive definite."""
    rng = np.random.default_rng(n * 31 + order)
    m = rng.standard_normal((int(np.prod(batch, dtype=int)), n, n))
    a = m @ m.transpose(0, 2, 1) + n * np.eye(n)
    d = np.ones(n)
    d[order - 1] = -1.0
    a[bad] = np.diag(d) * 2.0
    return a.reshape(tuple(batch) + (n, n))


CHOLESKY = {
    "linalg.cholesky": lambda L, a: L.linalg.cholesky(a),
    "linalg.cholesky_upper": lambda L, a: L.linalg.cholesky(a, upper=True),
    "linalg.cholesky_ex": lambda L, a: L.linalg.cholesky_ex(a, check_errors=True),
}


@pytest.mark.parametrize("name", sorted(CHOLESKY))
@pytest.mark.parametrize("batch,bad", [((), 0), ((3,), 1), ((2, 3), 4), ((2, 2), 0)])
def test_cholesky_messages(name, batch, bad):
    t, x = _both(lambda: [_stack(3, batch, bad, 2)], CHOLESKY[name])
    assert x == t
    assert "leading minor of order 2" in x[1]
    assert (f"(Batch element {bad})" in x[1]) == bool(batch)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), batch=st.lists(st.integers(1, 3), max_size=2),
       data=st.data())
def test_cholesky_messages_property(n, batch, data):
    count = int(np.prod(batch, dtype=int))
    bad = data.draw(st.integers(0, count - 1))
    order = data.draw(st.integers(1, n))
    t, x = _both(lambda: [_stack(n, batch, bad, order)], CHOLESKY["linalg.cholesky"])
    assert x == t


def test_cholesky_complex_and_nan():
    for a in (np.array([[1, 2], [2, 1]], np.complex128),
              np.array([[1.0, np.nan], [np.nan, 1.0]])):
        t = _message(lambda: torch.linalg.cholesky(torch.tensor(a)))
        assert _message(lambda: tl.linalg.cholesky(tl.tensor(a))) == t


def test_cholesky_info_matches_torch():
    a = _stack(4, (2, 3), 4, 3)
    got = tl.linalg.cholesky_ex(tl.tensor(a)).info.numpy()
    np.testing.assert_array_equal(got, torch.linalg.cholesky_ex(torch.tensor(a)).info.numpy())


def _singular(n, batch, bad, col):
    rng = np.random.default_rng(n * 17 + col)
    a = rng.standard_normal((int(np.prod(batch, dtype=int)), n, n)) + 3 * n * np.eye(n)
    s = np.triu(np.ones((n, n)))      # exactly singular: a zero pivot at ``col``
    s[col - 1, col - 1] = 0.0
    a[bad] = s
    return a.reshape(tuple(batch) + (n, n))


SINGULAR = {
    "inv": lambda L, a: L.linalg.inv(a),
    "inv_ex": lambda L, a: L.linalg.inv_ex(a, check_errors=True),
    "solve": lambda L, a: L.linalg.solve(a, L.ones(a.shape[-1], dtype=a.dtype)),
    "solve_matrix": lambda L, a: L.linalg.solve(a, L.ones(a.shape[:-1] + (2,),
                                                          dtype=a.dtype)),
    "solve_right": lambda L, a: L.linalg.solve(a, L.ones(a.shape[:-2] + (2, a.shape[-1]),
                                                         dtype=a.dtype), left=False),
    "solve_ex": lambda L, a: L.linalg.solve_ex(a, L.ones(a.shape[-1], dtype=a.dtype),
                                               check_errors=True),
}


@pytest.mark.parametrize("name", sorted(SINGULAR))
@pytest.mark.parametrize("batch,bad", [((), 0), ((3,), 2), ((2, 2), 1)])
def test_singular_messages(name, batch, bad):
    t, x = _both(lambda: [_singular(3, batch, bad, 2)], SINGULAR[name])
    assert x == t


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), batch=st.lists(st.integers(1, 3), max_size=2), data=st.data())
def test_inv_messages_property(n, batch, data):
    bad = data.draw(st.integers(0, int(np.prod(batch, dtype=int)) - 1))
    col = data.draw(st.integers(1, n))
    t, x = _both(lambda: [_singular(n, batch, bad, col)], SINGULAR["inv"])
    assert x == t


def test_singular_broadcast_batch_and_complex():
    a = _singular(2, (2,), 1, 2)
    t = _message(lambda: torch.linalg.solve(torch.tensor(a), torch.ones(3, 1, 2, 2,
                                                                         dtype=torch.float64)))
    assert _message(lambda: tl.linalg.solve(tl.tensor(a), tl.ones(3, 1, 2, 2,
                                                                   dtype=tl.float64))) == t
    c = np.array([[1, 2], [2, 4]], np.complex128)
    t = _message(lambda: torch.linalg.inv(torch.tensor(c)))
    assert _message(lambda: tl.linalg.inv(tl.tensor(c))) == t
    for z in (np.zeros((3, 3), np.float32), np.ones((3, 2, 2))):
        t = _message(lambda: torch.linalg.inv(torch.tensor(z)))
        assert _message(lambda: tl.linalg.inv(tl.tensor(z))) == t


def test_errors_are_catchable_as_runtime_and_linalg_errors():
    a = tl.tensor([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(tl.linalg.LinAlgError, match="leading minor of order 2"):
        tl.linalg.cholesky(a)
    with pytest.raises(RuntimeError, match=r"^linalg.inv: The diagonal element 2 is zero"):
        tl.linalg.inv(tl.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match="square"):      # not a LinAlgError: shapes
        tl.linalg.cholesky(tl.ones(2, 3))


@pytest.mark.parametrize("upper", [False, True])
def test_values_and_gradients_unchanged(upper):
    rng = np.random.default_rng(9)
    m = rng.standard_normal((2, 3, 3))
    a = m @ m.transpose(0, 2, 1) + 3 * np.eye(3)
    b = rng.standard_normal((2, 3, 2))
    res = []
    for L in (torch, tl):
        A = L.tensor(a, requires_grad=True)
        B = L.tensor(b, requires_grad=True)
        out = (L.linalg.cholesky(A, upper=upper).sum() + L.linalg.inv(A).sum()
               + (L.linalg.solve(A, B) ** 2).sum())
        ga, gb = L.autograd.grad(out, (A, B), create_graph=True)
        (gga,) = L.autograd.grad((ga ** 2).sum() + gb.sum(), A)
        res.append([v.detach().numpy() for v in (out, ga, gb, gga)])
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
