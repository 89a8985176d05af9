"""tl.train.fit / evaluate / History."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.data import DataLoader, TensorDataset


def _blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 2)).astype(np.float32) + np.array([[0, 3], [3, 0], [-3, -3]],
                                                                  np.float32)[y]
    return TensorDataset(x, y)


def test_fit_learns_and_records_history(capsys):
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = tl.optim.Adam(model.parameters(), lr=0.05)
    train = DataLoader(_blobs(), batch_size=32, shuffle=True, seed=0)
    val = DataLoader(_blobs(100, seed=1), batch_size=50)
    sched = tl.optim.StepLR(opt, step_size=1, gamma=0.5)
    hist = tl.train.fit(model, train, F.cross_entropy, opt, epochs=3, metrics=["accuracy"],
                        val_loader=val, scheduler=sched, progress=False)
    assert set(hist.epochs) == {"loss", "acc", "val_loss", "val_acc", "time"}
    assert len(hist["loss"]) == 3 and len(hist.steps["loss"]) == 3 * len(train)
    assert hist["val_acc"][-1] > 0.9 and hist["loss"][-1] < hist["loss"][0]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 / 8)
    assert model.training  # fit leaves the model in training mode
    res = tl.train.evaluate(model, val, F.cross_entropy)
    assert res["acc"] == pytest.approx(hist["val_acc"][-1])
    assert "History(" in repr(hist)
    fig = hist.plot()
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.mark.parametrize("lr", [0.05, "tensor"])
def test_fit_with_a_captured_step_matches_eager(lr):
    # 200 samples in batches of 32: a short last batch, so two shapes (two traces at most
    # per shape: the first call creates gradients and Adam's buffers)
    hists, models = [], []
    for capture in (False, True):
        tl.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.0), nn.ReLU(), nn.Linear(16, 3))
        opt = tl.optim.Adam(model.parameters(), lr=tl.tensor(0.05) if lr == "tensor" else lr)
        sched = tl.optim.StepLR(opt, step_size=1, gamma=0.5)
        train = DataLoader(_blobs(), batch_size=32, shuffle=True, seed=0)
        hists.append(tl.train.fit(model, train, F.cross_entropy, opt, epochs=3,
                                  metrics=["accuracy"], scheduler=sched, progress=False,
                                  capture=capture))
        models.append(model)
    np.testing.assert_allclose(hists[1].steps["loss"], hists[0].steps["loss"], rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(hists[1]["acc"], hists[0]["acc"])
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_fit_progress_bar_and_custom_metric(capsys):
    model = nn.Linear(2, 3)
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(_blobs(40), batch_size=20)
    hist = tl.train.fit(model, loader, F.cross_entropy, opt, epochs=1,
                        metrics={"one": lambda out, y: 1.0}, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "one=1.0000" in err
    assert hist["one"] == [1.0]


def test_accuracy_with_one_hot_and_errors():
    out = tl.tensor([[0.1, 0.9], [0.8, 0.2]])
    assert tl.train.accuracy(out, tl.tensor([1, 1])) == 0.5
    assert tl.train.accuracy(out, tl.tensor([[0.0, 1.0], [1.0, 0.0]])) == 1.0
    with pytest.raises(ValueError, match="do not match"):
        tl.train.accuracy(out, tl.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="unknown metric"):
        tl.train.fit(nn.Linear(2, 3), [], F.cross_entropy, None, metrics=["f1"])


def test_fit_rejects_bad_batches_and_diverging_loss():
    model = nn.Linear(2, 3)
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="\\(inputs, targets\\)"):
        tl.train.fit(model, [(tl.ones(1, 2),)], F.cross_entropy, opt, progress=False)
    bad = [(tl.tensor([[float("nan"), 0.0]]), tl.tensor([0]))]
    with pytest.raises(FloatingPointError, match="nan"):
        tl.train.fit(model, bad, F.cross_entropy, opt, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        tl.train.fit(model, [], F.cross_entropy, opt, progress=False)
