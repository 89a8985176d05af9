"""W1 (eager dispatch), W1b (a chain of small ops, forward + backward), W5 (matmul)."""
from __future__ import annotations

import numpy as np

from harness import Workload, time_per_call


def _n(quick: bool, full: int) -> int:
    return max(full // 200, 5) if quick else full


# --- W1: c = a + b on 4-element tensors --------------------------------------------------
def w1_tensorlib(requires_grad: bool):
    def impl(quick: bool) -> float:
        import tensorlib as tl
        a = tl.randn(4, requires_grad=requires_grad)
        b = tl.randn(4)
        return time_per_call(lambda: a + b, _n(quick, 200_000)) * 1e6
    return impl


def w1_torch(requires_grad: bool):
    def impl(quick: bool) -> float:
        import torch
        torch.set_num_threads(1)
        a = torch.randn(4, requires_grad=requires_grad)
        b = torch.randn(4)
        return time_per_call(lambda: a + b, _n(quick, 200_000)) * 1e6
    return impl


def w1_numpy(quick: bool) -> float:
    a = np.random.randn(4).astype(np.float32)
    b = np.random.randn(4).astype(np.float32)
    return time_per_call(lambda: a + b, _n(quick, 200_000)) * 1e6


# --- W1b: 10 small elementwise ops, forward then backward -----------------------------------
def _chain(x, y, tanh, exp):
    h = x + y
    h = h * x
    h = tanh(h)
    h = exp(h)
    h = h - y
    h = h * 0.5
    h = tanh(h)
    h = h + x
    h = h * h
    return h.sum()


def _w1b(framework: str):
    def impl(quick: bool) -> float:
        if framework == "torch":
            import torch as lib
            lib.set_num_threads(1)
        else:
            import tensorlib as lib
        x = lib.randn(4, requires_grad=True)
        y = lib.randn(4, requires_grad=True)

        def step():
            x.grad = None
            y.grad = None
            _chain(x, y, lib.tanh, lib.exp).backward()
        return time_per_call(step, _n(quick, 20_000)) * 1e6 / 10
    return impl


def w1b_numpy(quick: bool) -> float:
    """The same chain with a hand-written backward pass."""
    x = np.random.randn(4).astype(np.float32)
    y = np.random.randn(4).astype(np.float32)

    def step():
        h1 = x + y
        h2 = h1 * x
        h3 = np.tanh(h2)
        h4 = np.exp(h3)
        h5 = h4 - y
        h6 = h5 * 0.5
        h7 = np.tanh(h6)
        h8 = h7 + x
        g8 = 2 * h8
        g7 = g8
        gx = g8.copy()
        g6 = g7 * (1 - h7 * h7)
        g5 = g6 * 0.5
        gy = -g5
        g3 = g5 * h4
        g2 = g3 * (1 - h3 * h3)
        gx += g2 * h1
        g1 = g2 * x
        gx += g1
        gy += g1
        return gx, gy
    return time_per_call(step, _n(quick, 20_000)) * 1e6 / 10


# --- W5: matmul 1024^3 --------------------------------------------------------------------
def _gflops(seconds: float, n: int) -> float:
    return 2 * n ** 3 / seconds / 1e9


def w5_tensorlib(quick: bool) -> float:
    import tensorlib as tl
    n = 256 if quick else 1024
    a, b = tl.randn(n, n), tl.randn(n, n)
    return _gflops(time_per_call(lambda: a @ b, 3 if quick else 20, warmup=2), n)


def w5_torch(quick: bool) -> float:
    import torch
    n = 256 if quick else 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    return _gflops(time_per_call(lambda: a @ b, 3 if quick else 20, warmup=2), n)


def w5_numpy(quick: bool) -> float:
    n = 256 if quick else 1024
    a = np.random.randn(n, n).astype(np.float32)
    b = np.random.randn(n, n).astype(np.float32)
    return _gflops(time_per_call(lambda: a @ b, 3 if quick else 20, warmup=2), n)


WORKLOADS = [
    Workload("W1", "a + b, 4 elements, no grad", "µs/op",
             {"tensorlib": w1_tensorlib(False), "torch": w1_torch(False), "numpy": w1_numpy}),
    Workload("W1", "a + b, 4 elements, requires_grad", "µs/op",
             {"tensorlib": w1_tensorlib(True), "torch": w1_torch(True), "numpy": w1_numpy}),
    Workload("W1b", "10 small ops, forward + backward", "µs/op",
             {"tensorlib": _w1b("tensorlib"), "torch": _w1b("torch"), "numpy": w1b_numpy}),
    Workload("W5", "matmul 1024x1024x1024 float32", "GFLOP/s",
             {"tensorlib": w5_tensorlib, "torch": w5_torch, "numpy": w5_numpy},
             lower_is_better=False),
]
