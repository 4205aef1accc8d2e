"""Bounded zlib inflation and a bounds-checked reader over the inflated bytes.

Attacker-controlled: compressed data. Limit: output never exceeds what the rectangle can
legitimately need (``max_length`` on the decompressor, so a zlib bomb costs nothing).
"""

from __future__ import annotations

import zlib

from ..errors import RemoteProtocolError


def inflate_bounded(stream: zlib._Decompress, data: bytes, limit: int, what: str) -> bytes:
    """Inflate ``data`` (one rectangle's share of a persistent stream) to at most ``limit``."""
    try:
        out = stream.decompress(data, limit + 1)
    except zlib.error:
        raise RemoteProtocolError(f"{what}: corrupt zlib data") from None
    if len(out) > limit or stream.unconsumed_tail:
        raise RemoteProtocolError(f"{what}: data inflates past the {limit}-byte bound")
    return out


class Reader:
    """Sequential reads from inflated data; running short is the peer's protocol error."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise RemoteProtocolError(f"{self.what}: data ends inside a tile")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise RemoteProtocolError(f"{self.what}: data ends inside a tile")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def run_length(self, remaining: int) -> int:
        """RLE length: bytes summed while they are 255, plus one; never past ``remaining``."""
        length = 1
        while True:
            b = self.u8()
            length += b
            if length > remaining:
                raise RemoteProtocolError(f"{self.what}: run goes past the tile")
            if b != 255:
                return length

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise RemoteProtocolError(
                f"{self.what}: {len(self.data) - self.pos} bytes left over after the rectangle"
            )
