"""The one table of RFB encoding numbers (RFC 6143 §7.7 and the community registry)."""

from __future__ import annotations

from enum import IntEnum


class Encoding(IntEnum):
    RAW = 0
    COPYRECT = 1
    RRE = 2
    HEXTILE = 5
    TIGHT = 7
    ZRLE = 16
    # Pseudo-encodings: the rectangle carries metadata, not pixels.
    COMPRESS_LEVEL_0 = -256  # .. -247: Tight zlib level 0-9
    QUALITY_LEVEL_0 = -32  # .. -23: Tight JPEG quality 0-9 (also enables JPEG)
    DESKTOP_SIZE = -223
    LAST_RECT = -224
    CURSOR = -239
    EXTENDED_DESKTOP_SIZE = -308
    EXTENDED_CLIPBOARD = -1063131698  # 0xC0A1E5CE; asked for only via clipboard=True


def quality_level(level: int) -> int:
    """Tight JPEG quality pseudo-encoding, 0 (worst) to 9 (best)."""
    if not 0 <= level <= 9:
        raise ValueError("quality level is 0-9")
    return Encoding.QUALITY_LEVEL_0 + level


def compress_level(level: int) -> int:
    """Tight/ZRLE zlib effort pseudo-encoding, 0 (fastest) to 9."""
    if not 0 <= level <= 9:
        raise ValueError("compress level is 0-9")
    return Encoding.COMPRESS_LEVEL_0 + level


# ExtendedDesktopSize is decoded but not asked for by default: TigerVNC then answers every
# non-incremental FramebufferUpdateRequest with a layout-only update (pixels come only on the
# next request), a trap for callers; DesktopSize reports resizes just as well for one screen.
_PSEUDO = (
    Encoding.DESKTOP_SIZE,
    Encoding.LAST_RECT,
    Encoding.CURSOR,
)

#: Gateway next to the desktop (loopback / same host): Raw costs the gateway least CPU.
LOOPBACK_ENCODINGS: tuple[int, ...] = (Encoding.COPYRECT, Encoding.RAW, *_PSEUDO)

#: Desktop across a network: compressed encodings first, JPEG allowed at a good quality.
REMOTE_ENCODINGS: tuple[int, ...] = (
    Encoding.COPYRECT,
    Encoding.TIGHT,
    Encoding.ZRLE,
    Encoding.RAW,
    quality_level(7),
    compress_level(2),
    *_PSEUDO,
)

#: Lossless remote: like REMOTE_ENCODINGS but Tight never sends JPEG (no quality level).
REMOTE_LOSSLESS_ENCODINGS: tuple[int, ...] = (
    Encoding.COPYRECT,
    Encoding.ZRLE,
    Encoding.TIGHT,
    Encoding.RAW,
    compress_level(2),
    *_PSEUDO,
)
