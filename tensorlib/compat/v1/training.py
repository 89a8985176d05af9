"""``tf.train``: the optimizers (GradientDescent, Momentum, Adagrad, Adam), the train op
``minimize`` builds, and Saver."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import tensorlib as _tl

from . import graph
from .dtypes import _pybool
from .tensor import Operation, Tensor
from .variables import _Env, _variables_of, global_variables, trainable_variables

if TYPE_CHECKING:
    from .session import Session


class _TrainOp(Operation):
    """``optimizer.minimize(loss)``: in a run, the gradients of ``loss`` with respect to
    ``variables`` (from the run's forward), then the optimizer's update."""

    def __init__(self, optimizer, loss, variables: list, global_step, name: str):
        extra = [h for h in optimizer._hyper() if isinstance(h, Tensor)]
        gs = [] if global_step is None else [global_step]
        super().__init__(None, [loss, *variables, *gs, *extra], name)
        self.optimizer = optimizer
        self.loss = loss
        self.variables = variables
        self.global_step = global_step

    def _gradients(self, env: _Env, retain: bool) -> list:
        value = env(self.loss)
        if not (isinstance(value, _tl.Tensor) and value.requires_grad):
            return [None] * len(self.variables)
        go = None if value.ndim == 0 else _tl.ones_like(value)   # TF1: the sum of a tensor
        return list(_tl.grad(value, [env(v) for v in self.variables], grad_outputs=go,
                             retain_graph=retain, allow_unused=True))

    def _apply(self, env: _Env, grads: list) -> None:
        opt = self.optimizer
        for v, g in zip(self.variables, grads):
            if g is not None:
                opt._apply_dense(env, v, env(v), g.detach())
        opt._finish(env)
        if self.global_step is not None:
            env(self.global_step).add_(1)


class _ApplyOp(_TrainOp):
    """``optimizer.apply_gradients(grads_and_vars)``: the given gradient tensors (computed
    in the run's forward, e.g. clipped ``compute_gradients`` results), then the update."""

    def __init__(self, optimizer, grads: list, variables: list, global_step, name: str):
        super().__init__(optimizer, None, variables, global_step, name)
        self.inputs = [*grads, *self.inputs[1:]]
        self.grads = grads

    def _gradients(self, env: _Env, retain: bool) -> list:
        out = []
        for g, v in zip(self.grads, self.variables):
            gv = env(g)
            gv = gv if isinstance(gv, _tl.Tensor) else _tl.tensor(np.asarray(gv))
            out.append(gv.astype(v.dtype))
        return out


class _Optimizer:
    _name = "Optimizer"
    # (slot name, initial value, suffix of the variable name): state kept per variable,
    # named as TF1 names it (``W/Adam``, ``W/Adam_1``)
    _slot_specs: tuple = ()
    _global_specs: tuple = ()      # (name, initial value): state kept per optimizer

    def _hyper(self) -> tuple:
        return (self.lr,)

    def _state(self) -> dict:
        st = self.__dict__.get("_slot_vars")
        if st is None:
            st = self._slot_vars = {}
        return st

    def minimize(self, loss: Tensor, global_step=None, var_list=None, gate_gradients=1,
                 aggregation_method=None, colocate_gradients_with_ops=False,
                 name: str | None = None, grad_loss=None) -> Operation:
        """An op that updates the variables (``var_list``, else the trainable ones) that
        ``loss`` depends on, and adds 1 to ``global_step`` if given."""
        if grad_loss is not None:
            raise NotImplementedError("minimize(grad_loss=...) is not supported")
        variables = self._used(loss, var_list, "minimize")
        self._create_slots(variables)
        return _TrainOp(self, loss, variables, global_step,
                        name or graph._graph.unique(self._name))

    def _used(self, loss, var_list, what: str) -> list:
        candidates = list(var_list) if var_list is not None else trainable_variables()
        used = {id(v) for v in _variables_of([loss])}
        variables = [v for v in candidates if id(v) in used and v.dtype.kind == "f"]
        if not variables:
            raise ValueError(f"{what}: No gradients provided for any variable: the loss "
                             f"'{getattr(loss, 'name', loss)}' depends on none of "
                             f"{[v.name for v in candidates]}")
        return variables

    def compute_gradients(self, loss: Tensor, var_list=None, gate_gradients=1,
                          aggregation_method=None, colocate_gradients_with_ops=False,
                          grad_loss=None) -> list:
        """``[(gradient, variable), ...]`` for the variables (``var_list``, else the
        trainable ones) that ``loss`` depends on: symbolic gradients (``tf.gradients``) to
        transform (clip) and pass to ``apply_gradients``."""
        from .ops import gradients
        if grad_loss is not None:
            raise NotImplementedError("compute_gradients(grad_loss=...) is not supported")
        variables = self._used(loss, var_list, "compute_gradients")
        return list(zip(gradients(loss, variables), variables))

    def apply_gradients(self, grads_and_vars, global_step=None,
                        name: str | None = None) -> Operation:
        """An op that applies the given gradients (pairs with a None gradient are
        skipped) and adds 1 to ``global_step`` if given."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("apply_gradients: No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}")
        variables = [v for _, v in pairs]
        self._create_slots(variables)
        return _ApplyOp(self, [g for g, _ in pairs], variables, global_step,
                        name or graph._graph.unique(self._name))

    def _create_slots(self, variables: list) -> None:
        from .variables import _SlotVariable
        st = self._state()
        for v in variables:
            for slot, init, suffix in self._slot_specs:
                if (id(v), slot) not in st:
                    st[(id(v), slot)] = _SlotVariable(v, init, v.shape, v.dtype,
                                                      f"{v.name}/{self._name}{suffix}")
        for slot, init in self._global_specs:
            if (None, slot) not in st:
                st[(None, slot)] = _SlotVariable(None, init, (), variables[0].dtype, slot)

    def get_slot(self, var, name: str):
        """The slot variable ``name`` (see ``get_slot_names``) kept for ``var``, or None."""
        return self._state().get((id(var), name))

    def get_slot_names(self) -> list[str]:
        return [s for s, _, _ in self._slot_specs]

    def variables(self) -> list:
        """The optimizer's state variables (slots, then per-optimizer state such as
        ``beta1_power``), in creation order."""
        return list(self._state().values())

    def _prepare(self, sess: Session, variables: list) -> dict:
        """This Session's state tensors, by slot variable name (which also names them in
        the captured graph)."""
        return {sv.name: sess._read(sv) for sv in self._state().values()}

    def _slot(self, env: _Env, v, slot: str):
        return env.slots[self._state()[(None if v is None else id(v), slot)].name]

    def _lr(self, env: _Env):
        return env(self.lr)

    def _finish(self, env: _Env) -> None:
        pass


def _rate(x):
    return x if isinstance(x, Tensor) else float(x)


def _write_index(path: str, kept: list, index_name: str) -> None:
    """TF1's text index of a checkpoint directory (paths relative to it)."""
    import os
    d = os.path.dirname(os.path.abspath(path))
    rel = [os.path.relpath(os.path.abspath(k), d) for k in kept]
    lines = [f'model_checkpoint_path: "{rel[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{r}"' for r in rel]
    with open(os.path.join(d, index_name), "w") as f:
        f.write("\n".join(lines) + "\n")


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The path of the last checkpoint a ``Saver`` saved in ``checkpoint_dir`` (read from
    its ``checkpoint`` index file, as ``tf.train.latest_checkpoint``), or None."""
    import os
    import re
    index = os.path.join(str(checkpoint_dir), latest_filename or "checkpoint")
    if not os.path.isfile(index):
        return None
    with open(index) as f:
        m = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', f.read(), re.M)
    if m is None:
        return None
    p = m.group(1)
    p = p if os.path.isabs(p) else os.path.join(str(checkpoint_dir), p)
    return p if os.path.exists(p) else None


class _Train:
    latest_checkpoint = staticmethod(latest_checkpoint)

    class GradientDescentOptimizer(_Optimizer):
        """``var -= learning_rate * grad``. The learning rate may be a fed placeholder."""

        def __init__(self, learning_rate, use_locking: bool = False,
                     name: str = "GradientDescent"):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)

        def _apply_dense(self, env, v, t, g) -> None:
            t.sub_(self._lr(env) * g)

    class MomentumOptimizer(_Optimizer):
        """TF1's momentum: ``accum = momentum * accum + grad; var -= lr * accum`` (with
        ``use_nesterov``: ``var -= lr * (grad + momentum * accum)``). Slot: "momentum"."""

        _slot_specs = (("momentum", 0.0, ""),)

        def __init__(self, learning_rate, momentum: float, use_locking: bool = False,
                     name: str = "Momentum", use_nesterov: bool = False):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self.momentum, self.nesterov = float(momentum), _pybool(use_nesterov)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = self._slot(env, v, "momentum")
            acc.mul_(self.momentum)
            acc.add_(g)
            lr = self._lr(env)
            t.sub_(lr * (g + self.momentum * acc) if self.nesterov else lr * acc)

    class AdagradOptimizer(_Optimizer):
        """TF1's Adagrad: ``accum += grad ** 2; var -= lr * grad / sqrt(accum)``, the
        accumulators (slot "accumulator") starting at ``initial_accumulator_value``."""

        def __init__(self, learning_rate, initial_accumulator_value: float = 0.1,
                     use_locking: bool = False, name: str = "Adagrad"):
            if initial_accumulator_value <= 0:
                raise ValueError("initial_accumulator_value must be positive")
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self._slot_specs = (("accumulator", float(initial_accumulator_value), ""),)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = self._slot(env, v, "accumulator")
            acc.add_(g * g)
            t.sub_(self._lr(env) * g / acc.sqrt())

    class AdamOptimizer(_Optimizer):
        """Adam as in TF1: slots "m" and "v" (``W/Adam``, ``W/Adam_1``) and the
        variables ``beta1_power``/``beta2_power``; epsilon added to sqrt(v), bias correction
        in the step size. The state lives in the Session, so a captured training step
        replays without retracing, and ``Saver`` saves it."""

        _slot_specs = (("m", 0.0, ""), ("v", 0.0, "_1"))

        def __init__(self, learning_rate=0.001, beta1: float = 0.9, beta2: float = 0.999,
                     epsilon: float = 1e-8, use_locking: bool = False, name: str = "Adam"):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self.b1, self.b2, self.eps = float(beta1), float(beta2), float(epsilon)
            self._global_specs = (("beta1_power", self.b1), ("beta2_power", self.b2))

        def _apply_dense(self, env, v, t, g) -> None:
            m, s = self._slot(env, v, "m"), self._slot(env, v, "v")
            m.mul_(self.b1)
            m.add_((1.0 - self.b1) * g)
            s.mul_(self.b2)
            s.add_((1.0 - self.b2) * g * g)
            b1p, b2p = self._slot(env, None, "beta1_power"), self._slot(env, None, "beta2_power")
            lr_t = self._lr(env) * (1.0 - b2p).sqrt() / (1.0 - b1p)
            t.sub_(lr_t.astype(t.dtype) * m / (s.sqrt() + self.eps))

        def _finish(self, env) -> None:
            self._slot(env, None, "beta1_power").mul_(self.b1)
            self._slot(env, None, "beta2_power").mul_(self.b2)

    class Saver:
        """Saves and restores variables' values of a Session, in a safetensors file (one
        tensor per variable name; not TF's checkpoint format, and never pickle).

        ``var_list``: the variables (all global variables when the Saver is made, as TF1:
        the optimizers' slots such as ``W/Adam`` and ``beta1_power`` too, when ``minimize``
        ran before, so a restored run resumes exactly), or a dict
        ``{name in the file: variable}``."""

        def __init__(self, var_list=None, max_to_keep: int = 5, **_ignored):
            self._max_to_keep = max_to_keep
            self._kept: list[str] = []
            if var_list is None:
                var_list = global_variables()
            if isinstance(var_list, dict):
                self._vars = dict(var_list)
            else:
                self._vars = {}
                for v in var_list:
                    if v.name in self._vars:
                        raise ValueError(f"Saver: two variables are named '{v.name}'")
                    self._vars[v.name] = v

        def save(self, sess: Session, save_path: str, global_step=None,
                 latest_filename: str | None = None, **_ignored) -> str:
            """Write the values to ``save_path`` (``save_path-<step>`` with
            ``global_step``, an int or a variable); returns the path written. As TF1, the
            file ``checkpoint`` (``latest_filename``) of that directory then names it, which
            :func:`latest_checkpoint` reads (old files are not deleted)."""
            path = str(save_path)
            if global_step is not None:
                step = global_step if isinstance(global_step, (int, np.integer)) \
                    else sess.run(global_step)
                path = f"{path}-{int(step)}"
            arrays = {name: np.array(sess._read(v).detach().numpy(), copy=True)
                      for name, v in self._vars.items()}
            _tl.save(arrays, path)
            self._kept = [k for k in self._kept if k != path] + [path]
            if self._max_to_keep:
                self._kept = self._kept[-self._max_to_keep:]
            _write_index(path, self._kept, latest_filename or "checkpoint")
            return path

        def restore(self, sess: Session, save_path: str) -> None:
            """Set the variables' values in ``sess`` from a file ``save`` wrote (no
            initializer needed for them afterwards)."""
            data = _tl.load(str(save_path))
            for name, v in self._vars.items():
                if name not in data:
                    raise ValueError(f"Key {name} not found in checkpoint {save_path}")
                a = data[name]
                a = a.numpy() if isinstance(a, _tl.Tensor) else np.asarray(a)
                if tuple(a.shape) != tuple(v.shape):
                    raise ValueError(f"Saver.restore: '{name}' has shape {a.shape} in "
                                     f"{save_path}, but variable '{v.name}' has shape "
                                     f"{v.shape}")
                sess._set_value(v, a.astype(v.dtype))


train = _Train()
