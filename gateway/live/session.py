"""One live teacher session's asyncio shell: reads the tunnel, the desktop and the clock, feeds
the session machine (gateway/live/session_machine.py) and carries out its outputs in order.

Attacker-controlled here: frames from the viewer and the agent (handed to the machine as they
come: it decodes, bounds and decides them) and bytes from the desktop (through the RFB client's
limits). The shell makes no decisions: it awaits every Audit before the next output (a failed
write ends the session instead of letting the effect happen unrecorded), encodes frames (small
ones inline, large ones on the encoder threads) and owns the sockets, tasks and observers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web

from gateway.audit.kinds import TypedEvent
from gateway.display.frame_job import FrameJob, encode_frame
from gateway.display.pipeline import DisplayPipeline
from gateway.live import helpdesk
from gateway.live import session_events as ev
from gateway.live.help import HelpCase
from gateway.live.observers import FrameSink, RecorderSink, WatcherSink
from gateway.live.posture_watch import PostureWatch
from gateway.live.session_machine import Limits, SessionMachine, spoken
from gateway.recording.writer import RecordingFailed
from gateway.rfb.connection import RfbConnection
from gateway.rfb.errors import RfbError
from gateway.rfb.events import Closed, Resized, ServerCutText, UpdateDone
from gateway.wire import display as wire
from gateway.wire import receipt

__all__ = ["END_CLOSE_BASE", "Limits", "LiveSession", "close_reason", "spoken"]

log = logging.getLogger(__name__)

END_CLOSE_BASE = 4000  # the tunnel closes with 4000 + EndCode so the agent can tell the teacher
HELPER_REFUSED = 4409  # an operator's view closes with this when the machine refuses the join
# Frames with at most this many damaged pixels are encoded on the event loop (~1 ms of WebP):
# typing is one glyph per frame, and handing it to a thread adds latency and CPU.
INLINE_ENCODE_PIXELS = 64 * 64
# One encoder thread per core for all sessions (Pillow releases the GIL while encoding): more
# threads only add contention and a glibc malloc arena each, which showed as resident memory.
ENCODER = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="frame-encode")
ENCODE_FAILED = ("The gateway could not draw this session's screen and ended it: connect again, "
                 "and tell your school's IT lead if it keeps happening.")
UNAUDITED = ("The gateway could not record what this session did, so it ended the session: "
             "connect again in a few minutes, and tell your school's IT lead if it keeps "
             "happening.")

AuditHook = Callable[[TypedEvent], Awaitable[None]]  # the broker's: durable before it returns


def close_reason(text: str) -> str:
    """A WebSocket close reason is at most 123 bytes of UTF-8: cut on a character boundary."""
    data = text.encode()[:120]
    return data.decode("utf-8", errors="ignore")


def _now() -> ev.Now:
    return ev.Now(time.time(), time.monotonic())


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
    helper_sink: WatcherSink | None = None  # the helpdesk operator's view, while joined
    machine: SessionMachine = field(init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        now = _now()
        self.machine = SessionMachine(
            self.pipeline, self.limits, started_at=self.started_at, started_mono=now.mono,
            clipboard=self.clipboard, clipboard_max_bytes=self.clipboard_max_bytes,
            recording=self.recorder is not None, posture_watch=self.posture_watch,
            verify_posture=self.verify_posture)

    # --- what the broker and the API read --------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.machine.ended

    @property
    def handed_over(self) -> bool:
        return self.machine.handed_over

    @property
    def bytes_sent(self) -> int:
        return self.machine.bytes_sent

    @property
    def frames_sent(self) -> int:
        return self.machine.frames_sent

    @property
    def help(self) -> HelpCase:
        return self.machine.help

    def start(self) -> None:
        self._tasks += [asyncio.create_task(self._desktop_loop(), name=f"rfb-{self.id}"),
                        asyncio.create_task(self._clock(), name=f"clock-{self.id}")]

    async def end(self, code: int, text: str) -> None:
        """End the session (an officer, a revoked key, a shutdown): audit, tell, let go."""
        await self.feed(ev.Terminate(wire.EndCode(code), text))

    async def let_go(self, node: str) -> None:
        """`node` resumed this session and carries it on (the broker checked the registry)."""
        if not self.ended:
            log.info("session %s continues on node %s: let go here", self.id, node)
        await self.feed(ev.HandedOver(node))

    def wake(self) -> None:
        self._wake.set()

    # --- feeding the machine ---------------------------------------------------------------

    async def feed(self, event: ev.Input, *, helper_ws: web.WebSocketResponse | None = None
                   ) -> None:
        await self._carry(self.machine.handle(event, _now()), helper_ws)

    async def _carry(self, outputs: list[ev.Output],
                     helper_ws: web.WebSocketResponse | None = None) -> None:
        """Carry out the machine's outputs in order; each Audit is durable before the next."""
        ending = any(isinstance(o, ev.Close) for o in outputs)
        for out in outputs:
            if self.machine.ended and not ending:
                return  # the session ended meanwhile (another task): nothing more of this list
            if isinstance(out, ev.Audit):
                if not await self._audit(out, ending):
                    return
            else:
                await self._do(out, helper_ws)

    async def _audit(self, out: ev.Audit, ending: bool) -> bool:
        try:
            await self.audit(out.event)
        except Exception:
            if ending or not out.required:  # ending is the safe direction: even unaudited
                log.exception("session %s: %s could not be audited; ending the session anyway",
                              self.id, type(out.event).__name__)
                return True
            log.exception("session %s: could not audit %s; ending the session", self.id,
                          type(out.event).__name__)
            await self.feed(ev.Terminate(wire.EndCode.SERVER_SHUTDOWN, UNAUDITED))
            return False
        return True

    async def _do(self, out: ev.Output, helper_ws: web.WebSocketResponse | None) -> None:
        match out:
            case ev.SendViewer(data=data):
                await self._send(data)
            case ev.KeyToDesktop(keysym=keysym, down=down):
                await self.rfb.key(keysym, down)
            case ev.PointerToDesktop(x=x, y=y, buttons=buttons):
                await self.rfb.pointer(x, y, buttons)
            case ev.ClipboardToDesktop(text=text):
                await self.rfb.cut_text(text)
            case ev.RequestUpdate(incremental=incremental):
                await self.rfb.request_update(incremental=incremental)
            case ev.EncodeFrame(job=job):
                await self._encode(job)
            case ev.SendFrame(data=data, job=job):
                await self._send(data)
                await self._observe(data, job)
            case ev.WakeFrames():
                self._wake.set()
            case ev.TickRecorder():
                await self._tick_recorder()
            case ev.MarkRecording(kind=kind, text=text):
                if self.recorder is not None:
                    with contextlib.suppress(Exception):  # a failing recording ends elsewhere
                        await self.recorder.mark(kind, text, time.time())
            case ev.CountRecheck(outcome=outcome):
                self.on_recheck(outcome)
            case ev.AdmitHelper():
                assert helper_ws is not None
                self.helper_sink = WatcherSink(helper_ws)
                self.watchers.append(self.helper_sink)
            case ev.RefuseHelper(reason=reason):
                if helper_ws is not None:
                    await helper_ws.close(code=HELPER_REFUSED, message=reason.encode()[:120])
            case ev.PostHelper(data=data):
                if self.helper_sink is not None:
                    self.helper_sink.post(data)
            case ev.DropHelper():
                await self._drop_helper()
            case ev.SendReceipt(work=work):
                await self._send_receipt(work)
            case ev.Close():
                # Shielded: when the end comes from the send loop (a frame that cannot be
                # encoded, a recording that fails with a frame), closing the tunnel ends attach(),
                # which cancels that loop; the End to the observers, the desktop's close and the
                # broker's on_end must happen all the same.
                await asyncio.shield(self._close(out))

    # --- the tunnel ------------------------------------------------------------------------

    async def attach(self, ws: web.WebSocketResponse) -> None:
        """Serve this tunnel until it closes or the session ends."""
        self.ws = ws
        await self.feed(ev.Attached())
        sender = asyncio.create_task(self._send_loop(ws), name=f"send-{self.id}")
        try:
            await self._receive_loop(ws)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            if self.ws is ws:
                self.ws = None
                await self.feed(ev.Detached())

    async def _receive_loop(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await self.feed(ev.ViewerBytes(msg.data))
            elif msg.type == WSMsgType.TEXT:
                await self.feed(ev.ViewerText(msg.data))
            else:
                break
            if self.ended:
                break

    async def _send_loop(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed and not self.ended:
            timer = self.machine.frame_timer(_now())
            if not self._wake.is_set():
                # The timer sets the wake-up itself: asyncio.wait_for would make a Task for every
                # wait (0.5 % of a busy gateway, part AJ's profile).
                handle = None if timer is None else asyncio.get_running_loop().call_later(
                    max(0.0, timer - time.time()), self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    if handle is not None:
                        handle.cancel()
            self._wake.clear()
            await self.feed(ev.FrameDue(observer_key=self._observer_key_due()))

    def _observer_key_due(self) -> bool:
        now = time.time()
        return any(sink.wants_key_frame(now) for sink in self._sinks())

    async def _encode(self, job: FrameJob) -> None:
        try:
            if job.pixels <= INLINE_ENCODE_PIXELS:
                data = self.encode(job)  # a thread hop costs more than a glyph's encode
            else:
                data = await asyncio.get_running_loop().run_in_executor(ENCODER, self.encode, job)
        except Exception:
            # The send loop would die with it and leave the teacher a frozen screen: end the
            # session instead, visibly (the canvas would be wrong from this frame on anyway).
            log.exception("session %s: encoding a frame failed", self.id)
            await self.feed(ev.Terminate(wire.EndCode.SERVER_SHUTDOWN, ENCODE_FAILED))
            return
        await self.feed(ev.FrameEncoded(job, data))

    async def _send(self, data: bytes) -> None:
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(data)

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

    # --- the desktop and the clock ---------------------------------------------------------

    async def _desktop_loop(self) -> None:
        try:
            await self.feed(ev.DesktopReady())
            async for event in self.rfb.events():
                if isinstance(event, UpdateDone):
                    await self.feed(ev.DesktopUpdated(observer_key=self._observer_key_due()))
                elif isinstance(event, Resized):
                    await self.feed(ev.DesktopResized())
                elif isinstance(event, ServerCutText):
                    await self.feed(ev.DesktopClipboard(event.text, event.length))
                elif isinstance(event, Closed):
                    break
        except (RfbError, OSError) as e:
            log.warning("session %s: desktop connection failed: %s", self.id, e)
        except asyncio.CancelledError:
            return
        except Exception:
            # Never leave a session running without its desktop loop: end it, visibly.
            log.exception("session %s: desktop loop failed", self.id)
        await self.feed(ev.DesktopLost())

    async def _clock(self) -> None:
        """A Tick once a second from this session's own start (so sessions do not tick
        together), and at the reconnect grace's end."""
        next_tick = time.monotonic() + 1.0
        while not self.ended:
            due = next_tick
            deadline = self.machine.deadline()
            if deadline is not None:
                due = min(due, deadline)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            mono = time.monotonic()
            if mono >= next_tick:  # a stalled loop does not make up the ticks it missed
                next_tick = max(next_tick + 1.0, mono + 0.5)
            deadline = self.machine.deadline()
            if deadline is not None and mono >= deadline and self.moved_to is not None:
                moved = self.moved_to()  # its node-bus signal was missed: let go all the same
                if moved is not None:
                    await self.let_go(moved)
                    return
            try:
                await self.feed(ev.Tick())
            except (RfbError, OSError) as e:
                log.warning("session %s: clock: %s", self.id, e)

    # --- observers: the recording, officers watching, the helpdesk operator ----------------

    def _sinks(self) -> list[FrameSink]:
        return ([self.recorder] if self.recorder else []) + list(self.watchers)

    async def _observe(self, data: bytes, job: FrameJob) -> None:
        """The recording and watchers get the frame as sent (and a key frame when they asked)."""
        sinks = self._sinks()
        if not sinks:
            return
        key = None
        if job.observer_key is not None:
            key = await asyncio.get_running_loop().run_in_executor(None, encode_frame,
                                                                   job.observer_key)
        now = time.time()
        for sink in sinks:
            try:
                await sink.frame(data, key, now)
            except RecordingFailed as e:
                await self._recording_failed(e)
                return

    async def _tick_recorder(self) -> None:
        """A quiet screen still gets its checkpoint (signed, fsynced) within checkpoint_seconds,
        so a crash loses at most that much of the recording."""
        if self.recorder is None:
            return
        try:
            await self.recorder.tick(time.time())
        except RecordingFailed as e:
            await self._recording_failed(e)

    async def _recording_failed(self, e: RecordingFailed) -> None:
        self.recorder = None
        await self.feed(ev.RecordingBroken(str(e)))

    async def watch(self, ws: web.WebSocketResponse) -> None:
        """An officer's read-only live view, until they leave or the session ends."""
        watcher = WatcherSink(ws)
        self.watchers.append(watcher)
        await self.feed(ev.WatcherJoined())
        try:
            await watcher.wait_closed()
        finally:
            if watcher in self.watchers:
                self.watchers.remove(watcher)
                await watcher.close(None, time.time())

    async def help_join(self, ws: web.WebSocketResponse, helper: str, name: str) -> None:
        await helpdesk.serve_helper(self, ws, helper, name)

    async def admit_helper(self, ws: web.WebSocketResponse, helper: str,
                           name: str) -> WatcherSink | None:
        """The operator's view joins as an observer, or is closed with the machine's reason."""
        await self.feed(ev.HelperJoin(helper, name), helper_ws=ws)
        sink = self.helper_sink
        return sink if sink is not None and sink.ws is ws else None

    async def helper_gone(self, helper: str, sink: WatcherSink) -> None:
        """The operator's view closed: the help is over unless the teacher already ended it."""
        if sink in self.watchers:
            self.watchers.remove(sink)
        if self.helper_sink is sink:
            self.helper_sink = None
            await self.feed(ev.HelperLeft(helper))
        await sink.close(None, time.time())

    async def _drop_helper(self) -> None:
        sink, self.helper_sink = self.helper_sink, None
        if sink is not None:
            if sink in self.watchers:
                self.watchers.remove(sink)
            await sink.close(None, time.time())

    # --- the end ---------------------------------------------------------------------------

    async def _close(self, out: ev.Close) -> None:
        """After the end's record: End to the viewer (the teacher is told first), then to the
        observers (the recording is sealed with it), close, let go."""
        ws = self.ws
        if ws is not None and not ws.closed:
            if out.to_viewer:
                await self._send(out.end)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=END_CLOSE_BASE + int(out.code),
                               message=close_reason(out.text).encode())
        for sink in self._sinks():
            with contextlib.suppress(RecordingFailed, OSError):
                await sink.close(out.end, time.time())
        self.watchers.clear()
        self.helper_sink = None
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self.rfb.close()
        self.on_end(self)
