"""Test helpers: :func:`assert_close` (``torch.testing.assert_close``) and
:func:`make_tensor`.

>>> tl.testing.assert_close(tl.tensor([1.0, 2.0]), tl.tensor([1.0, 2.0 + 1e-7]))
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._tensor import Tensor

__all__ = ["assert_allclose", "assert_close", "make_tensor"]

# PyTorch's default tolerances per dtype: (rtol, atol); integers and bool compare exactly
_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
               np.dtype(np.float64): (1e-7, 1e-7)}
# a complex dtype takes its parts' tolerances, as PyTorch's
_TOLERANCES.update({np.dtype(np.complex64): _TOLERANCES[np.dtype(np.float32)],
                    np.dtype(np.complex128): _TOLERANCES[np.dtype(np.float64)]})


def _as_array(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _fail(message: str, msg) -> None:
    if callable(msg):
        message = msg(message)
    elif msg is not None:
        message = msg
    raise AssertionError(message)


def _compare(actual, expected, path: str, rtol, atol, equal_nan, check_device, check_dtype,
             msg) -> None:
    where = f" (at {path})" if path else ""
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            _fail(f"The keys of the mappings do not match{where}: {sorted(map(str, actual))} "
                  f"!= {sorted(map(str, expected))}.", msg)
        for k in actual:
            _compare(actual[k], expected[k], f"{path}[{k!r}]", rtol, atol, equal_nan,
                     check_device, check_dtype, msg)
        return
    seqs = (list, tuple)
    if isinstance(actual, seqs) and isinstance(expected, seqs) and not (
            isinstance(actual, Tensor) or isinstance(expected, Tensor)):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences does not match{where}: {len(actual)} != "
                  f"{len(expected)}.", msg)
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, f"{path}[{i}]", rtol, atol, equal_nan, check_device, check_dtype,
                     msg)
        return
    if isinstance(actual, Tensor) != isinstance(expected, Tensor):
        _fail(f"Both inputs must be tensors, or neither{where}: got "
              f"{type(actual).__name__} and {type(expected).__name__}.", msg)
    if isinstance(actual, Tensor):
        if check_device and actual.device != expected.device:
            _fail(f"The values for attribute 'device' do not match{where}: {actual.device} != "
                  f"{expected.device}.", msg)
    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        _fail(f"The values for attribute 'shape' do not match{where}: {a.shape} != "
              f"{e.shape}.", msg)
    if check_dtype and isinstance(actual, Tensor) and a.dtype != e.dtype:
        _fail(f"The values for attribute 'dtype' do not match{where}: {a.dtype} != "
              f"{e.dtype}.", msg)
    if not isinstance(actual, Tensor):     # Python numbers: compared in float64 (or exactly)
        dt = np.result_type(a, e)
        a, e = a.astype(dt), e.astype(dt)
    dt = a.dtype if a.dtype == e.dtype else np.result_type(a, e)
    r0, a0 = _TOLERANCES.get(np.dtype(dt), (0.0, 0.0))
    if not isinstance(actual, Tensor) and dt.kind in "fc":
        r0, a0 = _TOLERANCES[np.dtype(np.float64)]
    r = r0 if rtol is None else rtol
    t = a0 if atol is None else atol
    exact = dt.kind in "biu" and rtol is None and atol is None
    wide = np.complex128 if dt.kind == "c" else np.float64
    af, ef = a.astype(wide), e.astype(wide)
    if dt.kind == "c":
        # torch.isclose's rule on complex values: equal, both NaN (a NaN part makes the value
        # NaN) with equal_nan, or a finite |a - e| <= atol + rtol * |e|
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(af - ef)
            ok = (af == ef) | (np.isfinite(err) & (err <= t + r * np.abs(ef)))
        if equal_nan:
            ok |= np.isnan(af) & np.isnan(ef)
    else:
        # PyTorch's rule is NumPy's: |a - e| <= atol + rtol * |e|, equal infinities equal
        ok = np.isclose(af, ef, rtol=r, atol=t, equal_nan=equal_nan)
    if ok.all():
        return
    bad = ~ok
    n, total = int(bad.sum()), a.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.abs(af - ef)         # for the message only
        rel = np.where(ef != 0, diff / np.abs(ef), np.where(diff == 0, 0.0, np.inf))
    d_abs = np.where(np.isnan(diff), np.inf, diff)
    i_abs = tuple(map(int, np.unravel_index(int(np.argmax(d_abs)), a.shape))) if a.ndim else ()
    d_rel = np.where(np.isnan(rel), np.inf, rel)
    i_rel = tuple(map(int, np.unravel_index(int(np.argmax(d_rel)), a.shape))) if a.ndim else ()
    kind = "equal" if exact else "close"
    lines = [f"Tensor-likes are not {kind}!{where}", "",
             f"Mismatched elements: {n} / {total} ({100.0 * n / total:.1f}%)",
             f"Greatest absolute difference: {diff[i_abs] if a.ndim else float(diff)} at index "
             f"{i_abs}" + ("" if exact else f" (up to {t} allowed)"),
             f"Greatest relative difference: {rel[i_rel] if a.ndim else float(rel)} at index "
             f"{i_rel}" + ("" if exact else f" (up to {r} allowed)")]
    _fail("\n".join(lines), msg)


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True,
                 rtol: float | None = None, atol: float | None = None, equal_nan: bool = False,
                 check_device: bool = True, check_dtype: bool = True, check_layout: bool = True,
                 check_stride: bool = False,
                 msg: str | Callable[[str], str] | None = None) -> None:
    """Raise ``AssertionError`` unless ``actual`` and ``expected`` are close, as
    ``torch.testing.assert_close``: ``|actual - expected| <= atol + rtol * |expected|``
    elementwise, with PyTorch's default tolerances per dtype (float32 and complex64: rtol
    1.3e-6, atol 1e-5; float64 and complex128: 1e-7, 1e-7; float16: 1e-3, 1e-5; integers
    and bool exactly; ``|.|`` of complex values is their modulus) unless both
    ``rtol`` and ``atol`` are given. Tensors must match in shape, and in dtype and device
    unless ``check_dtype``/``check_device`` is False. Sequences and mappings are compared
    item by item; Python numbers as float64. NaNs are equal only with ``equal_nan``.

    >>> tl.testing.assert_close(tl.tensor([1, 2]), tl.tensor([1, 2]))
    """
    if (rtol is None) != (atol is None):
        raise ValueError("assert_close: rtol and atol must both be given, or neither "
                         f"(got rtol={rtol}, atol={atol})")
    _compare(actual, expected, "", rtol, atol, equal_nan, check_device, check_dtype, msg)


def make_tensor(*shape, dtype, device="cpu", low: float | None = None,
                high: float | None = None, requires_grad: bool = False,
                noncontiguous: bool = False, exclude_zero: bool = False) -> Tensor:
    """A tensor of random values in ``[low, high)`` (``torch.testing.make_tensor``): floats
    default to [-9, 9), integers to [-9, 10) (unsigned and bool from 0)."""
    from . import _dtypes
    from .random import rng as _rng
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], Sequence) else shape
    dt = _dtypes.as_dtype(dtype)
    rng = _rng()
    if dt.kind == "b":
        a = rng.integers(0, 2, shape).astype(bool)
    elif dt.kind in "iu":
        lo = int(low) if low is not None else (0 if dt.kind == "u" else -9)
        hi = int(high) if high is not None else 10
        a = rng.integers(lo, hi, shape).astype(dt)
    else:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        a = rng.uniform(lo, hi, shape).astype(dt)
        if dt.kind == "c":          # real and imaginary parts each in [low, high)
            a = a + 1j * rng.uniform(lo, hi, shape).astype(dt)
    if exclude_zero:
        a[a == 0] = 1 if dt.kind not in "fc" else np.finfo(dt).tiny
    from .creation import tensor
    t = tensor(a, device=device)
    if noncontiguous and t.ndim and t.numel() > 1:
        t = tensor(np.repeat(a, 2, axis=-1), device=device)[..., ::2]
    if requires_grad:
        t.requires_grad_(True)
    return t


# assert_allclose's looser defaults, PyTorch's (rtol, atol)
_ALLCLOSE_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-3), np.dtype(np.float32): (1e-4, 1e-5),
                        np.dtype(np.float64): (1e-5, 1e-8), np.dtype(np.complex64): (1e-4, 1e-5),
                        np.dtype(np.complex128): (1e-5, 1e-8)}


def assert_allclose(actual: Any, expected: Any, rtol: float | None = None,
                    atol: float | None = None, equal_nan: bool = True, msg: str = "") -> None:
    """Deprecated (``torch.testing.assert_allclose``; use :func:`assert_close`): as
    :func:`assert_close` with ``check_dtype=False``, NaNs equal by default and looser
    default tolerances (the larger of both dtypes': float32 rtol 1e-4, atol 1e-5; float64
    1e-5, 1e-8; float16 1e-3, 1e-3); non-tensors are made tensors (``expected`` of
    ``actual``'s dtype). Warns a FutureWarning, as PyTorch's."""
    import warnings

    from .creation import tensor
    warnings.warn("`tl.testing.assert_allclose()` is deprecated (as torch.testing's since "
                  "1.12). Please use `tl.testing.assert_close()` instead.", FutureWarning,
                  stacklevel=2)
    if not isinstance(actual, Tensor):
        actual = tensor(actual)
    if not isinstance(expected, Tensor):
        expected = tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        tols = [_ALLCLOSE_TOLERANCES.get(np.dtype(t.dtype), (0.0, 0.0))
                for t in (actual, expected)]
        rtol, atol = max(r for r, _ in tols), max(a for _, a in tols)
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan,
                 check_device=True, check_dtype=False, check_stride=False, msg=msg or None)
