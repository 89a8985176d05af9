"""The default graph (variables, names taken, graph-level seed), the seeds of random ops,
and the stack of default Sessions."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session
    from .variables import Variable


_DEFAULT_GRAPH_SEED = 87654321      # TF1's graph seed when only an op seed is given


class _Graph:
    """The default graph: the variables created so far (for the initializer), the names
    taken, the graph-level random seed."""

    def __init__(self):
        self.variables: list[Variable] = []
        self.counter = 0
        self.names: set[str] = set()
        self.seed: int | None = None
        self.name_stack: list[str] = []      # tf.name_scope / variable_scope prefixes
        self.var_scopes: list = []           # variable_scope entries (name, reuse, initializer)
        self.var_store: dict[str, Variable] = {}   # get_variable's variables by full name
        self.control: list[list] = []        # tf.control_dependencies stack

    def prefix(self, name: str) -> str:
        return "/".join([*self.name_stack, name])

    def unique(self, name: str) -> str:
        self.counter += 1
        return f"{self.prefix(name)}_{self.counter}"

    def control_inputs(self) -> tuple:
        return tuple(op for ops in self.control for op in ops)

    def variable_name(self, name: str, scoped: bool = True) -> str:
        """``name`` (under the open name scopes), or ``name_1``, ``name_2``... when taken
        (as TF1 does)."""
        name = self.prefix(name) if scoped else name
        out, k = name, 0
        while out in self.names:
            k += 1
            out = f"{name}_{k}"
        self.names.add(out)
        return out


_graph = _Graph()
_default_session: list = []


def reset_default_graph() -> None:
    """Forget every variable and op created so far, and the graph-level seed."""
    global _graph
    _graph = _Graph()


def set_random_seed(seed: int | None) -> None:
    """The graph-level seed: random ops created after it without an op seed draw a
    reproducible sequence each (told apart by the order the ops were created in)."""
    _graph.seed = None if seed is None else int(seed)


def _op_seeds(seed) -> tuple[int, int] | None:
    """TF1's rule: (graph seed, op seed), or None for an unseeded draw."""
    if _graph.seed is None and seed is None:
        return None
    g = _graph.seed if _graph.seed is not None else _DEFAULT_GRAPH_SEED
    op = int(seed) if seed is not None else _graph.counter
    return g % 2 ** 63, op % 2 ** 63


def _get_session() -> Session:
    if not _default_session:
        raise ValueError("Cannot evaluate tensor using `eval()`/`run()`: no default session is "
                         "registered. Use `with sess.as_default()`, pass session=, or create a "
                         "tf.InteractiveSession()")
    return _default_session[-1]
