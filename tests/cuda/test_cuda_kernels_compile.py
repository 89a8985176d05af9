"""Every CUDA kernel source compiles (NVRTC or nvcc), with or without a GPU."""
from __future__ import annotations

import re

import pytest

from tensorlib.cuda import compile_check as cc
from tensorlib.cuda import sources as S

COMPILER = cc.compiler()
needs_compiler = pytest.mark.skipif(
    COMPILER is None, reason="no CUDA compiler: install the nvidia-cuda-nvrtc wheel "
                             "(pip install 'tensorlib[test]') or a CUDA toolkit with nvcc")


@needs_compiler
@pytest.mark.parametrize("arch", ["compute_75", "compute_90"])
@pytest.mark.parametrize("name", sorted(S.BY_NAME))
def test_source_compiles(name, arch):
    COMPILER(S.BY_NAME[name], arch)


@needs_compiler
def test_a_broken_kernel_fails_to_compile():
    bad = S.Source("bad", "template <typename T> __global__ void k(T* x) { x[0] = undefined; }",
                   ("k<float>",))
    with pytest.raises(cc.CompileError, match="undefined"):
        COMPILER(bad, cc.DEFAULT_ARCH)


@needs_compiler
def test_a_missing_instance_fails():
    src = S.Source("inst", "template <typename T> __global__ void k(T* x) { x[0] = T(1); }",
                   ("k<float>", "nope<float>"))
    with pytest.raises(cc.CompileError):
        COMPILER(src, cc.DEFAULT_ARCH)


def test_every_kernel_has_instances_for_every_float_type():
    for src in S.ALL:
        kernels = set(re.findall(r"__global__\s+void\s+(\w+)\s*\(", src.code))
        assert kernels, src.name
        for k in kernels:
            for t in S.FLOAT_TYPES:
                assert any(n.startswith(f"{k}<{t}") for n in src.names), (src.name, k, t)


def test_every_instance_the_wrappers_launch_is_declared():
    import inspect

    from tensorlib.cuda import kernels
    text = inspect.getsource(kernels)
    used = re.findall(r'function\(S\.(\w+), f"(\w+)<', text)
    assert used
    for src_attr, kernel in used:
        src = getattr(S, src_attr)
        assert any(n.startswith(kernel + "<") for n in src.names), (src_attr, kernel)


def test_check_all_reports_the_tool():
    if COMPILER is None:
        with pytest.raises(RuntimeError, match="no CUDA compiler"):
            cc.check_all()
    else:
        assert "NVRTC" in cc.check_all() or "nvcc" in cc.check_all()
