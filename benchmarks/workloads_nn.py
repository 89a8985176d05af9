"""NN workloads W2, W3, W4, W6 (../shared/BENCHMARKS.md), tensorlib against PyTorch.

    python benchmarks/workloads_nn.py [--quick] [--rounds 5] [--threads 1] [--blas-core SkylakeX]

The standalone run alternates the frameworks round by round (load on a shared machine
hits both alike) and also reports process CPU time per round (1 thread: immune to
waiting for a core). ``--blas-core`` sets OPENBLAS_CORETYPE before NumPy loads (see
benchmarks/README.md: OpenBLAS picks its AVX2 kernels on this AVX-512 CPU).

Each ``wN_<framework>(quick) -> float`` runs one round (ms per step, or MiB for W6)
on a model built once and cached; ``WORKLOADS`` lists them for benchmarks/run.py.
tensorlib runs through the functional API on raw parameter tensors; PyTorch uses
its nn modules and optim.SGD, as a PyTorch user would write it. float32, fixed seeds.
The builders take a ``device``: benchmarks/gpu.py (G1) runs the same models on a GPU.
"""
from __future__ import annotations

import os
import sys

def _env_from_argv() -> dict:
    """Environment the options below need before NumPy/OpenBLAS and OpenMP start."""
    env = {}
    if "--threads" in sys.argv:
        n = sys.argv[sys.argv.index("--threads") + 1]
        env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    if "--blas-core" in sys.argv:
        env["OPENBLAS_CORETYPE"] = sys.argv[sys.argv.index("--blas-core") + 1]
    return env


if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _env_from_argv().items()):
    os.environ.update(_env_from_argv())
    os.execv(sys.executable, [sys.executable] + sys.argv)

import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Workload, table  # noqa: E402

import tensorlib as tl  # noqa: E402
import tensorlib.nn.functional as F  # noqa: E402
from tensorlib.optim import _fused  # noqa: E402

LR = 0.01
_CACHE: dict = {}


def _timed(step, quick: bool, steps: int, warmup: int = 2) -> float:
    """ms per step over ``steps`` steps (2 when quick), after ``warmup`` steps."""
    n = 2 if quick else steps
    for _ in range(1 if quick else warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n * 1e3


def _threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)


def _torch():
    import torch
    n = _threads()
    if n:
        torch.set_num_threads(n)
    return torch


# --- tensorlib ------------------------------------------------------------------------------
def _params(device, seed_shapes):
    """Parameters for (shape, fan_in) pairs, uniform in +-1/sqrt(fan_in), seed 0."""
    rng = np.random.default_rng(0)
    return rng, [tl.tensor((rng.uniform(-1, 1, shape) / np.sqrt(fan_in)).astype(np.float32),
                           device=device, requires_grad=True) for shape, fan_in in seed_shapes]


def _tl_sgd(params):
    """Plain SGD through the fused in-place kernel of the parameters' device (Cython on the
    CPU, one CUDA kernel per parameter on a GPU); under capture it records tensor ops."""
    with tl.no_grad():
        for p in params:
            if not _fused.sgd(p, p.grad, None, LR, 0.0, 0.0, 0.0, False, {}):
                p.sub_(LR * p.grad)
            p.grad = None


def tl_mlp(batch=128, device="cpu"):
    rng, ps = _params(device, [((512, 784), 784), ((512,), 784), ((512, 512), 512),
                               ((512,), 512), ((10, 512), 512), ((10,), 512)])
    x = tl.tensor(rng.standard_normal((batch, 784)).astype(np.float32), device=device)
    y = tl.tensor(rng.integers(0, 10, batch), device=device)

    def step():
        h = F.relu(F.linear(x, ps[0], ps[1]))
        h = F.relu(F.linear(h, ps[2], ps[3]))
        loss = F.cross_entropy(F.linear(h, ps[4], ps[5]), y)
        loss.backward()
        _tl_sgd(ps)
        return loss
    return step


def tl_convnet(batch=64, device="cpu"):
    rng, ps = _params(device, [((32, 1, 5, 5), 25), ((32,), 25), ((64, 32, 5, 5), 800),
                               ((64,), 800), ((1024, 3136), 3136), ((1024,), 3136),
                               ((10, 1024), 1024), ((10,), 1024)])
    x = tl.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), device=device)
    y = tl.tensor(rng.integers(0, 10, batch), device=device)

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(x, ps[0], ps[1], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, ps[2], ps[3], padding=2)), 2)
        h = F.relu(F.linear(h.reshape(batch, 3136), ps[4], ps[5]))
        loss = F.cross_entropy(F.linear(h, ps[6], ps[7]), y)
        loss.backward()
        _tl_sgd(ps)
        return loss
    return step


def tl_lstm(vocab=64, emb=64, hidden=256, seq=32, batch=32, device="cpu"):
    rng, ps = _params(device, [((vocab, emb), 1), ((4 * hidden, emb), hidden),
                               ((4 * hidden, hidden), hidden), ((4 * hidden,), hidden),
                               ((4 * hidden,), hidden), ((vocab, hidden), hidden),
                               ((vocab,), hidden)])
    x = tl.tensor(rng.integers(0, vocab, (batch, seq)), device=device)
    y = tl.tensor(rng.integers(0, vocab, (batch, seq)), device=device)
    zeros = tl.zeros(batch, hidden, device=device)

    def step():
        h = c = zeros
        loss = None
        for t in range(seq):
            e = F.embedding(x[:, t], ps[0])
            h, c = F.lstm_cell(e, (h, c), ps[1], ps[2], ps[3], ps[4])
            lt = F.cross_entropy(F.linear(h, ps[5], ps[6]), y[:, t])
            loss = lt if loss is None else loss + lt
        loss = loss * (1.0 / seq)
        loss.backward()
        _tl_sgd(ps)
        return loss
    step.params = ps      # benchmarks/w4_by_hand.py checks its step against these
    return step


# --- PyTorch ---------------------------------------------------------------------------------
def torch_model(kind: str, batch: int, device: str = "cpu"):
    torch = _torch()
    nn, TF = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def data(a):
        return torch.tensor(a, device=device)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
        x = data(rng.standard_normal((batch, 784)).astype(np.float32))
        y = data(rng.integers(0, 10, batch))

        def loss_fn():
            return TF.cross_entropy(m(x), y)
    elif kind == "convnet":
        m = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Linear(1024, 10))
        x = data(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
        y = data(rng.integers(0, 10, batch))

        def loss_fn():
            return TF.cross_entropy(m(x), y)
    elif kind == "nnlstm":     # W4's model through cuDNN-style nn.LSTM (one call per sequence)
        vocab, emb, hidden, seq = 64, 64, 256, 32
        m = nn.ModuleDict(dict(emb=nn.Embedding(vocab, emb),
                               rnn=nn.LSTM(emb, hidden, batch_first=True),
                               out=nn.Linear(hidden, vocab)))
        x = data(rng.integers(0, vocab, (batch, seq)))
        y = data(rng.integers(0, vocab, (batch, seq)))

        def loss_fn():
            hs, _ = m["rnn"](m["emb"](x))
            return TF.cross_entropy(m["out"](hs).reshape(-1, vocab), y.reshape(-1))
    else:
        vocab, emb, hidden, seq = 64, 64, 256, 32
        m = nn.ModuleDict(dict(emb=nn.Embedding(vocab, emb), cell=nn.LSTMCell(emb, hidden),
                               out=nn.Linear(hidden, vocab)))
        x = data(rng.integers(0, vocab, (batch, seq)))
        y = data(rng.integers(0, vocab, (batch, seq)))
        zeros = torch.zeros(batch, hidden, device=device)

        def loss_fn():
            h = c = zeros
            loss = 0
            for t in range(seq):
                h, c = m["cell"](m["emb"](x[:, t]), (h, c))
                loss = loss + TF.cross_entropy(m["out"](h), y[:, t])
            return loss / seq
    m.to(device)
    opt = torch.optim.SGD(m.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss
    return step


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def w2_tensorlib(quick: bool) -> float:
    return _timed(_cached("w2tl", tl_mlp), quick, 30)


def w2_torch(quick: bool) -> float:
    return _timed(_cached("w2pt", lambda: torch_model("mlp", 128)), quick, 30)


def w3_tensorlib(quick: bool) -> float:
    return _timed(_cached("w3tl", tl_convnet), quick, 8)


def w3_torch(quick: bool) -> float:
    return _timed(_cached("w3pt", lambda: torch_model("convnet", 64)), quick, 8)


def w4_tensorlib(quick: bool) -> float:
    return _timed(_cached("w4tl", tl_lstm), quick, 8)


def w4_torch(quick: bool) -> float:
    return _timed(_cached("w4pt", lambda: torch_model("lstm", 32)), quick, 8)


def w4_tensorlib_captured(quick: bool) -> float:
    def make():
        step = tl.function(tl_lstm())
        step()      # trace once, outside the timing
        return step
    return _timed(_cached("w4tlc", make), quick, 8)


def w4_torch_nnlstm(quick: bool) -> float:
    return _timed(_cached("w4ptl", lambda: torch_model("nnlstm", 32)), quick, 8)


# --- W6: peak RSS of W3 at batch 256, each framework in its own process ----------------------
def _w6_child(fw: str, steps: int) -> None:
    import resource
    step = tl_convnet(256) if fw == "tensorlib" else torch_model("convnet", 256)
    for _ in range(steps):
        step()
    print(json.dumps({"maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _w6(fw: str, quick: bool) -> float:
    if fw == "torch":
        import torch  # noqa: F401  (ImportError -> the harness leaves the column empty)
    env = dict(os.environ, TENSORLIB_MALLOPT="1" if fw == "tensorlib" else "0")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--w6-child", fw,
                          "1" if quick else "3"], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["maxrss_mib"]


def w6_tensorlib(quick: bool) -> float:
    return _w6("tensorlib", quick)


def w6_torch(quick: bool) -> float:
    return _w6("torch", quick)


WORKLOADS = [
    Workload("W2", "MLP 784-512-512-10 train step, batch 128", "ms/step",
             {"tensorlib": w2_tensorlib, "torch": w2_torch}),
    Workload("W3", "convnet train step (Deep MNIST), batch 64", "ms/step",
             {"tensorlib": w3_tensorlib, "torch": w3_torch}),
    Workload("W4", "char-LSTM step (LSTMCell loop, seq 32, batch 32)", "ms/step",
             {"tensorlib": w4_tensorlib, "torch": w4_torch}),
    Workload("W4c", "char-LSTM step: tensorlib captured vs torch nn.LSTM", "ms/step",
             {"tensorlib": w4_tensorlib_captured, "torch": w4_torch_nnlstm},
             notes="target: ratio <= 1.5"),
    Workload("W6", "peak RSS of W3 at batch 256 (own process)", "MiB",
             {"tensorlib": w6_tensorlib, "torch": w6_torch}),
]


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="OMP/BLAS/torch threads")
    p.add_argument("--only", default="", help="comma-separated ids, e.g. W3,W4")
    p.add_argument("--blas-core", default=None, help="OPENBLAS_CORETYPE for this run")
    p.add_argument("--w6-child", nargs=2, metavar=("FRAMEWORK", "STEPS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.w6_child:
        _w6_child(args.w6_child[0], int(args.w6_child[1]))
        return 0
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    ws = [w for w in WORKLOADS if not wanted or w.id in wanted]
    fws = ["tensorlib", "torch"]
    cpu = _interleaved(ws, args.rounds or (1 if args.quick else 5), args.quick, fws)
    print(f"threads: {os.environ.get('OMP_NUM_THREADS', 'default')}, OPENBLAS_CORETYPE: "
          f"{os.environ.get('OPENBLAS_CORETYPE', 'auto')}, load: {os.getloadavg()}")
    print(table(ws, fws))
    for w, (a, b) in cpu.items():
        print(f"{w}: process CPU s/round tensorlib {a:.3f}, torch {b:.3f}, ratio {a / b:.2f}")
    return 0


def _interleaved(ws, rounds, quick, fws):
    """harness.run, but alternating frameworks each round; also process CPU time/round."""
    import statistics
    cpu = {}
    for w in ws:
        vals, cpus = {fw: [] for fw in fws}, {fw: [] for fw in fws}
        for _ in range(rounds):
            for fw in fws:
                c0 = time.process_time()
                try:
                    vals[fw].append(w.impls[fw](quick))
                except ImportError as e:
                    print(f"{w.id} {fw}: skipped ({e})")
                cpus[fw].append(time.process_time() - c0)
        w.results = {fw: v for fw, v in vals.items() if v}
        if w.id != "W6" and all(vals.values()):
            cpu[w.id] = tuple(statistics.median(cpus[fw]) for fw in fws)
    return cpu


if __name__ == "__main__":
    sys.exit(main())
