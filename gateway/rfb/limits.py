"""Bounds the RFB client enforces against a hostile server (all configurable, all finite)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_width: int = 8192
    max_height: int = 8192
    #: Rectangles in one FramebufferUpdate (the wire allows 65535).
    max_rects: int = 16384
    max_name_length: int = 1024
    #: Failure reason strings from the server.
    max_reason_length: int = 4096
    #: ServerCutText up to this many bytes is delivered as an event. Extended clipboard: the
    #: compressed payload and, separately, the inflated text; also the most we send.
    max_cut_text: int = 256 * 1024
    #: Longer cut text up to this is read and dropped (an "oversized" event); beyond it we close.
    max_cut_text_discard: int = 64 * 1024 * 1024
    max_cursor_size: int = 256
    #: SetColourMapEntries is ignored (we use true colour) but its length is still bounded.
    max_colour_map_entries: int = 65535
