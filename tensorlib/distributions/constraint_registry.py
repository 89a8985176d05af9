"""The registries from constraints to transforms, as ``torch.distributions.constraint_registry``.

``biject_to(c)`` gives a bijection from unconstrained space onto ``c`` (its ``inv`` and
``log_abs_det_jacobian`` are defined, for HMC-style samplers that need the density in the
unconstrained space); ``transform_to(c)`` gives a map onto ``c`` that may not be bijective
(``SoftmaxTransform`` for the simplex, an overparameterized but better-conditioned choice for
optimization). Both are looked up by the constraint's class, and ``register`` adds or replaces
one:

>>> scale = transform_to(constraints.positive)(tl.zeros(3))       # ones
>>> u = biject_to(constraints.simplex).inv(tl.tensor([0.2, 0.3, 0.5]))   # a 2-vector
>>> @biject_to.register(MyConstraint)
... def _(constraint):
...     return MyTransform(constraint.param)
"""
from __future__ import annotations

from collections.abc import Callable
from numbers import Number

from . import constraints, transforms

__all__ = ["ConstraintRegistry", "biject_to", "transform_to"]


def _constraint_class(constraint) -> type:
    """The class a registry keys ``constraint`` by: its own class for an instance, itself for
    a class, the class it builds for a constructor function (``constraints.independent``)."""
    if isinstance(constraint, constraints.Constraint):
        return type(constraint)
    built = getattr(constraint, "constraint_type", None)
    if built is not None:
        return built
    if isinstance(constraint, type) and issubclass(constraint, constraints.Constraint):
        return constraint
    raise TypeError(f"register: expected a Constraint subclass or instance, got "
                    f"{constraint!r}")


class ConstraintRegistry:
    """A map from constraint classes to factories ``factory(constraint) -> Transform``.

    >>> registry = ConstraintRegistry()
    >>> registry.register(constraints.positive, lambda c: transforms.ExpTransform())
    >>> registry(constraints.positive)                 # ExpTransform()
    """

    def __init__(self):
        self._registry: dict[type, Callable] = {}

    def register(self, constraint, factory: Callable | None = None):
        """Register ``factory`` for ``constraint``'s class (a class, an instance of it, or a
        constructor such as ``constraints.independent``); usable as a decorator."""
        if factory is None:
            return lambda f: self.register(constraint, f)
        if not callable(factory):
            raise TypeError(f"register: factory must be callable, got "
                            f"{type(factory).__name__}")
        self._registry[_constraint_class(constraint)] = factory
        return factory

    def __call__(self, constraint: constraints.Constraint) -> transforms.Transform:
        """The transform onto ``constraint``; ``NotImplementedError`` when none is
        registered for its class."""
        try:
            factory = self._registry[type(constraint)]
        except KeyError:
            raise NotImplementedError(f"Cannot transform {type(constraint).__name__} "
                                      f"constraints") from None
        return factory(constraint)


biject_to = ConstraintRegistry()
transform_to = ConstraintRegistry()


def _both(*cs):
    """Register the decorated factory for every constraint in ``cs`` in both registries."""
    def deco(factory):
        for c in cs:
            biject_to.register(c, factory)
            transform_to.register(c, factory)
        return factory
    return deco


@_both(constraints.real)
def _to_real(constraint):
    return transforms.identity_transform


@biject_to.register(constraints.independent)
def _biject_to_independent(constraint):
    return transforms.IndependentTransform(biject_to(constraint.base_constraint),
                                           constraint.reinterpreted_batch_ndims)


@transform_to.register(constraints.independent)
def _transform_to_independent(constraint):
    return transforms.IndependentTransform(transform_to(constraint.base_constraint),
                                           constraint.reinterpreted_batch_ndims)


# positive (a _GreaterThan) and nonnegative (a _GreaterThanEq) share their classes with the
# general half lines, so they get the general rule, as in PyTorch: exp, then shift
@_both(constraints.greater_than, constraints.greater_than_eq)
def _to_greater_than(constraint):
    return transforms.ComposeTransform([transforms.ExpTransform(),
                                        transforms.AffineTransform(constraint.lower_bound, 1)])


@_both(constraints.less_than)
def _to_less_than(constraint):
    return transforms.ComposeTransform([transforms.ExpTransform(),
                                        transforms.AffineTransform(constraint.upper_bound, -1)])


@_both(constraints.interval, constraints.half_open_interval)
def _to_interval(constraint):
    lower_is_0 = isinstance(constraint.lower_bound, Number) and constraint.lower_bound == 0
    upper_is_1 = isinstance(constraint.upper_bound, Number) and constraint.upper_bound == 1
    if lower_is_0 and upper_is_1:
        return transforms.SigmoidTransform()
    loc = constraint.lower_bound
    scale = constraint.upper_bound - constraint.lower_bound
    return transforms.ComposeTransform([transforms.SigmoidTransform(),
                                        transforms.AffineTransform(loc, scale)])


@biject_to.register(constraints.simplex)
def _biject_to_simplex(constraint):
    return transforms.StickBreakingTransform()


@transform_to.register(constraints.simplex)
def _transform_to_simplex(constraint):
    return transforms.SoftmaxTransform()


@transform_to.register(constraints.lower_cholesky)
def _transform_to_lower_cholesky(constraint):
    return transforms.LowerCholeskyTransform()


@transform_to.register(constraints.positive_definite)
@transform_to.register(constraints.positive_semidefinite)
def _transform_to_positive_definite(constraint):
    return transforms.PositiveDefiniteTransform()


@_both(constraints.corr_cholesky)
def _to_corr_cholesky(constraint):
    return transforms.CorrCholeskyTransform()


@biject_to.register(constraints.cat)
def _biject_to_cat(constraint):
    return transforms.CatTransform([biject_to(c) for c in constraint.cseq], constraint.dim,
                                   constraint.lengths)


@transform_to.register(constraints.cat)
def _transform_to_cat(constraint):
    return transforms.CatTransform([transform_to(c) for c in constraint.cseq], constraint.dim,
                                   constraint.lengths)


@biject_to.register(constraints.stack)
def _biject_to_stack(constraint):
    return transforms.StackTransform([biject_to(c) for c in constraint.cseq], constraint.dim)


@transform_to.register(constraints.stack)
def _transform_to_stack(constraint):
    return transforms.StackTransform([transform_to(c) for c in constraint.cseq],
                                     constraint.dim)
