"""Build to lossless: what the viewer was sent as JPEG, re-sent lossless once it holds still.

JPEG keeps a video, a slideshow or a scrolled page of photos cheap while it moves, but a still
photo, a scanned form or a PDF page shown as an image would stay blurred for as long as the
teacher reads it. So per grid tile this keeps the box its JPEG'd pixels span and the time they
went out; a box no frame has re-sent whole for REFINE_AFTER seconds is re-sent lossless (a
PALETTE tile or lossless WebP, like any text-like box). TigerVNC's lossless refresh, Citrix's
"build to lossless" and RDP's progressive codec do the same.

Attacker-controlled: nothing directly. Which boxes go out as JPEG follows the desktop's pixels,
and copies (clipped to the desktop by the framebuffer) move the marks. Limits: at most one mark
(a time and a box) per grid tile, so the map never outgrows the desktop's tile count. At most
REFINE_MAX_PIXELS are re-sent per frame, so a screen full of photos is refined over several
frames, each paced by the viewer's Acks. The pipeline asks for due boxes only while the link
carries REFINE_MIN_QUALITY, the default JPEG quality (a link that shows queueing gets no extra
bytes), and not within REFINE_AFTER of a key (a keystroke's frame never waits for a refresh).
Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.display.framebuffer import Box, CopyOp, Damage, tiles_in

# Seconds a JPEG'd box must hold still before it is re-sent lossless. A lossless photo costs
# about 13x its JPEG (1.67 vs 0.13 bytes per pixel on the bench's plasma images, WebP method 2),
# so what changes more often than every 1.5 s (a video, a slideshow, a page being scrolled)
# stays lossy; what the teacher stops to look at turns sharp. TigerVNC refreshes as soon as its
# link has room. Bench, four full-screen photos held 5 s each: 1.4 MB without the refresh,
# 15.5 MB with it, noVNC 19.3 MB (docs/PERFORMANCE.md, issue 11 part W).
REFINE_AFTER = 1.5
# Per frame: 16 tiles of 64×64, ~110 KB of lossless photo, so a keystroke's frame waits behind
# at most that on a slow link (and the link's quality gate stops the rest there).
REFINE_MAX_PIXELS = 64 * 64 * 16
REFINE_MIN_QUALITY = 80  # encoder.EncodeSettings' default jpeg_quality

Tile = tuple[int, int]


def _union(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _inside(a: Box, b: Box) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


@dataclass(slots=True)
class LossyTiles:
    """Per grid tile of ``tile`` pixels: when the viewer last got pixels of it as JPEG, and
    the box (x0, y0, x1, y1, inside the tile) those pixels span."""

    tile: int
    sent: dict[Tile, tuple[float, Box]] = field(default_factory=dict)

    def mark(self, boxes: Iterable[Box], now: float) -> None:
        """``boxes`` went out as JPEG at ``now``."""
        for box in boxes:
            self._add(box, now)

    def resent(self, damage: Damage) -> None:
        """The frame re-sends these boxes: a tile whose JPEG'd box they cover is settled anew
        (by what this frame sends it as); one they cover only in part stays marked."""
        sent = self.sent
        if sent:
            for t, box in damage.items():
                held = sent.get(t)
                if held is not None and _inside(held[1], box):
                    del sent[t]

    def clear(self) -> None:
        self.sent.clear()

    def copy(self, op: CopyOp) -> None:
        """A copy moves JPEG'd pixels: where it writes them they are marked (with their time),
        and a JPEG'd box it overwrites whole with other pixels is unmarked. Reads the marks as
        they were before the copy."""
        sent = self.sent
        if not sent:
            return
        dx, dy = op.dst_x - op.src_x, op.dst_y - op.src_y
        src = (op.src_x, op.src_y, op.src_x + op.w, op.src_y + op.h)
        dst = (op.dst_x, op.dst_y, op.dst_x + op.w, op.dst_y + op.h)
        moved: list[tuple[Box, float]] = []
        for t, (when, (x0, y0, x1, y1)) in list(sent.items()):
            a0, b0 = max(x0, src[0]), max(y0, src[1])
            a1, b1 = min(x1, src[2]), min(y1, src[3])
            if a0 < a1 and b0 < b1:  # JPEG'd pixels the copy reads
                moved.append(((a0 + dx, b0 + dy, a1 + dx, b1 + dy), when))
            if _inside((x0, y0, x1, y1), dst):
                del sent[t]
        for box, when in moved:
            self._add(box, when)

    def next_due(self) -> float | None:
        """When the earliest marked tile may be refined."""
        return min(w for w, _ in self.sent.values()) + REFINE_AFTER if self.sent else None

    def take_due(self, now: float, width: int, height: int,
                 max_pixels: int = REFINE_MAX_PIXELS) -> Damage:
        """The JPEG'd boxes held still for REFINE_AFTER, top to bottom, up to ``max_pixels``
        in all (at least one), clipped to the desktop, unmarked. Boxes off the desktop (it
        shrank) are dropped."""
        cutoff = now - REFINE_AFTER
        due = sorted((k for k, (when, _) in self.sent.items() if when <= cutoff),
                     key=lambda k: (k[1], k[0]))
        out: Damage = {}
        pixels = 0
        for k in due:
            x0, y0, x1, y1 = self.sent[k][1]
            x1, y1 = min(x1, width), min(y1, height)
            if x0 >= x1 or y0 >= y1:
                del self.sent[k]
                continue
            area = (x1 - x0) * (y1 - y0)
            if out and pixels + area > max_pixels:
                break  # the rest stay due: the next frame
            del self.sent[k]
            out[k] = (x0, y0, x1, y1)
            pixels += area
        return out

    def _add(self, box: Box, when: float) -> None:
        """Mark ``box``'s part in each tile it touches; a tile keeps its latest time."""
        x0, y0, x1, y1 = box
        t, sent = self.tile, self.sent
        for tx, ty in tiles_in(x0, y0, x1 - x0, y1 - y0, t):
            part = (max(x0, tx * t), max(y0, ty * t), min(x1, tx * t + t), min(y1, ty * t + t))
            held = sent.get((tx, ty))
            sent[(tx, ty)] = (when if held is None else max(when, held[0]),
                              _union(None if held is None else held[1], part))
