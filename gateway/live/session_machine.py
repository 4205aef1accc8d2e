"""One live session's decisions as a pure state machine: inputs in, outputs out (no I/O, no clock).

Attacker-controlled here: every viewer frame (ViewerBytes through the display pipeline's codec,
bounded; ViewerText through gateway.wire.recheck, ≤ 32 KiB, signature and sequence checked by
gateway.live.posture_watch), the desktop's clipboard text and a helpdesk operator's decoded input.
Limits: policy's idle timeout, maximum duration and reconnect grace; clipboard only in the
directions and sizes policy allows; at most BLOCKED_RECORDS audit records per blocked kind and
MAX_HELP_ASKS help requests per session (session_help.py); a protocol error ends the session
(PROTOCOL_ERROR).

Every effect that needs a record comes after its `Audit` in the same list; the shell
(gateway/live/session.py) awaits each write before the next output. The states (docs/SESSION.md):

    NEW --Attached--> LIVE --Detached--> GRACE --Attached--> LIVE
    NEW/LIVE/GRACE --(limit, protocol error, desktop lost, posture, terminate, grace over)--> ENDED
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.audit.kinds import (
    ClipboardCopied,
    HelpProtocolError,
    PostureChecked,
    RecordingStopped,
    RedirectionBlocked,
    SessionActivity,
    SessionEnded,
    TunnelProtocolError,
)
from gateway.display.pipeline import DisplayPipeline
from gateway.display.viewer_actions import (
    BlockedAttempt,
    ClipboardInput,
    ClipboardRefused,
    HelpRequest,
    KeyInput,
    PointerInput,
    Reply,
)
from gateway.live import help as rules
from gateway.live import posture_watch as pw
from gateway.live.frame_flow import FrameFlow
from gateway.live.session_events import (
    Attached,
    Audit,
    ClipboardToDesktop,
    Close,
    CountRecheck,
    DesktopClipboard,
    DesktopLost,
    DesktopReady,
    DesktopResized,
    DesktopUpdated,
    Detached,
    FrameDue,
    FrameEncoded,
    HandedOver,
    HelperBroke,
    HelperInput,
    HelperJoin,
    HelperLeft,
    Input,
    KeyToDesktop,
    Now,
    Output,
    PointerToDesktop,
    RecordingBroken,
    SendFrame,
    SendReceipt,
    SendViewer,
    Terminate,
    Tick,
    TickRecorder,
    ViewerBytes,
    ViewerText,
    WakeFrames,
    WatcherJoined,
)
from gateway.live.session_help import SessionHelp
from gateway.wire import display as wire
from gateway.wire import recheck

IDLE_WARNING = 60.0  # seconds before an idle end when the viewer is warned
TIME_WARNING = 300.0  # seconds before the duration limit when the viewer is warned
NOTICE_TIME_LIMIT = wire.NoticeCode.TIME_LIMIT  # that warning's Notice code (docs/PROTOCOL.md)
ACTIVITY_EVERY = 15 * 60.0  # seconds between work-hours checkpoints (session.activity)
BLOCKED_RECORDS = 20  # audit records per blocked kind per session; the 20th says so

PROTOCOL_ERROR_TEXT = ("The connection sent something invalid and was closed: reconnect with "
                       "`staffroom agent connect`.")
DESKTOP_LOST_TEXT = ("The school desktop stopped answering: reconnect in a minute, or tell "
                     "your school's IT lead.")
NOT_RESUMED_TEXT = "The connection was lost and not resumed."
WATCHED_TEXT = "A security officer is viewing this session."
UNRECORDED_TEXT = ("The session ended because policy requires it to be recorded; tell your "
                   "school's IT lead.")


class Phase(enum.Enum):
    NEW = "new"  # made by the broker, no tunnel yet
    LIVE = "live"  # a tunnel is attached
    GRACE = "grace"  # the tunnel was lost: waiting for a resume until the grace runs out
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Limits:
    idle_timeout: float  # seconds without input
    max_duration: float
    reconnect_grace: float


def spoken(seconds: float) -> str:
    """A duration as a teacher would say it: "45 seconds", "15 minutes", "8 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


Verify = Callable[[int, dict[str, Any], bytes], bool]  # (seq, posture, signature) -> verified


@dataclass(eq=False)
class SessionMachine:
    pipeline: DisplayPipeline  # pure itself: the machine feeds it and maps its actions
    limits: Limits
    started_at: datetime  # wall clock of the start (work-hours figures)
    started_mono: float
    clipboard: str = "off"  # policy [redirection] clipboard
    clipboard_max_bytes: int = 4096
    recording: bool = False
    posture_watch: pw.PostureWatch | None = None  # None: text frames are protocol errors
    verify_posture: Verify | None = None
    phase: Phase = Phase.NEW
    end_code: wire.EndCode | None = None
    handed_over: bool = False  # ended here because another node carries it on
    helping: SessionHelp = field(default_factory=SessionHelp)  # call-centre help
    bytes_sent: int = 0
    frames_sent: int = 0
    detached_at: float | None = None
    _attaches: int = 0
    _last_input: float = 0.0
    _warned_idle: bool = False
    _warned_time: bool = False
    _blocked: dict[str, int] = field(default_factory=dict)
    _active_minutes: set[int] = field(default_factory=set)  # minutes since start with input
    _activity_logged: int = 0  # ACTIVITY_EVERY periods already audited

    flow: FrameFlow = field(init=False)  # when the desktop is asked and a frame taken

    def __post_init__(self) -> None:
        self._last_input = self.started_mono
        self.flow = FrameFlow(self.pipeline)

    @property
    def help(self) -> rules.HelpCase:
        return self.helping.case

    @property
    def help_asks(self) -> int:
        return self.helping.asks

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def deadline(self) -> float | None:
        """The monotonic time a Tick must come by (the grace's end), beside the 1 s ticks."""
        if self.phase is Phase.GRACE and self.detached_at is not None:
            return self.detached_at + self.limits.reconnect_grace
        return None

    def frame_timer(self, now: Now) -> float | None:
        """Unix time when a FrameDue is due (FrameFlow.timer)."""
        return self.flow.timer(self.phase is Phase.LIVE, now.wall)

    def handle(self, event: Input, now: Now) -> list[Output]:
        """Everything to do about `event`, in order. Nothing once the session has ended."""
        if self.phase is Phase.ENDED:
            return []
        match event:
            case ViewerBytes(data=data):
                return self._viewer_bytes(data, now)
            case ViewerText(text=text):
                return self._viewer_text(text, now)
            case FrameDue(observer_key=key):
                return self.flow.due(self.phase is Phase.LIVE, key, now.wall)
            case FrameEncoded(job=job, data=data):
                self.bytes_sent += len(data)
                self.frames_sent += 1
                return [SendFrame(data, job), *self.flow.encoded(job, len(data), now.wall)]
            case DesktopUpdated(observer_key=key):
                return self.flow.updated(self.phase is Phase.LIVE, key, now.wall)
            case DesktopResized():
                return [WakeFrames()]
            case DesktopReady():
                return self.flow.ready()
            case DesktopClipboard(text=text, length=length):
                return self._clipboard_out(text, length)
            case DesktopLost():
                return self._end(wire.EndCode.DESKTOP_LOST, DESKTOP_LOST_TEXT, now)
            case Tick():
                return self._tick(now)
            case Attached():
                return self._attached(now)
            case Detached():
                return self._detached(now)
            case Terminate(code=code, text=text):
                return self._end(code, text, now)
            case HandedOver(node=node):
                return self._hand_over(node)
            case RecordingBroken(error=error):
                self.recording = False
                return [Audit(RecordingStopped(error=error)),
                        *self._end(wire.EndCode.SERVER_SHUTDOWN, f"{error} {UNRECORDED_TEXT}",
                                   now)]
            case WatcherJoined():
                return [SendViewer(DisplayPipeline.notice(
                    wire.NoticeLevel.INFO, wire.NoticeCode.WATCHED, WATCHED_TEXT)), WakeFrames()]
            case HelperJoin(helper=helper, name=name):
                return self.helping.join(helper, name, self.recording)
            case HelperLeft(helper=helper):
                return self.helping.left(helper, self.recording)
            case HelperInput(helper=helper, event=ev):
                return self._helper_input(helper, ev, now)
            case HelperBroke(helper=helper, error=error):
                return [Audit(HelpProtocolError(helper=helper, error=error[:200]))]
        raise TypeError(f"not a session input: {event!r}")  # a programming error, never data

    # --- the tunnel ------------------------------------------------------------------------

    def _attached(self, now: Now) -> list[Output]:
        if self._attaches and self.posture_watch is not None:
            self.posture_watch.resumed(now.mono)  # a resume's login carried a passing posture
        self._attaches += 1
        self.phase, self.detached_at = Phase.LIVE, None
        self.pipeline.attached = False  # until the viewer's Resume
        return self.helping.reloaded()

    def _detached(self, now: Now) -> list[Output]:
        if self.phase is not Phase.LIVE:
            return []
        self.phase, self.detached_at = Phase.GRACE, now.mono
        self.pipeline.attached = False
        if self.limits.reconnect_grace <= 0:
            return self._end(wire.EndCode.NORMAL, NOT_RESUMED_TEXT, now)
        return []

    def _viewer_bytes(self, data: bytes, now: Now) -> list[Output]:
        if self.phase is not Phase.LIVE or not data:
            return []  # a closing tunnel's last frames; an empty frame (b"" is the codec's EOF)
        try:
            actions = self.pipeline.receive_data(data, now.wall)
        except wire.ProtocolError as e:
            return self._protocol_error(str(e), now)
        out: list[Output] = []
        for action in actions:
            out.extend(self._viewer_action(action, now))
        out.append(WakeFrames())
        return out

    def _viewer_action(self, action: object, now: Now) -> list[Output]:
        match action:
            case KeyInput(keysym=keysym, down=down):
                self._input(now)
                return [KeyToDesktop(keysym, down)]
            case PointerInput(x=x, y=y, buttons=buttons):
                self._input(now)
                return [PointerToDesktop(x, y, buttons)]
            case Reply(data=data):
                return [SendViewer(data)]
            case ClipboardInput(text=text):
                return self._clipboard_in(text)
            case ClipboardRefused(nbytes=nbytes, repeats=repeats):
                return self._blocked_attempt("clipboard", direction="to-remote", nbytes=nbytes,
                                             repeats=repeats)
            case BlockedAttempt(kind=kind, repeats=repeats):
                try:
                    name = wire.BlockedKind(kind).name.lower()
                except ValueError:
                    name = f"kind{kind}"
                return self._blocked_attempt(f"viewer_{name}", repeats=repeats)
            case HelpRequest(action=help_action):
                return self.helping.teacher(help_action, self.recording)
        return []

    def _viewer_text(self, text: str, now: Now) -> list[Output]:
        if self.phase is not Phase.LIVE:
            return []
        if self.posture_watch is None or self.verify_posture is None:
            return self._protocol_error("text frame after login", now)
        try:
            update = recheck.decode(text)
        except recheck.RecheckProtocolError as e:
            return self._protocol_error(f"posture report: {e}", now)
        try:
            verified = self.verify_posture(update.seq, update.posture, update.signature)
        except (ValueError, TypeError):
            verified = False
        return self._posture(self.posture_watch.report(
            seq=update.seq, verified=verified, posture=update.posture, reason=update.reason,
            now=now.mono, wall=datetime.fromtimestamp(now.wall, UTC)), now)

    def _protocol_error(self, error: str, now: Now) -> list[Output]:
        return [Audit(TunnelProtocolError(error=error[:200])),
                *self._end(wire.EndCode.PROTOCOL_ERROR, PROTOCOL_ERROR_TEXT, now)]

    def _input(self, now: Now) -> None:
        self._last_input, self._warned_idle = now.mono, False
        self._active_minutes.add(int((now.mono - self.started_mono) // 60))

    # --- redirection -----------------------------------------------------------------------

    def _clipboard_in(self, text: str) -> list[Output]:
        """Browser clipboard to the desktop: only when policy allows to-remote, within size."""
        size = len(text.encode())
        if self.clipboard not in ("to-remote", "both") or size > self.clipboard_max_bytes:
            return self._blocked_attempt("clipboard", direction="to-remote", nbytes=size)
        return [Audit(ClipboardCopied(direction="to-remote", bytes=size)),
                ClipboardToDesktop(text)]

    def _clipboard_out(self, text: str, length: int) -> list[Output]:
        """Desktop clipboard to the browser: only when policy allows to-local, within size."""
        size = len(text.encode())
        data = None
        if self.clipboard in ("to-local", "both") and 0 < size <= self.clipboard_max_bytes:
            try:
                data = self.pipeline.clipboard_out(text)
            except ValueError:  # over the wire's own limit
                data = None
        if data is None:
            return self._blocked_attempt("clipboard", direction="to-local",
                                         nbytes=size or length)
        return [Audit(ClipboardCopied(direction="to-local", bytes=size)), SendViewer(data)]

    def _blocked_attempt(self, kind: str, *, direction: str | None = None,
                         nbytes: int | None = None, repeats: int | None = None) -> list[Output]:
        """Audited, at most BLOCKED_RECORDS per kind (the last says further attempts are not)."""
        count = self._blocked[kind] = self._blocked.get(kind, 0) + 1
        if count > BLOCKED_RECORDS:
            return []
        return [Audit(RedirectionBlocked(kind, direction=direction, bytes=nbytes,
                                         repeats=repeats, attempt=count,
                                         last_recorded=count == BLOCKED_RECORDS))]

    # --- the clock -------------------------------------------------------------------------

    def _tick(self, now: Now) -> list[Output]:
        deadline = self.deadline()
        if deadline is not None and now.mono >= deadline:
            return self._end(wire.EndCode.NORMAL, NOT_RESUMED_TEXT, now)
        out = self._limits(now)
        if self.phase is Phase.LIVE and self.posture_watch is not None:
            out.extend(self._posture(self.posture_watch.tick(now.mono), now))
        if self.phase is Phase.ENDED:
            return out
        periods = int((now.mono - self.started_mono) // ACTIVITY_EVERY)
        if periods > self._activity_logged:
            # A work-hours checkpoint: a gateway that stops without ending loses at most this.
            self._activity_logged = periods
            out.append(Audit(SessionActivity(**self.work(now.wall))))
        if self.recording:
            out.append(TickRecorder())
        return out

    def _limits(self, now: Now) -> list[Output]:
        live = self.phase is Phase.LIVE
        idle = now.mono - self._last_input
        elapsed = now.mono - self.started_mono
        lim = self.limits
        if live and idle >= lim.idle_timeout:
            return self._end(wire.EndCode.IDLE_TIMEOUT, f"Your session ended after "
                             f"{spoken(lim.idle_timeout)} without input. Connect again to "
                             "continue.", now)
        if elapsed >= lim.max_duration:
            return self._end(wire.EndCode.TIME_LIMIT, "Your session reached its limit of "
                             f"{spoken(lim.max_duration)}. Connect again to continue.", now)
        if live and not self._warned_idle and idle >= lim.idle_timeout - IDLE_WARNING:
            self._warned_idle = True
            return [SendViewer(DisplayPipeline.notice(
                wire.NoticeLevel.WARNING, wire.NoticeCode.IDLE, "No input for a while: the "
                f"session ends in {int(lim.idle_timeout - idle)} seconds unless you type or "
                "move the mouse."))]
        if live and not self._warned_time and lim.max_duration >= 2 * TIME_WARNING \
                and elapsed >= lim.max_duration - TIME_WARNING:
            self._warned_time = True
            left = max(1, round((lim.max_duration - elapsed) / 60))
            return [SendViewer(DisplayPipeline.notice(
                wire.NoticeLevel.WARNING, NOTICE_TIME_LIMIT, "Your session reaches its limit "
                f"of {spoken(lim.max_duration)} in {spoken(left * 60)}: save your work."))]
        return []

    def _posture(self, actions: list[pw.Action], now: Now) -> list[Output]:
        out: list[Output] = []
        for action in actions:
            match action:
                case pw.Audit(outcome=outcome, details=details):
                    out += [CountRecheck(outcome), Audit(PostureChecked(outcome, **details))]
                case pw.Warn(text=text):
                    out.append(SendViewer(DisplayPipeline.notice(
                        wire.NoticeLevel.WARNING, wire.NoticeCode.POSTURE, text)))
                case pw.Clear(text=text):
                    out.append(SendViewer(DisplayPipeline.notice(
                        wire.NoticeLevel.INFO, wire.NoticeCode.POSTURE, text)))
                case pw.End(text=text):
                    return out + self._end(wire.EndCode.POSTURE, text, now)
        return out

    # --- call-centre help (gateway/live/session_help.py; the rules: gateway/live/help.py) ----

    def _helper_input(self, helper: str, ev: wire.Key | wire.Pointer, now: Now) -> list[Output]:
        refused = self.helping.refuse_input(helper)
        if refused is not None:
            return refused
        self._last_input, self._warned_idle = now.mono, False
        if isinstance(ev, wire.Key):
            return [KeyToDesktop(ev.keysym, ev.down)]
        fb = self.pipeline.fb
        return [PointerToDesktop(min(ev.x, max(0, fb.width - 1)),
                                 min(ev.y, max(0, fb.height - 1)), ev.buttons & 0xFF)]

    # --- the end ---------------------------------------------------------------------------

    def work(self, wall: float) -> dict[str, Any]:
        """Work-hours figures: start, end, minutes with input (active) and without (idle)."""
        ended_at = datetime.fromtimestamp(wall, UTC)
        seconds = max(0.0, (ended_at - self.started_at).total_seconds())
        minutes = max(1, math.ceil(seconds / 60))
        active = min(len(self._active_minutes), minutes)
        return {"started_at": self.started_at.astimezone(UTC).isoformat(timespec="seconds"),
                "ended_at": ended_at.isoformat(timespec="seconds"),
                "duration_seconds": round(seconds), "active_minutes": active,
                "idle_minutes": minutes - active}

    def _hand_over(self, node: str) -> list[Output]:
        """No session.end (it has not ended: the taking node's session.recover is the record
        of the move) and nothing to the agent; the observers are told where it went."""
        self.phase, self.end_code = Phase.ENDED, wire.EndCode.REPLACED
        self.handed_over = True
        self.helping.let_go()
        text = f"This session continues on gateway node {node}."
        return [Close(wire.EndCode.REPLACED, text, DisplayPipeline.end(wire.EndCode.REPLACED,
                                                                       text), to_viewer=False)]

    def _end(self, code: wire.EndCode, text: str, now: Now) -> list[Output]:
        """Audit first (the end goes ahead even if that fails), then the receipt to the agent,
        then End to the viewer and the observers, and let go."""
        was_live = self.phase is Phase.LIVE
        self.phase, self.end_code = Phase.ENDED, wire.EndCode(code)
        self.helping.let_go()
        work = self.work(now.wall)
        out: list[Output] = [Audit(SessionEnded(
            code=self.end_code.name.lower(), reason=text, bytes=self.bytes_sent,
            frames=self.frames_sent, **work), required=False)]
        if was_live:
            out.append(SendReceipt(work))
        return [*out, Close(self.end_code, text, DisplayPipeline.end(code, text))]
