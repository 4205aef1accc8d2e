"""The watermark as the viewer's canvas shows it: which layer, and where its stamps sit.

Attacker-controlled: copy rectangles from the VNC server (clipped to the desktop by the
framebuffer; stamp_drift bounds what they cost). The watermark's text is the gateway's own.
Pure: no I/O, the clock is passed in; this damages the framebuffer where stamps must be re-sent
and the pipeline encodes that damage like any other.

The pipeline asks three things of it per frame: a new layer when the watermark's text or grid
changes (``refresh``), the stamps moved with each copy (``on_copy``, hooked to the framebuffer),
and the frame's copies settled before the damage is taken (``settle``).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.display.encoder import Drift
from gateway.display.framebuffer import Box, CopyOp, Framebuffer, tiles_in
from gateway.display.stamp_drift import StampDrift
from gateway.display.watermark import Watermark, WatermarkLayer, changed_box


class CanvasStamps:
    def __init__(self, fb: Framebuffer, watermark: Watermark | None) -> None:
        self.fb = fb
        self.watermark = watermark
        self.layer: WatermarkLayer | None = None  # what the viewer's canvas shows
        # Tiles whose stamps rode along with copies: the viewer shows the layer moved by (dx, dy)
        # there (see stamp_drift). Absent = the layer's own grid.
        self._drift = StampDrift(fb.width, fb.height, fb.tile, (0, 0))
        self._refreshed_at: float | None = None

    @property
    def drift(self) -> Drift:
        """Per tile, where the viewer's stamps sit once this frame is taken."""
        return self._drift.drift

    def next_change(self, now: float) -> float | None:
        """When the layer the canvas shows next changes: counted from the last ``refresh``, not
        from ``now``, so a timer that fired a little before the minute (uvloop rounds to the
        millisecond) is followed by one at that minute, not by the next."""
        if self.watermark is None:
            return None
        return self.watermark.next_change(now if self._refreshed_at is None
                                          else self._refreshed_at)

    def refresh(self, now: float) -> None:
        """Take the watermark's layer for ``now``; where it differs from the canvas's, damage
        what must be re-sent."""
        if self.watermark is None:
            return
        self._refreshed_at = now
        fb = self.fb
        new = self.watermark.layer(fb.width, fb.height, fb.tile, now)
        old = self.layer
        if old is not None and old.key == new.key:
            return
        if old is not None and self._refresh_changed(old, new):
            return
        # The canvas shows the old stamps: re-send their pixels (where the copies carried them,
        # for tiles off the grid) and the new layer's, all back on the grid.
        boxes = new.ink_in(0, 0, fb.width, fb.height)
        if old is not None:
            boxes += old.ink_in(0, 0, fb.width, fb.height) + self._drift.shown_ink(old)
        for x0, y0, x1, y1 in boxes:
            fb.damage_rect(x0, y0, x1 - x0, y1 - y0)
        self._drift.clear(fb.width, fb.height, new.pitch)
        self.layer = new

    def _refresh_changed(self, old: WatermarkLayer, new: WatermarkLayer) -> bool:
        """A new layer on the same grid (the minute in the time changed): only the pixels where
        its stamp differs from the old one are re-sent, at every stamp, on the grid and where
        copies carried stamps, which stay where they are. Re-sending every stamp cost a quiet
        1080p session 30-55 KB a minute, more than its typing. False if the grid changed."""
        box = changed_box(old, new)
        if box is None:
            return False
        fb, stamps = self.fb, self._drift
        if box[2] > box[0]:
            x0, y0, x1, y1 = box
            rects = [(ox + x0, oy + y0, ox + x1, oy + y1) for ox, oy in new.origins]
            drifted = stamps.drifted()
            t = fb.tile
            for a0, b0, a1, b1 in rects:  # on the grid: in the tiles where stamps sit there
                a0, b0, a1, b1 = max(a0, 0), max(b0, 0), min(a1, fb.width), min(b1, fb.height)
                if a0 >= a1 or b0 >= b1:
                    continue
                for tx, ty in tiles_in(a0, b0, a1 - a0, b1 - b0, t):
                    if (tx, ty) in drifted:
                        continue
                    c0, c1 = max(a0, tx * t), max(b0, ty * t)
                    c2, c3 = min(a1, (tx + 1) * t), min(b1, (ty + 1) * t)
                    fb.damage_rect(c0, c1, c2 - c0, c3 - c1)
            for c0, c1, c2, c3 in stamps.shown(rects):
                fb.damage_rect(c0, c1, c2 - c0, c3 - c1)
        self.layer = new
        return True

    def on_copy(self, op: CopyOp) -> None:
        """A copy moves the stamps of its source with it (stamp_drift keeps count); tiles cut
        into too many parts are re-sent whole."""
        if self.watermark is None or self.layer is None:
            return  # no layer yet: the first frame is a key frame
        st, fb = self._drift, self.fb
        if (st.width, st.height) != (fb.width, fb.height):
            st.clear(fb.width, fb.height, self.layer.pitch)  # resized: everything is re-sent
        for x0, y0, x1, y1 in st.copy(op):
            fb.damage_rect(x0, y0, x1 - x0, y1 - y0)

    def settle(self, everything: bool, detected: bool = False) -> None:
        """The frame's copies are known: re-send the ink where stamps of different drift meet.
        A key frame or a resize (``everything``) re-sends every tile, so every stamp goes back
        to the grid. ``detected``: the frame's copy is a scroll found in a redrawn view."""
        fb = self.fb
        if everything:
            self._drift.clear(fb.width, fb.height, self.layer.pitch if self.layer else (0, 0))
            return
        resent = fb.resent()
        for x0, y0, x1, y1 in self._drift.settle(self.layer, resent, fb.copies, detected):
            fb.damage_rect(x0, y0, x1 - x0, y1 - y0)
        if not fb.copies and self._drift.drift:
            self._regrid(resent)

    def _regrid(self, resent: Mapping[tuple[int, int], Box]) -> None:
        """Tiles a frame without copies re-sends whole go back to the grid: whatever drift their
        stamps had, every pixel is blended again. Left at their drift, the background a closed
        window or a finished scroll gave back kept a patchwork of drifts all session long, and
        the copies that later moved over it (a dragged window, a scrolling terminal) found
        their stamps at a drift other than their neighbours', and re-sent the ink where they
        met: on the six workloads replayed in one session, 37 % of a page drag's bytes and
        17 % of terminal scrolling's (part AN). Not in frames with copies, where a re-sent
        tile may be a scrolled view's new line, which takes the scroll's drift (settle)."""
        fb, drift = self.fb, self._drift.drift
        for k, box in resent.items():  # the frame's tiles: a typed glyph's few, not every drift
            if k in drift:
                x, y, w, h = fb.tile_rect(*k)
                if box == (x, y, x + w, y + h):
                    del drift[k]
