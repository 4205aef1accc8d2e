"""When a live session asks its desktop for an update and takes a frame. Pure: times are passed in.

Attacker-controlled here: nothing directly. A program inside the desktop decides how often the
desktop changes; this decides only how often the gateway reads those changes and takes a frame
of them. Limits:
- at most one FramebufferUpdateRequest outstanding;
- at most one update read ahead of the frame being encoded;
- none while the frame pacing holds (gateway/display/pacing.py);
- once an update with a big change came in the pacing gap's second half, none until its frame is
  taken (DisplayPipeline.waits_for_gap, docs/PERFORMANCE.md part AP).
A typed glyph (FAST_FRAME_PIXELS, the viewer's own input) is taken in its update's own step.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.display.frame_job import FrameJob
from gateway.display.pipeline import DisplayPipeline
from gateway.live.session_events import EncodeFrame, Output, RequestUpdate, WakeFrames

FAST_FRAME_PIXELS = 64 * 64  # damage up to this is taken with its DesktopUpdated (one glyph box)


@dataclass(slots=True)
class FrameFlow:
    pipeline: DisplayPipeline
    outstanding: bool = False  # a FramebufferUpdateRequest is outstanding
    encoding: bool = False  # a frame was taken and is being encoded (EncodeFrame → FrameEncoded)
    read_ahead: bool = False  # an update came while a paced frame waits (pipeline.waits_for_gap)

    def timer(self, live: bool, now: float) -> float | None:
        """Unix time when a FrameDue has work even without damage (the watermark changes), or
        the frame pacing's: a request the pacing held back is owed while none is outstanding,
        no frame is encoding (FrameEncoded asks then) and no update waits for its gap's end."""
        asking = live and not (self.outstanding or self.encoding or self._reads_ahead(now))
        return self.pipeline.next_timer(now, asking=asking)

    def ready(self) -> list[Output]:
        """The desktop is connected: the first request is for the whole screen."""
        self.outstanding = True
        return [RequestUpdate(incremental=False)]

    def updated(self, live: bool, observer_key: bool, now: float) -> list[Output]:
        """An update from the desktop is in the framebuffer."""
        self.outstanding = False
        # Judged now, as it arrives: one from the gap's first half still leaves the ask at the
        # middle (its frame waits, but the desktop has had no request since).
        self.read_ahead = self.pipeline.waits_for_gap(now)
        if live and not self.encoding and self.pipeline.small_update(FAST_FRAME_PIXELS, now):
            # A small update (a typed glyph) is taken in this step: asking for the next one
            # first, then EncodeFrame (encoded inline) without a WakeFrames hop.
            return self.due(live, observer_key, now)
        # Keep the desktop busy: the next update is asked for before this one is taken (taking
        # a frame is CPU on the loop), unless a frame is being encoded, when FrameEncoded asks:
        # at most one update is read ahead of the frame encoding.
        return [*(() if self.encoding else self.request(now)), WakeFrames()]

    def encoded(self, job: FrameJob, size: int, now: float) -> list[Output]:
        """A frame was encoded (``size`` bytes) and goes out: ask for the next update."""
        self.encoding = False
        self.pipeline.frame_sent(job, size, now)
        return self.request(now)

    def due(self, live: bool, observer_key: bool, now: float) -> list[Output]:
        """Take a frame if the pipeline has one to send now."""
        if not live:
            return []
        if observer_key:
            self.pipeline.request_observer_key_frame()
        job = self.pipeline.take_frame(now)
        if job is None:
            return self.request(now)
        # The frame's pixels are copied out: the desktop renders the next update meanwhile.
        self.encoding = True
        return [*self.request(now), EncodeFrame(job)]

    def request(self, now: float) -> list[Output]:
        """A FramebufferUpdateRequest if none is outstanding, frames may go out and neither
        the pacing nor a waiting frame holds it (their end is a frame timer: FrameDue asks)."""
        if self.outstanding or not self.pipeline.can_send() or self.pipeline.holding(now) \
                or self._reads_ahead(now):  # fmt: skip
            return []
        self.outstanding = True
        return [RequestUpdate()]

    def _reads_ahead(self, now: float) -> bool:
        """An update came while a paced frame waited, and the frame still waits."""
        self.read_ahead = self.read_ahead and self.pipeline.waits_for_gap(now)
        return self.read_ahead
