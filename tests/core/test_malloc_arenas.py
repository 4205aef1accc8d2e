"""gateway.malloc_arenas: the gateway process keeps at most two glibc malloc arenas however many
threads allocate at once, and an operator's MALLOC_ARENA_MAX wins. Counted by glibc itself
(malloc_info's <heap> elements) in a fresh interpreter, with threads that allocate together."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
