"""RFB encodings, one module each (noVNC's shape), sharing ``Decoder.decode_rect``."""

from __future__ import annotations

from .base import DecodeContext, Decoder, Rect
from .copyrect import CopyRectDecoder
from .cursor import CursorDecoder
from .desktopsize import DesktopSizeDecoder, ExtendedDesktopSizeDecoder, LastRectDecoder
from .numbers import (
    LOOPBACK_ENCODINGS,
    REMOTE_ENCODINGS,
    REMOTE_LOSSLESS_ENCODINGS,
    Encoding,
    compress_level,
    quality_level,
)
from .raw import RawDecoder
from .tight import TightDecoder
from .zrle import ZrleDecoder


def make_decoders() -> dict[int, Decoder]:
    """Fresh decoders for one connection (ZRLE/Tight keep zlib streams across rectangles)."""
    return {
        Encoding.RAW: RawDecoder(),
        Encoding.COPYRECT: CopyRectDecoder(),
        Encoding.ZRLE: ZrleDecoder(),
        Encoding.TIGHT: TightDecoder(),
        Encoding.DESKTOP_SIZE: DesktopSizeDecoder(),
        Encoding.EXTENDED_DESKTOP_SIZE: ExtendedDesktopSizeDecoder(),
        Encoding.LAST_RECT: LastRectDecoder(),
        Encoding.CURSOR: CursorDecoder(),
    }


__all__ = [
    "LOOPBACK_ENCODINGS",
    "REMOTE_ENCODINGS",
    "REMOTE_LOSSLESS_ENCODINGS",
    "DecodeContext",
    "Decoder",
    "Encoding",
    "Rect",
    "compress_level",
    "make_decoders",
    "quality_level",
]
