"""``tf.errors``: the exception types a Session raises (subclassing the built-in errors that
earlier versions of this module raised, so ``except RuntimeError`` keeps working)."""


class OpError(Exception):
    """Base of the errors a run raises."""


class FailedPreconditionError(OpError, RuntimeError):
    """A run read a variable that this Session never initialized, restored or loaded."""


class InvalidArgumentError(OpError, ValueError):
    """A fed or assigned value does not fit (shape, dtype)."""


class _Errors:
    OpError = OpError
    FailedPreconditionError = FailedPreconditionError
    InvalidArgumentError = InvalidArgumentError


errors = _Errors()
