"""TF1-style graph programming on tensorlib: ``import tensorlib.compat.v1 as tf``.

A teaching bridge: the seed's graph-and-session code (``placeholder``,
``Variable``, ``Session.run(fetches, feed_dict)``, ``train.*Optimizer(...)
.minimize(loss)``) runs unchanged on tensorlib. Calls such as ``tf.matmul``
build a symbolic expression; ``Session.run`` compiles the expressions its
fetches need into a captured tensorlib graph (``tl.function``, one per set of
fetches and feed shapes) and replays it on later runs, training steps and
evaluation fetches alike.

Layouts follow TF1: images are NHWC and convolution filters HWIO.

Session semantics, as in TF1:

- ``sess.run`` returns NumPy copies (a 0-d result is a NumPy scalar): editing a result
  never changes a variable.
- Each op runs once per ``run``, however often it is fetched. All train ops of a run
  compute their gradients from the same forward pass, then all of them update their
  variables; a variable fetched in that run gives the value the forward read.
- Variables live in the graph, their values in a Session: a new Session starts with every
  variable uninitialized and needs ``tf.global_variables_initializer()`` (or
  ``Saver.restore``), and two Sessions hold separate values and separate optimizer state
  (Adam's moments, Momentum's accumulators). ``Variable.tensor`` is the eager tensorlib
  tensor of the Session that last initialized, restored or loaded the variable, so a
  graph's updates are visible to eager code.
- ``seed=`` on a random op, and ``tf.set_random_seed``, give the op its own reproducible
  sequence; a new Session starts it again from the beginning. Without seeds, random ops
  draw from tensorlib's global generator (``tl.manual_seed``).
- ``tf.train.Saver`` writes a safetensors file (one tensor per variable name), not TF's
  checkpoint format; the optimizers' slots (``W/Adam``, ``beta1_power``) are global
  variables, saved and restored with the rest.
- Data: Python floats become float32 and Python ints int32; NumPy arrays keep their dtype;
  an array operand of an operator takes the other tensor's dtype.
- Placeholders' None dims are the evaluation graph's dynamic dims (one captured graph for
  every batch size); a training run is traced once per feed shape.
"""
from __future__ import annotations

from .array_ops import (abs, add_n, clip_by_global_norm, clip_by_value, concat, divide, expand_dims,
                        fill, gather, global_norm, greater, greater_equal, group, identity, less,
                        less_equal, logical_and, logical_not, logical_or, maximum, minimum,
                        no_op, not_equal, one_hot, ones_like, pow, range, shape, split, squeeze,
                        stack, tile, to_float, to_int32, where, zeros_like)
from .dtypes import bool, float16, float32, float64, int8, int16, int32, int64, uint8  # noqa: F401
from .graph import reset_default_graph, set_random_seed
from .nn_ops import nn
from .errors import errors
from .ops import (argmax, cast, constant, equal, exp, gradients, log, ones, random_normal,
                  random_uniform, reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum,
                  reshape,
                  sigmoid, sqrt, square, stop_gradient, tanh, transpose, truncated_normal, zeros)
from .scopes import (AUTO_REUSE, constant_initializer, control_dependencies, get_variable,
                     get_variable_scope, glorot_uniform_initializer, name_scope,
                     ones_initializer, random_normal_initializer, random_uniform_initializer,
                     truncated_normal_initializer, variable_scope, zeros_initializer)
from .session import InteractiveSession, Session, get_default_session
from .shapes import TensorShape
from .tensor import Operation, Tensor, add, matmul, multiply, placeholder, subtract
from .training import train
from .variables import (Variable, assign, assign_add, assign_sub, global_variables,
                        global_variables_initializer, initialize_all_variables,
                        local_variables_initializer, trainable_variables, variables_initializer)

__all__ = ["Session", "InteractiveSession", "Tensor", "Operation", "Variable", "placeholder",
           "constant", "zeros", "ones", "truncated_normal", "random_normal", "random_uniform",
           "set_random_seed", "matmul", "log", "exp", "sqrt", "square", "tanh", "sigmoid",
           "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "argmax", "equal", "cast",
           "reshape", "transpose", "add", "multiply", "subtract", "stop_gradient", "gradients",
           "assign", "assign_add", "assign_sub",
           "nn", "train", "global_variables_initializer", "initialize_all_variables",
           "variables_initializer", "local_variables_initializer", "global_variables",
           "trainable_variables", "get_default_session", "reset_default_graph", "float32",
           "float64", "int32", "int64", "errors", "TensorShape", "reduce_prod",
           "abs", "add_n", "clip_by_global_norm", "clip_by_value", "concat", "divide",
           "expand_dims", "fill", "gather", "global_norm", "greater", "greater_equal", "group",
           "identity", "less", "less_equal", "logical_and", "logical_not", "logical_or",
           "maximum", "minimum", "no_op", "not_equal", "one_hot", "ones_like", "pow", "range",
           "shape", "split", "squeeze", "stack", "tile", "to_float", "to_int32", "where",
           "zeros_like", "AUTO_REUSE", "constant_initializer", "control_dependencies",
           "get_variable", "get_variable_scope", "glorot_uniform_initializer", "name_scope",
           "ones_initializer", "random_normal_initializer", "random_uniform_initializer",
           "truncated_normal_initializer", "variable_scope", "zeros_initializer"]
