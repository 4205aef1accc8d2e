"""The display protocol between the gateway and the viewer page (relayed unchanged by the agent).

``messages`` holds the dataclasses, wire codes and limits; ``codec`` encodes and decodes them
(the attacker-controlled side: see its header). Everything is re-exported here, so callers keep
writing ``from gateway.wire import display as wire`` and ``wire.encode(wire.Tile(...))``.
"""

from __future__ import annotations

from gateway.wire.display.codec import *  # noqa: F403
from gateway.wire.display.codec import __all__ as _codec_all
from gateway.wire.display.messages import *  # noqa: F403
from gateway.wire.display.messages import __all__ as _messages_all

__all__ = [*_messages_all, *_codec_all]
