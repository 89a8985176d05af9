# cython: language_level=3, boundscheck=False, wraparound=False, binding=False
"""The hot path in Cython: the Tensor's storage slots, tape nodes, and ``apply``.

``apply`` here is the one funnel every op call goes through (see _apply.py for
the error helpers it calls on failure). It runs per op in eager code and per
vjp op in backward, so each attribute access counts.
"""
import numpy as np
cimport numpy as cnp

from ._state import state as _state
from .errors import DTypeError, InputError, ShapeError

cdef object _ndarray = np.ndarray
cdef object _asarray = np.asarray


cdef class TensorBase:
    """Storage and autograd slots of ``tensorlib.Tensor`` (which adds the methods)."""
    cdef public object _data
    cdef public object _device
    cdef public bint _rg
    cdef public object _node
    cdef public Py_ssize_t _idx
    cdef public object _version
    cdef object _grad
    cdef public object _hooks
    cdef public object _base      # a view's (base tensor, view op name, attrs, output)
    cdef public Py_ssize_t _hv    # the version counter's value when _node was set
    cdef object __weakref__

    @property
    def grad(self):
        """The gradient backward() accumulated into this tensor (None before any)."""
        if self._grad is None and self._node is not None and _nonleaf_grad_read is not None:
            _nonleaf_grad_read(self)     # PyTorch's warning: retain_grad() was not called
        return self._grad

    @grad.setter
    def grad(self, value):
        # checked here, where the mistake is made, not later inside an optimizer step
        if value is not None:
            # RuntimeError subclasses, as PyTorch raises RuntimeError for each
            if not isinstance(value, TensorBase):
                raise DTypeError(f"assigned grad must be a Tensor or None, got "
                                 f"{type(value).__name__}")
            g = <TensorBase>value
            if g._data.shape != self._data.shape:
                raise ShapeError(f"assigned grad has shape {tuple(g._data.shape)}, the tensor "
                                 f"has shape {tuple(self._data.shape)}")
            if g._data.dtype != self._data.dtype:
                raise DTypeError(f"assigned grad has dtype {g._data.dtype}, the tensor has "
                                 f"dtype {self._data.dtype}")
            if g._device != self._device:
                raise InputError(f"assigned grad is on {g._device}, the tensor on "
                                 f"{self._device}")
        self._grad = value


cdef type _Tensor = None
# f(tensor), called when a non-leaf's unset .grad is read (tensorlib._tensor warns)
cdef object _nonleaf_grad_read = None


def set_nonleaf_grad_read(fn) -> None:
    global _nonleaf_grad_read
    _nonleaf_grad_read = fn


def set_tensor_class(cls):
    global _Tensor
    _Tensor = cls


# Tensor subclasses (tensorlib._subclass): apply passes the outputs of an op with an input of
# a subclass not in _plain_types (Parameter, Buffer, ...) to _subclass_hook(inputs, res),
# which gives them the subclass (PyTorch's default __torch_function__). Plain tensors pay one
# type comparison per input.
cdef set _plain_types = set()
cdef object _subclass_hook = None


def set_subclass_hook(fn) -> set:
    """Install ``fn(inputs, outputs) -> outputs``; returns the set of subclasses it skips
    (the caller adds to it)."""
    global _subclass_hook
    _subclass_hook = fn
    return _plain_types


cdef inline TensorBase wrap(object data, object dev, bint rg, object node, Py_ssize_t idx,
                            object box):
    cdef TensorBase t = <TensorBase>TensorBase.__new__(_Tensor)
    t._data = data
    t._device = dev
    t._rg = rg
    t._node = node
    t._idx = idx
    t._version = box
    t._grad = None
    t._hooks = None
    t._base = None
    t._hv = box[0]
    return t


def make_tensor(data, dev, rg, node, idx):
    """A Tensor around ``data`` (no copy), with a fresh version counter."""
    return wrap(data, dev, rg, node, idx, [0])


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


cdef Py_ssize_t _seq = 0

# inference tensors (made by ops inside inference_mode): their version box is of this list
# subclass; _infer_depth counts the threads inside the mode (a cheap test on every op),
# _infer_made turns on _record's check once one exists
cdef object _InferBox = None
cdef object _infer_msg = None
cdef Py_ssize_t _infer_depth = 0
cdef bint _infer_made = False


def set_inference_box(cls, msg):
    global _InferBox, _infer_msg
    _InferBox, _infer_msg = cls, msg


# threads inside a saved_tensors_hooks block (a cheap test in _record)
cdef Py_ssize_t _hook_depth = 0


def saved_hooks_depth(Py_ssize_t delta):
    """saved_tensors_hooks' enter (+1) and exit (-1)."""
    global _hook_depth
    _hook_depth += delta


def inference_depth(Py_ssize_t delta):
    """inference_mode's enter (+1) and exit (-1). Entering turns on _record's check (the
    creation functions mark their tensors in Python)."""
    global _infer_depth, _infer_made
    _infer_depth += delta
    if delta > 0:
        _infer_made = True


cdef inline object _box(st):
    if _infer_depth and _InferBox is not None and getattr(st, "inference", False):
        return _InferBox([0])
    return [0]


class _NodeName(str):
    """A tape node's op name ("Mul"); also callable, as PyTorch's ``grad_fn.name()``
    ("MulBackward0")."""

    def __call__(self):
        return f"{self}Backward0"


cdef class Node:
    """A recorded op call: what ``Tensor.grad_fn`` returns.

    It keeps the input Tensors (edges to earlier nodes and the values the
    backward rule reads), the attributes, and, for ops whose rule reads the
    result, the output arrays (not Tensors, so no reference cycle forms).
    """
    cdef public object op
    cdef public object inputs
    cdef public dict attrs
    cdef public object out_data
    cdef public object versions
    cdef public Py_ssize_t n_out
    cdef public object hooks
    cdef public object retained
    cdef public object trace
    cdef public object out_meta
    cdef public Py_ssize_t seq      # creation order: a node only reads older ones
    cdef public object packed       # saved tensors packed by saved_tensors_hooks, or None
    cdef public bint cplx           # complex inputs through a holomorphic rule (complex_grad)
    cdef object __weakref__

    def __init__(self, op, inputs, attrs, out_data, versions, Py_ssize_t n_out):
        global _seq
        _seq += 1
        self.seq = _seq
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.out_data = out_data
        self.versions = versions
        self.n_out = n_out

    @property
    def name(self):
        return _NodeName(_camel(self.op.name))

    def __repr__(self):
        return f"<{self.name}>"

    def output(self, Py_ssize_t i=0):
        """Output ``i`` as a Tensor attached to this node (for rules that use it)."""
        if self.out_data is None:
            from .autograd.node import _freed_message
            raise RuntimeError(_freed_message(self))
        return wrap(self.out_data[i], (<TensorBase>self.inputs[0])._device, True, self, i, [0])

    @property
    def out(self):
        return self.output(0)

    def zeros_for(self, Py_ssize_t i):
        """A zero gradient for output ``i`` (an output nobody used)."""
        from .creation import zeros
        shape, dtype = self.out_meta[i]
        return zeros(shape, dtype=dtype, device=(<TensorBase>self.inputs[0])._device)

    @property
    def next_functions(self):
        """(node, output index) per input, as PyTorch's: the input's node; for a leaf that
        requires grad an ``AccumulateGrad`` (its ``.variable`` is the leaf); else None."""
        if self.inputs is None:
            return ()
        return tuple((t._node, t._idx) if t._node is not None else
                     ((_AccumulateGrad(t), 0) if t._rg else (None, 0))
                     for t in self.inputs)


class _AccumulateGrad:
    """The graph node PyTorch shows for a leaf that requires grad: backward accumulates
    into ``variable.grad`` there."""

    __slots__ = ("variable",)
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return "<AccumulateGrad>"


def apply(op, *inputs, **attrs):
    """Run registry op ``op`` on Tensors ``inputs`` with attributes ``attrs``."""
    cdef TensorBase t, r
    cdef Py_ssize_t n = len(inputs), i
    cdef bint rg = False, multi, sub = False, cplx = False
    if n == 0:
        raise TypeError(f"{op.name}: needs at least one tensor input")
    t = <TensorBase?>inputs[0]
    dev = t._device
    arrays = [None] * n
    for i in range(n):
        t = <TensorBase?>inputs[i]
        if t._device is not dev:
            from ._apply import _same_device
            return apply(op, *_same_device(op, inputs), **attrs)
        if t._rg:
            rg = True
        if type(t) is not _Tensor and type(t) not in _plain_types:
            sub = True
        arrays[i] = a = t._data
        if _is_complex(a):
            cplx = True
    if n == 2 and _dtypes_differ(arrays[0], arrays[1]) and op.promote:
        # an integer or bool tensor meeting a float one takes the float's dtype
        from .ops._util import same_category
        inputs = same_category(inputs[0], inputs[1])
        arrays = [(<TensorBase>inputs[0])._data, (<TensorBase>inputs[1])._data]
    if cplx and op.complex is None:
        from .autograd.complex_grad import unsupported
        raise unsupported(op)
    st = _state
    kattrs = attrs
    if st.tracer is not None and attrs:
        # the kernel computes this trace's values: sizes as plain ints (the node keeps the
        # traced ones, so a replay recomputes them; a kernel's arithmetic on them is no escape)
        from ._apply import plain_attrs
        kattrs = plain_attrs(attrs)
    check = op.check
    if check is not None:
        check(*arrays, **kattrs)
    if dev.type == "cpu":
        kernel = op.cpu
        if n == 2 and _shapes_differ(arrays[0], arrays[1]) and op.outer is not None:
            kernel = op.outer
    else:
        kernel = op.kernel_for(dev.type)
    try:
        out = kernel(*arrays, **kattrs)
    except Exception as e:
        from ._apply import op_error
        raise op_error(op, inputs, attrs, e) from e
    if op.out_device is not None:
        from ._device import Device
        dev = Device(op.out_device(attrs))
    multi = type(out) is tuple
    if not multi and type(out) is not _ndarray and dev.type == "cpu":
        out = _asarray(out)
    if rg and st.grad_enabled and op.vjp is not None:
        res = _record(op, inputs, attrs, out, multi, dev, st, cplx)
    elif multi:
        res = tuple([wrap(o, dev, False, None, 0, _box(st)) for o in out])
    else:
        res = wrap(out, dev, False, None, 0, _box(st))
    if op.view:  # outputs alias input 0's storage: in-place changes bump one counter
        t = <TensorBase>inputs[0]
        box = t._version
        if multi:
            for i in range(len(res)):
                if _shares(out[i], arrays[0]):
                    (<TensorBase>res[i])._version = box
                    (<TensorBase>res[i])._hv = box[0]   # current: its history is fresh
                    (<TensorBase>res[i])._base = (t, op.name, attrs, i)
        elif _shares(out, arrays[0]):   # (a reshape NumPy had to copy is no view)
            (<TensorBase>res)._version = box
            (<TensorBase>res)._hv = box[0]
            link = t._base
            if link is not None and op.name in _RESHAPES and link[1] in _RESHAPES:
                # a reshape of a reshape is one reshape of the first base: chains of them
                # (acc = acc.reshape(...) in a loop) stay one link long
                (<TensorBase>res)._base = (link[0], "reshape", {"shape": out.shape}, 0)
            else:
                (<TensorBase>res)._base = (t, op.name, attrs, 0)
    if sub and _subclass_hook is not None:     # before the listeners: they see the results
        res = _subclass_hook(inputs, res)
    fwd_ad = st.fwd_ad
    if fwd_ad is not None:      # a dual level is active: forward AD's listener (forward_ad)
        fwd_ad(op, inputs, attrs, res)
    tracer = st.tracer
    if tracer is not None:
        tracer.record(op, inputs, attrs, res)
    return res


cdef object _regen = None
cdef object _complex_vjp = None


def set_complex_vjp(fn):
    """Install ``fn(node, vnode, gouts)``, the backward of a node whose op is holomorphic
    and had complex inputs (tensorlib.autograd.complex_grad)."""
    global _complex_vjp
    _complex_vjp = fn
cdef tuple _RESHAPES = ("reshape", "squeeze", "expand_dims")


def set_view_regen(fn):
    """Install ``fn(view)``, which rebuilds a view's history from its base's current one
    (tensorlib._tensor_methods: the base changed in place after the view was taken)."""
    global _regen
    _regen = fn


cdef object _may_share = np.may_share_memory


cdef inline bint _dtypes_differ(object a, object b):
    # NumPy arrays: compare their descriptors' addresses (a builtin dtype has one), no
    # attribute lookups on the hot path; other arrays (CuPy) through .dtype
    if type(a) is _ndarray and type(b) is _ndarray:
        return (<cnp.ndarray>a).descr is not (<cnp.ndarray>b).descr
    return a.dtype is not b.dtype


cdef inline bint _shapes_differ(object a, object b):
    # NumPy arrays: their dims compared in C (no shape tuples on the hot path)
    cdef int i, nd
    if type(a) is not _ndarray or type(b) is not _ndarray:
        return False
    nd = cnp.PyArray_NDIM(<cnp.ndarray>a)
    if nd != cnp.PyArray_NDIM(<cnp.ndarray>b):
        return True
    for i in range(nd):
        if cnp.PyArray_DIM(<cnp.ndarray>a, i) != cnp.PyArray_DIM(<cnp.ndarray>b, i):
            return True
    return False


cdef inline bint _is_complex(object a):
    if type(a) is _ndarray:
        return (<cnp.ndarray>a).descr.kind == b'c'
    return a.dtype.kind == "c"


cdef inline bint _shares(object a, object b):
    if type(a) is _ndarray:
        return _may_share(a, b)
    return True     # CuPy: its view ops return views (a copying reshape is rare there)


cdef inline object _own(object x):
    """A tape node's own alias of an input that has a history; a leaf itself. A view whose
    base changed in place since its history was set first gets a history from the base's
    current one (its values changed with the base)."""
    cdef TensorBase t = <TensorBase>x
    if t._base is not None and t._hv != t._version[0]:
        _regen(t)
    if t._node is None:
        return x
    return wrap(t._data, t._device, t._rg, t._node, t._idx, t._version)


def node_input(x):
    """What a tape node keeps of input ``x`` (``_own``), for nodes made outside ``apply``
    (custom autograd Functions)."""
    return _own(x)


cdef object _saved_positions(saves, tuple inputs):
    """The positions of the inputs an op's rule reads (``OpDef.saves``): all (True), the
    listed ones (a tuple), those some input needing a gradient reads ({input: readers}),
    or ("others") each read only for the others' gradients."""
    cdef Py_ssize_t n = len(inputs), n_rg = 0, i
    if saves is True:
        return range(n)
    if type(saves) is tuple:
        return saves
    if type(saves) is dict:
        return [i for i, readers in (<dict>saves).items()
                if i < n and any([(<TensorBase>inputs[r])._rg for r in readers if r < n])]
    for x in inputs:
        n_rg += (<TensorBase>x)._rg
    return [i for i in range(n) if n_rg - (<TensorBase>inputs[i])._rg > 0]


cdef object _record(op, tuple inputs, dict attrs, out, bint multi, dev, st, bint cplx):
    cdef TensorBase t
    cdef Py_ssize_t i, n
    if cplx and op.complex != "rule":
        if op.complex != "holomorphic":     # complex forward only: no gradient rule yet
            from .autograd.complex_grad import no_gradient
            raise no_gradient(op)
    outs = out if multi else (out,)
    saves = op.saves
    saves_output = op.saves_output
    versions = None
    out_boxes = None
    saved_pos = out_pos = ()
    if saves is not False or saves_output:
        versions = []
        saved_pos = _saved_positions(saves, inputs)
        for i in saved_pos:
            t = <TensorBase>inputs[i]
            versions.append((t._version, t._version[0]))
        if saves_output:
            out_boxes = [[0] for _ in outs]
            # the outputs at these positions only, or all of them
            out_pos = range(len(outs)) if saves_output is True else saves_output
            for i in out_pos:
                versions.append((out_boxes[i], 0))
    if _infer_made and versions:
        for b, _ in versions:
            if type(b) is _InferBox:
                raise RuntimeError(_infer_msg)
    # The node keeps its own alias of each input that has a history: an in-place op later
    # gives the input tensor a new history, and this node must still reach the old one
    # (y = x * 1; z = y * 3; y.mul_(2) -> z's gradient must not see the mul_). Leaves stay
    # themselves: their gradients are delivered to them by identity.
    n = len(inputs)
    if n == 1:
        ins = (_own(inputs[0]),)
    elif n == 2:
        ins = (_own(inputs[0]), _own(inputs[1]))
    else:
        ins = tuple([_own(x) for x in inputs])
    node = Node(op, ins, attrs, outs if saves_output else None, versions, len(outs))
    if cplx and op.complex == "holomorphic":
        node.cplx = True
    if _hook_depth > 0 and (saved_pos or out_pos) and \
            getattr(st, "saved_hooks", None) is not None:
        from .autograd.graph import pack_saved
        node.packed = pack_saved(node, list(saved_pos), list(out_pos))
    if st.anomaly:
        from ._apply import _user_stack
        node.trace = _user_stack()
    if multi:
        node.out_meta = [(o.shape, o.dtype) for o in outs]
        return tuple([wrap(o, dev, o.dtype.kind in "fc", node, i,
                           out_boxes[i] if out_boxes is not None else [0])
                      for i, o in enumerate(outs)])
    return wrap(out, dev, True, node, 0, out_boxes[0] if out_boxes is not None else [0])


# --- the backward engine's walk ----------------------------------------------------------
cdef dict _collect(list roots):
    """Dependency counts: how many consumers within the graph each node has."""
    cdef dict deps = {}
    cdef list stack = []
    cdef Node node, m
    cdef TensorBase r, t
    for x in roots:
        r = <TensorBase>x
        if r._node is not None and r._node not in deps:
            deps[r._node] = 0
            stack.append(r._node)
    while stack:
        node = <Node>stack.pop()
        if node.inputs is None:
            from .autograd.node import _freed_message
            raise RuntimeError(_freed_message(node))
        for x in node.inputs:
            t = <TensorBase>x
            if t._node is None or not t._rg:
                continue
            m = <Node>t._node
            if m in deps:
                deps[m] = <Py_ssize_t>deps[m] + 1
            else:
                deps[m] = 1
                stack.append(m)
    return deps


cdef dict _reach(list roots, dict node_targets, set leaf_targets):
    """For each node above ``roots``: whether a target (a tensor ``tl.grad`` was asked
    about: a leaf in ``leaf_targets``, or a node output in ``node_targets``) lies above it,
    so that its vjp must run. Iterative post-order (no recursion on deep tapes)."""
    cdef dict reach = {}
    cdef list stack = []
    cdef Node node, m
    cdef TensorBase r, t
    cdef bint hit
    # nodes older than every target node cannot read one (PyTorch's min topological number
    # cut): the walk stays on the part of the tape made after the inputs (unless a leaf is
    # a target: leaves carry no creation order)
    cdef Py_ssize_t oldest = -1
    if node_targets and not leaf_targets:
        oldest = min([(<Node>key[0]).seq for key in node_targets])
    for x in roots:
        r = <TensorBase>x
        if r._node is not None:
            stack.append((r._node, False))
    while stack:
        node, expanded = stack.pop()
        if not expanded:
            if node in reach:
                continue
            if node.inputs is None:
                from .autograd.node import _freed_message
                raise RuntimeError(_freed_message(node))
            reach[node] = None          # in progress
            stack.append((node, True))
            for x in node.inputs:
                t = <TensorBase>x
                if t._node is not None and t._rg and t._node not in reach and \
                        (<Node>t._node).seq >= oldest:
                    stack.append((t._node, False))
            continue
        hit = False
        for x in node.inputs:
            t = <TensorBase>x
            if not t._rg:
                continue
            if t._node is None:
                if id(t) in leaf_targets:
                    hit = True
            elif (t._node, t._idx) in node_targets or reach.get(t._node) is True:
                hit = True
        reach[node] = hit
    return reach


cdef dict _collect_pruned(list roots, dict reach, dict node_targets):
    """``_collect`` over the part of the tape a ``tl.grad`` needs: consumers whose vjp runs
    (reach True), producers that are such nodes or hold a target output."""
    cdef set visit = {n for n, flag in reach.items() if flag is True}
    visit.update(key[0] for key in node_targets)
    cdef dict deps = {}
    cdef Node node
    cdef TensorBase r, t
    for x in roots:
        r = <TensorBase>x
        if r._node is not None and r._node in visit:
            deps[r._node] = 0
    for node in visit:
        deps.setdefault(node, 0)
    for n, hit in reach.items():
        if hit is not True:
            continue
        node = <Node>n
        for x in node.inputs:
            t = <TensorBase>x
            if t._node is not None and t._rg and t._node in visit:
                deps[t._node] = <Py_ssize_t>deps[t._node] + 1
    return deps


def walk(list roots, list grads, bint retain_graph, bint create_graph, dict node_targets,
         list results, check_versions, check_anomaly, node_hooks, leaf_targets=None):
    """Propagate ``grads`` from ``roots`` through the tape, in reverse topological order,
    without recursion. Returns {id(leaf): [leaf, summed gradient]} for the caller to deliver.

    ``leaf_targets`` (a set of leaf ids; None: every leaf) with ``node_targets``: the
    tensors ``tl.grad`` asks about. Then only the nodes between the roots and them run
    their vjps (as PyTorch's engine: hooks above them stay idle, their tape is not freed,
    and the work does not grow with the tape above the inputs)."""
    cdef bint prune = leaf_targets is not None
    cdef dict reach = _reach(roots, node_targets, leaf_targets) if prune else None
    cdef dict deps = (_collect_pruned(roots, reach, node_targets) if prune
                      else _collect(roots))
    cdef dict pending = {}
    cdef dict leaf_grads = {}
    cdef list ready = []
    cdef list gouts, slot
    cdef Node node, m
    cdef TensorBase t, r
    cdef Py_ssize_t left, i
    cdef bint anomaly = _state.anomaly
    cdef bint fresh
    global _sums
    # sums this walk made itself (id -> tensor): no one else holds them until their node
    # runs, so later gradients are added into them in place (one allocation and one op
    # wrapper fewer per sum) unless the backward is recorded or traced
    # (not under forward AD either: an in-place sum would skip the tangents' listener)
    cdef dict owned = {} if not create_graph and _state.tracer is None and \
        _state.fwd_ad is None else None
    for x, g in zip(roots, grads):
        r = <TensorBase>x
        if r._node is None:
            if r._rg:
                _add_leaf(leaf_grads, r, g, owned)
            continue
        slot = pending.get(r._node)
        if slot is None:
            slot = pending[r._node] = [None] * (<Node>r._node).n_out
        slot[r._idx] = g if slot[r._idx] is None else _sum(slot[r._idx], g, owned)
    for x in roots:
        r = <TensorBase>x
        if r._node is not None and deps.get(r._node) == 0 and r._node not in ready:
            ready.append(r._node)
    while ready:
        node = <Node>ready.pop()
        gouts = pending.pop(node, None)
        if gouts is None:
            gouts = [None] * node.n_out
        elif owned:     # handed on now: never changed in place again
            for g in gouts:
                owned.pop(id(g), None)
        if node.hooks is not None or node.retained is not None or node_targets:
            node_hooks(node, gouts, node_targets, results, create_graph)
        if prune and reach.get(node) is not True:
            continue            # holds a target output; nothing it reads is asked about
        if node.inputs is None:
            from .autograd.node import _freed_message
            raise RuntimeError(_freed_message(node))
        if node.versions is not None:
            check_versions(node)
        # under saved_tensors_hooks the rule reads the unpacked values
        vnode = node if node.packed is None else node.packed.node_for_vjp(node)
        op = node.op
        fresh = False
        sums = None
        if node.cplx:
            in_grads = _complex_vjp(node, vnode, gouts)
        else:
            if owned is not None and op.grad_sums is not None:
                _sums = sums = _sums_for(node, leaf_grads, pending, owned)
                fresh = op.grad_sums == "fresh"
            try:
                if node.n_out == 1:
                    g0 = gouts[0]
                    in_grads = ((None,) * len(node.inputs) if g0 is None
                                else op.vjp(vnode, g0))
                elif all(g is None for g in gouts):
                    in_grads = (None,) * len(node.inputs)
                else:
                    if not op.none_grads:
                        gouts = [g if g is not None else node.zeros_for(i)
                                 for i, g in enumerate(gouts)]
                    in_grads = op.vjp(vnode, *gouts)
            finally:
                _sums = None
        if anomaly:
            check_anomaly(node, in_grads)
        inputs_ = node.inputs
        vnode = None
        if not retain_graph:
            node.inputs = None
            node.out_data = None
            node.packed = None
        i = -1
        for x, g in zip(inputs_, in_grads):
            i += 1
            t = <TensorBase>x
            if not t._rg:
                continue
            if sums is not None and g is not None and g is sums[i]:
                g = None    # the rule added it into the sum the walk holds for this input
            if g is not None and (<TensorBase>g)._data.shape != t._data.shape:
                raise RuntimeError(
                    f"{node!r}: its backward rule returned a gradient of shape "
                    f"{(<TensorBase>g)._data.shape} for an input of shape {t._data.shape} "
                    "(a bug in that op's vjp)")
            if t._node is None:
                if g is not None and (not prune or id(t) in leaf_targets):
                    _add_leaf(leaf_grads, t, g, owned, fresh)
                continue
            m = <Node>t._node
            if prune and m not in deps:
                continue
            if g is not None:
                slot = pending.get(m)
                if slot is None:
                    slot = pending[m] = [None] * m.n_out
                cur = slot[t._idx]
                if cur is None:
                    slot[t._idx] = g
                    if fresh:   # made by the rule for this input alone: the walk's to add into
                        owned[id(g)] = g
                else:
                    slot[t._idx] = _sum(cur, g, owned, fresh)
            left = <Py_ssize_t>deps[m] - 1
            deps[m] = left
            if left == 0:
                ready.append(m)
        inputs_ = None
    return leaf_grads


cdef inline void _add_leaf(dict leaf_grads, TensorBase t, g, dict owned, bint fresh=False):
    entry = leaf_grads.get(id(t))
    if entry is None:
        leaf_grads[id(t)] = [t, g]
        if fresh:
            owned[id(g)] = g
    else:
        entry[1] = _sum(entry[1], g, owned, fresh)


cdef object _sum(object cur, object g, dict owned, bint fresh=False):
    """``cur + g`` for the walk's gradient sums: into ``cur`` in place when ``owned`` (None
    while the backward is recorded or traced) says the walk made it, or into ``g`` when
    ``fresh`` says its rule made it for this sum alone, with the same shape and dtype on one
    host or CUDA device; else a new tensor, which ``owned`` then holds."""
    if owned is None:
        return cur + g
    if owned.get(id(cur)) is cur and _add_into(cur, g):
        return cur
    if fresh and _add_into(g, cur):
        owned[id(g)] = g
        return g
    s = cur + g
    owned[id(s)] = s
    return s


cdef bint _add_into(object into, object other):
    """``into += other`` on the arrays, when both have one shape and dtype on one host or
    CUDA device; False (nothing done) otherwise."""
    cdef TensorBase c = <TensorBase>into, d = <TensorBase>other
    a, b = c._data, d._data
    if (type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
            and c._device is d._device and c._device.type in _IN_PLACE_DEVICES):
        a += b
        return True
    return False


cdef tuple _IN_PLACE_DEVICES = ("cpu", "cuda")


# the smallest running sum (elements) offered to a rule on the host (see _sums_for)
cdef Py_ssize_t _HOST_SUM_MIN = 1 << 14


def set_host_sum_min(Py_ssize_t n) -> int:
    """Offer host sums of at least ``n`` elements to the rules (tests set 0); returns the
    previous value."""
    global _HOST_SUM_MIN
    old = _HOST_SUM_MIN
    _HOST_SUM_MIN = n
    return old


# the running sums offered to the rule now running (grad_sums), None outside such a rule
cdef object _sums = None


cdef object _sums_for(Node node, dict leaf_grads, dict pending, dict owned):
    """Per input of ``node``: the gradient sum the walk holds for it and may change in place
    (see :func:`_sum`), or None; None instead of a tuple of Nones."""
    cdef TensorBase t
    cdef list out = [None] * len(node.inputs)
    cdef Py_ssize_t i = 0
    cdef bint some = False
    for x in node.inputs:
        t = <TensorBase>x
        if t._rg:
            if t._node is None:
                entry = leaf_grads.get(id(t))
                cur = None if entry is None else entry[1]
            else:
                slot = pending.get(t._node)
                cur = None if slot is None else slot[t._idx]
            if cur is not None and owned.get(id(cur)) is cur:
                dev = (<TensorBase>cur)._device.type
                # on the host a small sum costs more to hand over than the add it saves
                # (a GPU saves a launch at any size)
                if dev == "cuda" or (dev == "cpu" and
                                     (<TensorBase>cur)._data.size >= _HOST_SUM_MIN):
                    out[i] = cur
                    some = True
        i += 1
    return tuple(out) if some else None


def grad_sums():
    """For a backward rule of an op registered with ``grad_sums`` (see OpDef), while the
    backward pass runs it unrecorded: per input, the running gradient sum that the rule may
    add its gradient into, in place, and return instead of a new tensor (one GEMM with
    beta = 1 instead of a product and an add, for a weight used at every step of a loop);
    None where there is none. None when no input has one, and outside such a call. Read it
    first thing in the rule."""
    return _sums
