"""A thin, optional training loop: ``fit`` with a progress bar, ``evaluate``, and a
``History`` that plots itself.

It runs the plain loop you would write by hand, nothing more::

    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

>>> hist = tl.train.fit(model, loader, F.cross_entropy, opt, epochs=3,
...                     metrics=["accuracy"], val_loader=val_loader)
>>> hist.plot()
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._tensor import Tensor
from .autograd.mode import no_grad

__all__ = ["History", "accuracy", "evaluate", "fit", "progress_bar"]


def progress_bar(iterable: Iterable | None = None, **kwargs):
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, text otherwise."""
    with warnings.catch_warnings():
        # without ipywidgets tqdm.auto warns once and falls back to the text bar; that
        # fallback is fine in notebooks, so the warning is only noise
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of rows whose arg-max matches ``target`` (class ids, or one-hot rows)."""
    pred = np.asarray(output).argmax(axis=-1)
    t = np.asarray(target)
    if t.ndim == pred.ndim + 1:
        t = t.argmax(axis=-1)
    if t.shape != pred.shape:
        raise ValueError(f"accuracy: predictions of shape {pred.shape} (from output "
                         f"{tuple(output.shape)}) do not match targets of shape {t.shape}")
    return float((pred == t).mean()) if pred.size else math.nan


_METRICS: dict[str, Callable] = {"accuracy": accuracy, "acc": accuracy}


def _metric_fns(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        return dict(metrics)
    out = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; known: {sorted(_METRICS)}, or pass "
                                 "a dict of name -> fn(output, target)")
            out["acc" if m in ("accuracy", "acc") else m] = _METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", f"metric{len(out)}")] = m
        else:
            raise TypeError(f"metrics must be names or callables, got {m!r}")
    return out


def _split(batch) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError("fit/evaluate expect batches of (inputs, targets); got "
                    f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                  if isinstance(batch, (tuple, list)) else "")
                    + "; write the loop by hand for other layouts")


def _to(x, device):
    if device is None:
        return x
    if isinstance(x, Tensor):
        return x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x


class History:
    """What ``fit`` recorded: ``epochs[name]`` (one value per epoch: ``loss``, metrics,
    ``val_loss``, ``val_<metric>``, ``time``) and ``steps["loss"]`` (every step)."""

    def __init__(self) -> None:
        self.epochs: dict[str, list[float]] = {}
        self.steps: dict[str, list[float]] = {"loss": []}

    def _log_epoch(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.epochs.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        return self.epochs[key]

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.epochs.items() if v}
        return f"History({len(self.steps['loss'])} steps, last epoch: {last})"

    def plot(self, keys: Sequence[str] | None = None, smooth: int = 10):
        """Plot the step losses (smoothed over ``smooth`` steps) and the per-epoch curves
        with matplotlib; returns the Figure."""
        import matplotlib.pyplot as plt
        metric_keys = keys if keys is not None else [
            k for k in self.epochs if k not in ("loss", "val_loss", "time")]
        ncols = 2 if metric_keys else 1
        fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
        ax = axes[0][0]
        steps = np.asarray(self.steps["loss"], dtype=float)
        if steps.size:
            ax.plot(steps, alpha=0.3, label="step loss")
            if steps.size >= smooth > 1:
                k = np.ones(smooth) / smooth
                ax.plot(np.arange(smooth - 1, steps.size), np.convolve(steps, k, "valid"),
                        label=f"mean of {smooth} steps")
        n_ep = len(self.epochs.get("loss", []))
        if n_ep and steps.size:
            per = steps.size / n_ep
            for key in ("loss", "val_loss"):
                if key in self.epochs:
                    ax.plot([per * (i + 1) - 1 for i in range(n_ep)], self.epochs[key], "o-",
                            label=f"epoch {key}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        if metric_keys:
            ax2 = axes[0][1]
            for key in metric_keys:
                vals = self.epochs.get(key)
                if vals:
                    ax2.plot(range(1, len(vals) + 1), vals, "o-", label=key)
            ax2.set_xlabel("epoch")
            ax2.legend()
        fig.tight_layout()
        return fig


def evaluate(model, loader: Iterable, loss_fn: Callable | None = None,
             metrics=("accuracy",), device=None) -> dict[str, float]:
    """Mean loss and metrics over ``loader`` in eval mode without gradients (sample
    weighted); the model's train/eval mode is restored afterwards."""
    fns = _metric_fns(metrics)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    totals: dict[str, float] = {}
    n = 0
    try:
        with no_grad():
            for batch in loader:
                x, y = _split(batch)
                x, y = _to(x, device), _to(y, device)
                out = model(x)
                b = len(out)
                if loss_fn is not None:
                    totals["loss"] = totals.get("loss", 0.0) + float(loss_fn(out, y)) * b
                for k, f in fns.items():
                    totals[k] = totals.get(k, 0.0) + f(out, y) * b
                n += b
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {k: v / n for k, v in totals.items()}


def _train_step(model, loss_fn, optimizer):
    def step(x, y):
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss, out.detach()
    return step


def fit(model, loader: Iterable, loss_fn: Callable, optimizer, epochs: int = 1,
        metrics=None, val_loader: Iterable | None = None, scheduler=None, device=None,
        progress: bool = True, history: History | None = None,
        capture: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``loader`` and return a ``History``.

    Each step: ``loss_fn(model(x), y)``, ``zero_grad``, ``backward``, ``optimizer.step()``.
    The bar shows the running loss and metrics; after each epoch ``val_loader`` (if any)
    is evaluated, and ``scheduler.step()`` runs (if given). ``metrics`` are names
    (``"accuracy"``) or a dict of ``fn(output, target) -> float``. ``capture=True`` runs
    the step as one captured graph (``tl.function``: forward, backward and update),
    traced on the first batch of each shape and replayed after; with a ``scheduler``, a
    learning rate given as a tensor (``lr=tl.tensor(0.1)``) saves the retrace each epoch.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    fns = _metric_fns(metrics)
    hist = history if history is not None else History()
    try:
        steps_per_epoch = len(loader)  # type: ignore[arg-type]
    except TypeError:
        steps_per_epoch = None
    train_step = _train_step(model, loss_fn, optimizer)
    if capture:
        from .graph import function
        # a float learning rate changed by the scheduler retraces once per epoch and batch
        # shape: expected here, so no warning for it (a tensor lr avoids even that)
        train_step = function(train_step, max_retraces=4 * (epochs + 1))
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        sums = dict.fromkeys(["loss", *fns], 0.0)
        n = 0
        bar = progress_bar(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                           disable=not progress, leave=True, dynamic_ncols=True)
        for batch in bar:
            x, y = _split(batch)
            x, y = _to(x, device), _to(y, device)
            loss, out = train_step(x, y)
            lv = float(loss)
            if not math.isfinite(lv):
                bar.close()
                raise FloatingPointError(f"fit: the loss became {lv} at epoch {epoch + 1}, step "
                                         f"{len(hist.steps['loss']) + 1}; lower the learning "
                                         "rate or check the data")
            b = len(out)
            hist.steps["loss"].append(lv)
            sums["loss"] += lv * b
            for k, f in fns.items():
                sums[k] += f(out, y) * b
            n += b
            if progress:
                bar.set_postfix({k: f"{v / n:.4f}" for k, v in sums.items()}, refresh=False)
        bar.close()
        if n == 0:
            raise ValueError("fit: the loader yielded no batches")
        record = {k: v / n for k, v in sums.items()}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, metrics=fns, device=device)
            record.update({f"val_{k}": v for k, v in val.items()})
        if scheduler is not None:
            scheduler.step()
        record["time"] = time.perf_counter() - t0
        hist._log_epoch(record)
        if progress and val_loader is not None:
            print(f"epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k != "time")
                  + f" ({record['time']:.1f} s)", flush=True)
    return hist
