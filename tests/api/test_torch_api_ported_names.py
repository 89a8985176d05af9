"""API-coverage audit 18 (Part B, Part C): PyTorch names ported code uses, compared with
PyTorch 2.13 on values and gradients (float64) and on their errors."""
import copy
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t._host())


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


# --- B1 DataParallel ------------------------------------------------------------------------------
def test_data_parallel_pass_through_matches_torch():
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    tdp = torch.nn.DataParallel(tm)
    lm = nn.DataParallel(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double())
    assert list(lm.state_dict()) == list(tdp.state_dict())
    lm.load_state_dict({k: tl.tensor(v.numpy()) for k, v in tdp.state_dict().items()})
    x = np.random.randn(5, 3)
    xt, xl = torch.tensor(x, requires_grad=True), tl.tensor(x, requires_grad=True)
    yt, yl = tdp(xt), lm(xl)
    _close(yl, yt)
    (yt ** 2).sum().backward()
    (yl ** 2).sum().backward()
    _close(xl.grad, xt.grad)
    _close(lm.module[0].weight.grad, tdp.module[0].weight.grad)
    assert isinstance(lm.module, nn.Sequential)
    assert lm.device_ids == tdp.device_ids == []
    # a checkpoint of the wrapped model loads back into the bare one through .module
    bare = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    bare.load_state_dict(lm.module.state_dict())
    _close(bare.eval()(xl), lm.eval()(xl))


def test_data_parallel_kwargs_and_errors():
    class Two(nn.Module):
        def forward(self, a, *, b):
            return a + b
    dp = nn.DataParallel(Two(), device_ids=[0], output_device=0)
    assert dp(tl.ones(2), b=tl.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="DataParallel"):
        nn.DataParallel(lambda x: x)


def test_data_parallel_several_gpus_refused(monkeypatch):
    from tensorlib import cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    # the default runs the whole batch on cuda:0 (with a warning); this module is on the CPU
    with pytest.warns(UserWarning, match="whole batch"), \
            pytest.raises(RuntimeError, match="parameters and buffers on device cuda:0"):
        nn.DataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="2 GPUs"):
        nn.DataParallel(nn.Linear(2, 2), device_ids=[0, "cuda:1"])


# --- B2 Tensor.new --------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [(), (2, 3), (0,), (4,)])
def test_new_sizes(args):
    for dt, tdt in ((tl.float64, torch.float64), (tl.int64, torch.int64)):
        a, b = tl.ones(2, dtype=dt).new(*args), torch.ones(2, dtype=tdt).new(*args)
        assert tuple(a.shape) == tuple(b.shape) and str(a.dtype) == str(b.dtype)[6:]
        assert not a.requires_grad


def test_new_data_size_tensor():
    x, xt = tl.ones(2), torch.ones(2)
    # a tuple is data, as PyTorch's (tensorlib's size() is a plain tuple: x.new(*y.shape))
    assert x.new((2, 3)).tolist() == xt.new((2, 3)).tolist() == [2.0, 3.0]
    assert tuple(tl.ones(2, 3).new(*tl.ones(4, 5).shape).shape) == (4, 5)
    _close(x.new([1, 2]), xt.new([1, 2]))
    _close(x.new(np.array([1.5, 2])), xt.new(np.array([1.5, 2])))
    a, b = tl.arange(2).new([1.7, -2.2]), torch.arange(2).new([1.7, -2.2])
    assert a.tolist() == b.tolist() and a.dtype == tl.int64
    assert x.new([[1, 2], [3, 4]]).shape == (2, 2)
    y = tl.arange(3.0)
    assert x.new(y) is y
    with pytest.raises(TypeError, match="Tensor.new"):
        x.new(tl.arange(3))
    with pytest.raises(TypeError):
        xt.new(torch.arange(3))
    with pytest.raises(TypeError, match="Tensor.new"):
        x.new(2.5)
    with pytest.raises(ValueError, match="negative"):
        x.new(-1)


# --- B3 real / imag / conj ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["conj", "resolve_conj", "resolve_neg", "conj_physical"])
def test_real_identities(name):
    x = tl.tensor(np.random.randn(3), requires_grad=True)
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    assert getattr(x, name)() is x and getattr(tl, name)(x) is x
    assert getattr(xt, name)() is xt
    (getattr(tl, name)(x) * 3).sum().backward()
    (getattr(torch, name)(xt) * 3).sum().backward()
    _close(x.grad, xt.grad)
    assert getattr(tl, name)(tl.arange(3)).tolist() == getattr(torch, name)(
        torch.arange(3)).tolist()
    with pytest.raises(TypeError, match=name):
        getattr(tl, name)([1.0])


def test_real_imag():
    x, xt = tl.arange(3.0), torch.arange(3.0)
    assert x.real is x and tl.real(x) is x and xt.real is xt
    assert not x.is_conj() and not x.is_neg() and not tl.is_conj(x)
    for f in (lambda t: t.imag, lambda t: (tl if isinstance(t, tl.Tensor) else torch).imag(t)):
        with pytest.raises(RuntimeError, match="imag is not implemented"):
            f(xt)
        with pytest.raises(RuntimeError, match="imag is not implemented"):
            f(x)


# --- B4 nn.Buffer ---------------------------------------------------------------------------------
def test_buffer_tensor():
    w = tl.ones(2, requires_grad=True)
    b = nn.Buffer(w, persistent=False)
    bt = torch.nn.Buffer(torch.ones(2, requires_grad=True), persistent=False)
    assert isinstance(b, nn.Buffer) and isinstance(b, tl.Tensor)
    assert b.persistent is bt.persistent is False
    assert b.requires_grad is bt.requires_grad is True and b.grad_fn is None
    assert nn.Buffer().shape == tuple(torch.nn.Buffer().shape) == (0,)
    assert nn.Buffer(tl.ones(1)).persistent is True
    assert not isinstance(tl.ones(1), nn.Buffer)
    assert copy.deepcopy(b).persistent is False
    c = pickle.loads(pickle.dumps(b))
    assert isinstance(c, nn.Buffer) and c.persistent is False and c.tolist() == [1.0, 1.0]


def test_buffer_registers_on_assignment():
    m, mt = nn.Module(), torch.nn.Module()
    m.keep, mt.keep = nn.Buffer(tl.ones(2)), torch.nn.Buffer(torch.ones(2))
    m.drop, mt.drop = nn.Buffer(tl.ones(1), persistent=False), torch.nn.Buffer(
        torch.ones(1), persistent=False)
    assert [k for k, _ in m.named_buffers()] == [k for k, _ in mt.named_buffers()]
    assert list(m.state_dict()) == list(mt.state_dict()) == ["keep"]


# --- B6 share_memory_ -----------------------------------------------------------------------------
def test_share_memory():
    x = tl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    xt = torch.arange(6.0).reshape(2, 3)
    assert x.is_shared() is xt.is_shared() is False
    assert x.share_memory_() is x and xt.share_memory_() is xt
    assert x.is_shared() is xt.is_shared() is True
    assert x.share_memory_() is x and x.tolist() == xt.tolist() and x.requires_grad
    (x * 2).sum().backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2
    e = tl.ones(0).share_memory_()
    assert e.shape == (0,) and e.is_shared()


def test_share_memory_seen_by_forked_child():
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("needs fork")
    x = tl.zeros(3).share_memory_()
    p = mp.get_context("fork").Process(target=_fill_seven, args=(x,))
    p.start()
    p.join(30)
    assert p.exitcode == 0 and x.tolist() == [7.0, 7.0, 7.0]


def _fill_seven(x):
    with tl.no_grad():
        x.fill_(7.0)


# --- B7 LU legacy forms ---------------------------------------------------------------------------
def _mat(draw, shape):
    return np.asarray(draw(st.lists(st.floats(-2, 2), min_size=int(np.prod(shape)),
                                    max_size=int(np.prod(shape))))).reshape(shape) + \
        3 * np.eye(shape[-2], shape[-1])


@given(st.data(), st.sampled_from([(3, 3), (2, 4, 4), (4, 2), (2, 5)]))
def test_lu_unpack_matches_torch(data, shape):
    a = _mat(data.draw, shape)
    at = torch.tensor(a, requires_grad=True)
    al = tl.tensor(a, requires_grad=True)
    LUt, pt = torch.linalg.lu_factor(at)
    LUl, pl = tl.linalg.lu_factor(al)
    outs_t, outs_l = torch.lu_unpack(LUt, pt), tl.lu_unpack(LUl, pl)
    for o_l, o_t in zip(outs_l, outs_t):
        _close(o_l, o_t)
    w = [np.random.randn(*o.shape) for o in outs_t[1:]]
    sum((o * torch.tensor(wi)).sum() for o, wi in zip(outs_t[1:], w)).backward()
    sum((o * tl.tensor(wi)).sum() for o, wi in zip(outs_l[1:], w)).backward()
    _close(al.grad, at.grad, 1e-8)
    P, L, U = tl.lu_unpack(LUl, pl)
    _close(P @ L @ U, al)
    t_nodata, l_nodata = torch.lu_unpack(LUt, pt, unpack_data=False), tl.lu_unpack(
        LUl, pl, unpack_data=False)
    assert [tuple(o.shape) for o in l_nodata] == [tuple(o.shape) for o in t_nodata]
    t_nopiv, l_nopiv = torch.lu_unpack(LUt, pt, unpack_pivots=False), tl.lu_unpack(
        LUl, pl, unpack_pivots=False)
    assert [tuple(o.shape) for o in l_nopiv] == [tuple(o.shape) for o in t_nopiv]


@given(st.data(), st.sampled_from([((3, 3), (3, 2)), ((2, 4, 4), (2, 4, 1)),
                                   ((2, 3, 3), (3, 2))]))
def test_lu_and_lu_solve_match_torch(data, shapes):
    a, b = _mat(data.draw, shapes[0]), np.random.randn(*shapes[1])
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    al, bl = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LUt, pt = torch.lu(at)
        xt = torch.lu_solve(bt, LUt, pt)
        xt2 = bt.lu_solve(*at.lu())
    LUl, pl = tl.lu(al)
    _close(LUl, LUt)
    assert pl.tolist() == pt.tolist() and pl.dtype == tl.int32
    xl = tl.lu_solve(bl, LUl, pl)
    _close(xl, xt)
    _close(bl.lu_solve(*al.lu()), xt2)
    g = np.random.randn(*xt.shape)
    (xt * torch.tensor(g)).sum().backward()
    (xl * tl.tensor(g)).sum().backward()
    _close(al.grad, at.grad, 1e-8)
    _close(bl.grad, bt.grad, 1e-8)


def test_lu_get_infos_and_errors():
    z = np.zeros((2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LUt, pt, it = torch.lu(torch.tensor(z), get_infos=True)
    LUl, pl, il = tl.tensor(z).lu(get_infos=True)
    assert int(il) == int(it) == 1 and pl.tolist() == pt.tolist()
    _close(LUl, LUt)
    LU, piv = tl.linalg.lu_factor(tl.eye(3, dtype=tl.float64))
    with pytest.raises(ValueError, match="lu_unpack"):
        tl.lu_unpack(LU, piv.astype(tl.float64))
    with pytest.raises(ValueError, match="lu_unpack"):
        tl.lu_unpack(LU, piv[:2])
    with pytest.raises(ValueError, match="lu_solve"):
        tl.lu_solve(tl.ones(2, 1), LU, piv)


# --- B14 settings ---------------------------------------------------------------------------------
def test_settings_and_names():
    assert tl.set_flush_denormal(False) is False
    assert isinstance(tl.get_num_interop_threads(), int) and tl.get_num_interop_threads() >= 1
    with pytest.raises(ValueError, match="set_num_interop_threads"):
        tl.set_num_interop_threads(0)
    x = tl.ones(2)
    assert tl.typename(x) == torch.typename(torch.ones(2)) == "torch.FloatTensor"
    assert tl.typename(tl.arange(2)) == torch.typename(torch.arange(2))
    assert tl.typename(1) == torch.typename(1) == "int"
    assert tl.typename(nn.Linear) == "tensorlib.nn.linear.Linear"
    assert tl.typename(nn.Linear(1, 1)) == "tensorlib.nn.linear.Linear"
    assert tl.is_inference(x) is torch.is_inference(torch.ones(2)) is False
    with tl.inference_mode():
        y = tl.ones(2) * 2
    assert tl.is_inference(y)
    assert isinstance(tl.strided, tl.layout) and x.layout is tl.strided
    assert pickle.loads(pickle.dumps(tl.strided)) is tl.strided


def test_set_default_tensor_type():
    try:
        with pytest.warns(UserWarning, match="deprecated"):
            tl.set_default_tensor_type("torch.DoubleTensor")
        assert tl.get_default_dtype() == tl.float64 and tl.tensor([1.0]).dtype == tl.float64
        with pytest.warns(UserWarning):
            tl.set_default_tensor_type(tl.FloatTensor)
        assert tl.get_default_dtype() == tl.float32
        with pytest.raises(TypeError, match="floating-point"), pytest.warns(UserWarning):
            tl.set_default_tensor_type("torch.LongTensor")
        with pytest.raises(ValueError, match="CUDA"), pytest.warns(UserWarning):
            tl.set_default_tensor_type("torch.cuda.FloatTensor")
        with pytest.raises(TypeError, match="set_default_tensor_type"):
            tl.set_default_tensor_type(3)
    finally:
        tl.set_default_dtype(tl.float32)


# --- B18 amp.custom_fwd / custom_bwd --------------------------------------------------------------
def _custom_fn(lib):
    seen = {}

    class Sq(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", cast_inputs=lib.float16)
        def forward(ctx, x):
            seen["fwd"] = (x.dtype, lib.is_autocast_enabled("cpu"))
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            seen["bwd"] = lib.is_autocast_enabled("cpu")
            (x,) = ctx.saved_tensors
            return 2 * g * x

    class Keep(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu")
        def forward(ctx, x):
            seen["keep_fwd"] = lib.is_autocast_enabled("cpu")
            return x * 3

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            seen["keep_bwd"] = lib.is_autocast_enabled("cpu")
            return g * 3
    return Sq, Keep, seen


def test_custom_fwd_bwd_match_torch():
    res = {}
    for lib, name in ((torch, "t"), (tl, "l")):
        Sq, Keep, seen = _custom_fn(lib)
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        with lib.autocast("cpu", dtype=lib.float16):
            y = Sq.apply(x)
            z = Keep.apply(x)
        (y.float().sum() + z.sum()).backward()
        out_plain = Sq.apply(lib.tensor([2.0], dtype=lib.float32))
        res[name] = (str(seen["fwd"][0]).split(".")[-1], seen["fwd"][1], seen["bwd"],
                     seen["keep_fwd"], seen["keep_bwd"], str(y.dtype).split(".")[-1],
                     x.grad.tolist(), str(out_plain.dtype).split(".")[-1])
    assert res["l"] == res["t"]


def test_custom_fwd_errors():
    with pytest.raises(ValueError, match="device_type"):
        tl.amp.custom_fwd(lambda ctx: None, device_type=None)
    with pytest.raises(TypeError):
        tl.amp.custom_fwd(lambda ctx: None)


# --- B20 hooks and distributions.utils ------------------------------------------------------------
def test_removable_handle():
    from tensorlib.utils.hooks import RemovableHandle
    from torch.utils.hooks import RemovableHandle as TRH
    from collections import OrderedDict
    for cls in (RemovableHandle, TRH):
        d, extra = OrderedDict(), OrderedDict()
        h = cls(d, extra_dict=extra)
        d[h.id], extra[h.id] = "hook", True
        h2 = cls(d)
        assert h2.id == h.id + 1
        with h:
            pass
        assert h.id not in d and h.id not in extra
        h.remove()          # twice is fine
        h2.remove()
        assert not d
    plain = {}
    h = RemovableHandle(plain)
    plain[h.id] = 1
    h.remove()
    assert not plain
    assert isinstance(nn.Linear(1, 1).register_forward_hook(lambda *a: None), RemovableHandle)
    assert isinstance(tl.ones(1, requires_grad=True).register_hook(lambda g: g),
                      RemovableHandle)
    assert tl.utils.hooks.RemovableHandle is RemovableHandle


@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6), st.booleans())
def test_logits_probs_match_torch(vals, binary):
    from tensorlib.distributions import utils as U
    from torch.distributions import utils as TU
    a = np.asarray(vals).reshape(2, 3)
    xl, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    pl, pt = U.logits_to_probs(xl, binary), TU.logits_to_probs(xt, binary)
    _close(pl, pt)
    ql, qt = U.probs_to_logits(pl, binary), TU.probs_to_logits(pt, binary)
    _close(ql, qt, 1e-8)
    w = np.random.randn(2, 3)
    (qt * torch.tensor(w)).sum().backward()
    (ql * tl.tensor(w)).sum().backward()
    _close(xl.grad, xt.grad, 1e-7)


def test_clamp_probs_broadcast_all():
    from tensorlib.distributions import utils as U
    from torch.distributions import utils as TU
    for dt, tdt in ((tl.float32, torch.float32), (tl.float64, torch.float64)):
        p = [0.0, 0.5, 1.0]
        _close(U.clamp_probs(tl.tensor(p, dtype=dt)), TU.clamp_probs(torch.tensor(p, dtype=tdt)),
               0)
    with pytest.raises(TypeError, match="clamp_probs"):
        U.clamp_probs(tl.tensor([0, 1]))
    a = tl.tensor([[1.0], [2.0]], dtype=tl.float64)
    outs_l = U.broadcast_all(a, 3, tl.zeros(3, dtype=tl.float64))
    outs_t = TU.broadcast_all(torch.tensor([[1.0], [2.0]], dtype=torch.float64), 3,
                              torch.zeros(3, dtype=torch.float64))
    for o_l, o_t in zip(outs_l, outs_t):
        assert o_l.shape == tuple(o_t.shape) and str(o_l.dtype) == str(o_t.dtype)[6:]
        _close(o_l, o_t)
    s_l, s_t = U.broadcast_all(1, 2.5), TU.broadcast_all(1, 2.5)
    assert [str(s.dtype) for s in s_l] == [str(s.dtype)[6:] for s in s_t]
    with pytest.raises(ValueError, match="broadcast_all"):
        U.broadcast_all(a, "x")
    with pytest.raises(ValueError):
        TU.broadcast_all(torch.ones(1), "x")


# --- B21 testing.assert_allclose ------------------------------------------------------------------
def test_assert_allclose():
    for lib in (torch, tl):
        with pytest.warns(FutureWarning):
            lib.testing.assert_allclose(lib.ones(2), [1.00005, 1.0])      # float32 rtol 1e-4
        with pytest.warns(FutureWarning), pytest.raises(AssertionError):
            lib.testing.assert_allclose(lib.ones(2), [1.001, 1.0])
        with pytest.warns(FutureWarning):
            lib.testing.assert_allclose(lib.tensor([float("nan")]), [float("nan")])
        with pytest.warns(FutureWarning):       # dtypes may differ
            lib.testing.assert_allclose(lib.ones(2, dtype=lib.float64), lib.ones(2))


# --- Part C ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "int32", "int16",
                                  "int8", "uint8", "bool"])
def test_type_names_match_torch(name):
    t = torch.zeros(2, dtype=getattr(torch, name))
    x = tl.zeros(2, dtype=getattr(tl, name if name != "bool" else "bool_"))
    assert x.type() == t.type()
    assert tl.ones(2).type(t.type()).dtype == x.dtype
    assert tl.ones(2).type(getattr(tl, t.type()[6:])).dtype == x.dtype


def test_dtype_class():
    assert isinstance(tl.ones(1).dtype, tl.dtype) and isinstance(tl.int64, tl.dtype)
    assert not isinstance("float32", tl.dtype)
    assert isinstance(torch.ones(1).dtype, torch.dtype)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size,drop_last", [(2, False), (3, True), (None, False)])
def test_dataloader_default_samplers(shuffle, batch_size, drop_last):
    from tensorlib.data import BatchSampler, RandomSampler, SequentialSampler
    data = list(range(7))
    lt = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle,
                                     drop_last=drop_last)
    ll = tl.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    assert type(ll.sampler).__name__ == type(lt.sampler).__name__
    assert isinstance(ll.sampler, RandomSampler if shuffle else SequentialSampler)
    assert len(ll.sampler) == len(lt.sampler) == 7
    if batch_size is None:
        assert ll.batch_sampler is None and lt.batch_sampler is None
    else:
        assert isinstance(ll.batch_sampler, BatchSampler)
        assert len(ll.batch_sampler) == len(lt.batch_sampler) == len(ll)
        assert ll.batch_sampler.sampler is ll.sampler
        assert ll.batch_sampler.drop_last == drop_last
    if not shuffle:
        assert list(ll.sampler) == list(lt.sampler)
        if batch_size is not None:
            assert list(ll.batch_sampler) == list(lt.batch_sampler)
    with pytest.raises(ValueError, match="sampler"):
        ll.sampler = None
    with pytest.raises(ValueError, match="batch_sampler"):
        ll.batch_sampler = None


def test_dataloader_order_unchanged_by_samplers():
    data = list(range(10))
    a = tl.data.DataLoader(data, batch_size=3, shuffle=True, generator=tl.Generator(5))
    b = tl.data.DataLoader(data, batch_size=3, shuffle=True, generator=tl.Generator(5))
    _ = a.sampler, a.batch_sampler          # reading the attributes draws nothing
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    given_s = tl.data.SequentialSampler(data)
    c = tl.data.DataLoader(data, batch_size=4, sampler=given_s)
    assert c.sampler is given_s and c.batch_sampler.sampler is given_s
    assert [x.tolist() for x in c] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    bs = tl.data.BatchSampler(range(5), 2, False)
    d = tl.data.DataLoader(data, batch_sampler=bs)
    assert d.batch_sampler is bs and len(d) == 3


def test_dataloader_iterable_dataset_sampler():
    class It(tl.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))

    class TIt(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))
    ll, lt = tl.data.DataLoader(It(), batch_size=2), torch.utils.data.DataLoader(TIt(),
                                                                                batch_size=2)
    assert type(ll.sampler).__name__ == type(lt.sampler).__name__
    assert type(ll.batch_sampler).__name__ == type(lt.batch_sampler).__name__
    assert next(iter(ll.sampler)) is None
    assert [x.tolist() for x in ll] == [[0, 1], [2, 3]]


def test_module_share_memory_shares_parameters_with_a_forked_child():
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("needs fork")
    m = nn.Linear(3, 2).share_memory()
    assert all(p.is_shared() for p in m.parameters())

    def child(model):
        with tl.no_grad():
            model.weight.fill_(7.0)
    proc = mp.get_context("fork").Process(target=child, args=(m,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0 and m.weight.tolist() == [[7.0] * 3] * 2


def test_creation_accepts_the_strided_layout():
    assert tuple(tl.zeros(2, 3, layout=tl.strided).shape) == tuple(
        torch.zeros(2, 3, layout=torch.strided).shape)
    assert tl.randn(2, layout=None).shape == (2,)
    assert tl.ones(size=(2,), layout=tl.strided).shape == (2,)
    with pytest.raises(ValueError, match="layout"):
        tl.zeros(2, layout="sparse_coo")


def test_memory_format_pin_memory_and_in_order_are_accepted():
    x = tl.ones(2, 3, 4, 5)
    for f in (tl.zeros_like, tl.ones_like, tl.empty_like, tl.rand_like, tl.randn_like):
        assert f(x, memory_format=tl.channels_last).shape == x.shape
    assert tl.full_like(x, 2.0, memory_format=tl.preserve_format).shape == x.shape
    assert tl.empty(2, 3, memory_format=tl.contiguous_format, pin_memory=False).shape == (2, 3)
    with pytest.raises(TypeError, match="memory_format"):
        tl.zeros_like(x, memory_format="channels_last")
    dl = tl.data.DataLoader(list(range(10)), batch_size=4, in_order=False)
    assert [b.tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_clip_grad_norm_on_an_overflow_step_is_quiet():
    import warnings
    p = nn.Parameter(tl.ones(3))
    p.grad = tl.tensor([float("inf"), 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = tl.nn.utils.clip_grad_norm_([p], 1.0)
    pt = torch.nn.Parameter(torch.ones(3))
    pt.grad = torch.tensor([float("inf"), 1.0, 2.0])
    want = torch.nn.utils.clip_grad_norm_([pt], 1.0)
    assert float(total) == float(want)
    np.testing.assert_array_equal(p.grad.numpy(), pt.grad.numpy())
