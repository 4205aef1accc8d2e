"""The frame pipeline: framebuffer damage -> watermark -> tiles -> display messages, paced by Acks.

Attacker-controlled: every viewer message (bytes through receive_data). Limits: at most
``max_unacked`` frames and ``max_bytes_in_flight`` bytes unacknowledged (damage accumulates in the
framebuffer meanwhile, never a queue); Acks for unsent frames and foreign versions are errors;
pointer coordinates are clamped to the desktop; clipboard text (≤ wire.MAX_CLIPBOARD) comes out
only if the Hello flags allow to-remote; Blocked reports and refusals come out at most once a
second per kind (the rest are counted into the next one), so a viewer cannot flood the audit.
Pure: no I/O, the clock is passed in (``now``, Unix seconds as from time.time()).

Shell usage::

    job = pipeline.take_frame(now)                    # on the loop; None = nothing to send now
    data = await loop.run_in_executor(None, encode_frame, job)
    pipeline.frame_sent(job, len(data), now); await ws.send_bytes(data)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from gateway.display.canvas_stamps import CanvasStamps
from gateway.display.encoder import Drift, EncodeSettings
from gateway.display.frame_job import FrameJob, encode_frame
from gateway.display.framebuffer import CopyOp, Damage, Framebuffer, tiles_in
from gateway.display.ink_copies import ink_copies
from gateway.display.link import Link
from gateway.display.pacing import ECHO_SECONDS, SMALL_FRAME_PIXELS, FramePacing
from gateway.display.refine import REFINE_AFTER, REFINE_MIN_QUALITY, LossyTiles
from gateway.display.regions import snapshot
from gateway.display.scroll import MIN_TILES, RowHashes
from gateway.display.viewer_actions import (
    Action,
    BlockedAttempt,
    ClipboardInput,
    ClipboardRefused,
    HelpRequest,
    KeyInput,
    PointerInput,
    Reply,
    ReportLimiter,
)
from gateway.display.watermark import Watermark, WatermarkLayer
from gateway.wire import display as wire

log = logging.getLogger(__name__)

#: Policy display.quality: how photo-like boxes go out. JPEG then lossless once still (refine.py),
#: JPEG only (fewest bytes: metered links), or never JPEG.
QUALITIES = ("build-to-lossless", "lossy", "lossless")


class UnsupportedVersion(wire.ProtocolError):
    code = wire.EndCode.UNSUPPORTED_VERSION


class ViewerMisbehaved(wire.ProtocolError):
    """A well-formed message that makes no sense now (e.g. an Ack for a frame never sent)."""


_CLIPBOARD_FLAGS = {
    "off": 0,
    "to-remote": wire.HelloFlags.CLIPBOARD_TO_REMOTE,
    "to-local": wire.HelloFlags.CLIPBOARD_TO_LOCAL,
    "both": wire.HelloFlags.CLIPBOARD_TO_REMOTE | wire.HelloFlags.CLIPBOARD_TO_LOCAL,
}


def clipboard_flags(setting: str) -> int:
    """Hello flags for the policy's `redirection.clipboard` ("off", "to-remote", …)."""
    return int(_CLIPBOARD_FLAGS[setting])


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str = ""
    info: str = ""  # shown by the viewer (e.g. "Staffroom — 東小学校")
    flags: int = 0  # wire.HelloFlags


class DisplayPipeline:
    def __init__(
        self,
        framebuffer: Framebuffer,
        *,
        watermark: Watermark | None = None,
        session: SessionInfo | None = None,
        max_unacked: int = 2,
        max_bytes_in_flight: int = 4 * 1024 * 1024,
        settings: EncodeSettings | None = None,
        detect_scroll: bool = True,
        quality: str = "build-to-lossless",
        min_frame_gap: float = 0.0,
    ) -> None:
        if quality not in QUALITIES:
            raise ValueError(f"display quality {quality!r} is not one of {QUALITIES}")
        self.fb = framebuffer
        self._stamps = CanvasStamps(framebuffer, watermark)
        self.session = session or SessionInfo()
        self.max_unacked = max_unacked
        self.max_bytes_in_flight = max_bytes_in_flight
        self.settings = settings or EncodeSettings()
        if quality == "lossless":
            self.settings = replace(self.settings, lossy=False)
        self.refine = quality == "build-to-lossless"  # else JPEG'd boxes are never marked
        self.attached = False  # no frames until the viewer's Resume
        self.last_input: float | None = None
        self._last_key: float | None = None  # lossless refreshes wait for a pause in typing
        self._link = Link(quality=self.settings.jpeg_quality)
        self._version = wire.VERSION  # the viewer's, from its Resume
        self._palette = self.settings.palette
        self._packed_palette = self.settings.packed_palette
        self._decoder = wire.DisplayDecoder(wire.Direction.TO_GATEWAY)
        self._need_key = False
        self._observer_key = False
        self._next_id = 1
        self._reports = ReportLimiter()  # blocked attempts and refusals: one a second per kind
        self.detect_scroll = detect_scroll
        self.ink_copies = True  # stamped background re-sent as a Copy (ink_copies.py)
        self.pacing = FramePacing(min_frame_gap)  # policy display.max_frame_rate (pacing.py)
        self._hashes = RowHashes()
        self._lossy = LossyTiles(framebuffer.tile)  # JPEG'd tiles, re-sent lossless when still
        framebuffer.on_copy = self._on_copy

    @property
    def watermark(self) -> Watermark | None:
        return self._stamps.watermark

    @watermark.setter
    def watermark(self, watermark: Watermark | None) -> None:
        self._stamps.watermark = watermark

    @property
    def _layer(self) -> WatermarkLayer | None:
        """The watermark layer the viewer's canvas shows."""
        return self._stamps.layer

    @property
    def _drift(self) -> Drift:
        """Per tile, where the viewer's stamps sit once this frame is taken (tests compare the
        canvas with the desktop plus the layer moved by it)."""
        return self._stamps.drift

    # --- viewer -> gateway -----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Action]:
        """Feed bytes from the viewer; returns input for the RFB side and replies to send."""
        self._decoder.feed(data)
        actions: list[Action] = []
        while not isinstance(ev := self._decoder.next_event(), wire.Sentinel):
            actions.extend(self.receive(ev, now))
        return actions

    def receive(self, msg: wire.Message, now: float) -> list[Action]:
        match msg:
            case wire.Resume(version=v):
                if not wire.MIN_VERSION <= v <= wire.VERSION:
                    raise UnsupportedVersion(f"viewer speaks version {v}")
                # An older agent's page gets its own version back: no PALETTE tiles for version
                # 2, PALETTE rather than PALETTE_PACKED for version 3.
                self._version = v
                self.settings = replace(self.settings, palette=self._palette and v >= 3,
                                        packed_palette=self._packed_palette and v >= 4)
                self.attached, self._need_key = True, True
                self._link.in_flight.clear()  # that viewer's frames are gone
            case wire.Ack(frame_id=fid):
                self._ack(fid, now)
            case wire.Ping(t=t):
                return [Reply(wire.encode(wire.Pong(t)))]
            case wire.Key(keysym=k, down=d) if self._input_allowed():
                self.last_input = self._last_key = now
                return [KeyInput(k, d)]
            case wire.Pointer(x=x, y=y, buttons=b) if self._input_allowed():
                self.last_input = now
                x, y = min(x, max(0, self.fb.width - 1)), min(y, max(0, self.fb.height - 1))
                return [PointerInput(x, y, b & 0xFF)]
            case wire.Key() | wire.Pointer():
                pass  # view-only or not attached: dropped
            case wire.ClipboardIn(text=text):
                return self._clipboard_in(text, now)
            case wire.Blocked(kind=k):
                n = self._reports.report(("blocked", k), now)
                return [] if n is None else [BlockedAttempt(k, n)]
            case wire.Help(action=a):
                return [HelpRequest(a)]
            case _:
                raise ViewerMisbehaved(f"{type(msg).__name__} is not a viewer message")
        return []

    def _input_allowed(self) -> bool:
        return self.attached and not self.session.flags & wire.HelloFlags.VIEW_ONLY

    def _clipboard_in(self, text: str, now: float) -> list[Action]:
        # Policy is the session's; this only refuses what the Hello flags never offered.
        if not self._input_allowed():
            reason = "input not allowed (view-only or before Resume)"
        elif not self.session.flags & wire.HelloFlags.CLIPBOARD_TO_REMOTE:
            reason = "clipboard to the desktop is off"
        else:
            return [ClipboardInput(text)]
        n = self._reports.report(("refused", reason), now)
        return [] if n is None else [ClipboardRefused(len(text.encode()), reason, n)]

    def clipboard_out(self, text: str) -> bytes | None:
        """Encoded ClipboardOut, or None if the Hello flags do not allow to-local (the session
        decides by policy first; this is the second check). ValueError over wire.MAX_CLIPBOARD."""
        if not (self.attached and self.session.flags & wire.HelloFlags.CLIPBOARD_TO_LOCAL):
            return None
        return wire.encode(wire.ClipboardOut(text))

    def _ack(self, fid: int, now: float) -> None:
        if fid >= self._next_id:
            raise ViewerMisbehaved(f"ack for frame {fid} that was never sent")
        if self._link.ack(fid, now):
            self.settings = replace(self.settings, jpeg_quality=self._link.quality)

    # --- gateway -> viewer -----------------------------------------------------------------

    @property
    def rtt(self) -> float | None:
        return self._link.srtt

    def can_send(self) -> bool:
        return self.attached and self._link.can_send(self.max_unacked, self.max_bytes_in_flight)

    def small_update(self, max_pixels: int, now: float) -> bool:
        """Whether take_frame would now send only damage boxes of at most ``max_pixels`` in all
        (a typed glyph): the window is open, no key frame, resize, copy or watermark change is
        due. Cheap (one pass over the damaged tiles), so the session machine can take such a
        frame in the update's own step."""
        fb = self.fb
        if (not self.can_send() or fb.width == 0 or self._need_key or self._observer_key
                or fb.copies or fb.resized or not fb.damage
                or (self.pacing.gap and not self._echo(now))):  # fmt: skip
            return False
        timer = self._content_timer(now)
        if timer is not None and timer <= now:
            return False
        return self._damage_within(max_pixels)

    def _damage_within(self, max_pixels: int) -> bool:
        area = 0
        for x0, y0, x1, y1 in self.fb.damage.values():
            area += (x1 - x0) * (y1 - y0)
            if area > max_pixels:
                return False
        return True

    def holding(self, now: float) -> bool:
        """The frame pacing asks the desktop for nothing now (next_timer says until when)."""
        return self.pacing.holding(now)

    def waits_for_gap(self, now: float) -> bool:
        """A big change is in, past the gap's first half, and its frame waits for the gap's
        end. Updates read after it would only be merged into that frame: at the teachers' Xvnc
        frame clock (gateway.workspace.desktop.FRAME_RATE) one came every 4 ms, each parsed,
        so the shell asks for none until the frame is taken (part AP)."""
        fb = self.fb
        return bool(self.pacing.gap and (fb.damage or fb.copies)
                    and not self.pacing.holding(now) and self.pacing.holds_back(now)
                    and not (self._need_key or self._observer_key or self._small(now)))

    def _small(self, now: float) -> bool:
        """The pending change is a typed glyph's size (SMALL_FRAME_PIXELS, no copies) and
        follows the viewer's own input (pacing.py)."""
        fb = self.fb
        return self._echo(now) and not fb.copies and not fb.resized \
            and self._damage_within(SMALL_FRAME_PIXELS)

    def _echo(self, now: float) -> bool:
        """Within ECHO_SECONDS of the viewer's last key or pointer input."""
        return self.last_input is not None and now - self.last_input <= ECHO_SECONDS

    def request_observer_key_frame(self) -> None:
        """A recorder or live watcher joins: the next frame carries a key frame for it too."""
        self._observer_key = True

    def next_timer(self, now: float, *, asking: bool = False) -> float | None:
        """When take_frame has work even without damage (the watermark changes, or JPEG'd
        tiles are due to be re-sent lossless while the window is open), or the frame pacing
        needs a FrameDue (``asking``: the shell owes the desktop a request; pacing.py)."""
        due = self._content_timer(now)
        if self.pacing.gap and self.can_send():
            fb = self.fb
            paced = self.pacing.until(ask=asking, take=bool(fb.damage or fb.copies))
            if paced is not None:
                due = paced if due is None else min(due, paced)
        return due

    def _content_timer(self, now: float) -> float | None:
        # The watermark's time may be past (a FrameDue refreshes it): only while take_frame
        # would get that far, or the timer would spin. An Ack that opens the window wakes the
        # sender anyway.
        at = self._stamps.next_change(now) if self.can_send() and self.fb.width else None
        due = self._refine_at()
        return due if at is None else at if due is None else min(at, due)

    def _refine_at(self) -> float | None:
        """When the next lossless refresh may go out: when the earliest JPEG'd box is due,
        and not within REFINE_AFTER of a key (a keystroke's frame does not wait behind a
        refresh's encode). None while the link does not carry the default JPEG quality (one
        that shows queueing gets no extra bytes) or the window is shut (an Ack wakes the
        sender, so that needs no timer)."""
        due = self._lossy.next_due()
        if due is None or self._link.quality < REFINE_MIN_QUALITY or not self.can_send():
            return None
        return due if self._last_key is None else max(due, self._last_key + REFINE_AFTER)

    def take_frame(self, now: float) -> FrameJob | None:
        """Snapshot one frame's work if the window allows and there is anything to send: the
        damage, and JPEG'd boxes due for their lossless refresh (gateway/display/refine.py)."""
        if not self.can_send() or self.fb.width == 0:
            return None
        self._stamps.refresh(now)
        fb = self.fb
        key = self._need_key
        due = self._refine_at()
        refine = due is not None and due <= now
        if not (key or self._observer_key or fb.damage or fb.copies or fb.cursor_dirty
                or fb.resized or refine):  # fmt: skip
            return None
        small = False
        if self.pacing.gap:  # no pacing, no counting of the damage: nothing added per frame
            small = not key and self._small(now)  # a key frame re-sends everything: a big one
            if not (key or self._observer_key or refine or small) and self.pacing.holds_back(now):
                return None  # next_timer says when
        detected = self._detect_scroll(key)
        self._stamps.settle(key or fb.resized, detected)
        touched, parts, resent = fb.touched, fb.parts, fb.resent()
        copies, damage, resized = fb.take()
        if key or resized or not self._hashes.matches(fb):
            self._hashes.reset(fb)
        else:
            self._hashes.update(fb, touched, copies, damage)
        head: list[wire.ToViewer] = []
        if key:
            head.append(self._hello())
            damage = self._all_tiles()
        elif resized:
            head.append(wire.Resize(fb.width, fb.height))
            damage = self._all_tiles()
        else:
            head.extend(wire.Copy(c.src_x, c.src_y, c.dst_x, c.dst_y, c.w, c.h) for c in copies)
        snaps = snapshot(fb, damage, {} if key or resized else parts)
        if key or resized:
            self._lossy.clear()
        else:
            self._lossy.resent(resent)
            # Only after the desktop's own copies: the background a moved window or a
            # terminal's scroll uncovered (on a detected scroll's frames the search found
            # nearly nothing and cost 2-3 % of GTK scrolling's CPU, part AM).
            if self._layer is not None and self.ink_copies and copies and not detected:
                kept, found = ink_copies(fb, snaps, damage, self._lossy.sent, self._drift,
                                         self._layer)
                if found:
                    snaps = tuple(kept)
                    head.extend(found)
            if refine:  # tiles held still since they went out as JPEG: lossless this time
                snaps += tuple(replace(s, lossless=True) for s in snapshot(
                    fb, self._lossy.take_due(now, fb.width, fb.height)))
        cursor = fb.cursor if (fb.cursor_dirty or key or resized) else None
        fb.cursor_dirty = False
        job = FrameJob(
            self._next_id, int(now * 1000), tuple(head), snaps, self._layer,
            self.settings, cursor, self._key_job(now) if self._observer_key else None,
            dict(self._drift),
        )  # fmt: skip
        self._next_id += 1
        self._need_key = self._observer_key = False
        self.pacing.taken(now, big=not small)
        return job

    def frame_sent(self, job: FrameJob, nbytes: int, now: float) -> None:
        self._link.sent(job.frame_id, nbytes, now)
        if self.refine:
            self._lossy.mark(job.lossy, now)

    def produce_frame(self, now: float) -> bytes | None:
        """take_frame + encode_frame + frame_sent in one call (tests, small desktops)."""
        job = self.take_frame(now)
        if job is None:
            return None
        data = encode_frame(job)
        self.frame_sent(job, len(data), now)
        return data

    @staticmethod
    def notice(level: wire.NoticeLevel, code: int, text: str) -> bytes:
        return wire.encode(wire.Notice(level, code, text))

    @staticmethod
    def end(code: int, text: str) -> bytes:
        return wire.encode(wire.End(code, text))

    # --- internals -------------------------------------------------------------------------

    def _hello(self) -> wire.Hello:
        s = self.session
        flags = s.flags | (wire.HelloFlags.WATERMARKED if self.watermark else 0)
        return wire.Hello(self._version, self.fb.width, self.fb.height, flags, s.session_id, s.info)

    def _key_job(self, now: float) -> FrameJob:
        return FrameJob(
            self._next_id, int(now * 1000), (self._hello(),), snapshot(self.fb, self._all_tiles()),
            self._layer, self.settings, self.fb.cursor, None, dict(self._drift),
        )  # fmt: skip

    def _all_tiles(self) -> Damage:
        fb = self.fb
        return {(tx, ty): (x, y, x + w, y + h) for tx, ty in tiles_in(0, 0, fb.width, fb.height,
                fb.tile) for x, y, w, h in [fb.tile_rect(tx, ty)]}  # fmt: skip

    def _on_copy(self, op: CopyOp) -> None:
        """A copy (the desktop's, or a detected scroll) moves the stamps and the JPEG'd tiles."""
        self._stamps.on_copy(op)
        self._lossy.copy(op)

    def _detect_scroll(self, key: bool) -> bool:
        """Replace redrawn-but-shifted damage by a Copy (see scroll.py), before fb.take();
        whether it did."""
        fb = self.fb
        if (not self.detect_scroll or key or fb.resized or fb.copies
                or len(fb.damage) < MIN_TILES or not self._hashes.matches(fb)):  # fmt: skip
            return False
        found = self._hashes.detect(fb, fb.damage)
        if found is None:
            return False
        fb.set_damage(found.damage)
        fb.copies = [found.copy]
        # The stamps ride along with the detected copy as with the desktop's own (measured on
        # the recorded mousepad scrolling: 19 % fewer bytes than moving the whole grid with
        # the view, which re-sent the stamps of the static toolbar and status bar each step).
        self._on_copy(found.copy)
        return True
