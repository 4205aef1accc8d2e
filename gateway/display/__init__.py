"""The display path: the gateway's copy of the desktop, the watermark, damage and encoding."""

from __future__ import annotations

from pathlib import Path

from gateway.display import compiled

#: Why the compiled modules are not used (None: they are, or none were built); logged at start.
SOURCES_BECAUSE = compiled.use_sources(Path(__file__).parent, __name__)
