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

    Classic ServerCutText: ``data`` is the raw ISO 8859-1 text, ``length`` its wire length.
    Extended clipboard (``extended``): ``data`` is the UTF-8 bytes up to the NUL terminator,
    ``length`` the size the server declared. ``text`` is the decoded text either way (LF line
    ends when extended; invalid UTF-8 shown as U+FFFD). ``data`` and ``text`` are empty when
    ``oversized`` (it was read and dropped; ``length`` says how big it was).
    """

    data: bytes = field(repr=False)
    length: int
    oversized: bool = False
    extended: bool = False
    text: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.extended and not self.text:
            object.__setattr__(self, "text", self.data.decode("latin-1"))


@dataclass(frozen=True, slots=True)
class Closed:
    """The server closed the connection (EOF)."""

    reason: str


Event = ServerInit | UpdateDone | Resized | Bell | ServerCutText | Closed
