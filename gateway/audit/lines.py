"""Bounded reading of the JSON Lines file, forwards (streaming) and backwards (the tail).

Attacker-controlled here: the bytes of a log file handed to verify or query. Limits: a line is
read up to MAX_LINE bytes and a longer one is reported, not buffered; the tail keeps at most
(n + 1) * MAX_LINE bytes in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.events import MAX_LINE

_BLOCK = 64 * 1024


class LineTooLong(ValueError):
    """A line of the log is longer than MAX_LINE."""


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line number in the file
    data: bytes  # the line with its newline, or what there is of it
    complete: bool  # ended with a newline (False: the file was cut in the middle of this line)
    too_long: bool = False


def iter_lines(path: Path) -> Iterator[Line]:
    """Each line in order; stops after a line that is too long or incomplete (the file's end)."""
    with path.open("rb") as f:
        number = 0
        while True:
            data = f.readline(MAX_LINE + 1)
            if not data:
                return
            number += 1
            if data.endswith(b"\n"):
                yield Line(number, data, complete=True)
                continue
            too_long = len(data) > MAX_LINE
            yield Line(number, data, complete=False, too_long=too_long)
            return


def read_tail(path: Path, n: int) -> tuple[list[bytes], bytes]:
    """The last `n` complete lines (each with its newline) and any incomplete bytes after them."""
    if n < 0:
        raise ValueError("n must not be negative")
    with path.open("rb") as f:
        pos = f.seek(0, 2)
        chunks: list[bytes] = []
        newlines = 0
        held = 0
        while pos > 0 and newlines < n + 1:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            chunks.append(block)
            newlines += block.count(b"\n")
            held += step
            if held > (n + 1) * MAX_LINE + _BLOCK:
                raise LineTooLong(
                    f"a line near the end of {path.name} is longer than {MAX_LINE} bytes"
                )
    buf = b"".join(reversed(chunks))
    head, sep, partial = buf.rpartition(b"\n")
    if not sep:
        return [], partial if pos == 0 else _too_long(path)
    lines = head.split(b"\n")
    if pos > 0:
        lines = lines[1:]  # starts somewhere inside a line we did not need
    lines = lines[-n:] if n else []
    if any(len(line) >= MAX_LINE for line in lines) or len(partial) > MAX_LINE:
        _too_long(path)
    return [line + b"\n" for line in lines], partial


def read_first(path: Path) -> Line | None:
    """The first line of the file, or None when it is empty."""
    for line in iter_lines(path):
        return line
    return None


def _too_long(path: Path) -> bytes:
    raise LineTooLong(f"a line near the end of {path.name} is longer than {MAX_LINE} bytes")
