"""Transcendental activations and maps on 1M float32 elements, forward and forward + backward,
tensorlib against PyTorch: the ops whose NumPy kernels are a libm call per element on CPUs
without AVX-512 (NumPy's SVML serves only those): expm1, log1p, tanh, and ELU, softplus and
mish built on them; and exp, exp2, log, log2, the hyperbolic functions and their inverses,
atan, asin, acos, sin, cos and tan, whose NumPy float32 loops there are libm calls or slower
vector code; pow, remainder and erfc (libm calls, SciPy's erfc, on every CPU for the last two),
sign and rsqrt (two NumPy passes each), SiLU and GELU's tanh form (fused forward and
backward); float64 exp, exp2, log, log2, tanh, expm1, sin, cos, tan, sinh, asinh and atan
(libm calls without AVX-512), sigmoid, sign, ELU, softplus, remainder, erf, erfc, erfcx, both
GELUs and SiLU (erf, erfc and erfcx libm calls or SciPy's).

    python benchmarks/activations.py            # 5 rounds of 10 calls, the best round
    python benchmarks/activations.py --quick    # one call each (tests/tooling)
    PYTHONPATH=/other/checkout python benchmarks/activations.py     # before/after

Prints µs per call; "svml" in the header says whether NumPy has SVML on this CPU (where it
has, expm1, log1p and tanh keep NumPy's kernels).
"""
from __future__ import annotations

import sys
import time

import numpy as np

import tensorlib as tl


def _time(fn, quick: bool) -> float:
    if quick:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e6
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        best = min(best, (time.perf_counter() - t0) / 10)
    return best * 1e6


def cases(lib):
    """(name, function of a tensor) pairs for ``lib`` (tensorlib or torch)."""
    f = lib.nn.functional
    return [("elu", f.elu), ("softplus", f.softplus), ("mish", f.mish), ("tanh", lib.tanh),
            ("expm1", lib.expm1), ("log1p(|x|)", lambda v: lib.log1p(v.abs())),
            ("exp", lib.exp), ("exp2", lib.exp2), ("log(|x|)", lambda v: lib.log(v.abs())),
            ("log2(|x|)", lambda v: lib.log2(v.abs())), ("sinh", lib.sinh), ("cosh", lib.cosh),
            ("asinh", lib.asinh), ("atan", lib.atan), ("sin", lib.sin), ("tan", lib.tan),
            ("|x| ** 1.7", lambda v: v.abs() ** 1.7), ("x % 0.7", lambda v: v % 0.7),
            ("erfc", lib.special.erfc), ("sign", lib.sign), ("silu", f.silu),
            ("gelu tanh", lambda v: f.gelu(v, approximate="tanh"))]


# maps on a restricted domain, given an input there (the row names say which)
def domain_cases(lib):
    return [("acosh(|x| + 1)", lib.acosh, lambda a: np.abs(a) + 1),
            ("atanh(x / 16)", lib.atanh, lambda a: np.clip(a / 16, -0.99, 0.99)),
            ("asin(x / 16)", lib.asin, lambda a: np.clip(a / 16, -0.99, 0.99)),
            ("acos(x / 16)", lib.acos, lambda a: np.clip(a / 16, -0.99, 0.99)),
            ("rsqrt(|x| + 0.1)", lib.rsqrt, lambda a: np.abs(a) + 0.1)]


def _rows(lib, a, quick):
    out = {}
    todo = [(name, fn, a) for name, fn in cases(lib)]
    todo += [(name, fn, prep(a)) for name, fn, prep in domain_cases(lib)]
    todo += [(name + ", float64", fn, a.astype(np.float64))
             for name, fn in [("exp", lib.exp), ("log(|x|)", lambda v: lib.log(v.abs())),
                              ("tanh", lib.tanh), ("sigmoid", lib.sigmoid),
                              ("expm1", lib.expm1), ("exp2", lib.exp2),
                              ("log2(|x|)", lambda v: lib.log2(v.abs())), ("sin", lib.sin),
                              ("cos", lib.cos), ("tan", lib.tan), ("sinh", lib.sinh),
                              ("asinh", lib.asinh), ("atan", lib.atan), ("sign", lib.sign),
                              ("elu", lib.nn.functional.elu),
                              ("softplus", lib.nn.functional.softplus),
                              ("x % 0.7", lambda v: v % 0.7), ("erf", lib.erf),
                              ("erfc", lib.special.erfc), ("erfcx", lib.special.erfcx),
                              ("gelu", lib.nn.functional.gelu),
                              ("silu", lib.nn.functional.silu),
                              ("gelu tanh", lambda v: lib.nn.functional.gelu(
                                  v, approximate="tanh"))]]
    for name, fn, arr in todo:
        x = lib.tensor(arr)
        xg = lib.tensor(arr, requires_grad=True)

        def fwd_bwd(fn=fn, xg=xg):
            xg.grad = None
            fn(xg).sum().backward()
        out[name] = (_time(lambda fn=fn, x=x: fn(x), quick), _time(fwd_bwd, quick))
    return out


def main(argv=None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    a = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32) * 3
    ours = _rows(tl, a, quick)
    try:
        import torch
        theirs = _rows(torch, a, quick)
    except ImportError:
        theirs = {}
    from tensorlib.ops import elementwise
    svml = getattr(elementwise, "_numpy_has_svml", lambda: "?")()    # (older checkouts: ?)
    print(f"{tl.__file__}; NumPy svml: {svml}")
    print("| op, 1M float32 | fwd | torch fwd | fwd+bwd | torch fwd+bwd |\n|---|---|---|---|---|")
    for name, (f, fb) in ours.items():
        tf, tfb = theirs.get(name, (float("nan"), float("nan")))
        print(f"| {name} | {f:.0f} | {tf:.0f} | {fb:.0f} | {tfb:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
