"""Host cost per call of the building blocks of an eager GPU step (CuPy, PyTorch, tensorlib).

    python benchmarks/gpu_launch.py        # needs a CUDA GPU, CuPy and PyTorch

Each line: microseconds per call issued without synchronising (the host's cost), then per
call including the final synchronisation, on small operands where the GPU work is tiny.
"""
from __future__ import annotations

import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]
import tensorlib as tl  # noqa: E402
import tensorlib.nn.functional as F  # noqa: E402
from gpu import _rounds  # noqa: E402  (G1's timing loop)


def per_call(fn, sync, n: int = 3000) -> tuple[float, float]:
    """Microseconds per call: the host's issue time, and with the final synchronisation."""
    host: list = []
    total = _rounds(fn, sync, n, 1, warmup=50, host=host)
    return host[0] * 1e6, total[0] * 1e6


def main() -> int:
    if not tl.cuda.is_available():
        print("benchmarks/gpu_launch.py: no CUDA GPU here; nothing measured")
        return 0
    import cupy as cp
    import torch

    def sync():
        cp.cuda.Device().synchronize()
        torch.cuda.synchronize()
    rng = np.random.default_rng(0)
    h, W, a, b = (rng.standard_normal(s, dtype=np.float32)
                  for s in ((32, 256), (1024, 256), (32, 1024), (32, 1024)))
    ch, cW, ca, cb = (cp.asarray(x) for x in (h, W, a, b))
    out = cp.empty_like(ca)
    ek = cp.ElementwiseKernel("T x, T y", "T z", "z = x + y", "launch_add")
    rk = cp.RawKernel(r'''extern "C" __global__ void launch_add(const float* a,
        const float* b, float* c, long long n) {
        long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
        if (i < n) c[i] = a[i] + b[i]; }''', "launch_add")
    n64 = np.int64(a.size)
    idx = cp.arange(32)
    th, tW, ta, tb = (torch.as_tensor(x, device="cuda") for x in (h, W, a, b))
    xh, xW, xa, xb = (tl.tensor(x, device="cuda") for x in (h, W, a, b))
    cases = {
        "CuPy matmul(h, W.T)": lambda: cp.matmul(ch, cW.T),
        "CuPy empty((32, 1024))": lambda: cp.empty((32, 1024), np.float32),
        "CuPy ufunc a + b": lambda: ca + cb,
        "CuPy add(a, b, out=)": lambda: cp.add(ca, cb, out=out),
        "CuPy ElementwiseKernel(a, b)": lambda: ek(ca, cb),
        "CuPy RawKernel launch": lambda: rk((64,), (512,), (ca, cb, out, n64)),
        "CuPy a.sum(axis=0)": lambda: ca.sum(axis=0),
        "CuPy W.take(idx, axis=0)": lambda: cW.take(idx, axis=0),
        "PyTorch a + b": lambda: ta + tb,
        "PyTorch h @ W.T": lambda: th @ tW.T,
        "PyTorch a.sum(0)": lambda: ta.sum(0),
        "tensorlib a + b": lambda: xa + xb,
        "tensorlib h @ W.T": lambda: xh @ xW.T,
        "tensorlib F.linear(h, W)": lambda: F.linear(xh, xW),
        "tensorlib a.sum(axis=0)": lambda: xa.sum(axis=0),
        "tensorlib relu(a)": lambda: F.relu(xa),
    }
    for name, fn in cases.items():
        host, total = per_call(fn, sync)
        print(f"  {name:<32} host {host:7.2f} us   with sync {total:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
