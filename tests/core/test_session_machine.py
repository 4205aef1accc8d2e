"""The live session's state machine (gateway/live/session_machine.py) without sockets: viewer
messages, desktop events and clock ticks in; sends, input, audit records and the end out.

Real parts: the display pipeline on a real framebuffer, the display codec's bytes, real ECDSA
signatures on posture re-checks and the posture rules. Properties (Hypothesis): no sequence of
inputs makes the machine raise, every effect that needs a record comes after it, nothing happens
after the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.kinds import (
    ClipboardCopied,
    HelpEnded,
    HelpInputBlocked,
    HelpProtocolError,
    HelpRequested,
    PostureChecked,
    RecordingStopped,
    RedirectionBlocked,
    SessionActivity,
    SessionEnded,
    TunnelProtocolError,
)
from gateway.display.framebuffer import Framebuffer
from gateway.display.pacing import frame_gap
from gateway.display.pipeline import (
    DisplayPipeline,
    SessionInfo,
    clipboard_flags,
)
from gateway.live import session_events as ev
from gateway.live.posture_watch import PostureWatch
from gateway.live.session_machine import (
    ACTIVITY_EVERY,
    BLOCKED_RECORDS,
    NOTICE_TIME_LIMIT,
    Limits,
    Phase,
    SessionMachine,
)
from gateway.wire import display as w
from gateway.wire import recheck
from gateway.wire.posture import PosturePolicy
from tests.posture.helpers import NOW, av, report

T0 = NOW.timestamp()
M0 = 1000.0
LIMITS = Limits(idle_timeout=900, max_duration=8 * 3600, reconnect_grace=45)
SESSION = "s-0001"
BINDING = b"\x11" * 32


class Clock:
    def __init__(self) -> None:
        self.wall, self.mono = T0, M0

    def now(self) -> ev.Now:
        return ev.Now(self.wall, self.mono)

    def advance(self, seconds: float) -> ev.Now:
        self.wall += seconds
        self.mono += seconds
        return self.now()


class Rig:
    """A machine on a 256x128 framebuffer, its clock and the outputs of every step."""

    def __init__(self, *, clipboard: str = "off", limits: Limits = LIMITS, recording: bool = False,
                 posture: PosturePolicy | None = None) -> None:
        self.clock = Clock()
        self.fb = Framebuffer(256, 128)
        self.fb.fill(0, 0, 256, 128, b"\x20\x40\x60\x00")
        flags = clipboard_flags(clipboard) | w.HelloFlags.HELP
        pipeline = DisplayPipeline(self.fb, session=SessionInfo(SESSION, "test", flags))
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.m = SessionMachine(
            pipeline, limits, started_at=datetime.fromtimestamp(T0, UTC), started_mono=M0,
            clipboard=clipboard, clipboard_max_bytes=16, recording=recording,
            posture_watch=None if posture is None else PostureWatch(posture, last_report=M0),
            verify_posture=None if posture is None else self.verify)
        self.log: list[list[ev.Output]] = []

    def verify(self, seq: int, posture: dict[str, Any], signature: bytes) -> bool:
        try:
            self.key.public_key().verify(signature, recheck.transcript(
                SESSION, seq, BINDING, posture), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def recheck(self, seq: int, posture: dict[str, Any]) -> str:
        sig = self.key.sign(recheck.transcript(SESSION, seq, BINDING, posture),
                            ec.ECDSA(hashes.SHA256()))
        return recheck.encode(recheck.PostureUpdate(seq, posture, sig))

    def do(self, event: ev.Input) -> list[ev.Output]:
        out = self.m.handle(event, self.clock.now())
        self.log.append(out)
        return out

    def send(self, *msgs: w.Message) -> list[ev.Output]:
        return self.do(ev.ViewerBytes(b"".join(w.encode(m) for m in msgs)))

    def live(self) -> Rig:
        self.do(ev.DesktopReady())
        self.do(ev.Attached())
        self.send(w.Resume(w.VERSION))
        return self


def audits(out: list[ev.Output]) -> list[object]:
    return [o.event for o in out if isinstance(o, ev.Audit)]


def decoded(data: bytes) -> list[w.Message]:
    d = w.DisplayDecoder(w.Direction.TO_VIEWER)
    d.feed(data)
    msgs = []
    while not isinstance(m := d.next_event(), w.Sentinel):
        msgs.append(m)
    return msgs


def sent(out: list[ev.Output]) -> list[w.Message]:
    return [m for o in out if isinstance(o, ev.SendViewer) for m in decoded(o.data)]


def assert_ended(out: list[ev.Output], code: w.EndCode) -> SessionEnded:
    ended = [o for o in out if isinstance(o, ev.Audit) and isinstance(o.event, SessionEnded)]
    assert len(ended) == 1 and not ended[0].required
    close = out[-1]
    assert isinstance(close, ev.Close) and close.code is code
    assert decoded(close.end) == [w.End(code, close.text)]
    assert out.index(ended[0]) < len(out) - 1  # the record before the end
    assert ended[0].event.code == code.name.lower()  # type: ignore[attr-defined]
    return ended[0].event  # type: ignore[return-value]


# --- the viewer --------------------------------------------------------------------------------

def test_keys_and_pointer_reach_the_desktop_only_after_resume() -> None:
    r = Rig()
    r.do(ev.Attached())
    assert r.send(w.Key(0x61, True)) == [ev.WakeFrames()]  # before Resume: dropped
    r.send(w.Resume(w.VERSION))
    assert r.send(w.Key(0x61, True), w.Pointer(9999, 5, 0x101)) == [
        ev.KeyToDesktop(0x61, True), ev.PointerToDesktop(255, 5, 0x01), ev.WakeFrames()]


def test_ping_is_answered() -> None:
    r = Rig().live()
    assert sent(r.send(w.Ping(42))) == [w.Pong(42)]


def test_clipboard_paste_under_the_default_policy_is_audited_never_forwarded() -> None:
    r = Rig().live()
    out = r.send(w.ClipboardIn("secret text"))
    assert not any(isinstance(o, ev.ClipboardToDesktop) for o in out)
    assert audits(out) == [RedirectionBlocked(
        "clipboard", direction="to-remote", bytes=11, repeats=0, attempt=1)]


def test_clipboard_paste_allowed_by_policy_is_audited_then_forwarded_within_size() -> None:
    r = Rig(clipboard="to-remote").live()
    out = r.send(w.ClipboardIn("hello"))
    assert out[:2] == [ev.Audit(ClipboardCopied(direction="to-remote", bytes=5)),
                       ev.ClipboardToDesktop("hello")]
    big = r.send(w.ClipboardIn("x" * 17))  # over clipboard_max_bytes (16)
    assert audits(big) == [RedirectionBlocked("clipboard", direction="to-remote", bytes=17,
                                              attempt=1)]
    assert not any(isinstance(o, ev.ClipboardToDesktop) for o in big)


def test_desktop_copies_go_out_only_as_policy_allows() -> None:
    off = Rig().live()
    assert off.do(ev.DesktopClipboard("pw: hunter2", 11)) == [ev.Audit(RedirectionBlocked(
        "clipboard", direction="to-local", bytes=11, attempt=1))]
    out = Rig(clipboard="to-local").live().do(ev.DesktopClipboard("ok", 2))
    assert out[0] == ev.Audit(ClipboardCopied(direction="to-local", bytes=2))
    assert sent(out[1:]) == [w.ClipboardOut("ok")]


def test_blocked_attempts_are_audited_at_most_twenty_times_per_kind() -> None:
    r = Rig().live()
    records = []
    for _ in range(BLOCKED_RECORDS + 5):
        r.clock.advance(1.5)  # the pipeline folds reports within a second
        records += audits(r.send(w.Blocked(w.BlockedKind.PRINT)))
    assert len(records) == BLOCKED_RECORDS
    assert all(e.channel == "viewer_print" for e in records)  # type: ignore[attr-defined]
    assert [e.last_recorded for e in records] == [False] * 19 + [True]  # type: ignore
    unknown = audits(r.send(w.Blocked(77)))
    assert unknown[0].KIND == "redirection.viewer_kind77"  # type: ignore[attr-defined]


def test_a_malformed_message_is_audited_and_ends_with_the_protocol_error_code() -> None:
    r = Rig().live()
    out = r.do(ev.ViewerBytes(b"\x7f\x00\x00\x00\x01\x00"))
    assert isinstance(out[0], ev.Audit) and isinstance(out[0].event, TunnelProtocolError)
    assert_ended(out, w.EndCode.PROTOCOL_ERROR)
    assert r.m.phase is Phase.ENDED
    assert r.send(w.Key(0x61, True)) == []  # nothing after the end


def test_a_forged_ack_is_a_protocol_error() -> None:
    r = Rig().live()
    out = r.send(w.Ack(99))
    assert "never sent" in out[0].event.error  # type: ignore[union-attr]
    assert_ended(out, w.EndCode.PROTOCOL_ERROR)


def test_a_text_frame_without_posture_rechecks_is_a_protocol_error() -> None:
    out = Rig().live().do(ev.ViewerText('{"type": "posture"}'))
    assert out[0] == ev.Audit(TunnelProtocolError(error="text frame after login"))
    assert_ended(out, w.EndCode.PROTOCOL_ERROR)


# --- the frame path ------------------------------------------------------------------------------

def test_frames_are_paced_by_acks_with_one_update_request_outstanding() -> None:
    r = Rig()
    assert r.do(ev.DesktopReady()) == [ev.RequestUpdate(incremental=False)]
    r.do(ev.Attached())
    assert r.do(ev.FrameDue()) == []  # no Resume yet: nothing may go out
    r.send(w.Resume(w.VERSION))
    # The next update is asked for at once, before this one is taken (the desktop renders it
    # while the gateway takes and encodes the frame).
    assert r.do(ev.DesktopUpdated()) == [ev.RequestUpdate(), ev.WakeFrames()]
    first = r.do(ev.FrameDue())
    assert len(first) == 1 and isinstance(first[0], ev.EncodeFrame)
    job = first[0].job
    out = r.do(ev.FrameEncoded(job, b"frame-1"))
    assert out == [ev.SendFrame(b"frame-1", job)]  # a request is already outstanding
    assert (r.m.frames_sent, r.m.bytes_sent) == (1, 7)
    r.fb.fill(0, 0, 100, 100, b"\xff\xff\xff\x00")  # more than a glyph: taken by FrameDue
    r.do(ev.DesktopUpdated())
    second = r.do(ev.FrameDue())
    assert isinstance(second[-1], ev.EncodeFrame)
    r.do(ev.FrameEncoded(second[-1].job, b"frame-2"))
    r.fb.fill(20, 20, 10, 10, b"\xff\xff\xff\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]  # a glyph, but the window is shut
    assert r.do(ev.FrameDue()) == []  # two frames unacknowledged: the window is shut
    r.send(w.Ack(job.frame_id + 1))
    third = r.do(ev.FrameDue())
    assert isinstance(third[-1], ev.EncodeFrame)


def test_an_update_request_is_outstanding_while_a_frame_is_encoded() -> None:
    """The desktop is never left idle while the gateway takes and encodes a frame: the next
    update is asked for as soon as one is done; one that comes while a frame is encoded waits
    for FrameEncoded to ask again (one update read ahead at most); a shut Ack window asks for
    nothing."""
    r = Rig().live()
    paint = iter(range(0, 200, 12))

    def update() -> list[ev.Output]:
        r.fb.fill(next(paint), 0, 80, 80, b"\xff\xff\xff\x00")  # more than a glyph
        return r.do(ev.DesktopUpdated())

    assert update() == [ev.RequestUpdate(), ev.WakeFrames()]
    take = r.do(ev.FrameDue())
    assert len(take) == 1 and isinstance(take[0], ev.EncodeFrame)  # already asked
    job = take[0].job
    assert update() == [ev.WakeFrames()]  # came while encoding: no second request yet
    assert r.do(ev.FrameEncoded(job, b"f1")) == [ev.SendFrame(b"f1", job), ev.RequestUpdate()]
    assert update() == [ev.RequestUpdate(), ev.WakeFrames()]
    second = r.do(ev.FrameDue())
    assert len(second) == 1 and isinstance(second[0], ev.EncodeFrame)
    assert r.do(ev.FrameEncoded(second[0].job, b"f2")) == [ev.SendFrame(b"f2", second[0].job)]
    # Two frames unacknowledged: the update that was asked for is read, no more are asked for.
    assert update() == [ev.WakeFrames()]
    assert r.do(ev.FrameDue()) == []
    r.send(w.Ack(second[0].job.frame_id))
    third = r.do(ev.FrameDue())
    assert third[0] == ev.RequestUpdate() and isinstance(third[1], ev.EncodeFrame)


def test_a_small_update_is_taken_in_its_own_step() -> None:
    """A typed glyph's update (damage of at most FAST_FRAME_PIXELS) is taken with its
    DesktopUpdated: the next update asked for first, then EncodeFrame, no WakeFrames hop. Not
    while a frame encodes, not with a shut window, not for a key frame or big damage."""
    r = Rig()
    r.do(ev.DesktopReady())
    r.do(ev.Attached())
    r.fb.fill(0, 0, 8, 16, b"\xff\xff\xff\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]  # no Resume yet: not LIVE
    r.send(w.Resume(w.VERSION))
    r.fb.fill(0, 0, 8, 16, b"\xff\xff\xff\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.RequestUpdate(), ev.WakeFrames()]  # a key frame due
    key = r.do(ev.FrameDue())[-1].job  # type: ignore[union-attr]
    assert isinstance(key.head[0], w.Hello)
    r.do(ev.FrameEncoded(key, b"k"))
    r.fb.fill(40, 20, 8, 16, b"\x00\x00\xff\x00")
    out = r.do(ev.DesktopUpdated())
    assert len(out) == 2 and out[0] == ev.RequestUpdate() and isinstance(out[1], ev.EncodeFrame)
    glyph = out[1].job
    assert glyph.head == () and glyph.pixels == 8 * 16
    assert r.do(ev.FrameDue()) == []  # nothing left, a request outstanding
    r.fb.fill(60, 20, 8, 16, b"\x00\xff\x00\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]  # came while encoding: as before
    # Two frames unacknowledged (the key frame and the glyph): the window is shut.
    assert r.do(ev.FrameEncoded(glyph, b"g")) == [ev.SendFrame(b"g", glyph)]
    r.fb.fill(80, 20, 8, 16, b"\x00\xff\x00\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]
    r.send(w.Ack(key.frame_id))
    taken = r.do(ev.DesktopUpdated(observer_key=True))  # an observer joined: its key frame too
    job = taken[-1].job  # type: ignore[union-attr]
    assert job.observer_key is not None and isinstance(job.observer_key.head[0], w.Hello)
    r.do(ev.FrameEncoded(job, b"o"))
    r.send(w.Ack(glyph.frame_id), w.Ack(job.frame_id))
    r.fb.fill(0, 0, 100, 100, b"\x10\x10\x10\x00")  # more than a glyph: FrameDue takes it
    assert r.do(ev.DesktopUpdated()) == [ev.RequestUpdate(), ev.WakeFrames()]


def paced(rate: int) -> tuple[Rig, float]:
    """A live rig whose frame pacing takes at most ``rate`` big frames a second: its key frame
    went out and was acknowledged a second ago, and a big change is on its desktop now."""
    r = Rig()
    r.m.pipeline.pacing.gap = gap = frame_gap(rate)
    r.live()
    key = r.do(ev.FrameDue())[-1].job  # type: ignore[union-attr]
    r.do(ev.FrameEncoded(key, b"k"))
    r.send(w.Ack(key.frame_id))
    r.clock.advance(1.0)
    r.fb.fill(0, 0, 200, 100, b"\xff\xff\xff\x00")
    return r, gap


def test_after_a_big_frame_the_desktop_is_asked_again_only_when_the_pacing_ends() -> None:
    """With the live session's frame pacing, a desktop that redraws flat out is asked for its
    next update only max_frame_rate times a second, half a gap after a big frame, and once an
    update with a big change came, not again until its frame is taken (its changes pile up in
    the desktop, not in the gateway's CPU); the frame timer says when; a typed glyph still
    goes at once."""
    r, gap = paced(30)
    assert r.do(ev.DesktopUpdated()) == [ev.RequestUpdate(), ev.WakeFrames()]  # read ahead
    big = r.do(ev.FrameDue())
    assert [type(o) for o in big] == [ev.EncodeFrame]
    taken_at = r.clock.wall
    r.clock.advance(0.005)
    assert r.do(ev.FrameEncoded(big[0].job, b"b")) == [ev.SendFrame(b"b", big[0].job)]
    # The request read ahead is outstanding: its answer wakes the sender, no timer is needed.
    assert r.m.frame_timer(r.clock.now()) is None
    # The update read ahead brings a small change the desktop made by itself (a pointer a
    # program moved): it waits for the gap's end like any other.
    r.fb.fill(200, 110, 8, 16, b"\x00\xff\x00\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]
    assert r.do(ev.FrameDue()) == []
    # The teacher types: the glyph is taken at once, with the pointer's box; nothing more is
    # asked for.
    assert r.send(w.Key(0x61, True))[0] == ev.KeyToDesktop(0x61, True)
    r.fb.fill(120, 110, 8, 16, b"\x00\x00\xff\x00")
    glyph = r.do(ev.DesktopUpdated())
    assert [type(o) for o in glyph] == [ev.EncodeFrame]
    assert glyph[0].job.pixels == 2 * 8 * 16  # type: ignore[union-attr]
    r.do(ev.FrameEncoded(glyph[0].job, b"g"))  # type: ignore[union-attr]
    r.send(w.Ack(glyph[0].job.frame_id))  # type: ignore[union-attr]
    # Nothing is outstanding now: the request is owed at the holding's end.
    assert r.m.frame_timer(r.clock.now()) == pytest.approx(taken_at + gap / 2, abs=1e-6)
    r.clock.advance(gap / 3)
    assert r.do(ev.FrameDue()) == []  # still in the gap's first half: nothing asked for
    r.clock.advance(gap / 3)
    assert r.do(ev.FrameDue()) == [ev.RequestUpdate()]  # ask again, in time for the gap's end
    r.fb.fill(0, 0, 200, 100, b"\x10\x10\x10\x00")  # the desktop answers with a big change
    # It waits for the gap's end, and so does the next request: more updates read now would
    # only be merged into this frame, each parsed (part AP).
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]
    assert r.do(ev.FrameDue()) == []
    assert r.m.frame_timer(r.clock.now()) == pytest.approx(taken_at + gap, abs=1e-6)
    r.clock.wall = taken_at + gap
    second = r.do(ev.FrameDue())
    assert [type(o) for o in second] == [ev.EncodeFrame]
    assert r.do(ev.FrameEncoded(second[0].job, b"s")) == [  # type: ignore[union-attr]
        ev.SendFrame(b"s", second[0].job)]  # type: ignore[union-attr]
    # The next request is owed half a gap after that frame, as after the first.
    assert r.m.frame_timer(r.clock.now()) == pytest.approx(taken_at + 1.5 * gap, abs=1e-6)


def test_an_update_from_the_gaps_first_half_does_not_stop_the_ask_at_its_middle() -> None:
    """The one-read-ahead rule (part AP) counts only an update that came while a paced frame
    waited, in the gap's second half: one read ahead from the first half leaves the ask at the
    middle as it was, however the shell's calls fall in between."""
    r, gap = paced(30)
    assert r.do(ev.DesktopUpdated()) == [ev.RequestUpdate(), ev.WakeFrames()]  # read ahead
    big = r.do(ev.FrameDue())[-1].job  # type: ignore[union-attr]
    taken_at = r.clock.wall
    r.do(ev.FrameEncoded(big, b"b"))
    r.send(w.Ack(big.frame_id))
    r.clock.wall = taken_at + gap / 4  # the update read ahead comes, with a big change
    r.fb.fill(0, 100, 200, 100, b"\x10\x10\x10\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]  # holding: nothing asked
    r.clock.wall = taken_at + gap * 0.6  # the first call after it, in the second half
    assert r.do(ev.FrameDue()) == [ev.RequestUpdate()]


def test_a_pacing_timer_that_fires_early_is_followed_by_another_never_by_none() -> None:
    """The shell's timers may fire a little before their time (uvloop rounds them to the
    millisecond), and its clock moves on between a FrameDue and the next frame_timer. A
    request or a frame the pacing turned away must keep a timer all the same: with none, a
    desktop that redraws flat out under display.max_frame_rate waited for the watermark's
    minute (a CI run saw it draw 0.3 frames a second)."""
    r, gap = paced(10)
    r.do(ev.DesktopUpdated())  # read ahead: a request is outstanding
    big = r.do(ev.FrameDue())[-1].job  # type: ignore[union-attr]
    taken_at = r.clock.wall
    r.do(ev.DesktopUpdated())  # the desktop answers, unchanged: nothing outstanding now
    assert r.do(ev.FrameEncoded(big, b"b")) == [ev.SendFrame(b"b", big)]  # holding: not asked
    r.send(w.Ack(big.frame_id))
    ask = taken_at + gap / 2
    r.clock.wall = ask - 0.0001  # the timer fired a tenth of a millisecond early
    assert r.do(ev.FrameDue()) == []
    r.clock.wall = ask + 0.0001  # and the shell's clock has passed the holding's end since
    timer = r.m.frame_timer(r.clock.now())
    assert timer is not None and timer <= r.clock.wall
    assert r.do(ev.FrameDue()) == [ev.RequestUpdate()]
    assert r.m.frame_timer(r.clock.now()) is None  # asked: nothing owed, no timer spins
    # The same at the gap's end, for a big change the pacing held back.
    r.fb.fill(0, 0, 200, 100, b"\x10\x10\x10\x00")
    assert r.do(ev.DesktopUpdated()) == [ev.WakeFrames()]  # nothing more asked: part AP
    assert r.m.frame_timer(r.clock.now()) == pytest.approx(taken_at + gap, abs=1e-6)
    r.clock.wall = taken_at + gap - 0.0001
    assert r.do(ev.FrameDue()) == []
    r.clock.wall = taken_at + gap + 0.0001
    timer = r.m.frame_timer(r.clock.now())
    assert timer is not None and timer <= r.clock.wall
    assert [type(o) for o in r.do(ev.FrameDue())] == [ev.EncodeFrame]


def test_an_observer_gets_a_key_frame_of_the_same_instant() -> None:
    r = Rig().live()
    first = r.do(ev.FrameDue())
    r.do(ev.FrameEncoded(first[-1].job, b"f"))  # type: ignore[union-attr]
    r.send(w.Ack(1))
    out = r.do(ev.FrameDue(observer_key=True))
    job = out[-1].job  # type: ignore[union-attr]
    assert job.observer_key is not None and isinstance(job.observer_key.head[0], w.Hello)


# --- the clock ---------------------------------------------------------------------------------

def test_idle_warns_then_ends_on_time() -> None:
    r = Rig(limits=Limits(idle_timeout=120, max_duration=3600, reconnect_grace=45)).live()
    r.clock.advance(59)
    assert r.do(ev.Tick()) == []
    r.clock.advance(1)
    warn = sent(r.do(ev.Tick()))
    assert warn == [w.Notice(w.NoticeLevel.WARNING, w.NoticeCode.IDLE, "No input for a while: "
                             "the session ends in 60 seconds unless you type or move the mouse.")]
    assert r.do(ev.Tick()) == []  # warned once
    r.clock.advance(30)
    r.send(w.Key(0x20, True))  # input: the clock starts again
    r.clock.advance(119)
    assert sent(r.do(ev.Tick()))[0].code == w.NoticeCode.IDLE  # type: ignore[attr-defined]
    r.clock.advance(1)
    record = assert_ended(r.do(ev.Tick()), w.EndCode.IDLE_TIMEOUT)
    assert record.reason == ("Your session ended after 2 minutes without input. Connect again "
                             "to continue.")
    assert record.active_minutes == 1 and record.duration_seconds == 210


def test_the_duration_limit_warns_then_ends_even_while_typing() -> None:
    r = Rig(limits=Limits(idle_timeout=900, max_duration=3600, reconnect_grace=45)).live()
    for _ in range(54):
        r.clock.advance(60)
        r.send(w.Key(0x20, True))
        assert sent(r.do(ev.Tick())) == []
    r.clock.advance(60)
    [notice] = sent(r.do(ev.Tick()))
    assert notice == w.Notice(w.NoticeLevel.WARNING, NOTICE_TIME_LIMIT, "Your session reaches "
                              "its limit of 1 hour in 5 minutes: save your work.")
    r.clock.advance(299)
    r.send(w.Key(0x20, True))
    assert sent(r.do(ev.Tick())) == []  # warned once
    r.clock.advance(1)
    out = r.do(ev.Tick())
    record = assert_ended(out, w.EndCode.TIME_LIMIT)
    assert record.reason == "Your session reached its limit of 1 hour. Connect again to continue."
    assert isinstance(out[1], ev.SendReceipt) and out[1].work["duration_seconds"] == 3600


def test_a_work_hours_checkpoint_every_fifteen_minutes() -> None:
    r = Rig().live()
    r.send(w.Key(0x20, True))
    r.clock.advance(ACTIVITY_EVERY)
    r.send(w.Key(0x20, True))
    [record] = audits(r.do(ev.Tick()))
    assert isinstance(record, SessionActivity)
    assert (record.duration_seconds, record.active_minutes, record.idle_minutes) == (900, 2, 13)
    assert audits(r.do(ev.Tick())) == []


# --- resume hand-over, the end -----------------------------------------------------------------

def test_a_lost_tunnel_waits_for_a_resume_within_the_grace() -> None:
    r = Rig(posture=PosturePolicy(recheck_every=timedelta(seconds=60))).live()
    r.send(w.Help(w.HelpAction.ASK))
    r.clock.advance(10)
    assert r.do(ev.Detached()) == [] and r.m.phase is Phase.GRACE
    assert r.m.deadline() == r.clock.mono + 45
    r.clock.advance(44)
    assert r.do(ev.Tick()) == []  # no idle end, no posture clock while detached
    out = r.do(ev.Attached())  # the resume: the page is told the help as it stands
    assert sent(out) == [w.HelpState(w.HelpStatus.ASKED, "")]
    assert r.m.phase is Phase.LIVE and r.m.deadline() is None
    assert r.m.posture_watch is not None and r.m.posture_watch.last_report == r.clock.mono
    assert r.send(w.Key(0x61, True))[0] == ev.WakeFrames()  # input waits for the new Resume
    r.send(w.Resume(w.VERSION))
    assert r.send(w.Key(0x61, True))[0] == ev.KeyToDesktop(0x61, True)


def test_a_lost_tunnel_not_resumed_ends_at_the_deadline_without_a_receipt() -> None:
    r = Rig().live()
    r.do(ev.Detached())
    r.clock.advance(45)
    out = r.do(ev.Tick())
    assert_ended(out, w.EndCode.NORMAL)
    assert not any(isinstance(o, ev.SendReceipt) for o in out)  # nobody to give it to
    assert out[-1].text == "The connection was lost and not resumed."  # type: ignore[union-attr]
    zero = Rig(limits=Limits(900, 3600, 0)).live()
    assert_ended(zero.do(ev.Detached()), w.EndCode.NORMAL)


def test_a_session_another_node_resumed_is_let_go_without_an_end_record() -> None:
    r = Rig().live()
    r.do(ev.Detached())
    out = r.do(ev.HandedOver("node-b"))
    assert [type(o) for o in out] == [ev.Close]  # no session.end, no receipt: it goes on
    close = out[0]
    assert isinstance(close, ev.Close) and not close.to_viewer
    assert close.code == w.EndCode.REPLACED and "node-b" in close.text
    assert r.m.ended and r.m.handed_over
    for event in (ev.Tick(), ev.Attached(), ev.HandedOver("node-c"),
                  ev.Terminate(w.EndCode.NORMAL, "late")):
        assert r.do(event) == []


def test_an_officer_terminates_audit_then_receipt_then_end_then_nothing() -> None:
    r = Rig().live()
    out = r.do(ev.Terminate(w.EndCode.TERMINATED, "An officer ended this session: audit."))
    assert [type(o) for o in out] == [ev.Audit, ev.SendReceipt, ev.Close]
    assert_ended(out, w.EndCode.TERMINATED)
    for event in (ev.Tick(), ev.DesktopLost(), ev.Terminate(w.EndCode.NORMAL, "again"),
                  ev.Attached(), ev.HelperJoin("h", "h")):
        assert r.do(event) == []


def test_a_lost_desktop_and_a_broken_recording_end_the_session() -> None:
    assert_ended(Rig().live().do(ev.DesktopLost()), w.EndCode.DESKTOP_LOST)
    r = Rig(recording=True).live()
    assert r.do(ev.Tick())[-1] == ev.TickRecorder()
    out = r.do(ev.RecordingBroken("The recordings disk is full."))
    assert out[0] == ev.Audit(RecordingStopped(error="The recordings disk is full."))
    record = assert_ended(out, w.EndCode.SERVER_SHUTDOWN)
    assert record.reason.startswith("The recordings disk is full. The session ended because")


# --- posture re-checks -------------------------------------------------------------------------

def test_a_failing_recheck_warns_then_ends_after_the_grace() -> None:
    policy = PosturePolicy(recheck_every=timedelta(seconds=60), fail_grace=timedelta(seconds=30))
    r = Rig(posture=policy).live()
    ok = r.do(ev.ViewerText(r.recheck(1, report(av()).to_json())))
    assert ok == [ev.CountRecheck("ok"), ev.Audit(PostureChecked("ok", seq=1,
                                                                 reason="interval"))]
    stale = report(av(age=timedelta(days=9))).to_json()
    out = r.do(ev.ViewerText(r.recheck(2, stale)))
    assert out[0] == ev.CountRecheck("failed") and audits(out)[0].outcome == "failed"  # type: ignore
    [warning] = sent(out)
    assert warning.level == w.NoticeLevel.WARNING and warning.code == w.NoticeCode.POSTURE  # type: ignore
    replay = r.do(ev.ViewerText(r.recheck(2, report(av()).to_json())))
    assert audits(replay) == [PostureChecked("refused", seq=2, error="replayed", last_seq=2)]
    forged = r.do(ev.ViewerText(Rig().recheck(3, report(av()).to_json())))  # another key
    assert audits(forged) == [PostureChecked("refused", seq=3, error="bad-signature")]
    r.clock.advance(30)
    assert_ended(r.do(ev.Tick()), w.EndCode.POSTURE)


def test_a_malformed_recheck_is_a_protocol_error() -> None:
    r = Rig(posture=PosturePolicy()).live()
    out = r.do(ev.ViewerText('{"type": "posture", "seq": 0}'))
    assert out[0].event.error.startswith("posture report: seq")  # type: ignore[union-attr]
    assert_ended(out, w.EndCode.PROTOCOL_ERROR)


# --- call-centre help ----------------------------------------------------------------------------

def test_help_asked_joined_controlled_and_ended_each_audited_first() -> None:
    r = Rig(recording=True).live()
    ask = r.send(w.Help(w.HelpAction.ASK))
    assert ask[0] == ev.Audit(HelpRequested(helper=None, action="ask"))
    assert ask[1] == ev.MarkRecording("help", "help.request")
    assert sent(ask) == [w.HelpState(w.HelpStatus.ASKED, "")]
    assert r.do(ev.HelperJoin("h.1", "窓口 (h.1)"))[:2] == [
        ev.AdmitHelper(), ev.PostHelper(w.encode(w.HelpState(w.HelpStatus.WATCHING,
                                                             "窓口 (h.1)")))]
    assert r.do(ev.HelperJoin("h.2", "other")) == [
        ev.RefuseHelper("h.1 is already helping this teacher.")]
    blocked = r.do(ev.HelperInput("h.1", w.Key(0x61, True)))
    assert blocked == [ev.Audit(HelpInputBlocked(helper="h.1",
                                                 reason="the teacher has not given control"))]
    assert r.do(ev.HelperInput("h.1", w.Key(0x61, True))) == []  # audited once per view
    r.send(w.Help(w.HelpAction.ALLOW_CONTROL))
    assert r.do(ev.HelperInput("h.1", w.Pointer(999, 999, 0x1FF))) == [
        ev.PointerToDesktop(255, 127, 0xFF)]
    end = r.send(w.Help(w.HelpAction.END))
    assert end[0] == ev.Audit(HelpEnded(helper="h.1", action="end"))
    assert end[-2:] == [ev.DropHelper(), ev.WakeFrames()]
    assert r.do(ev.HelperLeft("h.1")) == []  # the teacher's end already let them go
    assert audits(r.do(ev.HelperBroke("h.1", "bad"))) == [HelpProtocolError(helper="h.1",
                                                                             error="bad")]


def test_help_requests_are_limited_per_session() -> None:
    r = Rig().live()
    for _ in range(40):
        r.send(w.Help(w.HelpAction.ASK))
        r.send(w.Help(w.HelpAction.END))
    assert r.m.help_asks == 20
    assert sum(isinstance(e, HelpRequested) for out in r.log for e in audits(out)) == 20


# --- properties ----------------------------------------------------------------------------------

VIEWER = st.one_of(
    st.builds(w.Resume, st.sampled_from([w.VERSION, w.VERSION + 1])),
    st.builds(w.Ack, st.integers(0, 6)),
    st.builds(w.Key, st.integers(0, 0xFFFF), st.booleans()),
    st.builds(w.Pointer, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.builds(w.Ping, st.integers(0, 2**63)),
    st.builds(w.ClipboardIn, st.text(max_size=40)),
    st.builds(w.Blocked, st.integers(0, 255)),
    st.builds(w.Help, st.sampled_from(list(w.HelpAction))),
)
INPUTS = st.one_of(
    VIEWER.map(lambda m: ev.ViewerBytes(w.encode(m))),
    st.binary(max_size=24).map(ev.ViewerBytes),
    st.text(max_size=40).map(ev.ViewerText),
    st.sampled_from([ev.Attached(), ev.Detached(), ev.Tick(), ev.DesktopUpdated(),
                     ev.DesktopResized(), ev.DesktopReady(), ev.FrameDue(), ev.FrameDue(True),
                     ev.WatcherJoined(), ev.HelperLeft("h"), ev.DesktopLost(),
                     ev.RecordingBroken("disk full."),
                     ev.Terminate(w.EndCode.TERMINATED, "by an officer")]),
    st.builds(ev.DesktopClipboard, st.text(max_size=30), st.integers(0, 99)),
    st.builds(ev.HelperJoin, st.sampled_from(["h", "g"]), st.just("name")),
    st.builds(ev.HelperInput, st.sampled_from(["h", "g"]),
              st.builds(w.Key, st.integers(0, 99), st.booleans())),
)
STEPS = st.lists(st.tuples(INPUTS, st.floats(0, 400) | st.just(0.0)), max_size=40)


def needs_record(o: ev.Output) -> type | tuple[type, ...] | None:
    """The audit kind that must come before this effect in the same list, if any."""
    if isinstance(o, ev.ClipboardToDesktop):
        return ClipboardCopied
    if isinstance(o, ev.SendViewer) and any(isinstance(m, w.ClipboardOut)
                                            for m in decoded(o.data)):
        return ClipboardCopied
    if isinstance(o, ev.Close):
        return SessionEnded
    if isinstance(o, ev.DropHelper):
        return HelpEnded
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, clipboard=st.sampled_from(["off", "to-remote", "to-local", "both"]))
def test_no_input_sequence_raises_and_every_effect_follows_its_record(
        steps: list[tuple[ev.Input, float]], clipboard: str) -> None:
    r = Rig(clipboard=clipboard, recording=True,
            posture=PosturePolicy(recheck_every=timedelta(seconds=60))).live()
    closes = 0
    for event, dt in steps:
        r.clock.advance(dt)
        was_ended = r.m.ended
        if isinstance(event, ev.FrameEncoded):
            continue
        out = r.do(event)
        if was_ended:
            assert out == []
            continue
        for i, o in enumerate(out):
            kind = needs_record(o)
            if kind is not None:
                assert any(isinstance(p, ev.Audit) and isinstance(p.event, kind)
                           for p in out[:i]), out
            if isinstance(o, ev.Audit):
                assert o.required == (not isinstance(o.event, SessionEnded))
        if any(isinstance(o, ev.EncodeFrame) for o in out):
            job = next(o.job for o in out if isinstance(o, ev.EncodeFrame))
            r.do(ev.FrameEncoded(job, b"x" * 10))
        closes += sum(isinstance(o, ev.Close) for o in out)
        if closes:
            assert r.m.phase is Phase.ENDED and isinstance(out[-1], ev.Close)
    assert closes == (1 if r.m.ended else 0)
