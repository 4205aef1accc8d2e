"""Frame pacing (policy display.max_frame_rate, 30 by default): how often a session takes a
frame bigger than a typed glyph. Pure: the clock is passed in.

After a big frame, the next big one waits until ``gap`` after it, and the shell asks the desktop
for no update in the first half (``holding``): a desktop redrawing flat out (a terminal spewing
output, a slideshow) costs the gateway a bounded share and its changes pile up in the desktop.
The second half leaves the desktop time to answer, so a frame is ready when the gap ends (a
terminal scrolling 20 lines a second keeps every line's frame). Frames of at most
SMALL_FRAME_PIXELS without copies within ECHO_SECONDS of the viewer's own key or pointer input
(a typed glyph, a button lit under the pointer) are never held back. Small frames the desktop
makes by itself are paced like the rest: a pointer a program moves (TigerVNC then draws it into
the framebuffer), a spinner, a program drawing small boxes flat out; before, they went at once
however many came, and an xdotool drag drew 43 frames a second under a limit of 30 (part AN).
Measured trade-off: docs/PERFORMANCE.md part Z.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_FRAME_PIXELS = 64 * 64
#: How long after the viewer's input a small frame counts as its echo (a slow program's too).
ECHO_SECONDS = 0.5


def frame_gap(max_frame_rate: int) -> float:
    """The gap for policy display.max_frame_rate (0: no pacing)."""
    return 1 / max_frame_rate if max_frame_rate > 0 else 0.0


@dataclass(slots=True)
class FramePacing:
    gap: float = 0.0  # seconds; 0 = no pacing
    last_big_at: float = float("-inf")

    def holding(self, now: float) -> bool:
        """Within the first half of the gap after the last big frame: ask the desktop nothing."""
        return now < self.last_big_at + self.gap / 2

    def holds_back(self, now: float) -> bool:
        """A big frame taken now would come too soon after the last one."""
        return now < self.last_big_at + self.gap

    def until(self, *, ask: bool, take: bool) -> float | None:
        """When the pacing next needs a FrameDue: the holding's end while the desktop is owed a
        request (``ask``: none outstanding, the window open), the gap's end while a change
        waits (``take``). None without a limit or with neither. Either time may be past (a
        FrameDue is due now, and it asks or takes): the answer follows from what is owed, not
        from comparing the clock with the boundaries, so a timer that fires a little before
        them (uvloop rounds to the millisecond) is followed by another, never by none."""
        owed = [at for at, due in ((self.last_big_at + self.gap / 2, ask),
                                   (self.last_big_at + self.gap, take)) if due]
        return min(owed) if self.gap and owed else None

    def taken(self, now: float, *, big: bool) -> None:
        if big:
            self.last_big_at = now
