"""``Parameter``: a leaf Tensor that a Module registers as trainable state."""
from __future__ import annotations

from .._tensor import Tensor, _internal


class _ParameterMeta(type):
    """PyTorch's ``_ParameterMeta``: ``isinstance(t, Parameter)`` also holds for a tensor of a
    user subclass that ``Parameter(t)`` marked (it keeps its own class)."""

    def __instancecheck__(cls, obj: object) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        tp = type(obj)
        # plain tensors have no __dict__: the marked ones are user subclass instances
        return (cls is Parameter and tp is not Tensor and isinstance(obj, Tensor)
                and getattr(obj, "_is_param", False) is True)


class Parameter(Tensor, metaclass=_ParameterMeta):
    """A Tensor that is a model's learnable weight.

    Assigning a Parameter to a Module attribute registers it, so it shows up in
    ``module.parameters()`` and ``module.state_dict()``. It requires grad by default.

    As PyTorch's, ``Parameter(t)`` for ``t`` of a user Tensor subclass gives
    ``t.detach()`` (so of ``t``'s class, sharing its storage) marked as a parameter:
    ``isinstance(p, nn.Parameter)`` holds, modules register it, and ops on it give that class.

    >>> w = nn.Parameter(tl.randn(3, 4))
    >>> w.requires_grad
    True
    """

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        # (tensorlib's own subclasses, UninitializedParameter, take other arguments)
        data = args[0] if args else kwargs.get("data")
        requires_grad = args[1] if len(args) > 1 else kwargs.get("requires_grad", True)
        tp = type(data)
        if (cls is not Parameter and _internal(cls)) or tp is Tensor or data is None \
                or not isinstance(data, Tensor) or _internal(tp):
            return super().__new__(cls)
        # a user subclass keeps its class (type.__call__ then skips __init__: not a cls)
        t = data.detach()
        if type(t) is not tp:
            raise RuntimeError(
                f"Parameter: creating a Parameter from an instance of type {tp.__name__} "
                f"requires that detach() returns an instance of the same type, but return type "
                f"{type(t).__name__} was found instead; correct the detach() semantics of its "
                "__torch_function__ (a class that opts out with _disabled_torch_function_impl "
                "cannot be a Parameter)")
        t.requires_grad_(requires_grad)
        try:
            t._is_param = True
        except AttributeError:
            raise TypeError(f"Parameter: cannot mark a {tp.__name__} as a parameter: its class "
                            "has __slots__ and no __dict__ (remove __slots__ from it)") from None
        return t

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            from ..creation import empty
            data = empty(0)
        # share storage with a given tensor, as torch.nn.Parameter does
        if not isinstance(data, Tensor):
            from ..creation import tensor
            data = tensor(data)         # keeps an array's dtype
        src = data
        self._init_leaf(src._data, src._device, requires_grad)

    def __deepcopy__(self, memo: dict) -> Parameter:
        # as PyTorch's: the copy has the values and requires_grad but not .grad (so an EMA
        # copy of a model made mid-training does not hold a copy of every gradient)
        if id(self) in memo:
            return memo[id(self)]
        new = type(self)(self.detach().clone(), self.requires_grad)
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__


class Buffer(Tensor):
    """A Tensor that a Module registers as a buffer when assigned to one of its attributes
    (``self.mask = nn.Buffer(t, persistent=False)``), as ``torch.nn.Buffer``: it shows up
    in ``module.buffers()`` and, when ``persistent``, in ``state_dict()``. It shares
    ``data``'s memory, detached, and keeps its ``requires_grad``.

    >>> b = nn.Buffer(tl.zeros(3), persistent=False)
    >>> b.persistent
    False
    """

    __slots__ = ("persistent",)

    def __init__(self, data=None, *, persistent: bool = True):
        from ..creation import empty, tensor
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            data = tensor(data)
        self._init_leaf(data._data, data._device, data.requires_grad)
        self.persistent = bool(persistent)

    def __deepcopy__(self, memo: dict) -> Buffer:
        if id(self) in memo:
            return memo[id(self)]
        new = type(self)(self.detach().clone(), persistent=self.persistent)
        new.requires_grad = self.requires_grad
        memo[id(self)] = new
        return new

    def __reduce_ex__(self, protocol):
        return _rebuild_buffer, (Tensor(self.detach()), self.requires_grad, self.persistent)


def _rebuild_buffer(data: Tensor, requires_grad: bool, persistent: bool) -> Buffer:
    b = Buffer(data, persistent=persistent)
    b.requires_grad = requires_grad
    return b
