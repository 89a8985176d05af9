"""Remote workers on Ray: placed graphs whose devices include ``/worker:K/cpu:0``.

``init`` starts Ray (or joins the cluster at ``address``) and one worker actor per
``/worker:K/``; the placer may then put nodes there, and ``Graph.run`` runs each
remote device's subgraph in its worker, values crossing processes through
Ray's object store. Variables stay in this process (the driver): a worker
receives the values it reads each step and sends back what it computes, so the
driver's eager tensors are always current. Needs ``pip install ray``.

A value through a local cluster costs about 1 ms (8 ms at 1 MB) and each worker call
about 1 ms: workers pay off where a device's work per step is far larger (several
machines, large models); within one machine the ``cpu:N`` devices are cheaper.

>>> cluster = tl.distributed.init(num_workers=2)
>>> tl.graph.place(g, ["cpu", "/worker:0/cpu:0", "/worker:1/cpu:0"])
>>> g.run({x: batch})
>>> tl.distributed.shutdown()
"""
from __future__ import annotations

import itertools
import threading

__all__ = ["Cluster", "current", "init", "shutdown"]

_current: Cluster | None = None
_lock = threading.Lock()
_plan_ids = itertools.count(1)


class Cluster:
    """The Ray actors of this process's cluster: ``workers[K]`` runs ``/worker:K/...``."""

    def __init__(self, num_workers: int, address: str | None, ray_kwargs: dict):
        try:
            ray = _import_ray()
        except ImportError:
            raise ImportError("tl.distributed needs Ray: pip install ray") from None
        self._started = not ray.is_initialized()
        if self._started:
            kwargs = {"include_dashboard": False, "log_to_driver": False,
                      "configure_logging": False, **ray_kwargs}
            ray.init(address=address, **kwargs)
        from .actors import Exchange, Worker
        self.exchange = Exchange.remote()
        self.workers = [Worker.remote(k, self.exchange) for k in range(num_workers)]
        ray.get([w.pid.remote() for w in self.workers])     # started, or fail here

    @property
    def devices(self) -> list[str]:
        """The remote devices this cluster offers."""
        return [f"/worker:{k}/cpu:0" for k in range(len(self.workers))]

    def next_plan_id(self) -> int:
        return next(_plan_ids)

    def shutdown(self) -> None:
        import ray
        for w in self.workers:
            ray.kill(w)
        ray.kill(self.exchange)
        self.workers = []
        if self._started:
            ray.shutdown()

    def __repr__(self) -> str:
        return f"<tensorlib cluster: {len(self.workers)} Ray workers>"


def _import_ray():
    """Ray, imported without the notices its import prints in a notebook (tqdm's widget
    warning, a log line about ipywidgets): they are about Ray's progress bars, not ours."""
    import logging
    import warnings
    log = logging.getLogger("ray")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ray
            import ray.util   # noqa: F401
    finally:
        log.setLevel(level)
    return ray


def init(num_workers: int = 2, address: str | None = None, **ray_kwargs) -> Cluster:
    """Start ``num_workers`` remote workers (Ray actors); ``address`` joins a running Ray
    cluster (``"auto"``), else a local one is started with ``ray_kwargs`` for ``ray.init``.
    Replaces the current cluster, if any."""
    global _current
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"tl.distributed.init: num_workers must be a positive int, got "
                         f"{num_workers!r}")
    with _lock:
        if _current is not None:
            _current.shutdown()
            _current = None
        _current = Cluster(num_workers, address, ray_kwargs)
        return _current


def current() -> Cluster | None:
    """The cluster ``init`` started, or None."""
    return _current


def shutdown() -> None:
    """Stop the workers (and Ray, when ``init`` started it)."""
    global _current
    with _lock:
        if _current is not None:
            _current.shutdown()
            _current = None
