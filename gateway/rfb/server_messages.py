"""Parser for server-to-client messages after the handshake (RFC 6143 §7.6).

Attacker-controlled: every byte after ServerInit. Limits: rectangles per update, rectangles
inside the framebuffer, ServerCutText length (delivered / read-and-dropped / fatal; the same
for extended clipboard payloads), colour map entries; each decoder bounds its own payload.

| FramebufferUpdate=0 u8 | pad 1 | rects u16 | (Rect header 12 | payload) × rects |
| SetColourMapEntries=1 u8 | pad 1 | first u16 | count u16 | (r u16 | g u16 | b u16) × count |
| Bell=2 u8 |
| ServerCutText=3 u8 | pad 3 | length u32 | text |
| ServerCutText=3 u8 | pad 3 | -length s32 | extended clipboard payload | (only if we asked)
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass

from .buffer import ReceiveBuffer
from .clipboard import ExtendedClipboard
from .encodings import DecodeContext, Decoder, Encoding, Rect, make_decoders
from .errors import RemoteProtocolError
from .events import NEED_DATA, Bell, Event, Resized, ServerCutText, UpdateDone, _NeedData
from .messages import ServerMessageType
from .surface import BYTES_PER_PIXEL, Surface

log = logging.getLogger(__name__)

_RECT = struct.Struct(">HHHHi")
_RAW = int(Encoding.RAW)
_LAST_RECT_MARKER = 0xFFFF

#: None means "progress was made, call again"; NEED_DATA means "feed more bytes".
Step = Event | _NeedData | None


@dataclass(slots=True)
class _Update:
    count: int
    done: int = 0
    rect: Rect | None = None
    decoder: Decoder | None = None


class ServerMessageParser:
    def __init__(
        self, surface: Surface, ctx: DecodeContext, clipboard: ExtendedClipboard | None = None
    ) -> None:
        self._surface = surface
        self.ctx = ctx
        self._decoders = make_decoders()
        self._clipboard = clipboard
        self._update: _Update | None = None
        self._skip_total = 0
        self._skip_left = 0
        self._skip_extended = False
        self.pending: deque[Event] = deque()

    @property
    def mid_message(self) -> bool:
        return self._update is not None or self._skip_left > 0

    def parse(self, buf: ReceiveBuffer) -> Step:
        if self._update is not None:
            return self._continue_update(buf, self._update)
        if self._skip_left:
            return self._continue_skip(buf)
        head = buf.consume_exactly(1)
        if head is None:
            return NEED_DATA
        kind = head[0]
        if kind == ServerMessageType.FRAMEBUFFER_UPDATE:
            return self._start_update(buf)
        if kind == ServerMessageType.SET_COLOUR_MAP_ENTRIES:
            return self._colour_map(buf)
        if kind == ServerMessageType.BELL:
            buf.commit()
            return Bell()
        if kind == ServerMessageType.SERVER_CUT_TEXT:
            return self._cut_text(buf)
        raise RemoteProtocolError(f"unknown server message type {kind}")

    def _start_update(self, buf: ReceiveBuffer) -> Step:
        head = buf.consume_exactly(3)
        if head is None:
            buf.rollback()
            return NEED_DATA
        (count,) = struct.unpack(">xH", head)
        limit = self.ctx.limits.max_rects
        if count > limit and count != _LAST_RECT_MARKER:
            raise RemoteProtocolError(f"FramebufferUpdate of {count} rectangles (limit {limit})")
        buf.commit()
        self._update = _Update(count)
        return None

    def _continue_update(self, buf: ReceiveBuffer, update: _Update) -> Step:
        """Decode rectangles until the update ends, the data runs out or an event is due: one
        call for the ~150 small Raw rectangles of a scrolled view, not one round each.

        A Raw rectangle whose pixels are all in the buffer and that lies inside the
        framebuffer is blitted here, without the Rect and the decoder's round: those were a
        third of the parse of a scrolled view (issue 11 part AJ). Any other rectangle, one
        that lies outside included (refused by ``_check_rect``), takes the decoder's path."""
        ctx = self.ctx
        limit = ctx.limits.max_rects
        surface = self._surface
        while True:
            if update.rect is None:
                if update.done == update.count or ctx.last_rect:
                    return self._finish_update(update)
                if update.done >= limit:
                    raise RemoteProtocolError(f"FramebufferUpdate exceeds {limit} rectangles")
                head = buf.consume_struct(_RECT)
                if head is None:
                    buf.rollback()
                    return NEED_DATA
                x, y, w, h, encoding = head
                size = w * h * BYTES_PER_PIXEL
                if (encoding == _RAW and size <= len(buf) and x + w <= ctx.fb_width
                        and y + h <= ctx.fb_height):
                    if size:
                        pixels = buf.consume_view(size)
                        assert pixels is not None
                        surface.blit(x, y, w, h, pixels)
                        pixels.release()  # the surface copied the rows (Surface.blit)
                    buf.commit()
                    update.done += 1
                    continue
                update.rect, update.decoder = self._check_rect(Rect(*head))
                buf.commit()
            assert update.rect is not None and update.decoder is not None
            if not update.decoder.decode_rect(update.rect, buf, self._surface, self.ctx):
                buf.rollback()
                return NEED_DATA
            buf.commit()
            update.rect = update.decoder = None
            update.done += 1
            if self.ctx.resized is not None:
                self.pending.append(Resized(*self.ctx.resized))
                self.ctx.resized = None
                return None

    def _check_rect(self, rect: Rect) -> tuple[Rect, Decoder]:
        decoder = self._decoders.get(rect.encoding)
        if decoder is None:
            raise RemoteProtocolError(f"rectangle in unsupported encoding {rect.encoding}")
        if decoder.draws_pixels and (
            rect.x + rect.width > self.ctx.fb_width or rect.y + rect.height > self.ctx.fb_height
        ):
            raise RemoteProtocolError(
                f"rectangle {rect.width}x{rect.height}+{rect.x}+{rect.y} lies outside the "
                f"{self.ctx.fb_width}x{self.ctx.fb_height} framebuffer"
            )
        return rect, decoder

    def _finish_update(self, update: _Update) -> Step:
        self._update = None
        self.ctx.last_rect = False
        # LastRect itself is not a rectangle of the update.
        count = update.done - 1 if update.count == _LAST_RECT_MARKER else update.done
        self.pending.append(UpdateDone(max(count, 0)))
        return None

    def _colour_map(self, buf: ReceiveBuffer) -> Step:
        # We asked for true colour, so a colour map is meaningless: read it and ignore it.
        head = buf.consume_exactly(5)
        if head is None:
            buf.rollback()
            return NEED_DATA
        _first, count = struct.unpack(">xHH", head)
        if count > self.ctx.limits.max_colour_map_entries:
            raise RemoteProtocolError(f"SetColourMapEntries with {count} entries")
        if buf.consume_exactly(count * 6) is None:
            buf.rollback()
            return NEED_DATA
        buf.commit()
        log.debug("ignored SetColourMapEntries (%d entries) under true colour", count)
        return None

    def _cut_text(self, buf: ReceiveBuffer) -> Step:
        head = buf.consume_exactly(7)
        if head is None:
            buf.rollback()
            return NEED_DATA
        (length,) = struct.unpack(">3xI", head)
        # A negative s32 length is an extended clipboard message, but only if we asked for
        # the pseudo-encoding; otherwise it is an enormous u32 length and fatal below.
        extended = self._clipboard is not None and length >= 2**31
        if extended:
            length = 2**32 - length
        limits = self.ctx.limits
        if length > limits.max_cut_text_discard:
            raise RemoteProtocolError(
                f"ServerCutText of {length} bytes (limit {limits.max_cut_text_discard})"
            )
        if length > limits.max_cut_text:
            buf.commit()
            self._skip_total = self._skip_left = length
            self._skip_extended = extended
            return None
        payload = buf.consume_exactly(length)
        if payload is None:
            buf.rollback()
            return NEED_DATA
        buf.commit()
        if self._clipboard is not None and extended:
            return self._clipboard.receive(payload)
        return ServerCutText(payload, length)

    def _continue_skip(self, buf: ReceiveBuffer) -> Step:
        dropped = buf.consume_at_most(self._skip_left)
        buf.commit()
        self._skip_left -= len(dropped)
        if self._skip_left:
            return NEED_DATA
        return ServerCutText(b"", self._skip_total, oversized=True, extended=self._skip_extended)
