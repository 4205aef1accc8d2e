"""One frame's work, detached from the live framebuffer (``FrameJob``: what the pipeline's
take_frame hands the shell), and its encoding to display-protocol bytes (``encode_frame``: the
head messages, the cursor, the tiles, the Sync). Pure; encode_frame is safe in an executor
thread, since a job holds copies of the pixels, never the framebuffer."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.display.encoder import (
    Drift,
    EncodeSettings,
    RegionSnapshot,
    encode_cursor,
    encode_tiles,
)
from gateway.display.framebuffer import Box, CursorImage
from gateway.display.watermark import WatermarkLayer
from gateway.wire import display as wire


@dataclass(frozen=True, slots=True)
class FrameJob:
    """Everything needed to encode one frame, detached from the live framebuffer."""

    frame_id: int
    timestamp_ms: int
    head: tuple[wire.ToViewer, ...]  # Hello/Resize/Copy messages, in order
    snaps: tuple[RegionSnapshot, ...]
    layer: WatermarkLayer | None
    settings: EncodeSettings
    cursor: CursorImage | None
    observer_key: FrameJob | None = None  # a key frame of the same instant, for new observers
    drift: Drift = field(default_factory=dict)  # per tile, where the viewer's stamps sit
    #: Filled by encode_frame: the boxes it sent as JPEG (frame_sent marks them for refining).
    lossy: list[Box] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        """Damaged pixels to encode (the shell encodes small frames inline, big ones in threads)."""
        return sum(s.w * s.h for s in self.snaps)


def encode_frame(job: FrameJob) -> bytes:
    """Encode a frame to wire bytes: head, cursor, tiles, Sync. Pure; safe in an executor."""
    parts = [wire.encode(m) for m in job.head]
    if job.cursor is not None:
        c = job.cursor
        png = encode_cursor(c.w, c.h, c.rgba) if c.w and c.h else b""
        parts.append(wire.encode(wire.Cursor(c.hot_x, c.hot_y, c.w, c.h, png) if png
                                 else wire.Cursor(0, 0, 0, 0, b"")))  # fmt: skip
    for m in encode_tiles(list(job.snaps), job.layer, job.settings, job.drift):
        parts.append(wire.encode(m))
        if isinstance(m, wire.Tile) and m.format is wire.TileFormat.JPEG:
            job.lossy.append((m.x, m.y, m.x + m.w, m.y + m.h))
    parts.append(wire.encode(wire.Sync(job.frame_id, job.timestamp_ms)))
    return b"".join(parts)
