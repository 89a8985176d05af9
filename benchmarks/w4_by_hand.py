"""W4's training step written by hand with the rewrites a graph compiler could make: the
bound for W7 on W4 (how fast a captured step could be with today's kernels).

    python benchmarks/w4_by_hand.py [--quick]

Same model, data, initial weights and SGD as ``workloads_nn.tl_lstm``, and the same
kernels (NumPy's BLAS, tensorlib's Cython/C ones); what differs is the dataflow:

- the input projection through the embedding table: ``embedding(x, E) @ W_ih.T + b`` is
  ``embedding(x, E @ W_ih.T + b)``, one 64-row GEMM instead of one per time step (and the
  backward scatters the gate gradients into the 64-row table once);
- the 32 output projections and cross-entropies as one each, over all time steps;
- every weight gradient as one GEMM over all time steps.

What stays sequential is the recurrence: ``h @ W_hh.T`` and the cell, forward and back.
``check()`` compares one step's loss and updated weights with the eager step's.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import time_per_call  # noqa: E402
from workloads_nn import LR, tl_lstm  # noqa: E402

from tensorlib import _ops  # noqa: E402
from tensorlib.ops import nn_loss, nn_rnn  # noqa: E402


def params(vocab=64, emb=64, hidden=256, seq=32, batch=32):
    """The arrays ``tl_lstm`` starts from (same generator, same order)."""
    rng = np.random.default_rng(0)

    def p(shape, fan):
        return (rng.uniform(-1, 1, shape) / np.sqrt(fan)).astype(np.float32)
    ps = [p((vocab, emb), 1), p((4 * hidden, emb), hidden), p((4 * hidden, hidden), hidden),
          p((4 * hidden,), hidden), p((4 * hidden,), hidden), p((vocab, hidden), hidden),
          p((vocab,), hidden)]
    x = rng.integers(0, vocab, (batch, seq))
    y = rng.integers(0, vocab, (batch, seq))
    return ps, x, y


def make_step():
    (E, Wih, Whh, bih, bhh, Wo, bo), x, y = params()
    V, H = E.shape[0], Whh.shape[1]
    B, T = x.shape
    xs = np.ascontiguousarray(x.T)                    # (T, B)
    ys = np.ascontiguousarray(y.T).reshape(-1)        # time-major, like the hidden states
    zeros = np.zeros((B, H), np.float32)
    no_gacts = np.zeros((B, 4 * H), np.float32)

    def step():
        table = E @ Wih.T + (bih + bhh)               # (V, 4H)
        h, c = zeros, zeros
        hs = np.empty((T + 1, B, H), np.float32)
        hs[0] = zeros
        saved = []
        for t in range(T):
            gates = table[xs[t]]
            gates += h @ Whh.T
            c_prev = c
            h, c, acts = nn_rnn._cell_cpu(gates, c)
            hs[t + 1] = h
            saved.append((acts, c_prev, c))
        H_all = hs[1:].reshape(T * B, H)
        prob, loss, _ = nn_loss._softmax_xent_cpu(H_all @ Wo.T + bo, ys, -100)
        # backward
        dlogits = prob
        dlogits[np.arange(T * B), ys] -= 1
        dlogits *= 1.0 / (T * B)
        dWo, dbo = dlogits.T @ H_all, dlogits.sum(0)
        dH = (dlogits @ Wo).reshape(T, B, H)
        dh, dc = zeros, zeros
        dG = np.empty((T, B, 4 * H), np.float32)
        for t in reversed(range(T)):
            acts, c_prev, c_t = saved[t]
            dG[t], dc = nn_rnn._cell_grad_cpu(acts, c_prev, c_t, dH[t] + dh, dc, no_gacts)
            dh = dG[t] @ Whh
        dG2 = dG.reshape(T * B, 4 * H)
        dWhh, db = dG2.T @ hs[:-1].reshape(T * B, H), dG2.sum(0)
        dtable = np.zeros((V, 4 * H), np.float32)
        _ops.embedding_backward(dG2, xs.reshape(-1).astype(np.int64), dtable, -1)
        grads = ((E, dtable @ Wih), (Wih, dtable.T @ E), (Whh, dWhh), (bih, db), (bhh, db),
                 (Wo, dWo), (bo, dbo))
        for p, g in grads:
            _ops.sgd_update(p.reshape(-1), np.ascontiguousarray(g, np.float32).reshape(-1),
                            p.reshape(-1), LR, 0.0, 0.0, 0.0, False, False)
        return float(loss.mean())
    return step, (E, Wih, Whh, bih, bhh, Wo, bo)


def check(rtol: float = 2e-4) -> None:
    """One step by hand and one eager step from the same start agree (loss and weights)."""
    hand, hand_ps = make_step()
    eager = tl_lstm()
    eager_ps = eager.params
    for a, b in zip(hand_ps, eager_ps):
        np.testing.assert_array_equal(a, b.numpy())
    lh, le = hand(), float(eager())
    assert abs(lh - le) <= rtol * abs(le), (lh, le)
    for a, b in zip(hand_ps, eager_ps):
        np.testing.assert_allclose(a, b.numpy(), rtol=rtol, atol=1e-6)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    check()
    hand, _ = make_step()
    eager = tl_lstm()
    n, rounds = (1, 1) if quick else (10, 5)
    e = sorted(time_per_call(eager, n, warmup=1) * 1e3 for _ in range(rounds))[rounds // 2]
    h = sorted(time_per_call(hand, n, warmup=1) * 1e3 for _ in range(rounds))[rounds // 2]
    print(f"W4 eager {e:.2f} ms, by hand with the graph rewrites {h:.2f} ms: "
          f"{e / h:.2f}x (the bound for W7 on W4; target 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
