"""``tf.train``: the optimizers (GradientDescent, Momentum, Adagrad, Adam), the train op
``minimize`` builds, and Saver."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import tensorlib as _tl

from . import graph
from .dtypes import _pybool, float32
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
                opt._apply_dense(env, v, env(v), g)
        opt._finish(env)
        if self.global_step is not None:
            env(self.global_step).add_(1)


class _Optimizer:
    _name = "Optimizer"
    _slot_specs: tuple = ()        # (name, initial value): state kept per variable
    _global_specs: tuple = ()      # (name, initial value): state kept per optimizer

    def _hyper(self) -> tuple:
        return (self.lr,)

    def minimize(self, loss: Tensor, global_step=None, var_list=None, gate_gradients=1,
                 aggregation_method=None, colocate_gradients_with_ops=False,
                 name: str | None = None, grad_loss=None) -> Operation:
        """An op that updates the variables (``var_list``, else the trainable ones) that
        ``loss`` depends on, and adds 1 to ``global_step`` if given."""
        if grad_loss is not None:
            raise NotImplementedError("minimize(grad_loss=...) is not supported")
        candidates = list(var_list) if var_list is not None else trainable_variables()
        used = {id(v) for v in _variables_of([loss])}
        variables = [v for v in candidates if id(v) in used and v.dtype.kind == "f"]
        if not variables:
            raise ValueError("No gradients provided for any variable: the loss "
                             f"'{getattr(loss, 'name', loss)}' depends on none of "
                             f"{[v.name for v in candidates]}")
        return _TrainOp(self, loss, variables, global_step,
                        name or graph._graph.unique(self._name))

    def _prepare(self, sess: Session, variables: list) -> dict:
        """This Session's state tensors for ``variables``, by ``_key`` (TF1's slot names,
        which also name them in the captured graph)."""
        out = {}
        for v in variables:
            for slot, init in self._slot_specs:
                out[self._key(v, slot)] = sess._slot(self, v, slot, init, v.shape, v.dtype)
        for slot, init in self._global_specs:
            out[self._key(None, slot)] = sess._slot(self, None, slot, init, (), float32)
        return out

    def _key(self, v, slot: str) -> str:
        return f"{self._name}/{slot}" if v is None else f"{v.name}/{self._name}/{slot}"

    def _lr(self, env: _Env):
        return env(self.lr)

    def _finish(self, env: _Env) -> None:
        pass


def _rate(x):
    return x if isinstance(x, Tensor) else float(x)


class _Train:
    class GradientDescentOptimizer(_Optimizer):
        """``var -= learning_rate * grad``. The learning rate may be a fed placeholder."""

        def __init__(self, learning_rate, use_locking: bool = False,
                     name: str = "GradientDescent"):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)

        def _apply_dense(self, env, v, t, g) -> None:
            t.sub_(self._lr(env) * g)

    class MomentumOptimizer(_Optimizer):
        """TF1's momentum: ``accum = momentum * accum + grad; var -= lr * accum`` (with
        ``use_nesterov``: ``var -= lr * (grad + momentum * accum)``)."""

        _slot_specs = (("momentum", 0.0),)

        def __init__(self, learning_rate, momentum: float, use_locking: bool = False,
                     name: str = "Momentum", use_nesterov: bool = False):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self.momentum, self.nesterov = float(momentum), _pybool(use_nesterov)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = env.slots[self._key(v, "momentum")]
            acc.mul_(self.momentum)
            acc.add_(g)
            lr = self._lr(env)
            t.sub_(lr * (g + self.momentum * acc) if self.nesterov else lr * acc)

    class AdagradOptimizer(_Optimizer):
        """TF1's Adagrad: ``accum += grad ** 2; var -= lr * grad / sqrt(accum)``, the
        accumulators starting at ``initial_accumulator_value``."""

        def __init__(self, learning_rate, initial_accumulator_value: float = 0.1,
                     use_locking: bool = False, name: str = "Adagrad"):
            if initial_accumulator_value <= 0:
                raise ValueError("initial_accumulator_value must be positive")
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self._slot_specs = (("accumulator", float(initial_accumulator_value)),)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = env.slots[self._key(v, "accumulator")]
            acc.add_(g * g)
            t.sub_(self._lr(env) * g / acc.sqrt())

    class AdamOptimizer(_Optimizer):
        """Adam as in TF1 (epsilon added to sqrt(v), bias correction in the step size).
        Its state (step count, moments) is held in tensors of the Session, so a captured
        training step replays without retracing."""

        _slot_specs = (("m", 0.0), ("v", 0.0))
        _global_specs = (("t", 0.0),)

        def __init__(self, learning_rate=0.001, beta1: float = 0.9, beta2: float = 0.999,
                     epsilon: float = 1e-8, use_locking: bool = False, name: str = "Adam"):
            self.lr, self._name = _rate(learning_rate), graph._graph.variable_name(name)
            self.b1, self.b2, self.eps = float(beta1), float(beta2), float(epsilon)

        def _apply_dense(self, env, v, t, g) -> None:
            m, s = env.slots[self._key(v, "m")], env.slots[self._key(v, "v")]
            m.mul_(self.b1)
            m.add_((1.0 - self.b1) * g)
            s.mul_(self.b2)
            s.add_((1.0 - self.b2) * g * g)
            step = env.slots[self._key(None, "t")] + 1.0
            lr_t = self._lr(env) * (1.0 - _tl.power(self.b2, step)).sqrt() / (
                1.0 - _tl.power(self.b1, step))
            t.sub_(lr_t * m / (s.sqrt() + self.eps))

        def _finish(self, env) -> None:
            env.slots[self._key(None, "t")].add_(1.0)

    class Saver:
        """Saves and restores variables' values of a Session, in a safetensors file (one
        tensor per variable name; not TF's checkpoint format, and never pickle).

        ``var_list``: the variables (all global variables by default), or a dict
        ``{name in the file: variable}``."""

        def __init__(self, var_list=None, max_to_keep: int = 5, **_ignored):
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

        def save(self, sess: Session, save_path: str, global_step=None, **_ignored) -> str:
            """Write the values to ``save_path`` (``save_path-<step>`` with
            ``global_step``, an int or a variable); returns the path written."""
            path = str(save_path)
            if global_step is not None:
                step = global_step if isinstance(global_step, (int, np.integer)) \
                    else sess.run(global_step)
                path = f"{path}-{int(step)}"
            arrays = {name: np.array(sess._value(v).detach().numpy(), copy=True)
                      for name, v in self._vars.items()}
            _tl.save(arrays, path)
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
