"""The display path's C kernels (gateway/display/*.c) in tests: the one the gateway uses (or a
skip where it is not built; a failure in CI), and each compiled with AddressSanitizer and UBSan
and driven in its own interpreter (ASan's runtime must be loaded first): any out-of-bounds
access, use after free or undefined behaviour aborts the run, which the caller asserts on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

import gateway.display

KERNELS = Path(gateway.display.__file__).parent

#: Loads the kernel built at argv[1] as ``k``; the driver's code follows.
_PRELUDE = """import importlib.util, random, sys
spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1])
k = importlib.util.module_from_spec(spec)
spec.loader.exec_module(k)
"""


def in_use(kernel: ModuleType | None, what: str) -> ModuleType:
    """``kernel`` (the handle its caller keeps), or a skip (a failure in CI) when it is None."""
    if kernel is None:
        if os.environ.get("STAFFROOM_EXPECT_COMPILED"):
            pytest.fail(f"the {what} is not built, but CI expects the compiled path")
        pytest.skip(f"the {what} is not in use here (not built, stale, or pure Python)")
    return kernel


def _asan_runtime(cc: str) -> str | None:
    out = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = out.stdout.strip()
    return path if out.returncode == 0 and os.path.isabs(path) else None


def run_sanitized(name: str, driver: str, tmp_path: Path) -> str:
    """Build gateway/display/NAME.c sanitized, run ``driver`` (Python using ``k``, the kernel)
    against it; returns its stdout. Skips without gcc, ASan or Python.h, except in CI."""
    cc = shutil.which("gcc")
    include = sysconfig.get_paths()["include"]
    runtime = _asan_runtime(cc) if cc else None
    if cc is None or runtime is None or not Path(include, "Python.h").exists():
        if os.environ.get("STAFFROOM_EXPECT_COMPILED"):
            pytest.fail("gcc, its AddressSanitizer runtime and Python.h are needed here")
        pytest.skip("no gcc with AddressSanitizer, or no Python headers")
    lib = tmp_path / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                    f"-I{include}", str(KERNELS / f"{name}.c"), "-o", str(lib)], check=True)
    script = tmp_path / f"drive_{name}.py"
    script.write_text(_PRELUDE + driver)
    # PYTHONMALLOC=malloc: every Python object from malloc, where ASan sees a use after free
    # (pymalloc's arenas would hide it from ASan).
    env = {**os.environ, "LD_PRELOAD": runtime, "PYTHONMALLOC": "malloc",
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    run = subprocess.run([sys.executable, str(script), str(lib), name], env=env,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "AddressSanitizer" not in run.stderr and "runtime error" not in run.stderr
    return run.stdout
