"""A program inside one teacher's desktop that redraws as fast as X lets it must not starve another
teacher's session on the same gateway: her typing keeps coming back.

The noise is a terminal spewing random bytes (scrolls and glyphs: the scroll detection and the
palette encoder) or a slideshow of full-screen photo-like pictures (the JPEG path, the encoder's
most expensive pixels); the noisy teacher's viewer acknowledges every frame at once, so the
gateway draws all it can. Each noisy teacher gets her program from her own policy file, which
also shows that a user's workspace.session_command reaches her desktop; a third gets the spew
under display.max_frame_rate = 10 from hers, and draws no more than about that; so does a fourth
whose clock redraws its nanoseconds flat out (glyph-sized frames, which only the teacher's own
typing and pointing may send unpaced)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection

from gateway.wire import display as w
from tests.abuse.helpers import POLICY, Typist, teacher_key, tunnel
from tests.fixtures.gateway import World, running_world

pytestmark = pytest.mark.slow

# No XIM for the spewing xterm either (see tests/fixtures/desktops.py's NO_XIM): a fresh-Debian CI
# run once waited 30 s for it while it never mapped its window, and drew nothing at all.
SPEW = "xterm -geometry 200x60+0+0 -xrm '*openIm: false' -e od -An -tx1 /dev/urandom"
NOISE = {
    "t.spew": SPEW,
    "t.slides": "sh -c 'for i in 1 2 3; do convert -seed $i -size 1280x800 plasma: /tmp/p$i.ppm;"
                " done; while :; do for i in 1 2 3; do display -window root /tmp/p$i.ppm; done;"
                " done'",
    "t.spew-capped": SPEW,  # the same, under her school's display.max_frame_rate = CAPPED
    # A clock that redraws its nanoseconds flat out, in place: a glyph-sized change each time,
    # which (no echo of the teacher's own input) is paced too.
    "t.clock-capped": "xterm -geometry 30x3 -xrm '*openIm: false' -e sh -c 'while :; do"
                      " date +%N; tput cuu1; done'",
}
CAPPED = 10


def noise_policy(user: str) -> str:
    cap = f"\n[display]\nmax_frame_rate = {CAPPED}\n" if user.endswith("-capped") else ""
    return (f'[match]\nusers = ["{user}"]\n\n[workspace]\nsession_command = "{NOISE[user]}"\n'
            + cap)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("noisy")
    root.chmod(0o711)
    with running_world(root, policy_overrides=POLICY,
                       extra_policies={f"60-{user}.toml": noise_policy(user)
                                       for user in NOISE}) as w_:
        yield w_


@dataclass
class Viewer(Typist):
    """A Typist that starts reading (and acknowledging every frame at once) before it types,
    types when asked, and notes when each key went out."""

    sent: list[float] = field(default_factory=list)

    async def start(self) -> asyncio.Task[None]:
        await self.ws.send(w.encode(w.Resume(w.VERSION, 0)))
        return asyncio.create_task(self._read())

    async def type(self, seconds: float, every: float = 0.25) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self.ws.send(w.encode(w.Pointer(100, 100, 0)))
            self.sent.append(time.monotonic())
            for down in (True, False):
                await self.ws.send(w.encode(w.Key(0x61 + self.keys % 26, down)))
            self.keys += 1
            await asyncio.sleep(every)

    async def flowing(self, limit: float) -> None:
        """Wait until frames come at least 5 a second (the desktop's program is running)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            await asyncio.sleep(1)
            if sum(f > time.monotonic() - 1 for f in self.frames) >= 5:
                return

    def echoes(self, since: float) -> list[float]:
        """Per key sent after ``since``: how long until the next frame ended."""
        out = []
        for t in (t for t in self.sent if t >= since):
            after = [f for f in self.frames if f > t]
            out.append(after[0] - t if after else 99.0)
        return out


async def logged_in(world: World, user: str, tunnels: contextlib.AsyncExitStack
                    ) -> ClientConnection:
    """The teacher's tunnel, kept open by ``tunnels``; her token is closed again at once (one
    SoftHSM2 configuration is loaded at a time, and the key only signs the login)."""
    with teacher_key(world, user) as key:
        ws, _ = await tunnels.enter_async_context(tunnel(world, key))
    return ws


def gateway_cpu(world: World) -> float:
    """CPU seconds the gateway process has used (user + system)."""
    assert world.gateway.process is not None
    fields = Path(f"/proc/{world.gateway.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("noise", sorted(NOISE))
async def test_a_desktop_that_redraws_flat_out_does_not_starve_the_next_teacher(
        world: World, noise: str) -> None:
    typist = f"t.typist-{noise[2:]}"
    world.add_teacher(typist)
    world.add_teacher(noise)
    async with contextlib.AsyncExitStack() as tunnels:
        quiet = Viewer(await logged_in(world, typist, tunnels))
        readers = [await quiet.start()]
        await asyncio.sleep(3)  # the desktop draws its first frames
        t0 = time.monotonic()
        await quiet.type(6)
        alone = quiet.echoes(t0)
        noisy = Viewer(await logged_in(world, noise, tunnels))
        readers.append(await noisy.start())
        await noisy.flowing(30)
        t1, cpu1 = time.monotonic(), gateway_cpu(world)
        noisy_before = len(noisy.frames)
        await quiet.type(12)
        t2, cpu2 = time.monotonic(), gateway_cpu(world)
        shared = sorted(quiet.echoes(t1))
        noisy_rate = (len(noisy.frames) - noisy_before) / (t2 - t1)
        for reader in readers:
            await stop(reader)
    # Both desktops would draw on unattached (the noise for 30 minutes) beside the next case.
    for user in (noise, typist):
        world.admin.run("workspaces", "stop", user, "--reason", "end of the test")
    p90 = shared[int(len(shared) * 0.9) - 1]
    seen = (f"alone median {statistics.median(alone) * 1000:.0f} ms max {max(alone) * 1000:.0f}"
            f" ms; beside the noise median {statistics.median(shared) * 1000:.0f} ms p90 "
            f"{p90 * 1000:.0f} ms max {shared[-1] * 1000:.0f} ms; noisy {noisy_rate:.1f} "
            f"frames/s, {noisy.frame_bytes / 1e6:.1f} MB; gateway {(cpu2 - cpu1) / (t2 - t1):.0%}"
            f" of a core; load {os.getloadavg()[0]:.1f}")
    print(seen)  # the figures in docs/PERFORMANCE.md part Z (pytest -s)
    # The noise really loads the gateway (an idle xterm draws about one frame a second).
    assert noisy_rate >= 5, seen
    if noise.endswith("-capped"):  # 48-60 frames a second without the cap; a line short
        # enough to be glyph-sized, or a moved pointer, is held back too: only the echo of the
        # teacher's own input is not (pacing.ECHO_SECONDS).
        assert noisy_rate <= CAPPED * 1.5, seen
        # And not much fewer: pacing timers that fired a little early on uvloop once left the
        # capped desktop unasked until the watermark's minute (0.3-7 frames a second).
        assert noisy_rate >= CAPPED * 0.7, seen
    assert len(shared) >= 40, seen  # every key was sent: the test's own loop kept up
    # On this 2-core machine: 11-15 ms alone, 18-34 ms median and under 80 ms at worst beside
    # any noise (docs/PERFORMANCE.md part Z); the bounds leave room for a busy CI machine.
    assert p90 < 0.5 and shared[-1] < 2.0, seen
