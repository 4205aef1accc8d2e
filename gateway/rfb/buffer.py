"""A resumable receive buffer (wsproto's Buffer): parse, then commit or roll back.

Attacker-controlled: every byte fed in. Limits: none here; callers bound each length they ask
for before asking, so the buffer holds at most one bounded message plus one network read.
"""

from __future__ import annotations

_VIEW_ABOVE = 4096  # bytes: below this a memoryview costs more than the second copy


class ReceiveBuffer:
    """Bytes received but not yet committed as parsed.

    A parser calls ``consume_exactly`` as often as it likes; if any call returns ``None`` the
    message is incomplete and the parser calls ``rollback`` to rewind to the last ``commit``.
    """

    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        self._data += data

    def __len__(self) -> int:
        """Bytes available to consume from the current read position."""
        return len(self._data) - self._pos

    @property
    def uncommitted(self) -> int:
        """Bytes held since the last commit (consumed or not): non-zero mid-message."""
        return len(self._data)

    def consume_exactly(self, n: int) -> bytes | None:
        if n < 0:
            raise ValueError("negative length")
        if len(self._data) - self._pos < n:
            return None
        start = self._pos
        self._pos += n
        if n > _VIEW_ABOVE:  # one copy, not two (a bytearray slice, then bytes of it)
            with memoryview(self._data) as view:
                return view[start : self._pos].tobytes()
        return bytes(self._data[start : self._pos])

    def consume_at_most(self, n: int) -> bytes:
        """Up to n bytes (for skipping over content we drop)."""
        start = self._pos
        self._pos = min(len(self._data), start + n)
        return bytes(self._data[start : self._pos])

    def commit(self) -> None:
        # bytearray deletion from the front is amortised O(1) in CPython.
        del self._data[: self._pos]
        self._pos = 0

    def rollback(self) -> None:
        self._pos = 0
