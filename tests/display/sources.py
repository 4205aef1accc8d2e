"""A compiled display module's source, loaded beside its compiled copy."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import gateway.display


@functools.cache
def source_module(name: str) -> ModuleType:
    """gateway.display.NAME run from its ``.py``, as ``_source_NAME``; the gateway's own import
    (compiled, if built) stays as it is."""
    spec = importlib.util.spec_from_file_location(
        f"_source_{name}", Path(gateway.display.__file__).parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module
