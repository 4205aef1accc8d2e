"""At most a few glibc malloc arenas in the gateway process, and their free pages given back
(issue 11, memory per session).

glibc gives each new thread that allocates an arena of its own, up to eight per core, and each
arena keeps what was freed in it for reuse: the frame encoder's threads, the login pool and the
event loop each grew one, and the gateway's resident memory with them. Measured with
`python -m bench.capacity --client staffroom --sessions 1 4` (docs/PERFORMANCE.md, issue 11
part T): 24.2 and 24.7 MiB of peak PSS per extra active session with glibc's default, 16.0 and
17.2 with two arenas (15.3 and 14.9 with MALLOC_ARENA_MAX=2), sessions per core unchanged.

Call ``limit_arenas`` first thing, before any thread starts (a thread keeps the arena it got).
An operator's own ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it at start).

What an arena keeps free stays resident until ``malloc_trim``: a 1080p frame's buffers are
several MB, and once one is freed glibc raises its mmap threshold, so later ones come from the
heap and stay there. ``trim`` (the gateway calls it every few seconds, gateway.app) gives those
pages back: forty teachers' sessions held 1,132 MiB, 471 MiB with it (RSS, part AC). A fixed mmap
threshold did as well for memory but cost 15–40 % more display CPU, a page fault per frame.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

M_ARENA_MAX = -8  # glibc's <malloc.h>
ARENAS = 2


def limit_arenas(count: int = ARENAS) -> bool:
    """Ask glibc for at most ``count`` arenas; False where that cannot be done (another C
    library, no mallopt) or the environment already says (MALLOC_ARENA_MAX)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, count) == 1


def trim() -> bool:
    """Give the pages glibc holds free back to the system (``malloc_trim(0)``: the heap's top and
    every whole free page inside it). True if any were given back; False if none were, or where
    there is no malloc_trim."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def free_bytes() -> int | None:
    """What glibc's arenas hold free (``mallinfo2().fordblks``), or None where it cannot say."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.argtypes = []
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().fordblks)


@dataclass(slots=True)
class TrimPacer:
    """When to trim: every ``every`` seconds, and at once when what glibc holds free has grown by
    more than ``above`` bytes since its lowest point after the last trim (a burst of freed key
    frames). Not on the free total itself: a trim leaves the free chunks counted (only their
    pages go), so a fragmented heap would be trimmed at every check."""

    every: float
    above: int
    last: float = 0.0  # monotonic time of the last trim
    floor: int | None = None  # the least free seen since then (None: not known yet)

    def due(self, now: float, free: int | None) -> bool:
        if free is not None:
            self.floor = free if self.floor is None else min(self.floor, free)
            if free - self.floor > self.above:
                return True
        return now - self.last >= self.every

    def trimmed(self, now: float, free: int | None) -> None:
        self.last, self.floor = now, free
