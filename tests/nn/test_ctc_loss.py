"""F.ctc_loss and nn.CTCLoss: PyTorch parity (random shapes, padded and concatenated targets,
every reduction, zero_infinity, impossible alignments, float32/float64, the gradient w.r.t.
logits through log_softmax), finite differences in float64 on arbitrary log_probs, the
gradient being the true derivative w.r.t. log_probs, long and confident sequences (log
space), graph capture replaying new targets and lengths, ONNX refusal, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.autograd import gradcheck
from tensorlib.onnx.context import UnsupportedOpError

REDUCTIONS = ["none", "mean", "sum"]


@st.composite
def _problem(draw, min_t: int = 1):
    """(logits (T, N, C), targets padded (N, S), input_lengths, target_lengths, blank): small
    random shapes; some input lengths too short for their target (an infinite loss), some
    targets empty, repeated labels (they need a blank between them), padding of any value."""
    T = draw(st.integers(min_t, 12))
    N = draw(st.integers(1, 4))
    C = draw(st.integers(2, 6))
    blank = draw(st.integers(0, C - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    tlen = rng.integers(0, min(T, 5) + 1, N)
    if draw(st.booleans()):          # sometimes fewer frames than a target needs
        ilen = rng.integers(0, T + 1, N)
    else:
        ilen = rng.integers(np.minimum(2 * tlen + 1, T), T + 1)
    S = int(tlen.max()) + draw(st.integers(0, 2))
    labels = np.array([c for c in range(C) if c != blank])
    targets = rng.choice(labels, size=(N, S))
    if draw(st.booleans()):          # runs of one label
        targets[:, 1::2] = targets[:, 0::2][:, :targets[:, 1::2].shape[1]]
    pad = np.arange(S)[None, :] >= tlen[:, None]
    targets[pad] = rng.integers(0, C, pad.sum())       # padding may hold anything, blank too
    logits = rng.standard_normal((T, N, C)) * draw(st.sampled_from([0.5, 2.0, 6.0]))
    return logits, targets, ilen, tlen, blank


def _concatenated(targets, tlen):
    return np.concatenate([targets[n, :tlen[n]] for n in range(len(tlen))]).astype(np.int64)


def _torch(logits, targets, ilen, tlen, dtype, **kw):
    x = torch.tensor(logits, dtype=dtype, requires_grad=True)
    loss = TF.ctc_loss(x.log_softmax(-1), torch.tensor(targets), torch.tensor(ilen),
                       torch.tensor(tlen), **kw)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach().numpy(), g.numpy()


def _ours(logits, targets, ilen, tlen, dtype, as_lengths=tl.tensor, **kw):
    x = tl.tensor(np.asarray(logits, dtype), requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x, -1), tl.tensor(targets), as_lengths(ilen),
                      as_lengths(tlen), **kw)
    (g,) = tl.grad(loss.sum(), [x])
    assert loss.dtype == x.dtype and g.dtype == x.dtype
    return loss.numpy(), g.numpy()


_LENGTHS = {"tensor": tl.tensor, "list": lambda a: [int(v) for v in a],
            "tuple": lambda a: tuple(int(v) for v in a),
            "int32": lambda a: tl.tensor(np.asarray(a, np.int32))}


@settings(max_examples=60, deadline=None)
@given(case=_problem(), layout=st.sampled_from(["padded", "concatenated"]),
       reduction=st.sampled_from(REDUCTIONS), zero_infinity=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), lengths=st.sampled_from(list(_LENGTHS)))
def test_loss_and_logit_gradient_match_torch(case, layout, reduction, zero_infinity, dtype,
                                             lengths):
    logits, targets, ilen, tlen, blank = case
    if layout == "concatenated":
        targets = _concatenated(targets, tlen)
    kw = dict(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    want, want_g = _torch(logits, targets, ilen, tlen,
                          torch.float32 if dtype == np.float32 else torch.float64, **kw)
    got, got_g = _ours(logits, targets, ilen, tlen, dtype, _LENGTHS[lengths], **kw)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)
    assert got.shape == want.shape
    # (infinite losses and the NaN gradients of their frames included: equal_nan)
    np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(got_g, want_g, **tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("lengths", ["tensor0d", "int", "list1"])
def test_unbatched_matches_torch(reduction, lengths):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((9, 5))
    targets = np.array([1, 3, 3, 2])
    want_l = TF.ctc_loss(torch.tensor(logits).log_softmax(-1), torch.tensor(targets),
                         torch.tensor(8), torch.tensor(4), reduction=reduction)
    form = {"tensor0d": tl.tensor, "int": int, "list1": lambda v: [v]}[lengths]
    x = tl.tensor(logits, requires_grad=True)
    got = F.ctc_loss(F.log_softmax(x, -1), tl.tensor(targets), form(8), form(4),
                     reduction=reduction)
    assert got.shape == ()
    np.testing.assert_allclose(got.numpy(), want_l.numpy(), rtol=1e-12)
    # padded to a longer target: the same loss
    padded = F.ctc_loss(F.log_softmax(x, -1), tl.tensor([1, 3, 3, 2, 0, 0]), form(8), form(4),
                        reduction=reduction)
    np.testing.assert_allclose(padded.numpy(), want_l.numpy(), rtol=1e-12)


def test_known_values():
    # uniform over 3 classes, 2 frames, target [1]: alignments "1 1", "0 1", "1 0"
    lp = tl.tensor(np.full((2, 1, 3), np.log(1 / 3)))
    loss = F.ctc_loss(lp, tl.tensor([[1]]), [2], [1], reduction="none")
    np.testing.assert_allclose(loss.numpy(), [-np.log(3 / 9)], rtol=1e-12)
    # a repeated label needs a blank between: "1 0 1" is the only alignment in 3 frames
    loss = F.ctc_loss(tl.tensor(np.full((3, 1, 3), np.log(1 / 3))), tl.tensor([[1, 1]]), [3],
                      [2], reduction="none")
    np.testing.assert_allclose(loss.numpy(), [3 * np.log(3)], rtol=1e-12)
    # ... and cannot fit in 2 frames: an infinite loss, not an error
    loss = F.ctc_loss(tl.tensor(np.full((3, 1, 3), np.log(1 / 3))), tl.tensor([[1, 1]]), [2],
                      [2], reduction="none")
    assert np.isinf(loss.numpy()).all()


@settings(max_examples=25, deadline=None)
@given(case=_problem(), layout=st.sampled_from(["padded", "concatenated"]),
       reduction=st.sampled_from(REDUCTIONS), zero_infinity=st.booleans())
def test_gradcheck_float64_on_arbitrary_log_probs(case, layout, reduction, zero_infinity):
    # log_probs as given, not normalised: the gradient is d loss / d log_probs itself
    logits, targets, ilen, tlen, blank = case
    if not zero_infinity:     # finite losses only (an infinite one has no derivative)
        ilen = np.maximum(ilen, np.minimum(2 * tlen + 1, logits.shape[0]))
        tlen = np.minimum(tlen, ilen // 2 + ilen % 2)
    if layout == "concatenated":
        targets = _concatenated(targets, tlen)
    lp = tl.tensor(logits, requires_grad=True)
    fn = lambda a: F.ctc_loss(a, tl.tensor(targets), tl.tensor(ilen), tl.tensor(tlen),  # noqa: E731
                              blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    assert np.isfinite(fn(lp).numpy()).all()
    assert gradcheck(fn, [lp])


def test_gradient_is_the_derivative_wrt_log_probs_not_torchs():
    # PyTorch returns exp(lp) - posterior (the derivative only after log_softmax's backward);
    # ours is -posterior: the two differ by exp(lp) on the frames in use
    rng = np.random.default_rng(0)
    lp = torch.tensor(rng.standard_normal((7, 3, 5))).log_softmax(-1).detach().requires_grad_()
    targets, ilen, tlen = np.array([[1, 2, 2], [3, 4, 1], [2, 0, 0]]), [7, 5, 6], [3, 3, 1]
    loss = TF.ctc_loss(lp, torch.tensor(targets), ilen, tlen, reduction="sum")
    (tg,) = torch.autograd.grad(loss, lp)
    ours = tl.tensor(lp.detach().numpy(), requires_grad=True)
    (g,) = tl.grad(F.ctc_loss(ours, tl.tensor(targets), ilen, tlen, reduction="sum"), [ours])
    used = (np.arange(7)[:, None] < np.array(ilen)[None, :])[..., None]
    np.testing.assert_allclose(g.numpy(), tg.numpy() - np.exp(lp.detach().numpy()) * used,
                               atol=1e-12)
    # the posteriors of a frame sum to one
    np.testing.assert_allclose(g.numpy().sum(-1), -used[..., 0].astype(float), atol=1e-12)


def test_minus_infinity_log_probs_give_finite_results():
    # classes masked with -inf (never in a target): the loss is finite, the gradient 0 there
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 2, 5))
    logits[:, :, 4] = -np.inf
    lp = tl.tensor(logits, requires_grad=True)
    ls = F.log_softmax(lp, -1)
    loss = F.ctc_loss(ls, tl.tensor([[1, 2], [3, 3]]), [6, 6], [2, 2], reduction="sum")
    want = TF.ctc_loss(torch.tensor(logits).log_softmax(-1), torch.tensor([[1, 2], [3, 3]]),
                       [6, 6], [2, 2], reduction="sum")
    np.testing.assert_allclose(loss.numpy(), want.numpy(), rtol=1e-12)
    lsd = ls.detach().requires_grad_(True)
    (g,) = tl.grad(F.ctc_loss(lsd, tl.tensor([[1, 2], [3, 3]]), [6, 6], [2, 2]), [lsd])
    assert np.isfinite(g.numpy()).all() and (g.numpy()[:, :, 4] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_confident_sequences_stay_in_log_space(dtype):
    # a model sure of blank everywhere (label log-probs near -100): the alignments' log-probs
    # spread over thousands of nats within one frame, far past exp's range; PyTorch (log space,
    # float64) is the reference
    rng = np.random.default_rng(2)
    T, N, C, S = 300, 3, 8, 25
    logits = rng.standard_normal((T, N, C))
    logits[:, :, 0] += 100.0
    targets = rng.integers(1, C, (N, S))
    want, want_g = _torch(logits, targets, [T] * N, [S, 20, 7], torch.float64,
                          reduction="none")
    got, got_g = _ours(logits, targets, [T] * N, [S, 20, 7], dtype, reduction="none")
    assert np.isfinite(got).all() and want.min() > 600
    tol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=tol)
    np.testing.assert_allclose(got_g, want_g, atol=1e-3 if dtype == np.float32 else 1e-9)


def test_double_backward_is_refused_clearly():
    lp = tl.tensor(np.log(np.full((4, 1, 3), 1 / 3)), requires_grad=True)
    loss = F.ctc_loss(lp, tl.tensor([[1, 2]]), [4], [2])
    (g,) = tl.grad(loss, [lp], create_graph=True)
    assert g.requires_grad
    with pytest.raises(NotImplementedError, match="double backward"):
        tl.grad(g.sum(), [lp])


def test_module_matches_torch():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((10, 3, 6))
    targets, ilen, tlen = rng.integers(1, 6, (3, 4)), [10, 2, 8], [4, 4, 3]
    for kw in (dict(), dict(blank=0, reduction="sum", zero_infinity=True)):
        want = torch.nn.CTCLoss(**kw)(torch.tensor(logits).log_softmax(-1),
                                      torch.tensor(targets), ilen, tlen)
        got = nn.CTCLoss(**kw)(F.log_softmax(tl.tensor(logits), -1), tl.tensor(targets), ilen,
                               tlen)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert repr(nn.CTCLoss(blank=2)) == "CTCLoss()"      # PyTorch prints losses bare
    # a batch-first model output, transposed to (T, N, C): a strided view reaches the kernels
    xb = tl.tensor(logits.transpose(1, 0, 2).copy(), requires_grad=True)
    loss = nn.CTCLoss()(F.log_softmax(xb, -1).transpose(0, 1), tl.tensor(targets), ilen, tlen)
    xt = torch.tensor(logits.transpose(1, 0, 2).copy(), requires_grad=True)
    want = torch.nn.CTCLoss()(xt.log_softmax(-1).transpose(0, 1), torch.tensor(targets), ilen,
                              tlen)
    np.testing.assert_allclose(loss.numpy(), want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(tl.grad(loss, [xb])[0].numpy(),
                               torch.autograd.grad(want, xt)[0].numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="avg")


def _step(logits, targets, ilen, tlen):
    x = logits.detach().requires_grad_(True)
    loss = F.ctc_loss(F.log_softmax(x, 2), targets, ilen, tlen, reduction="mean",
                      zero_infinity=True)
    return loss.detach(), tl.grad(loss, [x])[0]


def _inputs(rng, T=8, N=3, C=5, S=4):
    return (tl.tensor(rng.standard_normal((T, N, C))), tl.tensor(rng.integers(1, C, (N, S))),
            tl.tensor(rng.integers(0, T + 1, N)), tl.tensor(rng.integers(0, S + 1, N)))


def test_capture_of_loss_and_gradient_replays_new_targets_and_lengths():
    rng = np.random.default_rng(5)
    f = tl.function(_step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no eager fallback, no retracing
        for _ in range(4):
            args = _inputs(rng)
            got, want = f(*args), _step(*args)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    assert f.trace_count == 1
    assert {"ctc_loss", "ctc_loss_grad"} <= {n.op for n in f.get_graph(*args).nodes}
    # the kernels check the replayed values too
    bad = args[:2] + (tl.tensor([9, 9, 9]),) + args[3:]
    with pytest.raises(ValueError, match="input_lengths must be in"):
        f(*bad)


def _sum_loss(x, t, il, tlen):
    return F.ctc_loss(F.log_softmax(x, 2), t, il, tlen, reduction="sum", zero_infinity=True)


def test_graph_gradients_equal_eager():
    rng = np.random.default_rng(6)
    x, t, il, tlen = _inputs(rng)
    x.requires_grad_(True)
    with tl.capture(x, t, il, tlen) as g:
        loss = _sum_loss(x, t, il, tlen)
    (gx,) = g.gradients(loss, [g.inputs[0]])
    for _ in range(3):        # new feeds: a graph that froze the traced values would disagree
        feeds = _inputs(rng)
        (got,) = g.run({k: v.numpy() for k, v in enumerate(feeds)}, fetches=[gx])
        xe = feeds[0].requires_grad_(True)
        (want,) = tl.grad(_sum_loss(xe, *feeds[1:]), [xe])
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)


def test_onnx_export_is_refused_clearly():
    pytest.importorskip("onnx")
    rng = np.random.default_rng(7)
    args = _inputs(rng)
    g = tl.function(lambda *a: F.ctc_loss(*a)).get_graph(*args)
    with pytest.raises(UnsupportedOpError,
                       match=r"no ONNX form: ctc_loss \(no CTC operator in ONNX"):
        tl.onnx.to_model(g)


_LP = np.log(np.full((5, 2, 4), 0.25))
_T = [[1, 2], [3, 3]]


@pytest.mark.parametrize("args, kw, err, match", [
    ((_LP[0, 0], [1], [1], [1]), {}, ValueError, r"log_probs of shape \(4,\) must be 3-d"),
    ((_LP[None], _T, [5, 5], [2, 2]), {}, ValueError, "must be 3-d"),
    ((_LP, [[[1]]], [5, 5], [1, 1]), {}, ValueError, r"targets of shape \(1, 1, 1\)"),
    ((_LP, [[1, 2]], [5, 5], [2, 2]), {}, ValueError, "one row per sample"),
    ((_LP, _T, [5], [2, 2]), {}, ValueError, "input_lengths of shape .* must hold 2 lengths"),
    ((_LP, _T, [5, 5], [[2, 2]]), {}, ValueError, "target_lengths of shape"),
    ((_LP, _T, [6, 5], [2, 2]), {}, ValueError, r"input_lengths must be in \[0, 5\].*got 6"),
    ((_LP, _T, [-1, 5], [2, 2]), {}, ValueError, r"input_lengths must be in \[0, 5\].*got -1"),
    ((_LP, _T, [5, 5], [3, 2]), {}, ValueError, "target_lengths must be at most 2"),
    ((_LP, _T, [5, 5], [-1, 2]), {}, ValueError, "target_lengths must be >= 0"),
    ((_LP, [1, 2, 3], [5, 5], [2, 2]), {}, ValueError, "sum.target_lengths. = 4"),
    ((_LP, _T, [5, 5], [2, 2]), {"blank": 4}, ValueError, r"blank=4 must be a class index"),
    ((_LP, _T, [5, 5], [2, 2]), {"blank": -1}, ValueError, "blank=-1"),
    ((_LP, _T, [5, 5], [2, 2]), {"blank": 3}, ValueError, "contain the blank label 3"),
    ((_LP, [[1, 4], [3, 3]], [5, 5], [2, 2]), {}, ValueError, "label 4 is out of range"),
    ((_LP, np.array(_T, np.float32), [5, 5], [2, 2]), {}, TypeError, "targets must be integer"),
    ((_LP, _T, [5.0, 5.0], [2, 2]), {}, TypeError, "input_lengths must hold ints"),
    ((_LP, _T, np.array([5.0, 5.0]), [2, 2]), {}, TypeError, "input_lengths must hold int"),
    ((_LP, _T, [5, 5], [2, 2]), {"reduction": "avg"}, ValueError, "reduction must be"),
    ((_LP.astype(np.float16), _T, [5, 5], [2, 2]), {}, TypeError, "float32 or float64"),
    ((_LP[:0], _T, [0, 0], [0, 0]), {}, ValueError, "is empty"),
    ((_LP, _T, [5, 5], [2, 2]), {"blank": 1.0}, TypeError, "blank must be an int"),
])
def test_errors(args, kw, err, match):
    lp, targets, il, tlen = args
    lengths = [tl.tensor(a) if isinstance(a, np.ndarray) else a for a in (il, tlen)]
    with pytest.raises(err, match=match):
        F.ctc_loss(tl.tensor(lp), tl.tensor(targets), *lengths, **kw)


def test_padding_past_a_target_may_hold_the_blank():
    # padding with the blank (0) is the usual way; only labels within the lengths are checked
    lp = tl.tensor(_LP)
    out = F.ctc_loss(lp, tl.tensor([[1, 0, 0], [2, 3, 0]]), [5, 5], [1, 2], reduction="none")
    want = TF.ctc_loss(torch.tensor(_LP), torch.tensor([[1, 0, 0], [2, 3, 0]]), [5, 5], [1, 2],
                       reduction="none")
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-12)
