"""Which display modules run compiled, and the source whenever a compiled copy may be stale.

``setup.py`` compiles COMPILED with mypyc (plain typed Python turned into C extensions) when the
gateway is installed on Linux with a C compiler; Python then imports the extension in place of
the ``.py`` beside it. The source stays the reference: the tests compare both on random input
(tests/display/test_compiled.py). An extension not compiled from its source as it is now (the
source was edited or checked out after the last install: setup.py records each source's SHA-256)
or ``STAFFROOM_PURE_PYTHON`` set makes all of them load from source, so a gateway runs either the
compiled path or the source, as its log says.

NATIVE are kernels written in C (``NAME.c``): no ``.py`` stands beside them; the module that calls
one keeps a numpy path that gives the same bytes (the reference the tests compare it with), and
uses it whenever the kernel is not importable. A stale kernel or ``STAFFROOM_PURE_PYTHON`` makes
its import fail, so the pure path is then all Python, as before.

Measured (docs/PERFORMANCE.md, issue 11 parts AD, AG, AH and AI): the tile bookkeeping of the
watermark's stamps and the framebuffer's damage are Python loops over tiles and rectangles, 20-30 %
of a scroll or a drag; compiled, they take a quarter to a half of that. Part AG's two C kernels
take about another tenth off a scroll or a drag, part AH's four (the drift map's copies, the
row hashes and the vote of scroll detection, the column kinds) a further fifth to a third, and
part AI's stamp blend (with the encoder carrying bytes in place of Pillow images) about a tenth.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "gateway.display"
#: In import order (stamp_drift imports framebuffer).
COMPILED = ("framebuffer", "stamp_drift")
#: C kernels (gateway/display/NAME.c), each optional for the module that calls it.
NATIVE = ("palette_index", "row_copy", "drift_copy", "row_hash", "column_kinds",
          "scroll_vote", "stamp_blend")
PURE_ENV = "STAFFROOM_PURE_PYTHON"
RECORD = "compiled_sources.json"  # written by setup.py beside the extensions


def _extension(folder: Path, name: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def source(folder: Path, name: str) -> Path:
    """What ``name``'s extension is built from: its ``.py`` (mypyc), else its ``.c``."""
    py = folder / f"{name}.py"
    return py if py.exists() else folder / f"{name}.c"


def stale(folder: Path, names: tuple[str, ...] = COMPILED + NATIVE) -> list[str]:
    """The modules in ``folder`` whose extension was not compiled from their source as it is
    now (setup.py records each source's SHA-256 in RECORD when it builds)."""
    try:
        built = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        built = {}
    # A wheel installs a C kernel without its .c: nothing there can have changed since the build.
    return [name for name in names if _extension(folder, name) is not None
            and source(folder, name).exists()
            and built.get(name) != hashlib.sha256(source(folder, name).read_bytes()).hexdigest()]


def use_sources(folder: Path, package: str,
                names: tuple[str, ...] = COMPILED + NATIVE) -> str | None:
    """Load ``names`` from their ``.py`` files (and make C kernels, which have none, fail to
    import) when an extension would be wrong to use; returns why (for the log), or None when the
    extensions (if any) are used. Call before anything imports them."""
    if os.environ.get(PURE_ENV):
        why = f"{PURE_ENV} is set"
    else:
        old = stale(folder, names)
        if not old:
            return None
        why = (f"{', '.join(source(folder, n).name for n in old)} changed since the last build "
               "(pip install -e . compiles it again)")
    # The kernels first: a module loaded from source below may import one.
    for name in sorted(names, key=lambda n: (folder / f"{n}.py").exists()):
        if f"{package}.{name}" in sys.modules:
            continue
        if (folder / f"{name}.py").exists():
            load_source(folder / f"{name}.py", f"{package}.{name}")
        else:
            sys.modules[f"{package}.{name}"] = None  # type: ignore[assignment]  # ImportError
    return why


def load_source(path: Path, name: str) -> ModuleType:
    """Run ``path`` as module ``name`` (registered in sys.modules, as dataclasses need),
    whatever extension lies beside it."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def kernel(name: str) -> Any:
    """The C kernel ``name`` (gateway/display/NAME.c) for the module that calls it, or None where
    it cannot be imported (not built, stale, or pure Python asked: use_sources blocks it); the
    caller then takes its own Python or numpy path, the kernel's reference."""
    try:
        return importlib.import_module(f"{PACKAGE}.{name}")
    except ImportError:
        return None


def status() -> dict[str, bool]:
    """Per module in COMPILED and NATIVE, whether the running gateway uses its compiled copy."""
    out = {}
    for name in COMPILED:
        module = importlib.import_module(f"{PACKAGE}.{name}")
        out[name] = not (module.__file__ or "").endswith(".py")
    for name in NATIVE:
        try:
            importlib.import_module(f"{PACKAGE}.{name}")
        except ImportError:
            out[name] = False
        else:
            out[name] = True
    return out


def describe(because: str | None) -> tuple[bool, str]:
    """(compiled?, a sentence for the gateway's log and the benchmarks' results); ``because`` is
    what use_sources returned."""
    used = status()
    if all(used.values()):
        return True, f"display path: compiled ({', '.join(used)})"
    if because is not None:
        return False, f"display path: pure Python, because {because}"
    return False, ("display path: pure Python (not compiled at install: that needs Linux, a C "
                   "compiler and the Python headers, and the install's output says what failed; "
                   "see docs/ADMINS.md)")
