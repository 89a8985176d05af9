"""tensorlib._malloc: glibc heap settings applied at import, and the ways to opt out."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

_PROBE = "import tensorlib, tensorlib._malloc as m; print(m.applied)"
glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _applied(**env) -> bool:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TENSORLIB_MALLOPT", "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_",
                          "MALLOC_MMAP_THRESHOLD_")}
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


@pytest.mark.skipif(not glibc, reason="mallopt settings apply to glibc only")
def test_applied_by_default_on_glibc():
    assert _applied()


def test_opt_out_and_user_settings_win():
    assert not _applied(TENSORLIB_MALLOPT="0")
    assert not _applied(MALLOC_TRIM_THRESHOLD_="1000000")


@pytest.mark.skipif(not glibc, reason="mallopt settings apply to glibc only")
def test_freed_step_arrays_are_not_faulted_in_again():
    # the mechanism behind the setting: a step that allocates and frees 128 KiB arrays
    # (W4's gate size) faults no new pages once warm; glibc's defaults fault every step
    code = """
import resource, numpy as np, tensorlib
def step():
    keep = [np.ones((32, 1024), np.float32) for _ in range(200)]
    return sum(float(a[0, 0]) for a in keep)
for _ in range(3):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != "TENSORLIB_MALLOPT"})
    assert int(out.stdout.strip()) < 50
