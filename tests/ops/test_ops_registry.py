"""Every registered op: forward vs NumPy, gradcheck, gradgradcheck (float64)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
from cases import COVERED_ELSEWHERE, draw_inputs, load_all

CASES = load_all()
BY_ID = {c.id: c for c in CASES}


def _cast(a, dtype):
    """A float input in ``dtype``, a complex one in the complex dtype of that precision."""
    a = np.asarray(a)
    if dtype is None or a.dtype.kind not in "fc":
        return a
    return a.astype(dtype if a.dtype.kind == "f" else np.result_type(dtype, np.complex64))


def _tensors(case, arrays, dtype=None, grad=True):
    out = []
    for i, a in enumerate(arrays):
        t = tl.tensor(_cast(a, dtype))
        diff = case.diff if case.diff is not None else tuple(
            k for k, x in enumerate(arrays) if np.asarray(x).dtype.kind in "fc")
        if grad and i in diff:
            t.requires_grad_(True)
        out.append(t)
    return out


def _bind(case, params):
    return (lambda *ts: case.fn(*ts, **params)) if params else case.fn


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def test_every_op_has_a_case():
    covered = {c.op for c in CASES} | set(COVERED_ELSEWHERE)
    missing = sorted(set(tl.REGISTRY) - covered)
    assert not missing, f"registered ops without a test case: {missing}"


def test_cases_name_registered_ops():
    unknown = sorted({c.op for c in CASES} - set(tl.REGISTRY))
    assert not unknown, f"cases for ops that are not registered: {unknown}"


@pytest.mark.parametrize("cid", sorted(BY_ID))
@given(data=st.data())
def test_forward_matches_numpy(cid, data):
    case = BY_ID[cid]
    if case.ref is None:
        pytest.skip("no NumPy reference for this case")
    arrays, params = draw_inputs(case, data.draw)
    for dtype, tol in ((np.float64, 1e-7), (np.float32, 1e-4)):
        ts = _tensors(case, arrays, dtype, grad=False)
        got = _as_tuple(case.fn(*ts, **params))
        ref_in = [_cast(a, dtype) for a in arrays]
        with np.errstate(all="ignore"):
            want = _as_tuple(case.ref(*ref_in, **params))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            w = np.asarray(w)
            assert g.shape == w.shape, f"{cid}: shape {g.shape} != {w.shape}"
            wide = np.complex128 if w.dtype.kind == "c" else np.float64
            assert (g.dtype.kind == "c") == (w.dtype.kind == "c"), f"{cid}: dtype {g.dtype}"
            np.testing.assert_allclose(g.numpy().astype(wide), w.astype(wide),
                                       rtol=max(tol, case.rtol if dtype == np.float64 else tol),
                                       atol=max(tol, case.atol), equal_nan=True)


GRAD = sorted(c.id for c in CASES if c.grad)
GRADGRAD = sorted(c.id for c in CASES if c.grad and c.gradgrad)


@pytest.mark.parametrize("cid", GRAD)
@given(data=st.data())
def test_gradcheck(cid, data):
    case = BY_ID[cid]
    arrays, params = draw_inputs(case, data.draw)
    ts = _tensors(case, arrays, np.float64)
    if not any(t.requires_grad for t in ts):
        pytest.skip("no differentiable input")
    assert tl.gradcheck(_bind(case, params), ts, eps=case.extra.get("eps", 1e-6),
                        atol=case.atol, rtol=case.rtol)


@pytest.mark.parametrize("cid", GRADGRAD)
@given(data=st.data())
def test_gradgradcheck(cid, data):
    case = BY_ID[cid]
    arrays, params = draw_inputs(case, data.draw)
    ts = _tensors(case, arrays, np.float64)
    if not any(t.requires_grad for t in ts):
        pytest.skip("no differentiable input")
    assert tl.gradgradcheck(_bind(case, params), ts, eps=case.extra.get("eps", 1e-6),
                            atol=case.atol, rtol=case.rtol)
