"""``Optimizer``: parameter groups, per-parameter state, state_dict round trip."""
from __future__ import annotations

import copy
import functools
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from .._hyper import hyper_value
from ..autograd.mode import no_grad, state as _mode

if TYPE_CHECKING:
    from ..utils.hooks import RemovableHandle


class _Required:
    def __repr__(self) -> str:
        return "<required>"


required = _Required()


# hooks every optimizer's step runs (PyTorch's torch.optim.optimizer globals): pre-hooks
# before the optimizer's own, post-hooks after its own, as PyTorch orders them
_global_optimizer_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_optimizer_post_hooks: OrderedDict[int, Callable] = OrderedDict()


def _register_global(store: OrderedDict, hook: Callable, name: str) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"{name}: expected a callable hook(optimizer, args, kwargs), got "
                        f"{type(hook).__name__}")
    from ..utils.hooks import RemovableHandle
    handle = RemovableHandle(store)
    store[handle.id] = hook
    return handle


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs)`` to run before every optimizer's ``step()``
    (before that optimizer's own pre-hooks), as PyTorch's; it may return ``(new_args,
    new_kwargs)``, where ``args`` starts with the optimizer. Returns a
    :class:`~tensorlib.utils.hooks.RemovableHandle`; ``handle.remove()`` unregisters it."""
    return _register_global(_global_optimizer_pre_hooks, hook,
                            "register_optimizer_step_pre_hook")


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs)`` to run after every optimizer's ``step()``
    (after that optimizer's own post-hooks), as PyTorch's. Returns a
    :class:`~tensorlib.utils.hooks.RemovableHandle`; ``handle.remove()`` unregisters it."""
    return _register_global(_global_optimizer_post_hooks, hook,
                            "register_optimizer_step_post_hook")


def _hooked_step(func: Callable) -> Callable:
    """``step`` wrapped to run the global and the optimizer's step pre/post hooks (once,
    however many ``super().step()`` calls nest) and to mark the optimizer stepped
    (schedulers check it)."""
    @functools.wraps(func)
    def step(self, *args, **kwargs):
        d = self.__dict__.get("_hook_dicts") or {}
        if (not d and not _global_optimizer_pre_hooks and not _global_optimizer_post_hooks) \
                or self.__dict__.get("_in_hooked_step"):
            out = func(self, *args, **kwargs)
        else:
            self._in_hooked_step = True
            try:
                args = (self, *args)        # as PyTorch: the hooks' args start with self
                for hook in [*_global_optimizer_pre_hooks.values(),
                             *d.get("step_pre", {}).values()]:
                    res = hook(self, args, kwargs)
                    if res is not None:
                        if not (isinstance(res, tuple) and len(res) == 2):
                            raise RuntimeError(
                                f"{type(self).__name__}.step: a step pre-hook must return None "
                                f"or a tuple (new_args, new_kwargs), got {res!r}")
                        args, kwargs = res
                out = func(*args, **kwargs)
                for hook in [*d.get("step_post", {}).values(),
                             *_global_optimizer_post_hooks.values()]:
                    hook(self, args, kwargs)
            finally:
                self._in_hooked_step = False
        if not self._stepped:       # set once: no per-step state
            self._stepped = True
        return out
    step._runs_step_hooks = True
    return step


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``params`` and hyper-parameters)
    and ``state`` (per-parameter buffers such as momentum).

    Subclasses implement ``_update(group)`` for one group under ``no_grad``.
    """

    _stepped = False        # whether step() ever ran (a schedule stepped first warns)
    # load_state_dict checks that each state tensor has its parameter's shape (a state from
    # another model fails there, not inside step()); an optimizer whose state holds other
    # shapes (L-BFGS's flat history) turns this off. Only tensorlib's own optimizers check:
    # a user's subclass loads any state, as PyTorch's do.
    state_shaped_like_params: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "state_shaped_like_params" not in cls.__dict__:
            cls.state_shaped_like_params = cls.__module__.startswith("tensorlib.")
        step = cls.__dict__.get("step")
        if callable(step) and not getattr(step, "_runs_step_hooks", False):
            # a subclass's own step() (L-BFGS, a user's optimizer) runs the step hooks and
            # marks the optimizer stepped, as PyTorch patches every optimizer's step
            cls.step = _hooked_step(step)

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        # a parameter without state reads as {} (PyTorch's defaultdict), so optimizers
        # ported from PyTorch can write ``state = self.state[p]`` and fill it in
        self.state: dict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            "of dicts, got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            # names split off first, so a subclass's add_param_group (L-BFGS's dtype check)
            # sees tensors
            self.add_param_group(_split_names(g) if isinstance(g, dict) else g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. a smaller lr)."""
        if not isinstance(group, dict):
            raise TypeError(f"add_param_group: expected a dict, got {type(group).__name__}")
        name = type(self).__name__
        group = _split_names(group)
        params = group["params"]
        named = "param_names" in group
        for g in self.param_groups:
            if ("param_names" in g) != named:
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {'with' if named else 'without'} "
                                 "names to the optimizer")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape {p.shape}); "
                                 "optimize the leaf it was computed from")
            if p.dtype.kind not in "fc":
                raise TypeError(f"{name}: can only optimize floating-point and complex "
                                f"tensors, got dtype {p.dtype}")
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError(f"{name}: a parameter appears twice in one group")
        for g in self.param_groups:
            if ids & {id(p) for p in g["params"]}:
                raise ValueError(f"{name}: some parameters appear in more than one group")
        new = {"params": params}
        if named:
            new["param_names"] = list(group["param_names"])
        for k, default in self.defaults.items():
            v = group.get(k, default)
            if v is required:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"hyper-parameter {k!r}")
            new[k] = v
        for k, v in group.items():
            if k not in new:
                new[k] = v
        if isinstance(new.get("lr"), Tensor) and any(g.get("lr") is new["lr"]
                                                     for g in self.param_groups):
            new["lr"] = new["lr"].detach().clone()   # each group schedules its own lr
        self._validate(new)
        self.param_groups.append(new)

    def _validate(self, group: dict[str, Any]) -> None:
        """Check a group's hyper-parameters; subclasses extend."""
        for key in ("lr", "momentum", "betas"):
            for v in (group.get(key) if key == "betas" else [group.get(key)]) or ():
                if isinstance(v, Tensor) and (v.ndim != 0 or v.dtype.kind != "f"
                                              or v.requires_grad):
                    raise ValueError(f"{type(self).__name__}: a tensor {key} must be a 0-d "
                                     f"float tensor without requires_grad, got shape "
                                     f"{tuple(v.shape)}, dtype {v.dtype}")
        lr = hyper_value(group.get("lr"))
        if lr is not None and not lr >= 0.0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr} (must be >= 0)")

    # --- hooks (PyTorch's) ----------------------------------------------------------------
    def _hooks(self, kind: str) -> OrderedDict:
        # made on first use: a subclass need not call Optimizer.__init__ first, and a copy or
        # unpickled optimizer gets its own
        d = self.__dict__.get("_hook_dicts")
        if d is None:
            d = self.__dict__["_hook_dicts"] = {}
        return d.setdefault(kind, OrderedDict())

    def _register(self, kind: str, hook: Callable, prepend: bool = False):
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.register_{kind}_hook: expected a callable, "
                            f"got {type(hook).__name__}")
        from ..nn.module import _Handle
        return _Handle(self._hooks(kind), hook, prepend=prepend)

    def register_step_pre_hook(self, hook: Callable):
        """``hook(optimizer, args, kwargs)`` runs before each ``step()``; it may return
        ``(new_args, new_kwargs)``. Returns a handle whose ``remove()`` unregisters it."""
        return self._register("step_pre", hook)

    def register_step_post_hook(self, hook: Callable):
        """``hook(optimizer, args, kwargs)`` runs after each ``step()``. Returns a handle
        whose ``remove()`` unregisters it."""
        return self._register("step_post", hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer)`` runs at the start of :meth:`state_dict`."""
        return self._register("state_dict_pre", hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer, state_dict)`` runs at the end of :meth:`state_dict`; a returned
        dict replaces the state dict."""
        return self._register("state_dict_post", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer, state_dict)`` runs at the start of :meth:`load_state_dict`; a
        returned dict is loaded instead."""
        return self._register("load_state_dict_pre", hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer)`` runs at the end of :meth:`load_state_dict`."""
        return self._register("load_state_dict_post", hook, prepend)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (``set_to_none``) or zero the ``.grad`` of every parameter."""
        from ._fused import zero_grads
        zero_grads([p for g in self.param_groups for p in g["params"]], set_to_none)

    # which gradients _update takes: True (dense and sparse COO: SGD, Adagrad), False (dense
    # only) or "sparse" (sparse only: SparseAdam); the others raise PyTorch's errors
    _sparse_grads: bool | str = False
    # PyTorch's advice after "<name> does not support sparse gradients" (Adam's, AdamW's)
    _sparse_hint = ""

    @_hooked_step
    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter that has a gradient. ``closure`` (optional)
        re-evaluates the model and returns the loss; it runs with grad enabled."""
        loss = None
        if closure is not None:
            from ..autograd.mode import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            for g in self.param_groups:
                if self._sparse_grads is not True:
                    self._check_grad_layout(g)
                self._update(g)
        if not self._stepped:       # set once (schedulers check it): no per-step state
            self._stepped = True
        return loss

    def _check_grad_layout(self, group: dict[str, Any]) -> None:
        """PyTorch's refusals, before any parameter of the group moves: a sparse gradient
        where the update is dense-only, a dense one where it is sparse-only (eagerly: under
        graph capture ``nn.Embedding(sparse=True)`` gives dense gradients)."""
        name = type(self).__name__
        if self._sparse_grads == "sparse":
            if _mode.tracer is None and any(p.grad is not None and not p.grad.is_sparse
                                            for p in group["params"]):
                raise RuntimeError(f"{name} does not support dense gradients, please "
                                   "consider Adam instead")
        elif any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
            raise RuntimeError(f"{name} does not support sparse gradients{self._sparse_hint}")

    def _update(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def _lr(group: dict[str, Any]) -> float | Tensor:
        """The group's learning rate (see :meth:`_hyper`)."""
        return Optimizer._hyper(group["lr"])

    @staticmethod
    def _hyper(value) -> float | Tensor:
        """A hyper-parameter as a float; a tensor one (``lr=tl.tensor(0.1)``,
        ``momentum=tl.tensor(0.9)``, ``betas=(tl.tensor(0.9), 0.999)``: schedulers update it
        in place) stays a tensor under graph capture, so a captured step reads its current
        value on every replay instead of retracing when it changes."""
        if isinstance(value, Tensor):
            return value if _mode.tracer is not None else float(value._data)
        return value

    @staticmethod
    def _count_step(st: dict[str, Any]) -> int | Tensor:
        """Advance ``st["step"]`` and return the new count.

        The count is a 0-d float64 tensor (as in PyTorch), updated in place, so a captured
        training step reads and advances it as graph state instead of freezing a Python
        int (which would retrace on every call). Eagerly the count comes back as an int;
        under capture as the tensor, for the bias corrections to be computed in the graph.
        """
        t = st.get("step")
        if not isinstance(t, Tensor):
            from ..creation import tensor
            t = st["step"] = tensor(float(t or 0), dtype=np.float64)
        a = t._data
        if _mode.tracer is None and _mode.fwd_ad is None and type(a) is np.ndarray \
                and a.dtype == np.float64 \
                and a.flags.writeable and not t._rg:
            # what t.add_(1.0) does here, without its dispatch (one per parameter a step);
            # item/assign, as np.add on a 0-d array costs ~10x more, for the same float64
            n = a.item() + 1.0
            a[()] = n
            t._version[0] += 1
            return int(n)
        t.add_(1.0)
        return t if _mode.tracer is not None else int(t._data)

    def _with_grads(self, group: dict[str, Any], init: Callable[[Tensor], dict],
                    params: list[Tensor] | None = None):
        """``(param, grad, state)`` for each parameter of ``group`` (or of ``params``, some
        of its parameters) that has a gradient; a parameter's state is made by
        ``init(param)`` on its first step. A complex parameter comes as PyTorch's optimizers
        take it: its memory, its gradient's and its complex state's as real tensors with a
        last dim of 2 (``view_as_real``), so every update, fused kernels included, treats the
        real and imaginary parts as two real parameters; the state stays complex. Under
        graph capture the views are ``view_as_real`` ops, whose in-place writes the graph
        records as writes into the complex tensors."""
        for p in group["params"] if params is None else params:
            if p.grad is None:
                continue
            g = self._grad(p, group)
            st = self.state.get(p)
            if st is None:
                st = self.state[p] = init(p)
            if p._data.dtype.kind == "c" and not g.is_sparse:
                yield from _as_real(type(self).__name__, p, g, st)
            else:
                yield p, g, st

    def _grad(self, p: Tensor, group: dict[str, Any]) -> Tensor:
        g = p.grad
        if g.shape != p.shape:
            raise ValueError(f"{type(self).__name__}: gradient of shape {g.shape} does not match "
                             f"its parameter of shape {p.shape}")
        if g._device is not p._device:
            raise RuntimeError(f"{type(self).__name__}: gradient on {g.device} but parameter "
                               f"on {p.device}")
        if g.dtype != p.dtype:
            g = g.astype(p.dtype)
        return -g if group.get("maximize") else g

    # --- state dict -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``,
        parameters replaced by their position, as PyTorch does; savable with ``tl.save``."""
        for hook in list(self._hooks("state_dict_pre").values()):
            hook(self)
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            # a snapshot: tensor hyper-parameters change in place as schedulers step
            packed = {k: _snapshot(v) for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        out = {"state": state, "param_groups": groups}
        for hook in list(self._hooks("state_dict_post").values()):
            res = hook(self, out)
            if res is not None:
                out = res
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by ``state_dict`` (copies the tensors)."""
        name = type(self).__name__
        if isinstance(state_dict, dict):
            state_dict = state_dict.copy()      # a pre-hook may edit it: not the caller's
        for hook in list(self._hooks("load_state_dict_pre").values()):
            res = hook(self, state_dict)
            if res is not None:
                state_dict = res
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups' (from Optimizer.state_dict())")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved)} "
                             f"parameter groups, this optimizer has {len(self.param_groups)}")
        for i, (sg, g) in enumerate(zip(saved, self.param_groups)):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(sg['params'])} "
                                 f"parameters in the saved state, {len(g['params'])} here")
        by_index = {}
        for sg, g in zip(saved, self.param_groups):
            for idx, p in zip(sg["params"], g["params"]):
                by_index[int(idx)] = p
        new_state: dict[Tensor, dict[str, Any]] = defaultdict(dict)
        check = self.state_shaped_like_params
        for idx, st in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for parameter {idx} which no "
                                 "group holds")
            new_state[p] = {k: _to_param(v, p, k, check) for k, v in st.items()}
        self.state = new_state
        for sg, g in zip(saved, self.param_groups):
            for k, v in sg.items():
                if k == "params":
                    continue
                g[k] = _restore(g.get(k), v)
        for hook in list(self._hooks("load_state_dict_post").values()):
            hook(self)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _real_view(t: Tensor) -> tuple[Tensor, Any]:
    """``t`` (complex) as a real tensor of shape ``t.shape + (2,)`` on its memory, with its
    version counter; and the array it was made with, to tell later whether an in-place
    update replaced it (then :func:`_write_back` copies the values into ``t``)."""
    from .._tensor import _wrap
    from ..backends import xp_of
    from ..ops.complex import _pairs_fwd
    a = t._data
    r = _pairs_fwd(xp_of(a), a)      # view_as_real's kernel: a view, not a copy
    v = _wrap(r, t._device, False, None, 0)
    v._version = t._version
    return v, r


def _write_back(t: Tensor, view: Tensor, made) -> None:
    if view._data is not made:
        t._data[...] = _as_complex_array(view._data)


def _as_complex_array(a):
    from ..backends import xp_of
    from ..ops.complex import _complex_fwd
    # view_as_complex's kernel needs unit last stride and even other strides
    return _complex_fwd(xp_of(a), a if a.flags.c_contiguous else a.copy())


def _as_real(name: str, p: Tensor, g: Tensor, st: dict):
    """One ``(param, grad, state)`` for a complex ``p``: real views (see
    ``Optimizer._with_grads``); after the caller's update, state entries it added that are
    shaped as the view are kept complex, as PyTorch's state of a complex parameter.

    Eagerly the views share the arrays' memory, and an update that replaced a view's array
    is copied back. Under graph capture they are ``view_as_real`` ops, so the graph records
    the update's in-place writes into them as writes into the complex parameter and state
    (the write-back of a view op), which a replay repeats."""
    traced = _mode.tracer is not None
    if traced:
        from ..ops.complex import view_as_complex, view_as_real
        pr, gr = view_as_real(p), view_as_real(g)
        views = {k: (view_as_real(v), None) for k, v in st.items()
                 if isinstance(v, Tensor) and v._data.dtype.kind == "c"}

        def to_complex(v: Tensor) -> Tensor:
            return view_as_complex(v.contiguous())
    else:
        (pr, pmade), (gr, _) = _real_view(p), _real_view(g)
        views = {k: _real_view(v) for k, v in st.items()
                 if isinstance(v, Tensor) and v._data.dtype.kind == "c"}
        to_complex = _complex_tensor
    rst = dict(st)
    rst.update({k: v for k, (v, _) in views.items()})
    yield pr, gr, rst
    if not traced:
        _write_back(p, pr, pmade)
    for k, v in rst.items():
        if k in views and v is views[k][0]:
            if views[k][1] is not None:
                _write_back(st[k], v, views[k][1])
        elif (isinstance(v, Tensor) and v.shape == pr.shape and v.dtype == pr.dtype
              and not v.is_sparse):
            st[k] = to_complex(v)
        else:
            st[k] = v
    for k in [k for k in st if k not in rst]:
        del st[k]


def _complex_tensor(v: Tensor) -> Tensor:
    from .._tensor import _wrap
    return _wrap(_as_complex_array(v._data), v._device, False, None, 0)


def _split_names(group: dict[str, Any]) -> dict[str, Any]:
    """``group`` with its ``params`` as a list of tensors; ``(name, tensor)`` pairs (from
    ``named_parameters()``, PyTorch >= 2.6) split into ``params`` and ``param_names``."""
    params = group["params"]
    if isinstance(params, Tensor):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                        "the ordering of tensors in sets will change between runs. Please use "
                        "a list instead.")
    else:
        params = list(params)
    names = [p[0] for p in params if isinstance(p, tuple)]
    if names:
        if len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names. Some param "
                             "names are missing")
        bad = [p for p in params if len(p) != 2]
        if bad:
            raise TypeError(f"optimizer: a named parameter must be a (name, tensor) pair, got "
                            f"a tuple of {len(bad[0])}")
        return {**group, "params": [p[1] for p in params], "param_names": names}
    return {**group, "params": params}


def check_implementation_flags(name: str, *, foreach: bool | None = None,
                               fused: bool | None = None, capturable: bool = False,
                               differentiable: bool = False) -> None:
    """Check PyTorch's implementation switches, where the optimizer takes them as PyTorch's
    does (``fused`` only Adam, AdamW, SGD and Adagrad; the others refuse it with
    TypeError, having no such argument).

    ``foreach``, ``fused`` and ``capturable`` choose among PyTorch's implementations of
    the same update: tensorlib has one (a fused kernel on the CPU where one exists), so they
    change nothing. ``differentiable=True`` (autograd through the update itself) is not
    supported: the step runs under ``no_grad``.
    """
    if differentiable:
        raise NotImplementedError(
            f"{name}: differentiable=True is not supported: tensorlib's optimizer steps run "
            "under no_grad and record no graph; to differentiate through an update, write "
            "it with tensor ops (e.g. p - lr * g) over tl.func.functional_call")
    if fused and foreach:
        raise RuntimeError(f"{name}: `fused` and `foreach` cannot be `True` together.")


def _as_float(v) -> float:
    """A saved scalar (a Python number, a 0-d array or tensor) as a float."""
    return float(v.item() if isinstance(v, (Tensor, np.ndarray)) else v)


def _to_param(v, p: Tensor, key: str, check: bool = True):
    """A copy of saved state value ``v`` on ``p``'s device (floats in ``p``'s dtype); the
    step count stays a float64 CPU tensor (``Optimizer._count_step``)."""
    if key == "step":
        from ..creation import tensor
        return tensor(_as_float(v), dtype=np.float64)
    if isinstance(v, np.ndarray) or _dtypes.is_torch_tensor(v):
        from ..creation import tensor
        v = tensor(v)         # a PyTorch optimizer's state_dict holds torch tensors
    if isinstance(v, Tensor):
        if check and v.ndim and v.shape != p.shape:
            raise ValueError(f"load_state_dict: state {key!r} has shape {v.shape}, its "
                             f"parameter has shape {p.shape}")
        dt = p.dtype if v.dtype.kind == "f" else None
        out = v.to(device=p.device, dtype=dt).detach()
        return out.clone() if out._data is v._data else out
    return copy.deepcopy(v)


def _snapshot(v):
    """A hyper-parameter as saved: tensors (and tuples of them) copied."""
    if isinstance(v, Tensor):
        return v.detach().clone()
    if isinstance(v, tuple):
        return tuple(_snapshot(x) for x in v)
    return v


def _restore(cur, saved):
    """The value a group takes from a saved hyper-parameter: a tensor it holds is written in
    place (a captured step reads that tensor), also inside a tuple such as ``betas``."""
    if isinstance(cur, Tensor) and cur.ndim == 0:
        with no_grad():
            cur.fill_(_as_float(saved))
        return cur
    if isinstance(cur, tuple) and isinstance(saved, (tuple, list)) and len(cur) == len(saved) \
            and any(isinstance(c, Tensor) for c in cur):
        new = tuple(_restore(c, s) for c, s in zip(cur, saved))
        return cur if all(a is b for a, b in zip(new, cur)) or new == cur else new
    return copy.deepcopy(saved)
