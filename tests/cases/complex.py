"""Cases for the complex-number ops (tensorlib/ops/complex.py), NumPy as reference."""
from __future__ import annotations

import numpy as np

import tensorlib as tl

from . import add, arr, carr, shapes


def _z(draw, away=False):
    return [carr(draw, draw(shapes(0, 3)), away_from_zero=away)]


def _pair(draw):
    s = draw(shapes(0, 3))
    return [arr(draw, s), arr(draw, s)]


def _pairs(draw):
    return [arr(draw, draw(shapes(0, 2)) + (2,))]


add("conj", tl.conj, _z, np.conj)
add("real", tl.real, _z, np.real)
add("imag", tl.imag, _z, np.imag)
add("view_as_real", tl.view_as_real, _z, lambda z: np.stack([z.real, z.imag], axis=-1))
add("view_as_complex", lambda x: tl.view_as_complex(x.contiguous()), _pairs,
    lambda x: x[..., 0] + 1j * x[..., 1])
add("complex", tl.complex, _pair, lambda re, im: re + 1j * im)
add("angle_complex", tl.angle, lambda d: _z(d, away=True), np.angle)
add("sgn_complex", tl.sgn, lambda d: _z(d, away=True), lambda z: z / np.abs(z))
add("abs", tl.abs, lambda d: _z(d, away=True), np.abs, name="complex")
