"""tl.distributions against torch.distributions: log_prob, entropy, moments, KL, gradients,
sampling statistics, argument checks and capture."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
rng = np.random.default_rng(0)


def both(*arrays):
    """The same values as grad-requiring tensorlib and torch tensors (float64)."""
    ours = [tl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def agree(o, t, ours, theirs, atol=1e-10):
    """Values, and the gradients of a weighted sum, match."""
    np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-9, atol=atol)
    w = rng.standard_normal(tuple(t.shape))
    (o * tl.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=atol)


def test_normal():
    loc, scale = rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, (3, 4))
    v = rng.standard_normal((2, 3, 4))
    for fn in (lambda d, x: d.log_prob(x), lambda d, x: d.entropy(), lambda d, x: d.cdf(x)):
        ours, theirs = both(loc, scale)
        agree(fn(D.Normal(*ours), tl.tensor(v)), fn(TD.Normal(*theirs), torch.tensor(v)),
              ours, theirs)
    d = D.Normal(tl.tensor(loc), tl.tensor(scale))
    np.testing.assert_allclose(d.mean.numpy(), loc)
    np.testing.assert_allclose(d.variance.numpy(), scale ** 2)
    np.testing.assert_allclose(d.stddev.numpy(), scale)
    assert d.batch_shape == (3, 4) and d.event_shape == ()


def test_normal_rsample_is_pathwise_and_has_the_right_moments():
    loc = tl.tensor(np.array([1.0, -2.0]), requires_grad=True)
    scale = tl.tensor(np.array([0.5, 3.0]), requires_grad=True)
    tl.manual_seed(0)
    z = D.Normal(loc, scale).rsample((20000,))
    assert z.shape == (20000, 2)
    np.testing.assert_allclose(z.numpy().mean(0), [1.0, -2.0], atol=0.06)
    np.testing.assert_allclose(z.numpy().std(0), [0.5, 3.0], rtol=0.03)
    z.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [20000.0, 20000.0])
    eps = (z.detach().numpy() - loc.detach().numpy()) / scale.detach().numpy()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-9)
    assert not D.Normal(loc, scale).sample((3,)).requires_grad


def test_uniform():
    low = rng.uniform(-2, 0, 4)
    high = low + rng.uniform(0.5, 2.0, 4)
    v = np.concatenate([low + 0.3 * (high - low), low - 1.0])
    ours, theirs = both(low, high)
    o = D.Uniform(*ours).log_prob(tl.tensor(v.reshape(2, 4)))
    t = TD.Uniform(*theirs, validate_args=False).log_prob(torch.tensor(v.reshape(2, 4)))
    np.testing.assert_array_equal(o.numpy(), t.detach().numpy())
    ours, theirs = both(low, high)
    agree(D.Uniform(*ours).entropy(), TD.Uniform(*theirs).entropy(), ours, theirs)
    d = D.Uniform(tl.tensor(low), tl.tensor(high))
    np.testing.assert_allclose(d.mean.numpy(), (low + high) / 2)
    np.testing.assert_allclose(d.variance.numpy(), (high - low) ** 2 / 12)
    tl.manual_seed(1)
    s = d.sample((5000,)).numpy()
    assert (s >= low).all() and (s < high).all()


@pytest.mark.parametrize("by", ["probs", "logits"])
def test_bernoulli(by):
    p = rng.uniform(0.05, 0.95, 5)
    a = p if by == "probs" else np.log(p / (1 - p))
    v = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    for fn in (lambda d: d.log_prob(tl.tensor(v) if isinstance(d, D.Bernoulli) else
                                    torch.tensor(v)), lambda d: d.entropy()):
        ours, theirs = both(a)
        agree(fn(D.Bernoulli(**{by: ours[0]})), fn(TD.Bernoulli(**{by: theirs[0]})), ours,
              theirs, atol=1e-9)
    tl.manual_seed(2)
    s = D.Bernoulli(probs=tl.tensor(p)).sample((20000,)).numpy()
    assert set(np.unique(s)) <= {0.0, 1.0}
    np.testing.assert_allclose(s.mean(0), p, atol=0.015)


@pytest.mark.parametrize("by", ["probs", "logits"])
def test_categorical(by):
    logits = rng.standard_normal((3, 5))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    a = probs * 7.0 if by == "probs" else logits         # unnormalised probs are normalised
    v = np.array([[0, 4, 2], [1, 1, 3]])
    for fn in (lambda d, x: d.log_prob(x), lambda d, x: d.entropy()):
        ours, theirs = both(a)
        agree(fn(D.Categorical(**{by: ours[0]}), tl.tensor(v)),
              fn(TD.Categorical(**{by: theirs[0]}), torch.tensor(v)), ours, theirs)
    tl.manual_seed(3)
    s = D.Categorical(probs=tl.tensor(probs)).sample((30000,)).numpy()
    assert s.shape == (30000, 3) and s.dtype == np.int64
    for row in range(3):
        np.testing.assert_allclose(np.bincount(s[:, row], minlength=5) / 30000, probs[row],
                                   atol=0.012)


def test_kl_divergences_match_torch():
    m1, m2 = rng.standard_normal(4), rng.standard_normal(4)
    s1, s2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    ours, theirs = both(m1, s1, m2, s2)
    agree(D.kl_divergence(D.Normal(*ours[:2]), D.Normal(*ours[2:])),
          TD.kl_divergence(TD.Normal(*theirs[:2]), TD.Normal(*theirs[2:])), ours, theirs)
    p, q = rng.uniform(0.05, 0.95, 4), rng.uniform(0.05, 0.95, 4)
    ours, theirs = both(p, q)
    agree(D.kl_divergence(D.Bernoulli(ours[0]), D.Bernoulli(ours[1])),
          TD.kl_divergence(TD.Bernoulli(theirs[0]), TD.Bernoulli(theirs[1])), ours, theirs,
          atol=1e-9)
    lp, lq = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    ours, theirs = both(lp, lq)
    agree(D.kl_divergence(D.Categorical(logits=ours[0]), D.Categorical(logits=ours[1])),
          TD.kl_divergence(TD.Categorical(logits=theirs[0]), TD.Categorical(logits=theirs[1])),
          ours, theirs)
    u1 = D.Uniform(tl.tensor([0.0, 0.0]), tl.tensor([1.0, 3.0]))
    u2 = D.Uniform(tl.tensor([-1.0, 1.0]), tl.tensor([2.0, 2.0]))
    t1 = TD.Uniform(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0]))
    t2 = TD.Uniform(torch.tensor([-1.0, 1.0]), torch.tensor([2.0, 2.0]))
    np.testing.assert_allclose(D.kl_divergence(u1, u2).numpy(), TD.kl_divergence(t1, t2).numpy())
    with pytest.raises(NotImplementedError, match="no rule for Normal and Bernoulli"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Bernoulli(probs=0.5))


def test_argument_checks():
    with pytest.raises(ValueError, match="scale must be positive"):
        D.Normal(0.0, tl.tensor([1.0, -1.0]))
    D.Normal(0.0, tl.tensor([1.0, -1.0]), validate_args=False)
    with pytest.raises(ValueError, match="low must be below high"):
        D.Uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="exactly one of probs and logits"):
        D.Bernoulli()
    with pytest.raises(ValueError, match="probs must lie in"):
        D.Bernoulli(probs=1.5)
    with pytest.raises(ValueError, match="values must be 0 or 1"):
        D.Bernoulli(probs=0.5).log_prob(tl.tensor(0.5))
    with pytest.raises(ValueError, match="class indices in \\[0, 3\\)"):
        D.Categorical(logits=tl.zeros(3)).log_prob(tl.tensor(3))


def test_vae_style_step_captures_and_replays():
    # the reparameterized sample is a random node of the graph: each replay draws anew,
    # and the loss and gradients equal an eager step given the same generator state
    tl.manual_seed(0)
    enc = tl.nn.Linear(4, 4)
    x = tl.randn(8, 4)

    def loss_fn(x):
        h = enc(x)
        q = D.Normal(h[:, :2], h[:, 2:].exp())
        z = q.rsample()
        kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum()
        return ((z - 1.0) ** 2).sum() + kl
    f = tl.function(loss_fn)
    for seed in (1, 2):
        tl.manual_seed(seed)
        with tl.no_grad():      # outputs that need no gradient: the graph replays
            got = f(x)
        tl.manual_seed(seed)
        want = loss_fn(x)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    assert f.trace_count == 1


def test_expand_on_the_first_families_and_the_reported_fixes():
    torch = pytest.importorskip("torch")
    D, TD = tl.distributions, torch.distributions
    pairs = [(D.Normal(tl.zeros(2), 1.0), TD.Normal(torch.zeros(2), 1.0)),
             (D.Uniform(tl.zeros(2), 1.0), TD.Uniform(torch.zeros(2), 1.0)),
             (D.Bernoulli(probs=tl.tensor([0.3, 0.6])),
              TD.Bernoulli(probs=torch.tensor([0.3, 0.6]))),
             (D.Categorical(logits=tl.zeros(2, 4)), TD.Categorical(logits=torch.zeros(2, 4))),
             (D.OneHotCategorical(logits=tl.zeros(2, 4)),
              TD.OneHotCategorical(logits=torch.zeros(2, 4))),
             (D.Independent(D.Normal(tl.zeros(2, 3), 1.0), 1),
              TD.Independent(TD.Normal(torch.zeros(2, 3), 1.0), 1))]
    for d, td in pairs:
        e, te = d.expand((5, 2)), td.expand((5, 2))
        assert (e.batch_shape, e.event_shape) == (tuple(te.batch_shape), tuple(te.event_shape))
        s = e.sample()
        np.testing.assert_allclose(e.log_prob(s).numpy(),
                                   te.log_prob(torch.tensor(s.numpy())).numpy(), rtol=1e-6)
    # a number as value takes the parameters' dtype (it was float32)
    n64 = D.Normal(tl.tensor(0.0, dtype=tl.float64), 1.0)
    assert n64.log_prob(0.1).dtype == tl.float64
    np.testing.assert_allclose(n64.log_prob(0.1).item(),
                               TD.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
                               .log_prob(torch.tensor(0.1, dtype=torch.float64)).item(),
                               rtol=1e-15)
    # KL to a categorical that cannot draw a class p can: inf, as torch
    p, q = D.Categorical(probs=tl.tensor([0.5, 0.5])), D.Categorical(probs=tl.tensor([1.0, 0.0]))
    assert D.kl_divergence(p, q).item() == math.inf
    np.testing.assert_allclose(D.kl_divergence(q, p).item(), math.log(2.0), rtol=1e-6)
    assert np.isnan(D.Categorical(logits=tl.zeros(3, 4)).mean.numpy()).all()
    assert D.Uniform(0.0, 2.0).icdf(tl.tensor(0.25)).item() == 0.5
    with pytest.raises(ValueError, match="must not be NaN"):
        D.Uniform(0.0, 2.0).cdf(tl.tensor(math.nan))


def test_categorical_eager_sample_is_the_graph_sample_for_one_seed():
    # eager sampling takes a NumPy path (an RL agent draws one action per step); the same
    # seed gives what the op form (traced into a graph) gives, and replays draw anew
    logits = tl.randn(50, 7)
    tl.manual_seed(3)
    eager = D.Categorical(logits=logits).sample((3,))
    f = tl.function(lambda lg: D.Categorical(logits=lg).sample((3,)))
    tl.manual_seed(3)
    traced = f(logits)
    assert eager.dtype == traced.dtype == tl.int64 and eager.shape == (3, 50)
    np.testing.assert_array_equal(eager.numpy(), traced.numpy())
    assert not np.array_equal(f(logits).numpy(), traced.numpy())
    counts = np.bincount(D.Categorical(probs=tl.tensor([0.1, 0.0, 0.6, 0.3]))
                         .sample((20000,)).numpy(), minlength=4) / 20000
    np.testing.assert_allclose(counts, [0.1, 0.0, 0.6, 0.3], atol=0.02)
    assert counts[1] == 0
