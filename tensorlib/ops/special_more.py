"""Registry ops for the rest of ``torch.special``: the regularized incomplete gamma functions
(``gammainc``, ``gammaincc``), Bessel functions (``bessel_j0/j1/y0/y1``,
``modified_bessel_i0/i1/k0/k1``, ``scaled_modified_bessel_k0/k1``, ``spherical_bessel_j0``)
and ``airy_ai`` (with the private ``airy_ai_prime`` for its derivative). The public names are
in :mod:`tensorlib.special`.

Forward kernels: ``scipy.special`` on the CPU when it is installed (an optional dependency;
``tensorlib.ops._scipy.DISABLED`` switches it off), else the NumPy forms below, derived here:
power series near 0, Miller's backward recurrence and Neumann's series for J and Y in the
middle, the trapezoidal rule on ``K_nu(x) = int_0^inf exp(-x cosh t) cosh(nu t) dt`` (which
converges geometrically in the step), Hankel's expansions for large arguments, Taylor steps
from a table of Ai and Ai' (computed once in 60-digit decimal arithmetic from the Maclaurin
series), and the series / continued fraction of the incomplete gamma function. Every
kernel computes in float64 and casts back. On GPUs ``cupyx.scipy.special`` where it has the
function, else the NumPy form through the host. Values at +-inf follow PyTorch 2.13 (NaN
for J, Y, I and Ai there). The vjps are written in these ops, so grad of grad works.
"""
from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import _scipy as _sp
from . import elementwise as E
from . import special_fns as SF
from .registry import OpDef, register
from ._util import (as_operands, elementwise_cost, float_infer, make_binary_infer,
                    promote_types, same_category, to_float, to_tensor, unbroadcast)

_EULER = 0.57721566490153286061
_2_PI = 2.0 / math.pi


def _sc():
    """scipy.special, or None when absent or switched off (``_scipy.DISABLED``)."""
    return None if _sp.DISABLED else SF._scipy()


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _hankel_coefs(nu: int, terms: int) -> list[float]:
    """a_k(nu) = prod_{j<=k} (4 nu^2 - (2j - 1)^2) / (k! 8^k), Hankel's expansions' terms."""
    out, a = [1.0], 1.0
    for k in range(1, terms):
        a *= (4.0 * nu * nu - (2 * k - 1) ** 2) / (k * 8.0)
        out.append(a)
    return out


_HK = {nu: _hankel_coefs(nu, 40) for nu in (0, 1)}


# --- J0, J1, Y0, Y1 ------------------------------------------------------------------------
def _jy_series(a):
    """Power series for 0 <= a < 2 (no cancellation: the terms fall from the first)."""
    h = a / 2
    z = h * h
    lg = np.log(a) - math.log(2)         # log(a / 2) underflows for subnormal a
    j0 = np.zeros_like(a)
    j1 = np.zeros_like(a)
    y0s = np.zeros_like(a)
    y1s = np.zeros_like(a)
    t0 = np.ones_like(a)            # (-z)^k / k!^2
    t1 = np.ones_like(a)            # (-z)^k / (k! (k+1)!)
    hk = 0.0                        # harmonic number H_k
    for k in range(0, 30):
        if k:
            t0 = t0 * -z / (k * k)
            t1 = t1 * -z / (k * (k + 1))
            hk += 1.0 / k
        j0 = j0 + t0
        j1 = j1 + t1
        y0s = y0s - hk * t0                      # sum (-1)^(k+1) H_k z^k / k!^2
        y1s = y1s + (2 * hk + 1.0 / (k + 1) - 2 * _EULER) * t1   # psi(k+1) + psi(k+2)
    j1 = h * j1
    y0 = _2_PI * ((lg + _EULER) * j0 + y0s)
    with np.errstate(divide="ignore"):
        y1 = -_2_PI / a + _2_PI * lg * j1 - h * y1s / math.pi
    return j0, j1, y0, y1


def _jy_miller(a, n_top: int = 80):
    """2 <= a < 25: J_n by backward recurrence from n_top, normalised by
    1 = J0 + 2 sum J_2k; Y0 by Neumann's series
    Y0 = (2/pi)(log(a/2) + gamma) J0 - (4/pi) sum (-1)^k J_2k / k, Y1 = -Y0'."""
    f = [None] * (n_top + 2)
    f[n_top + 1] = np.zeros_like(a)
    f[n_top] = np.full_like(a, 1e-30)
    for n in range(n_top, 0, -1):
        f[n - 1] = (2.0 * n / a) * f[n] - f[n + 1]
    s = f[0] + 2.0 * sum(f[n] for n in range(2, n_top + 1, 2))
    j = [v / s for v in f]
    lg = np.log(a / 2) + _EULER
    y0 = lg * j[0]
    y1 = lg * j[1] - j[0] / a
    for k in range(1, n_top // 2):
        sg = -1.0 if k % 2 else 1.0
        y0 = y0 - 2.0 * sg * j[2 * k] / k
        y1 = y1 + sg * (j[2 * k - 1] - j[2 * k + 1]) / k
    return j[0], j[1], _2_PI * y0, _2_PI * y1


def _jy_hankel(a):
    """a >= 25: J_nu = sqrt(2/(pi a)) (P cos chi - Q sin chi), Y_nu = ... (P sin + Q cos),
    chi = a - (nu/2 + 1/4) pi, with cos/sin of chi from cos a and sin a (exact reduction)."""
    c, s = np.cos(a), np.sin(a)
    amp = np.sqrt(_2_PI / a)
    out = []
    for nu in (0, 1):
        ak = _HK[nu]
        p = np.zeros_like(a)
        q = np.zeros_like(a)
        inv = 1.0 / a
        for k in range(len(ak) - 1, -1, -1):     # Horner in 1/a, sign (-1)^floor(k/2)
            sg = -1.0 if (k // 2) % 2 else 1.0
            if k % 2 == 0:
                p = p * inv + sg * ak[k]
                q = q * inv
            else:
                q = q * inv + sg * ak[k]
                p = p * inv
        if nu == 0:
            cc, ss = (c + s) / math.sqrt(2), (s - c) / math.sqrt(2)
        else:
            cc, ss = (s - c) / math.sqrt(2), -(s + c) / math.sqrt(2)
        out += [amp * (p * cc - q * ss), amp * (p * ss + q * cc)]
    j0, y0, j1, y1 = out
    return j0, j1, y0, y1


def _jy_np(x):
    """(J0, J1, Y0, Y1) of float64 x (Y: NaN for x < 0; everything NaN at +-inf, as PyTorch)."""
    x = _f64(x)
    a = np.abs(x)
    fin = np.isfinite(a)
    res = [np.full(x.shape, np.nan) for _ in range(4)]
    with np.errstate(all="ignore"):
        for sel, fn in ((fin & (a < 2), _jy_series), (fin & (a >= 2) & (a < 25), _jy_miller),
                        (fin & (a >= 25), _jy_hankel)):
            if sel.any():
                for r, v in zip(res, fn(a[sel])):
                    r[sel] = v
    j0, j1, y0, y1 = res
    j1 = np.where(np.signbit(x), -j1, j1)      # -0 -> -0, as PyTorch
    y1 = np.where(x == 0, -np.inf, y1)          # -2/(pi x) + log(x/2) J1: -inf + (-inf * 0)
    y0 = np.where(x < 0, np.nan, y0)
    y1 = np.where(x < 0, np.nan, y1)
    return j0, j1, y0, y1


# --- I0, I1, K0, K1 -------------------------------------------------------------------------
def _i_series(a, terms=60):
    h = a / 2
    z = h * h
    i0 = np.ones_like(a)
    i1 = np.ones_like(a)
    k0s = np.full_like(a, -_EULER)                # sum psi(k+1) z^k / k!^2
    k1s = np.full_like(a, 1.0 - 2 * _EULER)       # sum (psi(k+1) + psi(k+2)) z^k/(k!(k+1)!)
    t0 = np.ones_like(a)
    t1 = np.ones_like(a)
    hk = 0.0
    for k in range(1, terms):
        t0 = t0 * z / (k * k)
        t1 = t1 * z / (k * (k + 1))
        hk += 1.0 / k
        i0 = i0 + t0
        i1 = i1 + t1
        k0s = k0s + (hk - _EULER) * t0
        k1s = k1s + (2 * hk + 1.0 / (k + 1) - 2 * _EULER) * t1
    return i0, h * i1, k0s, h * k1s


def _i_np(x, order: int):
    """I_order(x): the series below 30 (positive terms), Hankel's expansion above; NaN at
    +-inf, as PyTorch."""
    x = _f64(x)
    a = np.abs(x)
    with np.errstate(all="ignore"):
        near = np.where(a < 30, a, 0.0)
        series = _i_series(near, 80)[order]
        big = np.maximum(a, 30.0)
        ak = _HK[order]
        s = np.zeros_like(big)
        for k in range(30, -1, -1):
            s = s * (-1.0 / big) + ak[k]
        asym = np.exp(big) / np.sqrt(2 * np.pi * big) * s
        out = np.where(a < 30, series, asym)
        if order == 1:
            out = np.where(x < 0, -out, out)        # I1(-0) = +0, as PyTorch
        return np.where(np.isfinite(x), out, np.nan)


_KH = 0.1
_KT = np.arange(0, 81) * _KH      # t nodes up to 8: exp(-2 x sinh^2(4)) < 1e-600 for x >= 1


def _k_scaled_np(x, order: int):
    """exp(x) K_order(x) for x > 0. Below 1: the series
    K0 = -(log(x/2)) I0 + sum psi(k+1) z^k / k!^2, K1 = 1/x + log(x/2) I1 - (x/4) sum ...
    From 1 to 25: the trapezoidal rule on int_0^inf exp(-2 x sinh^2(t/2)) cosh(nu t) dt,
    exact to rounding for h = 0.1 (the integrand is analytic in a strip). Above: Hankel."""
    x = _f64(x)
    res = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        sel = x < 1
        if sel.any():
            a = x[sel]
            i0, i1, k0s, k1s = _i_series(a, 30)
            lg = np.log(a) - math.log(2)
            k = -lg * i0 + k0s if order == 0 else 1.0 / a + lg * i1 - k1s / 2
            res[sel] = np.exp(a) * k
        sel = (x >= 1) & (x < 25)
        if sel.any():
            a = x[sel][:, None]
            w = np.exp(-2.0 * a * np.sinh(_KT / 2) ** 2) * np.cosh(order * _KT)
            res[sel] = _KH * (w.sum(axis=1) - 0.5 * w[:, 0])
        sel = x >= 25
        if sel.any():
            a = x[sel]
            s = np.zeros_like(a)
            for c in reversed(_HK[order][:31]):
                s = s / a + c
            res[sel] = np.sqrt(np.pi / (2 * a)) * s
    return res


def _k_np(x, order: int, scaled: bool):
    x = _f64(x)
    with np.errstate(all="ignore"):
        out = _k_scaled_np(np.where(x > 0, x, 1.0), order)
        if not scaled:
            out = out * np.exp(-np.where(x > 0, x, 1.0))
        out = np.where(x == 0, np.inf, out)
        out = np.where(np.isposinf(x), 0.0, out)
        return np.where((x < 0) | np.isnan(x), np.nan, out)


# --- Airy Ai -------------------------------------------------------------------------------
_AI_STEP = 0.25
_AI_LIM = 10.0
_AI_TABLE: tuple[np.ndarray, np.ndarray] | None = None


def _dec_pi() -> Decimal:
    """pi = 16 atan(1/5) - 4 atan(1/239) (Machin), at the context's precision."""
    def atan_inv(n: int) -> Decimal:
        x = Decimal(1) / n
        x2, term, total, k = x * x, x, x, 1
        while True:
            term = -term * x2
            nxt = total + term / (2 * k + 1)
            if nxt == total:
                return total
            total, k = nxt, k + 1
    return 16 * atan_inv(5) - 4 * atan_inv(239)


def _bernoulli(n: int) -> list[Fraction]:
    """B_0 .. B_n exactly (Akiyama-Tanigawa)."""
    out, a = [], [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        out.append(a[0])
    return out


def _dec_gamma_third() -> Decimal:
    """Gamma(1/3) from Stirling's series at 1/3 + 60, then the recurrence down."""
    z = Decimal(1) / 3 + 60
    pi = _dec_pi()
    bern = _bernoulli(40)
    lg = (z - Decimal("0.5")) * z.ln() - z + (2 * pi).ln() / 2
    for k in range(1, 21):
        b = bern[2 * k]
        lg += Decimal(b.numerator) / Decimal(b.denominator) / (2 * k * (2 * k - 1)
                                                               * z ** (2 * k - 1))
    g = lg.exp()
    for j in range(60):
        g /= Decimal(1) / 3 + j
    return g


def _airy_table() -> tuple[np.ndarray, np.ndarray]:
    """Ai and Ai' at -10, -9.75, ..., 10 from the Maclaurin series in 60-digit arithmetic
    (the series cancels to ~1e-10 of its terms at -10): Ai = c1 f - c2 g, with
    c1 = 1 / (3^(2/3) Gamma(2/3)), c2 = 1 / (3^(1/3) Gamma(1/3)),
    Gamma(2/3) = 2 pi / (sqrt 3 Gamma(1/3))."""
    global _AI_TABLE
    if _AI_TABLE is not None:
        return _AI_TABLE
    with localcontext() as ctx:
        ctx.prec = 60
        g13 = _dec_gamma_third()
        three = Decimal(3)
        cube_root3 = (three.ln() / 3).exp()
        g23 = 2 * _dec_pi() / (three.sqrt() * g13)
        c1 = 1 / (cube_root3 * cube_root3 * g23)
        c2 = 1 / (cube_root3 * g13)
        n = int(round(_AI_LIM / _AI_STEP))
        ai, aip = [], []
        for i in range(-n, n + 1):
            x = Decimal(i) * Decimal(str(_AI_STEP))
            x3 = x ** 3
            f = fp = g = gp = Decimal(0)
            c = d = Decimal(1)          # c_k, d_k: f = sum c_k x^3k, g = sum d_k x^(3k+1)
            p = Decimal(1)              # x^3k
            for k in range(0, 120):
                f += c * p
                g += d * p * x
                gp += (3 * k + 1) * d * p
                if k:
                    fp += 3 * k * c * p / x if x else 0
                c /= (3 * k + 2) * (3 * k + 3)
                d /= (3 * k + 3) * (3 * k + 4)
                p *= x3
            ai.append(float(c1 * f - c2 * g))
            aip.append(float(c1 * fp - c2 * gp))
    _AI_TABLE = (np.array(ai), np.array(aip))
    return _AI_TABLE


def _u_coefs(n: int) -> list[float]:
    """u_k = (2k+1)(2k+3)...(6k-1) / (216^k k!), the Airy asymptotic coefficients."""
    out, u = [1.0], 1.0
    for k in range(n - 1):
        u *= (6 * k + 1) * (6 * k + 3) * (6 * k + 5) / (216.0 * (k + 1) * (2 * k + 1))
        out.append(u)
    return out


_U = _u_coefs(24)
_V = [1.0] + [-(6 * k + 1) / (6 * k - 1) * _U[k] for k in range(1, 24)]


def _two_prod(a, b):
    """``a * b`` as hi + lo, exactly (Dekker's split; NumPy has no fma)."""
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_thirds_pow15(z):
    """``2/3 z^(3/2)`` for z > 0 as hi + lo (double-double): Ai's phase for x = -z."""
    s = np.sqrt(z)
    pp, pe = _two_prod(s, s)
    s_lo = ((z - pp) - pe) / (2.0 * s)
    p, p_lo = _two_prod(z, s)
    t, t_lo = 2.0 * p, 2.0 * (p_lo + z * s_lo)
    q = t / 3.0
    m, me = _two_prod(q, np.full_like(q, 3.0))
    return q, ((t - m) - me + t_lo) / 3.0


def _airy_np(x):
    """(Ai, Ai') in float64: Taylor steps (Ai'' = x Ai) from the nearest table node within
    10 of 0, the asymptotic expansions beyond; NaN at +-inf, as PyTorch."""
    x = _f64(x)
    ai = np.full(x.shape, np.nan)
    aip = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        sel = np.abs(x) < _AI_LIM
        if sel.any():
            tab_a, tab_d = _airy_table()
            v = x[sel]
            idx = np.rint(v / _AI_STEP).astype(np.int64)
            x0 = idx * _AI_STEP
            dl = v - x0
            idx = idx + int(round(_AI_LIM / _AI_STEP))
            ym1 = np.zeros_like(v)              # y^(k-1)
            yk, yk1 = tab_a[idx], tab_d[idx]    # y^(k), y^(k+1)
            sa, sd = yk.copy(), yk1.copy()
            fac = np.ones_like(v)
            for k in range(0, 40):
                yk2 = x0 * yk + k * ym1          # (x y)^(k) = x y^(k) + k y^(k-1)
                fac = fac * dl / (k + 1)
                sa = sa + yk1 * fac
                sd = sd + yk2 * fac
                ym1, yk, yk1 = yk, yk1, yk2
            ai[sel], aip[sel] = sa, sd
        sel = (x >= _AI_LIM) & np.isfinite(x)
        if sel.any():
            z = x[sel]
            zeta = 2.0 / 3.0 * z * np.sqrt(z)
            su = np.zeros_like(z)
            sv = np.zeros_like(z)
            for u, w in zip(reversed(_U), reversed(_V)):
                su = su * (-1.0 / zeta) + u
                sv = sv * (-1.0 / zeta) + w
            e = np.exp(-zeta) / (2 * math.sqrt(math.pi))
            q = np.sqrt(np.sqrt(z))
            ai[sel] = e / q * su
            aip[sel] = -e * q * sv
        sel = (x <= -_AI_LIM) & np.isfinite(x)
        if sel.any():
            z = -x[sel]
            zeta, zeta_lo = _two_thirds_pow15(z)
            iz2 = 1.0 / (zeta * zeta)
            ue = np.zeros_like(z)
            uo = np.zeros_like(z)
            ve = np.zeros_like(z)
            vo = np.zeros_like(z)
            for k in range(len(_U) // 2 - 1, -1, -1):
                ue = -ue * iz2 + _U[2 * k]
                uo = -uo * iz2 + _U[2 * k + 1]
                ve = -ve * iz2 + _V[2 * k]
                vo = -vo * iz2 + _V[2 * k + 1]
            uo, vo = uo / zeta, vo / zeta
            # sin/cos(zeta + pi/4) through sin and cos of zeta: no rounding of zeta + pi/4
            # zeta's rounding (an ulp of 1e12 at x = -1e8) would shift the phase: add the
            # low part (sin and cos of the rounded zeta itself are exact in NumPy)
            # (beyond |x| ~ 1e20 the phase is lost even so: zeta_lo's own rounding)
            zeta_lo = zeta_lo - 2 * math.pi * np.rint(zeta_lo / (2 * math.pi))
            sz, cz = np.sin(zeta), np.cos(zeta)
            sl, cl = np.sin(zeta_lo), np.cos(zeta_lo)
            sz, cz = sz * cl + cz * sl, cz * cl - sz * sl
            sp, cp = (sz + cz) / math.sqrt(2), (cz - sz) / math.sqrt(2)
            q = np.sqrt(np.sqrt(z))
            ai[sel] = (sp * ue - cp * uo) / (math.sqrt(math.pi) * q)
            aip[sel] = -q / math.sqrt(math.pi) * (cp * ve + sp * vo)
    return ai, aip


# --- incomplete gamma ----------------------------------------------------------------------
_BERN = [float(b) for b in _bernoulli(30)]


def _log_prefactor(a, x):
    """log(x^a e^-x / Gamma(a)). For a >= 10 through Stirling's series:
    a log(x/a) + a - x = a (log1p(t) - t), t = (x - a)/a, keeps the digits that
    a log x - x - lgamma(a) loses when both terms are large."""
    big = a >= 10
    ab = np.where(big, a, 10.0)
    t = (x - ab) / ab
    mu = np.zeros_like(ab)                       # lgamma(a) - Stirling's leading terms
    for k in range(1, 12):
        mu = mu + _BERN[2 * k] / (2 * k * (2 * k - 1) * ab ** (2 * k - 1))
    stirling = ab * (np.log1p(t) - t) + 0.5 * np.log(ab / (2 * np.pi)) - mu
    small = np.where(big, 1.0, a)
    lg = SF._map(SF._lgamma_scalar, small)
    direct = small * np.log(x) - x - lg
    return np.where(big, stirling, direct)


def _lgamma1p(a):
    """lgamma(1 + a) for 0 < a < 1/2, from the Taylor series of lgamma(2 + z) (no rounding
    of 1 + a): lgamma(2 + a) - log1p(a)."""
    acc = np.zeros_like(a)
    for c in reversed(SF._LG_COEF):
        acc = (acc + c) * a
    return a * ((1.0 - _EULER) + acc) - np.log1p(a)


def _gammaincc_small_a(a, x):
    """Q(a, x) for a < 1/2, x < 1.5: Gamma(a, x) = Gamma(a) - sum (-1)^n x^(a+n) / (n! (a+n)),
    so Q = -expm1(u) + a e^u sum_{n>=1} (-1)^(n+1) x^n / (n! (a + n)), u = a log x -
    lgamma(1 + a); the leading 1 - x^a / Gamma(1 + a) without cancellation."""
    u = a * np.log(x) - _lgamma1p(a)
    s = np.zeros_like(a)
    t = np.ones_like(a)
    for n in range(1, 40):
        t = -t * x / n
        s = s - t / (a + n)
    return -np.expm1(u) + a * np.exp(u) * s


def _gammainc_np(a, x):
    """(P, Q) for a > 0, x > 0 finite: the series P = pre/a sum x^k / ((a+1)...(a+k)) for
    x < a + 1, Legendre's continued fraction for Q (modified Lentz) above."""
    p = np.empty_like(a)
    q = np.empty_like(a)
    ser = x < a + 1
    tiny = 1e-300
    if ser.any():
        aa, xx = a[ser], x[ser]
        term = 1.0 / aa
        total = term.copy()
        act = np.arange(aa.size)
        ap = aa.copy()
        for _ in range(200000):
            ap[act] += 1.0
            term[act] *= xx[act] / ap[act]
            total[act] += term[act]
            act = act[np.abs(term[act]) > np.abs(total[act]) * 1e-17]
            if not act.size:
                break
        pv = np.exp(_log_prefactor(aa, xx)) * total
        qv = 1.0 - pv
        small = (aa < 0.5) & (xx < 1.5)     # there 1 - P cancels when P is near 1
        if small.any():
            qv[small] = _gammaincc_small_a(aa[small], xx[small])
        p[ser], q[ser] = pv, qv
    cf = ~ser
    if cf.any():
        aa, xx = a[cf], x[cf]
        b = xx + 1.0 - aa
        c = np.full_like(aa, 1.0 / tiny)
        d = 1.0 / b
        h = d.copy()
        act = np.arange(aa.size)
        for i in range(1, 200000):
            an = -i * (i - aa[act])
            b[act] += 2.0
            dd = an * d[act] + b[act]
            dd = np.where(np.abs(dd) < tiny, tiny, dd)
            cc = b[act] + an / c[act]
            cc = np.where(np.abs(cc) < tiny, tiny, cc)
            dd = 1.0 / dd
            delta = dd * cc
            d[act], c[act] = dd, cc
            h[act] *= delta
            act = act[np.abs(delta - 1.0) > 1e-17]
            if not act.size:
                break
        qv = np.exp(_log_prefactor(aa, xx)) * h
        q[cf], p[cf] = qv, 1.0 - qv
    return p, q


def _gamma_edges(a, x, out, upper: bool):
    """PyTorch's values: NaN for a < 0, x < 0, a = x = 0, a = x = inf and NaN; P = 1 (Q = 0)
    for a = 0 < x and for x = inf > a; P = 0 (Q = 1) for x = 0 < a and for a = inf > x."""
    one, zero = (0.0, 1.0) if upper else (1.0, 0.0)
    out = np.where(((a == 0) & (x > 0)) | (np.isposinf(x) & np.isfinite(a)), one, out)
    out = np.where(((x == 0) & (a > 0)) | (np.isposinf(a) & np.isfinite(x)), zero, out)
    bad = (a < 0) | (x < 0) | ((a == 0) & (x == 0)) | (np.isposinf(a) & np.isposinf(x))
    return np.where(bad | np.isnan(a) | np.isnan(x), np.nan, out)


def _gammainc_cpu(upper: bool):
    def k(a, x):
        dt = np.result_type(a, x)
        a64, x64 = np.broadcast_arrays(_f64(a), _f64(x))
        sc = _sc()
        with np.errstate(all="ignore"):
            if sc is not None:
                out = (sc.gammaincc if upper else sc.gammainc)(a64, x64)
            else:
                out = np.full(a64.shape, np.nan)
                ok = (a64 > 0) & (x64 > 0) & np.isfinite(a64) & np.isfinite(x64)
                if ok.any():
                    p, q = _gammainc_np(a64[ok], x64[ok])
                    out[ok] = q if upper else p
            out = _gamma_edges(a64, x64, out, upper)
        return np.asarray(out, np.float64).astype(dt, copy=False)
    return k


def _gammainc_cuda(upper: bool):
    def k(a, x):
        import cupy
        from cupyx.scipy import special as cs
        out = (cs.gammaincc if upper else cs.gammainc)(a.astype(cupy.float64),
                                                        x.astype(cupy.float64))
        a64, x64 = cupy.broadcast_arrays(a.astype(cupy.float64), x.astype(cupy.float64))
        one, zero = (0.0, 1.0) if upper else (1.0, 0.0)
        out = cupy.where(((a64 == 0) & (x64 > 0)) | (cupy.isposinf(x64) & cupy.isfinite(a64)),
                         one, out)
        out = cupy.where(((x64 == 0) & (a64 > 0)) | (cupy.isposinf(a64) & cupy.isfinite(x64)),
                         zero, out)
        bad = ((a64 < 0) | (x64 < 0) | ((a64 == 0) & (x64 == 0))
               | (cupy.isposinf(a64) & cupy.isposinf(x64)) | cupy.isnan(a64) | cupy.isnan(x64))
        return cupy.where(bad, cupy.nan, out).astype(cupy.result_type(a, x), copy=False)
    return k


# --- kernels per backend -------------------------------------------------------------------
def _torch_inf(x, out, value=np.nan):
    """PyTorch 2.13 gives NaN (J, Y, I, Ai) at +-inf where SciPy gives limits."""
    return np.where(np.isinf(x), value, out)


def _cpu(scipy_fn, numpy_fn, fix=_torch_inf):
    """float64 inside: SciPy's ``scipy_fn(sc, x)`` when available, else ``numpy_fn(x)``."""
    def k(x):
        x64 = _f64(x)
        sc = _sc()
        with np.errstate(all="ignore"):
            out = scipy_fn(sc, x64) if sc is not None else numpy_fn(x64)
            if fix is not None:
                out = fix(x64, out)
        return np.asarray(out, np.float64).astype(x.dtype, copy=False)
    return k


def _cuda(cupyx_name, numpy_fn, fix=_torch_inf):
    """cupyx.scipy.special's function where it has one, else the NumPy form via the host."""
    def k(x):
        import cupy
        from cupyx.scipy import special as cs
        x64 = x.astype(cupy.float64)
        fn = getattr(cs, cupyx_name, None) if cupyx_name else None
        if fn is not None:
            out = fn(x64)
            if fix is _torch_inf:
                out = cupy.where(cupy.isinf(x64), cupy.nan, out)
        else:
            out = cupy.asarray(numpy_fn(cupy.asnumpy(x64)))
        return out.astype(x.dtype, copy=False)
    return k


def _k_fix(x, out):
    return out      # SciPy and the NumPy forms already agree with PyTorch for K


def _sph_j0_fwd(xp, x):
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        xs = xp.where(x64 == 0, 1.0, x64)
        out = xp.where(x64 == 0, 1.0, xp.sin(xs) / xs)
        return xp.where(xp.isinf(x64), 0.0, out).astype(x.dtype)


def _reg(name, scipy_fn, numpy_fn, cupyx_name, vjp, doc, fix=_torch_inf, saves_output=False):
    return register(OpDef(name, kernels={"cpu": _cpu(scipy_fn, numpy_fn, fix),
                                         "cuda": _cuda(cupyx_name, numpy_fn, fix)},
                          vjp=vjp, saves_output=saves_output, infer=float_infer,
                          cost=elementwise_cost, doc=doc))


# J1'(x) = sum_k (-1)^k (2k+1) (x/2)^(2k) / (2 k! (k+1)!) and I1' the same without the signs,
# as polynomials in x^2 (highest power first) for |x| < 1: there J0 - J1/x (I0 - I1/x)
# cancels, and its derivative (J1's second derivative) more so: 364% off at 1e-8
_J1D = tuple((-1) ** k * (2 * k + 1) / (2 * 4 ** k * math.factorial(k) * math.factorial(k + 1))
             for k in range(11, -1, -1))
_I1D = tuple(abs(c) for c in _J1D)


def _near_zero(x, bound: float, coefs):
    """For a derivative whose closed form cancels near 0: ``(small, xs, series, xl)``, where
    ``small`` is |x| < bound, ``series`` the even series sum c_k x^2k (coefficients highest
    power first) at ``xs`` (x there, 0 elsewhere) and ``xl`` x away from 0 (1 near it), so
    neither branch of the final ``where`` divides by 0."""
    small = E.abs(x) < bound
    xs = E.where(small, x, 0.0)
    x2 = xs * xs
    series = x2 * 0.0 + coefs[0]
    for c in coefs[1:]:
        series = series * x2 + c
    return small, xs, series, E.where(small, 1.0, x)


def _order1_vjp(n, g, coefs, order0):
    """``g * f1'(x)`` for ``f1`` = J1 or I1: ``f0(x) - f1(x)/x``, or the series near 0."""
    small, _, series, xl = _near_zero(n.inputs[0], 1.0, coefs)
    return (g * E.where(small, series, order0(xl) - n.out / xl),)


def _j1_vjp(n, g):          # J1' = J0 - J1 / x, 1/2 at 0
    return _order1_vjp(n, g, _J1D, bessel_j0)


def _i1_vjp(n, g):          # I1' = I0 - I1 / x, 1/2 at 0
    return _order1_vjp(n, g, _I1D, modified_bessel_i0)


BESSEL_J0 = _reg("bessel_j0", lambda sc, x: sc.j0(x), lambda x: _jy_np(x)[0], "j0",
                 lambda n, g: (g * -bessel_j1(n.inputs[0]),),
                 "Bessel function of the first kind, order 0")
BESSEL_J1 = _reg("bessel_j1", lambda sc, x: sc.j1(x), lambda x: _jy_np(x)[1], "j1", _j1_vjp,
                 "Bessel function of the first kind, order 1", saves_output=True)
BESSEL_Y0 = _reg("bessel_y0", lambda sc, x: sc.y0(x), lambda x: _jy_np(x)[2], "y0",
                 lambda n, g: (g * -bessel_y1(n.inputs[0]),),
                 "Bessel function of the second kind, order 0")
BESSEL_Y1 = _reg("bessel_y1", lambda sc, x: sc.y1(x), lambda x: _jy_np(x)[3], "y1",
                 lambda n, g: (g * (bessel_y0(n.inputs[0]) - n.out / n.inputs[0]),),
                 "Bessel function of the second kind, order 1", saves_output=True)
MODIFIED_BESSEL_I0 = _reg(
    "modified_bessel_i0", lambda sc, x: sc.i0(x), lambda x: _i_np(x, 0), "i0",
    lambda n, g: (g * modified_bessel_i1(n.inputs[0]),),
    "modified Bessel function of the first kind, order 0")
MODIFIED_BESSEL_I1 = _reg(
    "modified_bessel_i1", lambda sc, x: sc.i1(x), lambda x: _i_np(x, 1), "i1", _i1_vjp,
    "modified Bessel function of the first kind, order 1", saves_output=True)
MODIFIED_BESSEL_K0 = _reg(
    "modified_bessel_k0", lambda sc, x: sc.k0(x), lambda x: _k_np(x, 0, False), "k0",
    lambda n, g: (g * -modified_bessel_k1(n.inputs[0]),),
    "modified Bessel function of the second kind, order 0", fix=_k_fix)
MODIFIED_BESSEL_K1 = _reg(
    "modified_bessel_k1", lambda sc, x: sc.k1(x), lambda x: _k_np(x, 1, False), "k1",
    lambda n, g: (g * (-modified_bessel_k0(n.inputs[0]) - n.out / n.inputs[0]),),
    "modified Bessel function of the second kind, order 1", fix=_k_fix, saves_output=True)
SCALED_MODIFIED_BESSEL_K0 = _reg(
    "scaled_modified_bessel_k0", lambda sc, x: sc.k0e(x), lambda x: _k_np(x, 0, True), "k0e",
    lambda n, g: (g * (n.out - scaled_modified_bessel_k1(n.inputs[0])),),
    "exp(x) K0(x)", fix=_k_fix, saves_output=True)
SCALED_MODIFIED_BESSEL_K1 = _reg(
    "scaled_modified_bessel_k1", lambda sc, x: sc.k1e(x), lambda x: _k_np(x, 1, True), "k1e",
    lambda n, g: (g * (n.out * (1.0 - 1.0 / n.inputs[0])
                       - scaled_modified_bessel_k0(n.inputs[0])),),
    "exp(x) K1(x)", fix=_k_fix, saves_output=True)


# d/dx sin(x)/x = sum_k>=1 (-1)^k 2k x^(2k-1) / (2k+1)!, for |x| < 1/2 (highest power first)
_SPH_D = tuple((-1) ** k * 2 * k / math.factorial(2 * k + 1) for k in range(12, 0, -1))


def _sph_j0_vjp(n, g):
    x = n.inputs[0]
    small, xs, series, xl = _near_zero(x, 0.5, _SPH_D)
    far = (E.cos(xl) - spherical_bessel_j0(xl)) / xl
    return (g * E.where(small, series * xs, E.where(E.isinf(x), 0.0, far)),)


SPHERICAL_BESSEL_J0 = register(OpDef(
    "spherical_bessel_j0", _sph_j0_fwd, vjp=_sph_j0_vjp, infer=float_infer,
    cost=elementwise_cost, doc="spherical Bessel function of the first kind, order 0"))

def _airy_sc(sc, x):
    """SciPy's (Ai, Ai'), with the asymptotic forms for |x| >= 1e3: there SciPy loses the
    phase's digits, and from about 1e7 gives NaN where Ai underflows to 0 (x > 0) or
    oscillates (x < 0)."""
    ai, aip = sc.airy(x)[:2]
    big = (np.abs(x) >= 1e3) & np.isfinite(x)
    if big.any():
        ai, aip = np.array(ai, np.float64), np.array(aip, np.float64)
        ai[big], aip[big] = _airy_np(x[big])
    return ai, aip


AIRY_AI_PRIME = _reg("airy_ai_prime", lambda sc, x: _airy_sc(sc, x)[1],
                     lambda x: _airy_np(x)[1],
                     None, lambda n, g: (g * n.inputs[0] * airy_ai(n.inputs[0]),),
                     "derivative of the Airy function Ai (private: airy_ai's gradient)")
AIRY_AI = _reg("airy_ai", lambda sc, x: _airy_sc(sc, x)[0], lambda x: _airy_np(x)[0], None,
               lambda n, g: (g * _airy_ai_prime(n.inputs[0]),), "Airy function Ai")


def _gamma_vjp(upper: bool, name: str):
    def vjp(n, g):
        a, x = n.inputs
        if a._rg:
            raise NotImplementedError(
                f"{name}: the derivative with respect to input (a, the first argument) is "
                "not implemented, as in PyTorch; detach it, or differentiate in other (x)")
        pos = x > 0
        xs = E.where(pos, x, 1.0)
        lg = SF.lgamma(a)
        # d/dx P(a, x) = x^(a-1) e^-x / Gamma(a); at x = 0: 0 for a > 1, 1 at a = 1, inf below
        at0 = E.where(a > 1, 0.0, E.where(a == 1, 1.0, math.inf))
        d = E.where(pos, E.exp((a - 1.0) * E.log(xs) - xs - lg), at0)
        if upper:
            d = -d
        return None, unbroadcast(g * d, tuple(x.shape))
    return vjp


def _reg_gamma(name: str, upper: bool, doc: str) -> OpDef:
    def cuda(a, x):
        return _gammainc_cuda(upper)(a, x)
    return register(OpDef(name, kernels={"cpu": _gammainc_cpu(upper), "cuda": cuda},
                          vjp=_gamma_vjp(upper, name), saves=True,
                          infer=make_binary_infer(name), cost=elementwise_cost, doc=doc))


GAMMAINC = _reg_gamma("gammainc", False, "regularized lower incomplete gamma P(a, x)")
GAMMAINCC = _reg_gamma("gammaincc", True, "regularized upper incomplete gamma Q(a, x)")


# --- public functions ----------------------------------------------------------------------
def _unary(op: OpDef, x) -> Tensor:
    return apply(op, to_float(to_tensor(x)))


def bessel_j0(input) -> Tensor:
    """Bessel function of the first kind of order 0, as ``torch.special.bessel_j0`` (NaN at
    +-inf, as PyTorch). Differentiable (``-J1``), unlike PyTorch's."""
    return _unary(BESSEL_J0, input)


def bessel_j1(input) -> Tensor:
    """Bessel function of the first kind of order 1, as ``torch.special.bessel_j1``.
    Differentiable (``J0 - J1/x``), unlike PyTorch's."""
    return _unary(BESSEL_J1, input)


def bessel_y0(input) -> Tensor:
    """Bessel function of the second kind of order 0, as ``torch.special.bessel_y0``: -inf at
    0, NaN for x < 0 and at +-inf. Differentiable (``-Y1``), unlike PyTorch's."""
    return _unary(BESSEL_Y0, input)


def bessel_y1(input) -> Tensor:
    """Bessel function of the second kind of order 1, as ``torch.special.bessel_y1``: -inf at
    0, NaN for x < 0 and at +-inf. Differentiable (``Y0 - Y1/x``), unlike PyTorch's."""
    return _unary(BESSEL_Y1, input)


def modified_bessel_i0(input) -> Tensor:
    """Modified Bessel function of the first kind of order 0, as
    ``torch.special.modified_bessel_i0`` (NaN at +-inf, as PyTorch). Differentiable (``I1``)."""
    return _unary(MODIFIED_BESSEL_I0, input)


def modified_bessel_i1(input) -> Tensor:
    """Modified Bessel function of the first kind of order 1, as
    ``torch.special.modified_bessel_i1``. Differentiable (``I0 - I1/x``)."""
    return _unary(MODIFIED_BESSEL_I1, input)


def modified_bessel_k0(input) -> Tensor:
    """Modified Bessel function of the second kind of order 0, as
    ``torch.special.modified_bessel_k0``: inf at 0, NaN for x < 0. Differentiable (``-K1``)."""
    return _unary(MODIFIED_BESSEL_K0, input)


def modified_bessel_k1(input) -> Tensor:
    """Modified Bessel function of the second kind of order 1, as
    ``torch.special.modified_bessel_k1``: inf at 0, NaN for x < 0. Differentiable
    (``-K0 - K1/x``)."""
    return _unary(MODIFIED_BESSEL_K1, input)


def scaled_modified_bessel_k0(input) -> Tensor:
    """``exp(x) K0(x)``, as ``torch.special.scaled_modified_bessel_k0``. Differentiable."""
    return _unary(SCALED_MODIFIED_BESSEL_K0, input)


def scaled_modified_bessel_k1(input) -> Tensor:
    """``exp(x) K1(x)``, as ``torch.special.scaled_modified_bessel_k1``. Differentiable."""
    return _unary(SCALED_MODIFIED_BESSEL_K1, input)


def spherical_bessel_j0(input) -> Tensor:
    """``sin(x) / x`` (1 at 0, 0 at +-inf), as ``torch.special.spherical_bessel_j0``.
    Differentiable (a series near 0, so the derivatives stay exact there)."""
    return _unary(SPHERICAL_BESSEL_J0, input)


def airy_ai(input) -> Tensor:
    """The Airy function Ai, as ``torch.special.airy_ai`` (NaN at +-inf, as PyTorch).
    Differentiable (through Ai', whose derivative is ``x Ai``)."""
    return _unary(AIRY_AI, input)


def _airy_ai_prime(input) -> Tensor:
    return _unary(AIRY_AI_PRIME, input)


def _gamma_args(name: str, input, other) -> tuple[Tensor, Tensor]:
    a, b = same_category(*as_operands(input, other))
    a, b = to_float(a), to_float(b)
    if a.dtype != b.dtype:
        dt = promote_types(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    if a._device != b._device:
        raise RuntimeError(f"{name}: tensors on {a.device} and {b.device}")
    return a, b


def gammainc(input, other) -> Tensor:
    """The regularized lower incomplete gamma function ``P(a, x)`` with ``a = input``,
    ``x = other``, as ``torch.special.gammainc`` / ``torch.igamma``: NaN for a < 0 or x < 0.
    Differentiable in ``x`` (``x^(a-1) e^-x / Gamma(a)``); the gradient in ``a`` raises, as
    in PyTorch.

    >>> tl.special.gammainc(tl.tensor([1.0]), tl.tensor([2.0]))    # 1 - e^-2
    tensor([0.8647])
    """
    return apply(GAMMAINC, *_gamma_args("gammainc", input, other))


def gammaincc(input, other) -> Tensor:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``, as
    ``torch.special.gammaincc`` / ``torch.igammac``; differentiable in ``x`` only."""
    return apply(GAMMAINCC, *_gamma_args("gammaincc", input, other))


igamma = gammainc
igammac = gammaincc
