"""The gateway's event loop: uvloop where it is installed, else asyncio's own.

Why: a live gateway spends about a third of its CPU outside the display path, in the event
loop itself: socket reads and writes, TLS, callbacks and wake-ups, once per RFB read and per
frame (docs/PERFORMANCE.md, issue 11 part AJ: py-spy on a live gateway). uvloop (libuv, the
loop Node.js runs on) does that work in C. Measured on the office mix, alternating with
asyncio's loop: about 6 % less gateway CPU per GTK scroll frame, 8 % per typed glyph.

``STAFFROOM_EVENT_LOOP=asyncio`` keeps asyncio's loop (to rule the loop out of a fault, or where
uvloop is not installed); ``uvloop`` makes its absence an error; unset, uvloop when it imports.
The gateway logs which one it runs at start.

What the gateway asks of its loop stays within what both provide: transports are checked for
the methods used, not for asyncio's classes (uvloop's are not subclasses), and no subprocess
keyword outside uvloop's (``umask`` is set by the command itself, see workspace.sandbox).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "STAFFROOM_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


class EventLoopUnavailable(RuntimeError):
    """STAFFROOM_EVENT_LOOP names a loop this installation does not have (one sentence)."""


@dataclass(frozen=True)
class LoopChoice:
    name: str  # for the log: "uvloop 0.23.0" or "asyncio"
    factory: Callable[[], asyncio.AbstractEventLoop] | None  # None: asyncio's own

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on this loop, as asyncio.run does."""
        with asyncio.Runner(loop_factory=self.factory) as runner:
            return runner.run(main)


def choose(setting: str | None = None) -> LoopChoice:
    """The loop ``setting`` (default: $STAFFROOM_EVENT_LOOP) asks for."""
    wanted = (os.environ.get(ENV, "") if setting is None else setting).strip().lower()
    if wanted not in ("", *CHOICES):
        raise EventLoopUnavailable(
            f"{ENV} must be uvloop or asyncio, not {wanted!r}: unset it to let the gateway "
            "choose.")
    if wanted == "asyncio":
        return LoopChoice("asyncio", None)
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise EventLoopUnavailable(
                f"{ENV}=uvloop, but uvloop is not installed: install it (pip install uvloop) "
                "or unset the variable.") from None
        return LoopChoice("asyncio", None)
    return LoopChoice(f"uvloop {uvloop.__version__}", uvloop.new_event_loop)
