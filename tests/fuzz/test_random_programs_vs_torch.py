"""Random programs of ops run in tensorlib and in PyTorch: same values, same gradients."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")

# (name, tensorlib fn, torch fn): unary ops safe on any real input
UNARY = [
    ("tanh", tl.tanh, torch.tanh), ("sigmoid", tl.sigmoid, torch.sigmoid),
    ("sin", tl.sin, torch.sin), ("cos", tl.cos, torch.cos), ("exp", lambda x: tl.exp(x * 0.3),
                                                             lambda x: torch.exp(x * 0.3)),
    ("square", tl.square, torch.square), ("softplus", tl.softplus,
                                          torch.nn.functional.softplus),
    ("gelu", tl.gelu, torch.nn.functional.gelu), ("silu", tl.silu, torch.nn.functional.silu),
    ("erf", tl.erf, torch.erf), ("neg", tl.neg, torch.neg),
    ("log1p_abs", lambda x: tl.log1p(x.abs() + 0.1), lambda x: torch.log1p(x.abs() + 0.1)),
    ("sqrt", lambda x: (x * x + 1).sqrt(), lambda x: (x * x + 1).sqrt()),
    ("elu", tl.elu, torch.nn.functional.elu),
    ("leaky", lambda x: tl.leaky_relu(x, 0.1), lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    ("cumsum0", lambda x: x.cumsum(0), lambda x: x.cumsum(0)),
    ("flip", lambda x: x.flip(-1), lambda x: x.flip(-1)),
    ("roll", lambda x: x.roll(1, 0), lambda x: x.roll(1, 0)),
    ("softmax_like", lambda x: (x - x.logsumexp(axis=-1, keepdims=True)).exp(),
     lambda x: torch.softmax(x, -1)),
    ("norm_rows", lambda x: x / (x.norm(axis=-1, keepdims=True) + 1),
     lambda x: x / (x.norm(dim=-1, keepdim=True) + 1)),
    ("std_center", lambda x: x - x.mean(axis=0, keepdims=True),
     lambda x: x - x.mean(0, keepdim=True)),
]
BINARY = [
    ("add", tl.add, torch.add), ("sub", tl.sub, torch.sub), ("mul", tl.mul, torch.mul),
    ("div", lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    ("maximum", lambda a, b: tl.maximum(a, b + 0.01), lambda a, b: torch.maximum(a, b + 0.01)),
    ("matmul_t", lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    ("where", lambda a, b: tl.where(a > b, a, b * 2), lambda a, b: torch.where(a > b, a, b * 2)),
    ("stack_sum", lambda a, b: tl.stack([a, b]).sum(axis=0),
     lambda a, b: torch.stack([a, b]).sum(0)),
]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 8),
       choices=st.lists(st.tuples(st.booleans(), st.integers(0, 1000), st.integers(0, 1000),
                                  st.integers(0, 1000)), min_size=8, max_size=8))
def test_random_programs_match_torch(seed, steps, choices):
    rng = np.random.default_rng(seed)
    n = 3
    arrays = [rng.standard_normal((4, 4)) for _ in range(n)]
    tl_pool = [tl.tensor(a, requires_grad=True) for a in arrays]
    pt_pool = [torch.tensor(a, requires_grad=True) for a in arrays]
    tl_vals, pt_vals = list(tl_pool), list(pt_pool)
    for is_unary, k, i, j in choices[:steps]:
        i %= len(tl_vals)
        j %= len(tl_vals)
        if is_unary:
            _, f, g = UNARY[k % len(UNARY)]
            tl_vals.append(f(tl_vals[i]))
            pt_vals.append(g(pt_vals[i]))
        else:
            _, f, g = BINARY[k % len(BINARY)]
            tl_vals.append(f(tl_vals[i], tl_vals[j]))
            pt_vals.append(g(pt_vals[i], pt_vals[j]))
    out_tl = sum(v.sum() * (k + 1) for k, v in enumerate(tl_vals[n:]))
    out_pt = sum(v.sum() * (k + 1) for k, v in enumerate(pt_vals[n:]))
    np.testing.assert_allclose(out_tl.item(), out_pt.item(), rtol=1e-9, atol=1e-9)
    out_tl.backward()
    out_pt.backward()
    for a, b in zip(tl_pool, pt_pool):
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy())
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", ["var", "std", "prod", "max", "logsumexp", "cumprod"])
def test_reduction_gradients_match_torch(name):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5))
    x, y = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    f_tl = {"var": lambda t: t.var(axis=1), "std": lambda t: t.std(axis=0),
            "prod": lambda t: t.prod(axis=1), "max": lambda t: t.max(axis=1),
            "logsumexp": lambda t: t.logsumexp(axis=0), "cumprod": lambda t: t.cumprod(1)}[name]
    f_pt = {"var": lambda t: t.var(1), "std": lambda t: t.std(0), "prod": lambda t: t.prod(1),
            "max": lambda t: t.amax(1), "logsumexp": lambda t: t.logsumexp(0),
            "cumprod": lambda t: t.cumprod(1)}[name]
    w = rng.standard_normal(f_pt(y).shape)
    (f_tl(x) * tl.tensor(w)).sum().backward()
    (f_pt(y) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_topk_match_torch_with_ties_and_nan(descending):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, (6, 9)).astype(np.float64)   # many ties
    a[1, 3] = a[4, 0] = np.nan                           # NaN sorts as the largest value
    x, y = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for axis in (0, 1, -1):
        v, i = tl.sort(x, axis=axis, descending=descending)
        tv, ti = torch.sort(y, dim=axis, descending=descending, stable=True)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(v.numpy(), tv.detach().numpy())
        np.testing.assert_array_equal(tl.argsort(x, axis, descending).numpy(), ti.numpy())
    b = np.random.default_rng(3).permutation(54).reshape(6, 9).astype(np.float64)  # no ties
    x, y = tl.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    v, i = x.topk(4, axis=1, largest=descending)
    tv, ti = y.topk(4, dim=1, largest=descending)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    w = rng.standard_normal((6, 4))
    (v * tl.tensor(w)).sum().backward()
    (tv * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())


@pytest.mark.parametrize("name", ["inv", "solve", "det", "slogdet", "cholesky", "eigh"])
def test_matrix_function_gradients_match_torch(name):
    rng = np.random.default_rng(4)
    a = rng.uniform(-1, 1, (2, 4, 4)) + 4 * np.eye(4)
    b = rng.standard_normal((2, 4, 3))
    x, y = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ls, lt = tl.linalg, torch.linalg
    f_tl, f_pt = {
        "inv": (ls.inv, lt.inv),
        "solve": (lambda m: ls.solve(m, tl.tensor(b)), lambda m: lt.solve(m, torch.tensor(b))),
        "det": (ls.det, lt.det),
        "slogdet": (lambda m: ls.slogdet(m)[1], lambda m: lt.slogdet(m)[1]),
        "cholesky": (lambda m: ls.cholesky(m @ m.mT), lambda m: lt.cholesky(m @ m.mT)),
        # w and, free of each eigenvector's sign, the products of two entries of a column
        "eigh": (lambda m: (lambda w, v: w + v[..., 0, :] * v[..., 1, :])(*ls.eigh(m + m.mT)),
                 lambda m: (lambda w, v: w + v[..., 0, :] * v[..., 1, :])(*lt.eigh(m + m.mT))),
    }[name]
    out_tl, out_pt = f_tl(x), f_pt(y)
    np.testing.assert_allclose(out_tl.numpy(), out_pt.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out_pt.shape)
    (out_tl * tl.tensor(w)).sum().backward()
    (out_pt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-8, atol=1e-10)
