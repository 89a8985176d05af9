"""Regenerates the float64 erf / erfcx coefficients of tensorlib/_simd_f64.h with mpmath.

    python scripts/fit_erf_f64.py        # prints the C constants (a few seconds)

Each function is interpolated at Chebyshev nodes (near-minimax), its Chebyshev series turned
into powers of the evaluation variable in 60-digit arithmetic, and rounded to doubles:

- Q(z) = (erf(x) / x - 2 / sqrt(pi)) / z, z = x^2 in [0, 1] (tl_erf_small), in powers of z;
- h(u) = erfcx(a) (a + 2), u = 1 / (a + 2), a in [1/2, inf), so u in [0, 0.4]
  (TL_ERFCX_FIT), in powers of w = u - 0.2 (the double nearest 0.2, as the C code subtracts
  it); its two lowest coefficients also as hi + lo.

The degree is the lowest whose dropped Chebyshev terms all stay below ``TOL`` times the
function's value at the interval's right end.
"""
from __future__ import annotations

from math import comb

import mpmath as mp

mp.mp.dps = 60
TOL = mp.mpf("2e-18")
K = 2                      # h's shift: u = 1 / (a + K)


def chebyshev(f, a, b, n: int) -> list:
    """The first n + 1 coefficients of f's Chebyshev interpolant on [a, b]."""
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / (n + 1)) for k in range(n + 1)]
    vals = [f((b - a) / 2 * t + (a + b) / 2) for t in nodes]
    c = [2 * mp.fsum(v * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / (n + 1))
                     for k, v in enumerate(vals)) / (n + 1) for j in range(n + 1)]
    c[0] /= 2
    return c


def powers(c: list, a, b, centre) -> list:
    """Chebyshev coefficients on [a, b] as coefficients of powers of (t - centre)."""
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for k in range(2, len(c)):
        nxt = [mp.mpf(0)] + [2 * v for v in T[k - 1]]
        for i, v in enumerate(T[k - 2]):
            nxt[i] -= v
        T.append(nxt)
    mono = [mp.mpf(0)] * len(c)              # powers of v = (t - mid) / r
    for ck, Tk in zip(c, T):
        for i, v in enumerate(Tk):
            mono[i] += ck * v
    mid, r = (a + b) / 2, (b - a) / 2
    d = centre - mid                         # t - mid = (t - centre) + d
    out = [mp.mpf(0)] * len(c)
    for i, m in enumerate(mono):
        for j in range(i + 1):
            out[j] += m / r ** i * comb(i, j) * d ** (i - j)
    return out


def fit(f, a, b, centre) -> list:
    c = chebyshev(f, a, b, 45)
    scale = abs(f(b))
    n = next(j for j in range(len(c)) if all(abs(v) < TOL * scale for v in c[j:]))
    return powers(c[:n], a, b, centre)


def main() -> None:
    c0 = 2 / mp.sqrt(mp.pi)

    def q(z):
        if z == 0:
            return -c0 / 3
        x = mp.sqrt(z)
        return (mp.erf(x) / x - c0) / z

    def h(u):
        if u == 0:
            return 1 / mp.sqrt(mp.pi)
        a = 1 / u - K
        return mp.erfc(a) * mp.exp(a * a) / u

    def define(name, v):
        hi = float(v)
        print(f"#define {name} {hi!r}\n#define {name}_LO {float(v - mp.mpf(hi))!r}")

    define("TL_ERF_C0", c0)
    qc = fit(q, mp.mpf(0), mp.mpf(1), mp.mpf(0))
    print(f"/* Q(z), degree {len(qc) - 1}, highest first */")
    print(",\n".join(repr(float(v)) for v in reversed(qc)))
    hc = fit(h, mp.mpf(0), 1 / (mp.mpf("0.5") + K), mp.mpf(0.2))     # (the double 0.2)
    define("TL_ERFCX_C0", hc[0])
    define("TL_ERFCX_C1", hc[1])
    print(f"/* h(w), degree {len(hc) - 1}, lowest first (the first two: 0.0 in the table) */")
    print(",\n".join(repr(float(v)) for v in hc))


if __name__ == "__main__":
    main()
