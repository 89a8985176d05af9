"""The Distribution base: shapes, parameter broadcasting and argument checks."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ..autograd.mode import state
from ..ops._util import broadcast_shapes, to_tensor
from ..ops.shape import broadcast_to


def value_like(value, like: Tensor) -> Tensor:
    """A value for log_prob / cdf: a Python number or list takes ``like``'s dtype and device,
    an integer tensor ``like``'s float dtype."""
    if isinstance(value, Tensor):
        return value if value.dtype.kind == "f" else value.astype(like.dtype)
    return as_float(value, like)


def as_float(v, like: Tensor | None = None) -> Tensor:
    """A parameter as a float tensor: a Python number takes ``like``'s dtype and device, or
    the default dtype (``tl.set_default_dtype``) without ``like``, as PyTorch; an integer
    tensor becomes the default dtype too."""
    if isinstance(v, Tensor):
        return v if v.dtype.kind == "f" else v.astype(_dtypes.default_float)
    from ..creation import tensor
    if like is not None:
        return tensor(v, dtype=like.dtype, device=like.device)
    t = tensor(v, dtype=_dtypes.default_float) if np.ndim(v) == 0 else tensor(v)
    return t if t.dtype.kind == "f" else t.astype(_dtypes.default_float)


def broadcast_params(*params) -> tuple[Tensor, ...]:
    """Float tensors broadcast to one shape (numbers follow the first tensor's dtype)."""
    like = next((p for p in params if isinstance(p, Tensor)), None)
    ts = [as_float(p, like) for p in params]
    # sizes that follow a None dim under capture stay TracedSizes, so draws follow them
    shape = broadcast_shapes("distribution parameters", *[t.shape for t in ts])
    return tuple(t if tuple(t.shape) == tuple(shape) else broadcast_to(t, shape) for t in ts)


def _host(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.asarray(a.get() if hasattr(a, "get") else a)


def _batched(a) -> bool:
    from ..vmap.batched import BatchedArray
    return type(a) is BatchedArray


def _raw(t: Tensor):
    """``t``'s backend array for an argument check; inside ``tl.vmap`` (a batched array,
    whose comparisons NumPy cannot do) the tensor itself, so the check runs as tensor ops
    over every example."""
    d = t._data
    return t if _batched(d) else d


def _all(ok) -> bool:
    """Whether a bool array or tensor holds everywhere (over all examples inside vmap)."""
    ok = ok._data if isinstance(ok, Tensor) else ok
    return bool(ok.all())


def _unbatched_host(a) -> np.ndarray:
    """The host array of ``a``, a batched array (vmap) as all its examples stacked."""
    while _batched(a):
        a = a.phys
    return _host(a)


def describe_invalid(values, ok) -> str:
    """The values where ``ok`` is False, for an error message: ``NaN`` when they all are,
    else the first few (``[-0.5, NaN]``)."""
    values, ok = _unbatched_host(values), _unbatched_host(ok)
    try:
        bad = np.broadcast_to(values, ok.shape)[~ok]
    except ValueError:          # batched differently (vmap): the values alone
        bad = values.ravel()
    if bad.dtype.kind == "f" and bad.size and np.isnan(bad).all():
        return "NaN"
    shown = ", ".join("NaN" if v != v else repr(v) for v in bad[:5].tolist())
    more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
    return f"[{shown}]{more}"


def readable(t: Tensor):
    """``t``'s values as a NumPy array when a sampler may check them for free: on the CPU,
    outside graph capture and vmap. None otherwise: on a GPU the check would make the host
    wait for the device, and a captured graph would not redo it on replay, so the samplers
    poison their draws instead (:func:`sample_error`)."""
    d = t._data
    return d if state.tracer is None and type(d) is np.ndarray else None


def sample_error(who: str, what: str):
    """The error a sampler raises on parameters no draw can come from, whatever
    ``validate_args`` says (PyTorch's samplers raise a RuntimeError there; this is a
    ValueError too). Where the values cannot be read (GPU; graph capture, except for the
    categorical draws, whose kernel checks on the CPU), the draw comes out NaN instead (for
    an integer class, the out-of-range class ``K``)."""
    from ..errors import InputError
    return InputError(f"{who}.sample: {what}; the parameters hold values no draw can come "
                      "from (NaN parameters usually mean the model that produced them "
                      "diverged: check its loss and learning rate)")


def _show(t: Tensor) -> str:
    """A tensor's values for an error message (all examples inside vmap)."""
    return str(_unbatched_host(t._data))


class Distribution:
    """Base class: ``batch_shape`` (independent distributions) and ``event_shape`` (the shape
    of one draw).

    Arguments are validated as PyTorch's are by default: NaN or out-of-range parameters
    raise ``ValueError`` when the distribution is built, and so does a value outside the
    support given to ``log_prob`` (``Categorical(...).log_prob(1.5)``). ``validate_args=False``
    skips the checks for one distribution, ``Distribution.set_default_validate_args(False)``
    for all that do not say. Under graph capture (``tl.function``) the checks are skipped,
    as in a compiled PyTorch model: reading the values would freeze them into the graph.

    Whatever ``validate_args`` says, ``sample`` of Normal, Bernoulli, Categorical,
    OneHotCategorical and Multinomial raises on parameters no draw can come from (NaN
    logits, a negative scale), as PyTorch's samplers do. The categorical draws
    (Categorical, OneHotCategorical, Multinomial) check in their kernel, so a captured graph
    replayed on the CPU raises too; Normal and Bernoulli draws in a captured graph, and every
    draw on a GPU (where the check would make the host wait), come out NaN instead (a
    Categorical's, the out-of-range class ``num_classes``).
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @property
    def arg_constraints(self) -> dict:
        """The constraint of each parameter (``constraints``), keyed by attribute name, as
        PyTorch's; a subclass sets it as a class attribute."""
        raise NotImplementedError(f"{type(self).__name__} does not define arg_constraints")

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions built without ``validate_args`` check their arguments
        (True by default, as PyTorch; False under ``python -O``)."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args: expected True or False, got "
                             f"{value!r}")
        Distribution._validate_args = bool(value)

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None):
        self.batch_shape = tuple(batch_shape)
        self.event_shape = tuple(event_shape)
        if validate_args is not None:
            self._validate_args = bool(validate_args)
        if self._validating and not self._checks_own_args():
            self._validate_arg_constraints()

    def _checks_own_args(self) -> bool:
        """Whether ``arg_constraints`` is a built-in family's, whose ``__init__`` checks its
        arguments itself with messages of its own (checking them here too would raise
        first, in other words)."""
        for cls in type(self).__mro__:
            if "arg_constraints" in vars(cls):
                package = __name__.rpartition(".")[0] + "."
                return cls is not Distribution and cls.__module__.startswith(package)
        return False

    def _validate_arg_constraints(self) -> None:
        """Check every parameter named in ``arg_constraints`` (those already set), as
        PyTorch's ``Distribution.__init__``."""
        from . import constraints
        try:
            arg_constraints = self.arg_constraints
        except NotImplementedError:
            warnings.warn(f"{type(self).__name__} does not define `arg_constraints`. Please set "
                          "`arg_constraints = {}` or initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=3)
            return
        for param, constraint in arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            try:
                value = getattr(self, param)
            except (AttributeError, NotImplementedError):
                continue              # not given (probs or logits), or not set yet
            if not isinstance(value, Tensor):
                value = as_float(value)
            if not _all(constraint.check(value)):
                raise ValueError(
                    f"Expected parameter {param} ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to satisfy the constraint "
                    f"{constraint!r}, but found invalid values:\n{_show(value)}")

    def _validate_sample(self, value: Tensor) -> None:
        """Raise ``ValueError`` unless ``value`` is a tensor whose shape ends in
        ``event_shape`` and broadcasts with ``batch_shape + event_shape``, and lies in the
        support (as PyTorch's; for ``log_prob`` of a subclass)."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        shape = tuple(value.shape)
        start = len(shape) - len(self.event_shape)
        if shape[start:] != self.event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: {shape} vs "
                             f"{self.event_shape}.")
        expected = self.batch_shape + self.event_shape
        for i, j in zip(reversed(shape), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{shape} vs {expected}.")
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{type(self).__name__} does not define `support` to enable sample "
                          "validation. Please initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=2)
            return
        if not _all(support.check(value)):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape {shape}) "
                             f"to be within the support ({support!r}) of the distribution "
                             f"{self!r}, but found invalid values:\n{_show(value)}")

    @property
    def _validating(self) -> bool:
        """Whether to check arguments now (asked for, and not capturing a graph)."""
        return self._validate_args and state.tracer is None

    def _check(self, ok, what: str, values=None) -> None:
        """Raise ``ValueError`` unless ``ok`` (a bool tensor or backend array) holds
        everywhere; ``values`` (same shape, or broadcastable) are quoted in the message."""
        if not self._validating:
            return
        ok = ok._data if isinstance(ok, Tensor) else ok
        if _all(ok):
            return
        msg = f"{type(self).__name__}: {what}"
        if values is not None:
            v = values._data if isinstance(values, Tensor) else values
            msg += f", but found invalid values: {describe_invalid(v, ok)}"
        raise ValueError(msg)

    def _check_not_nan(self, t: Tensor, name: str) -> None:
        if self._validating and t.dtype.kind == "f":
            a = _raw(t)
            self._check(a == a, f"{name} must not be NaN", a)

    def _extended_shape(self, sample_shape=()) -> tuple[int, ...]:
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self.batch_shape + self.event_shape

    def sample(self, sample_shape=()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        from ..autograd.mode import no_grad
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sample")

    def log_prob(self, value) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no finite support to enumerate")

    def cdf(self, value) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def perplexity(self) -> Tensor:
        """``exp(entropy())``, elementwise over the batch shape (as PyTorch)."""
        return self.entropy().exp()

    # the attributes holding parameters shaped ``batch_shape + (their own event dims)``, for
    # the generic :meth:`expand` (a class without them does not implement expand)
    _expand_params: tuple[str, ...] | None = None

    def expand(self, batch_shape, _instance=None) -> Distribution:
        """This distribution with its batch shape broadcast to ``batch_shape`` (the
        parameters become broadcast views, nothing is copied or re-validated), as
        PyTorch's ``expand``.

        >>> tl.distributions.Gamma(tl.tensor([1.0, 2.0]), 1.0).expand((3, 2)).batch_shape
        (3, 2)
        """
        if self._expand_params is None:
            raise NotImplementedError(f"{type(self).__name__} does not implement expand")
        batch_shape = self._expanded_shape(batch_shape)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        nb = len(self.batch_shape)
        for attr in self._expand_params:
            t = getattr(self, attr)
            setattr(new, attr, broadcast_to(t, batch_shape + tuple(t.shape[nb:])))
        new.batch_shape = batch_shape
        self._expand_more(new, batch_shape)
        return new

    def _expanded_shape(self, batch_shape) -> tuple[int, ...]:
        """``batch_shape`` for :meth:`expand`, checked: this batch shape broadcasts to it."""
        if isinstance(batch_shape, int):
            batch_shape = (batch_shape,)
        batch_shape = tuple(int(d) for d in batch_shape)
        try:
            ok = np.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{type(self).__name__}.expand: batch_shape {self.batch_shape} "
                             f"cannot be broadcast to {batch_shape}")
        return batch_shape

    def _expand_more(self, new: Distribution, batch_shape: tuple[int, ...]) -> None:
        """Hook for :meth:`expand`: expand what is not a plain parameter (a base
        distribution)."""

    @property
    def support(self):
        """The constraint every value of the distribution satisfies (``constraints``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define its support")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @staticmethod
    def _value(value) -> Tensor:
        return to_tensor(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self.batch_shape})"


class CenteredAtLoc:
    """Mean and mode at ``loc``, for the families symmetric about it (Normal, the
    multivariate normals, Laplace...): a mixin before :class:`Distribution` (a family
    whose mean is undefined, as Cauchy's, overrides it)."""

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc
