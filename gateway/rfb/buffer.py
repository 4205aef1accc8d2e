"""A resumable receive buffer (wsproto's Buffer): parse, then commit or roll back.

Attacker-controlled: every byte fed in. Limits: none here; callers bound each length they ask
for before asking, so the buffer holds at most one bounded message plus one network read.

The bytes live in one preallocated bytearray that the socket can read straight into
(``get_buffer``/``buffer_updated``, asyncio's BufferedProtocol) and that the Raw decoder can
draw from without a copy (``consume_view``). The bytearray is never resized: when it must grow
a new one replaces it, so a view still held elsewhere can never make a resize fail.
"""

from __future__ import annotations

import struct
from typing import Any

_VIEW_ABOVE = 4096  # bytes: below this a memoryview costs more than the second copy
#: Bytes of storage: two of the shell's reads, so a message's tail plus a full read fit
#: without moving or growing anything; bigger only while one bounded message needs it.
_INITIAL = 512 * 1024


class ReceiveBuffer:
    """Bytes received but not yet committed as parsed.

    A parser calls ``consume_exactly`` as often as it likes; if any call returns ``None`` the
    message is incomplete and the parser calls ``rollback`` to rewind to the last ``commit``.

    Layout of the storage: ``[_start, _pos)`` consumed since the last commit, ``[_pos, _end)``
    not yet consumed, ``[_end, capacity)`` free for the next read.
    """

    __slots__ = ("_base", "_data", "_end", "_pos", "_start", "_view")

    def __init__(self, capacity: int = _INITIAL) -> None:
        self._base = capacity
        self._data = bytearray(capacity)
        self._view = memoryview(self._data)
        self._start = self._pos = self._end = 0

    # -- filling -------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        n = len(data)
        if n:
            self.get_buffer(n)[:n] = data
            self._end += n

    def get_buffer(self, size: int) -> memoryview:
        """Writable room for at least ``size`` more bytes (all the free room, which may be
        more); write into it, then call ``buffer_updated`` with how many bytes were written.
        The view is valid until the next ``feed`` or ``get_buffer``."""
        if self._start == self._end:  # everything committed: start over at the front
            self._start = self._pos = self._end = 0
            if len(self._data) > max(self._base, size):  # a big message is over: shrink
                self._replace(max(self._base, size))
        if len(self._data) - self._end < size:
            held = self._end - self._start
            if held + size <= len(self._data):
                # The held bytes (a message's head, usually a few bytes) move to the front;
                # memoryview assignment is a memmove, so the ranges may overlap.
                self._view[:held] = self._view[self._start : self._end]
                self._shift(self._start)
            else:
                self._replace(max(2 * len(self._data), held + size))
        return self._view[self._end :]

    def buffer_updated(self, n: int) -> None:
        if n < 0 or self._end + n > len(self._data):
            raise ValueError("more bytes written than the buffer had room for")
        self._end += n

    def _shift(self, by: int) -> None:
        self._start -= by
        self._pos -= by
        self._end -= by

    def _replace(self, capacity: int) -> None:
        held = self._view[self._start : self._end]
        data = bytearray(capacity)
        data[: len(held)] = held
        self._data, self._view = data, memoryview(data)
        self._shift(self._start)

    # -- parsing -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Bytes available to consume from the current read position."""
        return self._end - self._pos

    @property
    def uncommitted(self) -> int:
        """Bytes held since the last commit (consumed or not): non-zero mid-message."""
        return self._end - self._start

    @property
    def capacity(self) -> int:
        """Bytes of storage (for tests of the bound on memory)."""
        return len(self._data)

    def _advance(self, n: int) -> int | None:
        """Consume ``n`` bytes: where they start, or None (nothing consumed) if not all here."""
        if n < 0:
            raise ValueError("negative length")
        if self._end - self._pos < n:
            return None
        start = self._pos
        self._pos += n
        return start

    def consume_exactly(self, n: int) -> bytes | None:
        start = self._advance(n)
        if start is None:
            return None
        if n > _VIEW_ABOVE:  # one copy, not two (a bytearray slice, then bytes of it)
            return self._view[start : self._pos].tobytes()
        return bytes(self._data[start : self._pos])

    def consume_struct(self, fmt: struct.Struct) -> tuple[Any, ...] | None:
        """``fmt`` unpacked from the next ``fmt.size`` bytes (consumed), or None if not all
        here: a message header without the bytes object ``consume_exactly`` would make."""
        start = self._advance(fmt.size)
        return None if start is None else fmt.unpack_from(self._data, start)

    def consume_view(self, n: int) -> memoryview | None:
        """Like ``consume_exactly`` but without a copy: a read-only view that is valid only
        until the next ``feed`` or ``get_buffer`` (use it at once, never keep it)."""
        start = self._advance(n)
        return None if start is None else self._view[start : self._pos].toreadonly()

    def consume_at_most(self, n: int) -> bytes:
        """Up to n bytes (for skipping over content we drop)."""
        start = self._pos
        self._pos = min(self._end, start + n)
        return bytes(self._data[start : self._pos])

    def commit(self) -> None:
        self._start = self._pos
        if self._start == self._end:
            self._start = self._pos = self._end = 0

    def rollback(self) -> None:
        self._pos = self._start
