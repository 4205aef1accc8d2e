"""Build step beside pyproject.toml: the display path's hot modules compiled with mypyc, and its
C kernels.

Only on Linux (the gateway's platform; the teachers' agent never imports them) and only where a C
compiler and the Python headers are at hand: each extension is optional (a type error mypyc
reports skips the mypyc modules), so an install without them still works, on the pure-Python
modules, and the gateway says so in its log at start (gateway.display.compiled; CI fails on it:
tests/display/test_compiled.py). STAFFROOM_PURE_PYTHON=1 skips the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The same modules and record file as gateway.display.compiled's COMPILED and RECORD (a test
#: checks; setup.py cannot import the package it builds).
COMPILED = ["gateway/display/framebuffer.py", "gateway/display/stamp_drift.py"]
#: C kernels (gateway.display.compiled's NATIVE): plain CPython extensions, no build dependency.
NATIVE = ["gateway/display/palette_index.c", "gateway/display/row_copy.c",
          "gateway/display/drift_copy.c", "gateway/display/row_hash.c",
          "gateway/display/column_kinds.c", "gateway/display/scroll_vote.c",
          "gateway/display/stamp_blend.c"]
#: row_hash's loop is vectorised from -O3 on (it is 2-3 times as fast as with -O2).
VECTORISED = {"gateway/display/row_hash.c"}
RECORD = "compiled_sources.json"

#: The setup commands that build extensions (pip runs setup.py for metadata too).
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}


def compiled_modules() -> list[Extension]:
    if not sys.platform.startswith("linux") or os.environ.get("STAFFROOM_PURE_PYTHON"):
        return []
    if not BUILDS & set(sys.argv[1:]):
        return []  # metadata only (pip asks for it first): no need to run mypyc for that
    exts = [*_mypyc_modules(),
            *(Extension(path.removesuffix(".c").replace("/", "."), [path],
                        extra_compile_args=["-O3" if path in VECTORISED else "-O2", "-Wall",
                                            "-Wextra", "-Werror=vla"])
              for path in NATIVE)]
    for ext in exts:
        ext.optional = True  # no compiler: a warning, and the pure-Python modules
    return exts


def _mypyc_modules() -> list[Extension]:
    try:
        from mypyc.build import mypycify
    except ImportError:  # a build without the build-system requirements (pip --no-build-isolation)
        return []
    # numpy and Pillow are not in the build environment: their types are Any, which mypyc
    # leaves unchecked; the modules imported but not compiled are type-checked silently.
    # One module per build: each extension then carries its own runtime next to it (mypyc's
    # shared "group" library would otherwise be a top-level module outside the package).
    try:
        return [ext for path in COMPILED
                for ext in mypycify(["--ignore-missing-imports", "--follow-imports=silent", path],
                                    opt_level="3")]
    except SystemExit:  # mypyc type-checks first and exits on an error it printed above
        print("warning: the display path could not be compiled (mypyc's errors above); "
              "installing it as plain Python", file=sys.stderr)
        return []


class BuildExt(build_ext):
    """build_ext that also writes, beside the extensions, the SHA-256 of each source they were
    compiled from (gateway.display.compiled uses an extension only while its source matches:
    file times cannot tell, an installer writes both files in the same instant)."""

    def run(self) -> None:
        super().run()
        record = self._record()
        if record is not None:
            sums = {Path(p).stem: hashlib.sha256(Path(p).read_bytes()).hexdigest()
                    for p in COMPILED + NATIVE}
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(sums, indent=1) + "\n")

    def get_outputs(self) -> list[str]:
        record = self._record()
        return [*super().get_outputs(), *([str(record)] if record is not None else [])]

    def _record(self) -> Path | None:
        if not self.extensions:
            return None
        return Path(self.get_ext_fullpath("gateway.display.framebuffer")).with_name(RECORD)


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": BuildExt})
