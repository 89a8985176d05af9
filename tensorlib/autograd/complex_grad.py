"""Gradients through complex values, with PyTorch's convention.

For a real loss ``L`` of a complex tensor ``z = x + iy``, ``z.grad`` is
``dL/dx + i dL/dy`` (the conjugate Wirtinger derivative times two), so
``z - lr * z.grad`` descends ``L`` as it would for the pair ``(x, y)``.

An op whose backward rule, written for real inputs, is a holomorphic expression of them
(``mul``: ``g * b``; ``matmul``: ``g @ b.T``; ``exp``: ``g * out``) declares
``complex="holomorphic"`` in the registry and needs no rule of its own: its complex
gradient is ``conj(vjp(conj(g)))`` (for ``f'`` holomorphic, ``g * conj(f'(z))``), which
:func:`complex_vjp` computes. A real input of such a node (``x_real * z``) gets the real
part, PyTorch's rule for real inputs of complex results. Non-holomorphic ops (``abs``,
``angle``, ``real``, ``conj``) declare ``complex="rule"`` and handle complex values in their
own ``vjp``.
"""
from __future__ import annotations

from ..errors import DTypeError


def unsupported(op) -> DTypeError:
    """The error an op that does not take complex tensors raises for one (a TypeError, and
    PyTorch's RuntimeError)."""
    return DTypeError(f"{op.name}: complex tensors are not supported by this op; compute on "
                      "tl.view_as_real(z) or on z.real and z.imag instead")


def no_gradient(op) -> NotImplementedError:
    return NotImplementedError(f"{op.name}: gradients through complex inputs are not "
                               "implemented for this op; call it under tl.no_grad(), or "
                               "write it with ops that have them")


def complex_vjp(node, vnode, gouts) -> tuple:
    """The input gradients of a holomorphic-rule node that had complex inputs: the real
    rule applied to conjugated output gradients, conjugated back; real inputs take the real
    part, in their own dtype."""
    from ..ops.complex import conj, real
    gs = [None if g is None else conj(g) for g in gouts]
    if all(g is None for g in gs):
        return (None,) * len(node.inputs)
    if node.n_out == 1:
        in_grads = node.op.vjp(vnode, gs[0])
    else:
        in_grads = node.op.vjp(vnode, *_filled(node, node.op, gs))
    out = []
    for x, g in zip(node.inputs, in_grads):
        if g is not None:
            g = conj(g)
            dt = x._data.dtype
            if dt.kind != "c" and g._data.dtype.kind == "c":
                g = real(g)
            if g._data.dtype != dt:
                g = g.astype(dt)
        out.append(g)
    return tuple(out)


def has_complex(inputs) -> bool:
    return any(x is not None and x._data.dtype.kind == "c" for x in inputs)


def node_vjp(op, node, vnode, gouts) -> tuple:
    """The input gradients of one node, as the eager engine derives them: for complex inputs
    through a holomorphic rule, :func:`complex_vjp`; through an op with no complex gradient,
    :func:`no_gradient`; otherwise the op's own ``vjp``. ``node`` has ``inputs``, ``n_out``
    and ``zeros_for`` (a tape node, or graph autodiff's stand-in); ``vnode`` is what the
    rule reads; ``gouts`` holds one gradient per output (None where none reaches it)."""
    if has_complex(node.inputs):
        if op.complex == "holomorphic":
            return complex_vjp(node, vnode, gouts)
        if op.complex != "rule":
            raise no_gradient(op)
    if node.n_out == 1:
        return ((None,) * len(node.inputs) if gouts[0] is None else op.vjp(vnode, gouts[0]))
    if all(g is None for g in gouts):
        return (None,) * len(node.inputs)
    return op.vjp(vnode, *_filled(node, op, gouts))


def _filled(node, op, gouts) -> list:
    """``gouts`` with zeros for the outputs no gradient reached, unless ``op``'s rule takes
    None for them (``OpDef.none_grads``)."""
    if op.none_grads:
        return gouts
    return [g if g is not None else node.zeros_for(i) for i, g in enumerate(gouts)]


def _install() -> None:
    from .. import _core
    _core.set_complex_vjp(complex_vjp)


_install()
