"""Cases for the CTC ops (tensorlib/ops/nn_loss_ctc.py), with a naive NumPy reference (one
position at a time); PyTorch parity is in tests/nn/test_ctc_loss.py. Double backward is not
implemented (as in PyTorch), so no gradgradcheck."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib.nn.functional as F

from . import COVERED_ELSEWHERE, add, arr


def _ctc_ref(lp, targets, il, tl, blank=0):
    out = []
    for n in range(lp.shape[1]):
        ext = [blank]
        for c in targets[n, :tl[n]]:
            ext += [int(c), blank]
        a = np.full(len(ext), -np.inf)
        if il[n] == 0:
            out.append(0.0 if tl[n] == 0 else np.inf)
            continue
        a[0] = lp[0, n, ext[0]]
        if len(ext) > 1:
            a[1] = lp[0, n, ext[1]]
        for t in range(1, il[n]):
            b = np.full_like(a, -np.inf)
            for s in range(len(ext)):
                v = a[s]
                if s >= 1:
                    v = np.logaddexp(v, a[s - 1])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    v = np.logaddexp(v, a[s - 2])
                b[s] = v + lp[t, n, ext[s]]
            a = b
        out.append(-np.logaddexp(a[-1], a[-2] if len(ext) > 1 else -np.inf))
    return np.array(out, lp.dtype)


def _ctc_inputs(draw):
    T, N, C = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    tl = rng.integers(0, (T + 1) // 2 + 1, N)          # every target fits its frames
    il = rng.integers(np.minimum(2 * tl + 1, T), T + 1)
    targets = rng.integers(1, C, (N, max(int(tl.max()), 1)))
    return [arr(draw, (T, N, C), -3.0, 0.0), targets, il, tl], {}


add("ctc_loss", lambda lp, t, il, tl: F.ctc_loss(lp, t, il, tl, reduction="none"),
    _ctc_inputs, _ctc_ref, gradgrad=False, diff=(0,))
COVERED_ELSEWHERE["ctc_loss_grad"] = ("ctc_loss's backward: gradcheck of the ctc_loss case "
                                      "and tests/nn/test_ctc_loss.py (its own vjp raises: no "
                                      "double backward, as in PyTorch)")
