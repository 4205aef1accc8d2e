"""gateway.malloc_arenas: the gateway process keeps at most two glibc malloc arenas however many
threads allocate at once, and an operator's MALLOC_ARENA_MAX wins. Counted by glibc itself
(malloc_info's <heap> elements) in a fresh interpreter, with threads that allocate together."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.malloc_arenas import TrimPacer

# Eight threads allocate small objects, all alive at once (a Barrier: a finished thread's arena
# would be handed to the next), then glibc's malloc_info counts the arenas.
PROBE = r"""
import ctypes, sys, tempfile, threading
from gateway.malloc_arenas import limit_arenas
limited = limit_arenas() if sys.argv[1] == "limit" else None
start = threading.Barrier(8)
def work():
    start.wait()
    keep = []
    for i in range(20000):
        keep.append(bytearray(64 + i % 512))
        if len(keep) > 500:
            keep.clear()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(limited, open(f.name).read().count("<heap nr="))
"""


def arenas(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=60,
                         env={**{k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"},
                              **env}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_threads_allocating_at_once_share_two_arenas() -> None:
    unlimited = arenas("default")[1]
    assert unlimited > 2, "without the limit glibc gave the threads arenas of their own"
    assert arenas("limit") == ("True", 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_an_operators_malloc_arena_max_wins() -> None:
    limited, count = arenas("limit", MALLOC_ARENA_MAX="4")
    assert limited == "False"  # left to the environment
    assert 2 < count <= 4


# What the frame path does to the heap: one multi-MB frame buffer, freed (glibc raises its mmap
# threshold past it), then more of them on the heap with small objects between, all freed. The
# pages stay resident until trim() gives them back.
TRIM_PROBE = r"""
from gateway.malloc_arenas import free_bytes, trim
def rss_mib():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024
first = bytearray(8 << 20)
del first
frames, pins = [], []
for _ in range(40):
    frames.append(bytearray(6 << 20))
    pins.append(bytearray(1024))  # past pymalloc: on the glibc heap, after the frame
del frames
held = rss_mib()
print(held, free_bytes() >> 20, trim(), rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_trim_gives_freed_frame_buffers_back() -> None:
    """free_bytes sees what is kept (the gateway trims early past TRIM_ABOVE); trim returns it."""
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    held, free, trimmed, after = int(out[0]), int(out[1]), out[2], int(out[3])
    assert held > 200, "the freed buffers were not kept resident: the probe tests nothing"
    assert free >= 200, free  # 40 × 6 MiB freed on the heap
    assert trimmed == "True" and after < held - 200, (held, after)


def test_trims_come_on_time_or_after_a_burst_of_freed_memory() -> None:
    MiB = 1 << 20
    pacer = TrimPacer(every=10.0, above=128 * MiB)
    pacer.trimmed(0.0, 300 * MiB)  # a fragmented heap: 300 MiB of free chunks, pages given back
    assert not pacer.due(1.0, 300 * MiB)  # the total alone never asks again (it stays counted)
    assert not pacer.due(2.0, 250 * MiB)  # frames take 50 MiB of it again ...
    assert pacer.due(3.0, 400 * MiB)  # ... then 150 MiB more is freed: trim now
    pacer.trimmed(3.0, 400 * MiB)
    assert not pacer.due(12.9, 400 * MiB)
    assert pacer.due(13.0, 400 * MiB)  # and every 10 s anyway
    assert pacer.due(30.0, None)  # where glibc cannot say: on time only
    pacer.trimmed(30.0, None)
    assert not pacer.due(31.0, None)
