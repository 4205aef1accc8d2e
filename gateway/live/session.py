"""One live teacher session: the RFB desktop, the frame pipeline and the (re)attached tunnel.

Attacker-controlled here: frames from the viewer (through the pipeline's codec: bounded,
protocol errors close the tunnel and are audited), the agent's posture re-checks (text frames,
through gateway.wire.recheck: ≤ 32 KiB, signature and sequence checked, decided by
gateway.live.posture_watch) and bytes from the desktop (through the RFB client's limits). The
shell makes no decisions: limits come from policy, frames from the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from gateway.audit.kinds import (
    ClipboardCopied,
    PostureChecked,
    RecordingStopped,
    RedirectionBlocked,
    SessionActivity,
    SessionEnded,
    TunnelProtocolError,
    TypedEvent,
)
from gateway.display.pipeline import (
    BlockedAttempt,
    ClipboardInput,
    ClipboardRefused,
    DisplayPipeline,
    HelpRequest,
    KeyInput,
    PointerInput,
    Reply,
    encode_frame,
)
from gateway.live import helpdesk
from gateway.live.help import HelpCase
from gateway.live.observers import FrameSink, RecorderSink, WatcherSink
from gateway.live.posture_watch import Action as PostureAction
from gateway.live.posture_watch import Audit as PostureAudit
from gateway.live.posture_watch import Clear as PostureClear
from gateway.live.posture_watch import End as PostureEnd
from gateway.live.posture_watch import PostureWatch
from gateway.live.posture_watch import Warn as PostureWarn
from gateway.recording.writer import RecordingFailed
from gateway.rfb.connection import RfbConnection
from gateway.rfb.errors import RfbError
from gateway.rfb.events import Closed, Resized, ServerCutText, UpdateDone
from gateway.wire import display as wire
from gateway.wire import receipt, recheck

log = logging.getLogger(__name__)

END_CLOSE_BASE = 4000  # the tunnel closes with 4000 + EndCode so the agent can tell the teacher
IDLE_WARNING = 60.0  # seconds before an idle end when the viewer is warned
ACTIVITY_EVERY = 15 * 60.0  # seconds between work-hours checkpoints (session.activity)
# Frames with at most this many damaged pixels are encoded on the event loop (~1 ms of WebP):
# typing is one glyph per frame, and handing it to a thread adds latency and CPU.
INLINE_ENCODE_PIXELS = 64 * 64
# One encoder thread per core for all sessions (Pillow releases the GIL while encoding): more
# threads only add contention and a glibc malloc arena each, which showed as resident memory.
ENCODER = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="frame-encode")


@dataclass(frozen=True, slots=True)
class Limits:
    idle_timeout: float  # seconds without input
    max_duration: float
    reconnect_grace: float


AuditHook = Callable[[TypedEvent], Awaitable[None]]  # the broker's: durable before it returns


def spoken(seconds: float) -> str:
    """A duration as a teacher would say it: "45 seconds", "15 minutes", "8 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


def close_reason(text: str) -> str:
    """A WebSocket close reason is at most 123 bytes of UTF-8: cut on a character boundary."""
    data = text.encode()[:120]
    return data.decode("utf-8", errors="ignore")


@dataclass(eq=False)
class LiveSession:
    id: str
    user_id: str
    name: str
    school: str | None
    cert_serial: str | None
    remote: str | None
    posture: str
    started_at: datetime
    rfb: RfbConnection
    pipeline: DisplayPipeline
    limits: Limits
    audit: AuditHook
    on_end: Callable[[LiveSession], None]
    recorder: RecorderSink | None = None
    clipboard: str = "off"  # policy [redirection] clipboard
    clipboard_max_bytes: int = 4096
    encode: Callable[[Any], bytes] = encode_frame  # the frame encoder (the broker times it)
    # In-session posture re-checks (gateway.live.posture_watch) and the token-signature check
    # of one: verify(seq, posture, signature) -> bool. None: text frames are protocol errors.
    posture_watch: PostureWatch | None = None
    verify_posture: Callable[[int, dict[str, Any], bytes], bool] | None = None
    on_recheck: Callable[[str], None] = lambda outcome: None  # metrics
    # Signs the work receipt sent to the agent at the end: make_receipt(work) -> file bytes.
    make_receipt: Callable[[dict[str, Any]], bytes] | None = None
    # At the end of the grace: the node the session moved to (another node resumed it while
    # this one still held it detached), or None. The broker reads the live-sessions registry.
    moved_to: Callable[[], str | None] | None = None
    ws: web.WebSocketResponse | None = None
    watchers: list[WatcherSink] = field(default_factory=list)
    help: HelpCase = field(default_factory=HelpCase)  # call-centre help (gateway/live/help.py)
    helper_sink: WatcherSink | None = None  # the helpdesk operator's view, while joined
    help_asks: int = 0
    detached_at: float | None = None
    ended: bool = False
    handed_over: bool = False  # ended here because another node carries it on (let_go)
    bytes_sent: int = 0
    frames_sent: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _outstanding: bool = False
    _desktop_task: asyncio.Task[None] | None = None
    _grace_task: asyncio.Task[None] | None = None
    _started_mono: float = field(default_factory=time.monotonic)
    _last_input_mono: float = field(default_factory=time.monotonic)
    _warned_idle: bool = False
    _blocked_counts: dict[str, int] = field(default_factory=dict)
    _clock_task: asyncio.Task[None] | None = None
    _active_minutes: set[int] = field(default_factory=set)  # minutes since start with input
    _activity_logged: int = 0  # ACTIVITY_EVERY periods already audited

    def start(self) -> None:
        self._desktop_task = asyncio.create_task(self._desktop_loop(), name=f"rfb-{self.id}")
        self._clock_task = asyncio.create_task(self._session_clock(), name=f"clock-{self.id}")

    # --- the tunnel side ---------------------------------------------------------------------

    async def attach(self, ws: web.WebSocketResponse) -> None:
        """Serve this tunnel until it closes or the session ends."""
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None
        self.ws, self.detached_at = ws, None
        self.pipeline.attached = False  # until the viewer's Resume
        if self.help != HelpCase():  # a reloaded page shows the help as it stands
            await self.notify(helpdesk.state_message(self.help))
        sender = asyncio.create_task(self._send_loop(ws), name=f"send-{self.id}")
        try:
            await self._receive_loop(ws)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            if self.ws is ws:
                self.ws = None
                self.pipeline.attached = False
                if not self.ended:
                    self.detached_at = time.monotonic()
                    self._grace_task = asyncio.create_task(self._grace())

    async def _receive_loop(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and self.posture_watch is not None:
                if not await self._posture_text(ws, msg.data):
                    break
                continue
            if msg.type != WSMsgType.BINARY:
                if msg.type == WSMsgType.TEXT:
                    await self._protocol_error(ws, "text frame after login")
                break
            try:
                actions = self.pipeline.receive_data(msg.data, time.time())
            except wire.ProtocolError as e:
                await self._protocol_error(ws, str(e))
                break
            for action in actions:
                await self._apply(ws, action)
            self._wake.set()

    async def _apply(self, ws: web.WebSocketResponse, action: object) -> None:
        if isinstance(action, KeyInput):
            self._input()
            await self.rfb.key(action.keysym, action.down)
        elif isinstance(action, PointerInput):
            self._input()
            await self.rfb.pointer(action.x, action.y, action.buttons)
        elif isinstance(action, Reply):
            await ws.send_bytes(action.data)
        elif isinstance(action, ClipboardInput):
            await self._clipboard_in(action.text)
        elif isinstance(action, ClipboardRefused):
            await self._blocked("clipboard", direction="to-remote", nbytes=action.nbytes,
                                repeats=action.repeats)
        elif isinstance(action, BlockedAttempt):
            try:
                kind = wire.BlockedKind(action.kind).name.lower()
            except ValueError:
                kind = f"kind{action.kind}"
            await self._blocked(f"viewer_{kind}", repeats=action.repeats)
        elif isinstance(action, HelpRequest):
            await helpdesk.teacher_action(self, action.action)

    def _input(self) -> None:
        now = time.monotonic()
        self._last_input_mono, self._warned_idle = now, False
        self._active_minutes.add(int((now - self._started_mono) // 60))

    def work(self, ended_at: datetime) -> dict[str, Any]:
        """Work-hours figures: start, end, minutes with input (active) and without (idle)."""
        seconds = max(0.0, (ended_at - self.started_at).total_seconds())
        minutes = max(1, math.ceil(seconds / 60))
        active = min(len(self._active_minutes), minutes)
        return {"started_at": self.started_at.astimezone(UTC).isoformat(timespec="seconds"),
                "ended_at": ended_at.astimezone(UTC).isoformat(timespec="seconds"),
                "duration_seconds": round(seconds), "active_minutes": active,
                "idle_minutes": minutes - active}

    async def _clipboard_in(self, text: str) -> None:
        """Browser clipboard to the desktop: only when policy allows to-remote, within size."""
        size = len(text.encode())
        if self.clipboard not in ("to-remote", "both") or size > self.clipboard_max_bytes:
            await self._blocked("clipboard", direction="to-remote", nbytes=size)
            return
        await self.audit(ClipboardCopied(direction="to-remote", bytes=size))
        await self.rfb.cut_text(text)

    async def _clipboard_out(self, text: str, length: int) -> None:
        """Desktop clipboard to the browser: only when policy allows to-local, within size."""
        size = len(text.encode())
        data = None
        if self.clipboard in ("to-local", "both") and 0 < size <= self.clipboard_max_bytes:
            data = self.pipeline.clipboard_out(text)
        if data is None:
            await self._blocked("clipboard", direction="to-local", nbytes=size or length)
            return
        await self.audit(ClipboardCopied(direction="to-local", bytes=size))
        await self._send(data)

    async def _send_loop(self, ws: web.WebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        while not ws.closed:
            timer = self.pipeline.next_timer(time.time())
            timeout = None if timer is None else max(0.0, timer - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = time.time()
            if any(sink.wants_key_frame(now) for sink in self._sinks()):
                self.pipeline.request_observer_key_frame()
            job = self.pipeline.take_frame(now)
            if job is not None:
                # The frame's pixels are copied out: let the desktop render the next update
                # while this one is encoded.
                await self._request_update()
                if job.pixels <= INLINE_ENCODE_PIXELS:
                    data = self.encode(job)  # a thread hop costs more than a glyph's encode
                else:
                    data = await loop.run_in_executor(ENCODER, self.encode, job)
                self.pipeline.frame_sent(job, len(data), time.time())
                await ws.send_bytes(data)
                self.bytes_sent += len(data)
                self.frames_sent += 1
                await self._observe(data, job)
            await self._request_update()

    def _sinks(self) -> list[FrameSink]:
        return ([self.recorder] if self.recorder else []) + list(self.watchers)

    async def _observe(self, data: bytes, job: object) -> None:
        """The recording and watchers get the frame as sent (and a key frame when they asked)."""
        sinks = self._sinks()
        if not sinks:
            return
        key_job = getattr(job, "observer_key", None)
        key = None
        if key_job is not None:
            key = await asyncio.get_running_loop().run_in_executor(None, encode_frame, key_job)
        now = time.time()
        for sink in sinks:
            try:
                await sink.frame(data, key, now)
            except RecordingFailed as e:
                self.recorder = None
                await self.audit(RecordingStopped(error=str(e)))
                await self.end(wire.EndCode.SERVER_SHUTDOWN, f"{e} The session ended because "
                               "policy requires it to be recorded; tell your school's IT lead.")
                return

    async def _tick_recorder(self) -> None:
        """A quiet screen still gets its checkpoint (signed, fsynced) within checkpoint_seconds,
        so a crash loses at most that much of the recording."""
        if self.recorder is None:
            return
        try:
            await self.recorder.tick(time.time())
        except RecordingFailed as e:
            self.recorder = None
            await self.audit(RecordingStopped(error=str(e)))
            await self.end(wire.EndCode.SERVER_SHUTDOWN, f"{e} The session ended because "
                           "policy requires it to be recorded; tell your school's IT lead.")

    async def _request_update(self) -> None:
        """At most one FramebufferUpdateRequest outstanding, and only while frames may go out."""
        if not self._outstanding and self.pipeline.can_send():
            self._outstanding = True
            await self.rfb.request_update(incremental=True)

    async def _protocol_error(self, ws: web.WebSocketResponse, error: str) -> None:
        await self.audit(TunnelProtocolError(error=error[:200]))
        await self.end(wire.EndCode.PROTOCOL_ERROR, "The connection sent something invalid "
                       "and was closed: reconnect with `staffroom agent connect`.")

    # --- the desktop side --------------------------------------------------------------------

    async def _desktop_loop(self) -> None:
        try:
            await self.rfb.request_update(incremental=False)
            self._outstanding = True
            async for event in self._events_with_ticks():
                if event is None:
                    await self._check_limits()
                    await self._tick_recorder()
                elif isinstance(event, UpdateDone | Resized):
                    if isinstance(event, UpdateDone):
                        self._outstanding = False
                    self._wake.set()
                elif isinstance(event, ServerCutText):
                    await self._clipboard_out(event.text, event.length)
                elif isinstance(event, Closed):
                    break
        except (RfbError, OSError) as e:
            log.warning("session %s: desktop connection failed: %s", self.id, e)
        except asyncio.CancelledError:
            return
        except Exception:
            # Never leave a session running without its desktop loop: end it, visibly.
            log.exception("session %s: desktop loop failed", self.id)
        if not self.ended:
            await self.end(wire.EndCode.DESKTOP_LOST, "The school desktop stopped answering: "
                           "reconnect in a minute, or tell your school's IT lead.")

    async def _events_with_ticks(self):  # type: ignore[no-untyped-def]
        """RFB events, interleaved with a None every second for the limit checks."""
        events = self.rfb.events().__aiter__()
        pending: asyncio.Task[object] | None = None
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=1.0)
            if not done:
                yield None
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield event

    async def _blocked(self, kind: str, *, direction: str | None = None,
                       nbytes: int | None = None, repeats: int | None = None) -> None:
        """A blocked redirection attempt: audited, at most 20 records per session per kind (the
        20th says further attempts are not recorded) so a loop cannot flood the log."""
        count = self._blocked_counts[kind] = self._blocked_counts.get(kind, 0) + 1
        if count <= 20:
            await self.audit(RedirectionBlocked(kind, direction=direction, bytes=nbytes,
                                                repeats=repeats, attempt=count,
                                                last_recorded=count == 20))

    # --- call-centre help (gateway/live/helpdesk.py) ------------------------------------------

    async def help_join(self, ws: web.WebSocketResponse, helper: str, name: str) -> None:
        await helpdesk.serve_helper(self, ws, helper, name)

    async def helper_input(self, event: wire.Key | wire.Pointer) -> None:
        """Keyboard or pointer from the helpdesk operator the teacher gave control to."""
        self._last_input_mono, self._warned_idle = time.monotonic(), False
        if isinstance(event, wire.Key):
            await self.rfb.key(event.keysym, event.down)
        else:
            fb = self.pipeline.fb
            await self.rfb.pointer(min(event.x, max(0, fb.width - 1)),
                                   min(event.y, max(0, fb.height - 1)), event.buttons & 0xFF)

    async def notify(self, data: bytes) -> None:
        """Send a message to the teacher's viewer, if one is attached."""
        await self._send(data)

    def wake(self) -> None:
        self._wake.set()
    # --- posture during the session ----------------------------------------------------------

    async def _posture_text(self, ws: web.WebSocketResponse, text: str) -> bool:
        """A signed posture re-check from the agent; False when it broke the protocol."""
        assert self.posture_watch is not None and self.verify_posture is not None
        try:
            update = recheck.decode(text)
        except recheck.RecheckProtocolError as e:
            await self._protocol_error(ws, f"posture report: {e}")
            return False
        verified = self.verify_posture(update.seq, update.posture, update.signature)
        await self._posture_actions(self.posture_watch.report(
            seq=update.seq, verified=verified, posture=update.posture, reason=update.reason,
            now=time.monotonic(), wall=datetime.now(UTC)))
        return True

    async def _session_clock(self) -> None:
        """Once a second, from this session's own start (so sessions do not tick together):
        the posture clock, and every ACTIVITY_EVERY a work-hours checkpoint in the audit log
        (so a gateway that stops without ending the session loses at most that much)."""
        while not self.ended:
            await asyncio.sleep(1.0)
            if self.posture_watch is not None and self.ws is not None:
                await self._posture_actions(self.posture_watch.tick(time.monotonic()))
            periods = int((time.monotonic() - self._started_mono) // ACTIVITY_EVERY)
            if periods > self._activity_logged and not self.ended:
                self._activity_logged = periods
                await self.audit(SessionActivity(**self.work(datetime.now(UTC))))

    async def _posture_actions(self, actions: list[PostureAction]) -> None:
        for action in actions:
            if isinstance(action, PostureAudit):
                self.on_recheck(action.outcome)
                await self.audit(PostureChecked(action.outcome, **action.details))
            elif isinstance(action, PostureWarn):
                await self._send(DisplayPipeline.notice(
                    wire.NoticeLevel.WARNING, wire.NoticeCode.POSTURE, action.text))
            elif isinstance(action, PostureClear):
                await self._send(DisplayPipeline.notice(
                    wire.NoticeLevel.INFO, wire.NoticeCode.POSTURE, action.text))
            elif isinstance(action, PostureEnd):
                await self.end(wire.EndCode.POSTURE, action.text)
                return

    async def _send_receipt(self, work: dict[str, Any]) -> None:
        """The signed work receipt goes to the agent (a text frame) just before End."""
        ws = self.ws
        if self.make_receipt is None or ws is None or ws.closed:
            return
        try:
            frame = receipt.tunnel_frame(self.make_receipt(work))
        except (OSError, ValueError) as e:
            log.error("session %s: no work receipt: %s", self.id, e)
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(frame)

    # --- officers watching -------------------------------------------------------------------

    async def watch(self, ws: web.WebSocketResponse) -> None:
        """An officer's read-only live view, until they leave or the session ends."""
        watcher = WatcherSink(ws)
        self.watchers.append(watcher)
        await self._send(DisplayPipeline.notice(
            wire.NoticeLevel.INFO, 2, "A security officer is viewing this session."))
        self._wake.set()
        try:
            await watcher.wait_closed()
        finally:
            if watcher in self.watchers:
                self.watchers.remove(watcher)
                await watcher.close(None, time.time())

    async def _check_limits(self) -> None:
        now = time.monotonic()
        idle = now - self._last_input_mono
        if self.ws is not None and idle >= self.limits.idle_timeout:
            await self.end(wire.EndCode.IDLE_TIMEOUT, "Your session ended after "
                           f"{spoken(self.limits.idle_timeout)} without input. Connect again to "
                           "continue.")
        elif now - self._started_mono >= self.limits.max_duration:
            await self.end(wire.EndCode.TIME_LIMIT, "Your session reached its limit of "
                           f"{spoken(self.limits.max_duration)}. Connect again to continue.")
        elif (self.ws is not None and not self._warned_idle
              and idle >= self.limits.idle_timeout - IDLE_WARNING):
            self._warned_idle = True
            await self._send(DisplayPipeline.notice(
                wire.NoticeLevel.WARNING, 1, "No input for a while: the session ends in "
                f"{int(self.limits.idle_timeout - idle)} seconds unless you type or move the "
                "mouse."))

    async def _grace(self) -> None:
        await asyncio.sleep(self.limits.reconnect_grace)
        if self.ws is None and not self.ended:
            moved = self.moved_to() if self.moved_to is not None else None
            if moved is not None:  # its node-bus signal was missed: let go all the same
                await self.let_go(moved)
                return
            await self.end(wire.EndCode.NORMAL, "The connection was lost and not resumed.")

    async def _send(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(data)

    # --- the end -----------------------------------------------------------------------------

    async def let_go(self, node: str) -> None:
        """Another node resumed this session (the agent reconnected there) and carries it on:
        stop holding it here without ending it — no session.end (it has not ended), nothing
        sent to the agent (it is the other node's now); watchers are told where it went."""
        if self.ended:
            return
        self.ended = self.handed_over = True
        log.info("session %s continues on node %s: let go here", self.id, node)
        end = DisplayPipeline.end(wire.EndCode.REPLACED,
                                  f"This session continues on gateway node {node}.")
        for sink in self._sinks():
            with contextlib.suppress(RecordingFailed, OSError):
                await sink.close(end, time.time())
        self.watchers.clear()
        self.helper_sink = None
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=END_CLOSE_BASE + int(wire.EndCode.REPLACED),
                               message=b"continued on another gateway node")
        for task in (self._grace_task, self._desktop_task, self._clock_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        await self.rfb.close()
        self.on_end(self)

    async def end(self, code: int, text: str) -> None:
        """End the session: audit first, then tell the viewer and the agent, then let go."""
        if self.ended:
            return
        self.ended = True
        work = self.work(datetime.now(UTC))
        try:
            await self.audit(SessionEnded(code=wire.EndCode(code).name.lower(), reason=text,
                                          bytes=self.bytes_sent, frames=self.frames_sent,
                                          **work))
        except Exception:  # ending is the safe direction: it happens even when unaudited
            log.exception("session %s: the end could not be audited; ending it anyway", self.id)
        await self._send_receipt(work)
        end = DisplayPipeline.end(code, text)
        for sink in self._sinks():
            with contextlib.suppress(RecordingFailed, OSError):
                await sink.close(end, time.time())
        self.watchers.clear()
        self.helper_sink = None
        ws = self.ws
        if ws is not None and not ws.closed:
            await self._send(end)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=END_CLOSE_BASE + int(code),
                               message=close_reason(text).encode())
        for task in (self._grace_task, self._desktop_task, self._clock_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        await self.rfb.close()
        self.on_end(self)
