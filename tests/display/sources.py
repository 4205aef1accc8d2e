"""A compiled display module's source, loaded beside its compiled copy."""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import gateway.display
from gateway.display import compiled


@functools.cache
def source_module(name: str) -> ModuleType:
    """gateway.display.NAME run from its ``.py``, as ``_source_NAME``; the gateway's own import
    (compiled, if built) stays as it is."""
    return compiled.load_source(Path(gateway.display.__file__).parent / f"{name}.py",
                                f"_source_{name}")
