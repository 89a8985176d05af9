"""Compile-check tensorlib's CUDA sources without a GPU (NVRTC, else nvcc).

Used by ``tests/cuda/test_cuda_kernels_compile.py`` and runnable by hand::

    python -m tensorlib.cuda.compile_check

NVRTC is found through CuPy (``cupy.cuda.nvrtc``, which works without a GPU),
else through the ``nvidia-cuda-nvrtc`` wheel or a CUDA toolkit via ctypes;
``nvcc -ptx`` is the last resort.
"""
from __future__ import annotations

import ctypes
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

from .sources import ALL, Source

DEFAULT_ARCH = "compute_75"   # the oldest architecture CUDA 13 still targets
OPTIONS = ("--std=c++17",)


class CompileError(RuntimeError):
    """A kernel source failed to compile; the message holds the compiler's log."""


def _via_cupy() -> Callable | None:
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception:
        return None

    def compile_(src: Source, arch: str) -> None:
        prog = nvrtc.createProgram(src.code, src.name + ".cu", [], [])
        try:
            for n in src.names:
                nvrtc.addNameExpression(prog, n)
            try:
                nvrtc.compileProgram(prog, [f"-arch={arch}", *OPTIONS])
            except nvrtc.NVRTCError as e:
                raise CompileError(f"{src.name}: {e}\n{nvrtc.getProgramLog(prog)}") from None
            for n in src.names:   # every instance must exist
                nvrtc.getLoweredName(prog, n)
        finally:
            nvrtc.destroyProgram(prog)
    compile_.backend = f"NVRTC {'.'.join(map(str, nvrtc.getVersion()))} (cupy)"
    return compile_


def _nvrtc_library_paths() -> list[str]:
    paths = []
    for base in sys.path:
        paths += glob.glob(os.path.join(base, "nvidia", "*", "lib", "libnvrtc.so*"))
        paths += glob.glob(os.path.join(base, "nvidia", "cu1*", "lib", "libnvrtc.so*"))
    for root in (os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""),
                 "/usr/local/cuda"):
        if root:
            paths += glob.glob(os.path.join(root, "lib64", "libnvrtc.so*"))
    # real libraries only, not the builtins helper
    return [p for p in sorted(set(paths)) if "builtins" not in os.path.basename(p)]


def _via_ctypes() -> Callable | None:
    lib = None
    for path in _nvrtc_library_paths():
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError:
            continue
    if lib is None:
        return None
    major, minor = ctypes.c_int(), ctypes.c_int()
    if lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) != 0:
        return None
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(status, what):
        if status != 0:
            raise CompileError(f"{what}: {lib.nvrtcGetErrorString(status).decode()}")

    def compile_(src: Source, arch: str) -> None:
        prog = ctypes.c_void_p()
        check(lib.nvrtcCreateProgram(ctypes.byref(prog), src.code.encode(),
                                     (src.name + ".cu").encode(), 0, None, None),
              f"{src.name}: nvrtcCreateProgram")
        try:
            for n in src.names:
                check(lib.nvrtcAddNameExpression(prog, n.encode()), f"{src.name}: {n}")
            opts = [f"-arch={arch}".encode(), *(o.encode() for o in OPTIONS)]
            arr = (ctypes.c_char_p * len(opts))(*opts)
            status = lib.nvrtcCompileProgram(prog, len(opts), arr)
            if status != 0:
                size = ctypes.c_size_t()
                lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
                buf = ctypes.create_string_buffer(size.value)
                lib.nvrtcGetProgramLog(prog, buf)
                raise CompileError(f"{src.name}: {lib.nvrtcGetErrorString(status).decode()}\n"
                                   f"{buf.value.decode(errors='replace')}")
            for n in src.names:
                out = ctypes.c_char_p()
                check(lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(out)),
                      f"{src.name}: lowered name of {n}")
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))
    compile_.backend = f"NVRTC {major.value}.{minor.value} (ctypes)"
    return compile_


def _via_nvcc() -> Callable | None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None

    def compile_(src: Source, arch: str) -> None:
        # taking each instance's address instantiates it, as NVRTC name expressions do
        inst = ", ".join(f"(const void*)&{n}" for n in src.names)
        code = src.code + f"\nconst void* const tensorlib_instances[] = {{{inst}}};\n"
        with tempfile.TemporaryDirectory() as d:
            cu = os.path.join(d, src.name + ".cu")
            with open(cu, "w") as f:
                f.write(code)
            r = subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-std=c++17", cu, "-o",
                                os.path.join(d, "out.ptx")], capture_output=True, text=True)
            if r.returncode != 0:
                raise CompileError(f"{src.name}: nvcc failed\n{r.stderr}")
    compile_.backend = f"nvcc ({nvcc})"
    return compile_


def compiler() -> Callable | None:
    """A function ``compile(source, arch)`` from the first tool found, or None."""
    for find in (_via_cupy, _via_ctypes, _via_nvcc):
        c = find()
        if c is not None:
            return c
    return None


def check_all(arch: str = DEFAULT_ARCH) -> str:
    """Compile every source; raise CompileError on the first failure. Returns the tool used."""
    c = compiler()
    if c is None:
        raise RuntimeError("no CUDA compiler found: install the nvidia-cuda-nvrtc wheel "
                           "(pip install 'tensorlib[test]') or a CUDA toolkit with nvcc")
    for src in ALL:
        c(src, arch)
    return c.backend


if __name__ == "__main__":  # pragma: no cover
    print(f"{len(ALL)} sources compiled with {check_all()}")
