"""Who else sees a session's frames: its recording, officers watching it live and a helpdesk
operator the teacher asked for help (gateway/live/help.py decides what that operator may do).

Each observer gets the frames exactly as sent to the teacher, after a whole frame (key frame) of
the same instant to start from. Attacker-controlled here: nothing new — a watcher only receives;
its WebSocket is read only to notice that it closed. Limits: a watcher that falls behind by more
than WATCH_QUEUE frames is resynchronised with a fresh key frame instead of queuing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiohttp import web

from gateway.recording.writer import AsyncRecordingWriter

log = logging.getLogger(__name__)

WATCH_QUEUE = 8


class FrameSink(Protocol):
    def wants_key_frame(self, now: float) -> bool: ...
    async def frame(self, data: bytes, key_frame: bytes | None, now: float) -> None: ...
    async def close(self, end: bytes | None, now: float) -> None: ...


class RecorderSink:
    """The session's recording; RecordingFailed propagates so the session can end."""

    def __init__(self, writer: AsyncRecordingWriter) -> None:
        self.writer = writer

    def wants_key_frame(self, now: float) -> bool:
        return self.writer.needs_key_frame(now)

    async def frame(self, data: bytes, key_frame: bytes | None, now: float) -> None:
        await self.writer.write_frame(data, now, key_frame=key_frame)

    async def mark(self, kind: str, text: str, now: float) -> None:
        await self.writer.mark(kind, text, now)

    async def tick(self, now: float) -> None:
        """Once a second: checkpoint what a quiet screen left buffered (the writer's timer)."""
        due = self.writer.next_timer()
        if due is not None and now >= due:
            await self.writer.handle_timer(now)

    async def close(self, end: bytes | None, now: float) -> None:
        if end is not None:
            await self.writer.write_frame(end, now)
        await self.writer.close(now)


class WatcherSink:
    """An officer's read-only live view: a bounded queue drained into its WebSocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=WATCH_QUEUE)
        self._synced = False
        self._task = asyncio.create_task(self._drain())

    def wants_key_frame(self, now: float) -> bool:
        return not self._synced

    async def frame(self, data: bytes, key_frame: bytes | None, now: float) -> None:
        if not self._synced:
            if key_frame is None:
                return
            self._synced, data = True, key_frame  # start from the whole picture of this instant
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            # Too slow to follow: drop what is queued and start again from a key frame.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._synced = False

    def post(self, data: bytes) -> None:
        """A message that must arrive (the help state): queued even when frames are dropped."""
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._synced = False  # the frames dropped for it are made up by a key frame
            self._queue.put_nowait(data)

    async def _drain(self) -> None:
        while (data := await self._queue.get()) is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(data)

    async def close(self, end: bytes | None, now: float) -> None:
        if end is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(end)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)
        await self.ws.close()

    async def wait_closed(self) -> None:
        """Returns when the watcher goes away (its socket closes)."""
        async for _ in self.ws:
            pass  # a watcher sends nothing we act on
