"""Frame pacing (policy display.max_frame_rate, off by default): how often a session takes a
frame bigger than a typed glyph. Pure: the clock is passed in.

After a big frame, the next big one waits until ``gap`` after it, and the shell asks the desktop
for no update in the first half (``holding``): a desktop redrawing flat out (a terminal spewing
output, a slideshow) costs the gateway a bounded share and its changes pile up in the desktop.
The second half leaves the desktop time to answer, so a frame is ready when the gap ends (a
terminal scrolling 20 lines a second keeps every line's frame). Frames of at most
SMALL_FRAME_PIXELS without copies (a typed glyph) are never held back. Measured trade-off:
docs/PERFORMANCE.md part Z.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_FRAME_PIXELS = 64 * 64


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

    def until(self, now: float, pending: bool) -> float | None:
        """When the pacing next needs a FrameDue: the end of holding (ask the desktop again),
        then the end of the gap while a big change is ``pending``. None without a limit."""
        if not self.gap:
            return None
        ask = self.last_big_at + self.gap / 2
        if now < ask:
            return ask
        take = self.last_big_at + self.gap
        return take if pending and now < take else None

    def taken(self, now: float, *, big: bool) -> None:
        if big:
            self.last_big_at = now
