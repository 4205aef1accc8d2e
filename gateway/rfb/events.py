"""Events the RFB client core returns from ``next_event()`` (frozen, comparable, loggable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


class _NeedData:
    """Sentinel: feed more bytes before asking again."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


@dataclass(frozen=True, slots=True)
class ServerInit:
    """Handshake done; the Surface has been resized to width × height."""

    width: int
    height: int
    name: str


@dataclass(frozen=True, slots=True)
class UpdateDone:
    """A whole FramebufferUpdate has been applied to the Surface."""

    rect_count: int


@dataclass(frozen=True, slots=True)
class Resized:
    """DesktopSize / ExtendedDesktopSize: the Surface now has this size."""

    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Bell:
    pass


@dataclass(frozen=True, slots=True)
class ServerCutText:
    """The server's clipboard. Policy decides; the client never acts on it.

    ``data`` is the raw ISO 8859-1 text, empty when ``oversized`` (it was read and dropped).
    """

    data: bytes = field(repr=False)
    length: int
    oversized: bool = False

    @property
    def text(self) -> str:
        return self.data.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Closed:
    """The server closed the connection (EOF)."""

    reason: str


Event = ServerInit | UpdateDone | Resized | Bell | ServerCutText | Closed
