"""Shared by the abuse tests: a teacher's tunnel driven from the test (login with the key on a
SoftHSM2 token, then the display stream: Resume, typing, Acks), and plain API calls from a chosen
loopback source address (127.0.0.x stands for another network)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import ClientConnection, connect

from agent.login import Credentials, handshake
from agent.token import open_token
from gateway.wire import display as w
from gateway.wire.login import Welcome
from tests.fixtures.gateway import World

# No XIM for the typed-into xterm: see tests/fixtures/desktops.py's NO_XIM.
POLICY = """
[match]
roles = ["teacher"]

[workspace]
session_command = "xterm -geometry 80x24+10+10 -xrm '*openIm: false'"
"""


def tls(world: World) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(world.gateway.ca))


def posture() -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = (now - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    return {"os": "linux", "os_version": "Debian 12", "hostname": "home-pc",
            "collected_at": now.isoformat().replace("+00:00", "Z"),
            "antivirus": [{"product": "ClamAV", "enabled": True, "realtime": None,
                           "definitions_time": stamp, "definitions_version": "27832",
                           "source": "clamav"}]}


@dataclass
class TeacherKey:
    user: str
    certificate_der: bytes
    token: Any  # the open agent.token session
    key_id: Any
    password: str

    async def sign(self, data: bytes) -> bytes:
        return self.token.sign(self.key_id, data)  # type: ignore[no-any-return]


@contextlib.contextmanager
def teacher_key(world: World, user: str) -> Iterator[TeacherKey]:
    """The teacher's token, open for the block (open it before any TLS connection: SoftHSM2
    leaves OpenSSL errors queued that an open connection in this thread would report)."""
    teacher = world.teachers[user]
    token = teacher.token
    os.environ["SOFTHSM2_CONF"] = str(token.conf)  # type: ignore[attr-defined]
    with open_token(token.module, token_label=token.label,  # type: ignore[attr-defined]
                    pin=token.pin) as t:  # type: ignore[attr-defined]
        key_id, cert = t.find_identity()
        yield TeacherKey(user, cert.public_bytes(serialization.Encoding.DER), t, key_id,
                         Path(teacher.password_file).read_text().strip())


@contextlib.asynccontextmanager
async def tunnel(world: World, key: TeacherKey, *, resume: str | None = None,
                 local: str | None = None) -> AsyncIterator[tuple[ClientConnection, Welcome]]:
    """A logged-in tunnel, kept open for the block."""
    extra = {"local_addr": (local, 0)} if local else {}
    url = world.gateway.url.replace("https://", "wss://") + "/tunnel"
    async with connect(url, ssl=tls(world), max_size=8 * 1024 * 1024, **extra) as ws:
        welcome = await asyncio.wait_for(handshake(
            ws, user=key.user, certificate_der=key.certificate_der, posture=posture(),
            sign=key.sign, credentials=Credentials(lambda: key.password, lambda: None),
            resume=resume), 60)
        yield ws, welcome


@dataclass
class Typist:
    """Types into the desktop and acknowledges every frame, noting when each one ended."""

    ws: ClientConnection
    frames: list[float] = field(default_factory=list)
    keys: int = 0
    frame_bytes: int = 0

    async def run(self, seconds: float, every: float = 0.2) -> None:
        await self.ws.send(w.encode(w.Resume(w.VERSION, 0)))
        reader = asyncio.create_task(self._read())
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                # No window manager: the keyboard follows the pointer, kept over the xterm.
                await self.ws.send(w.encode(w.Pointer(100, 100, 0)))
                for down in (True, False):
                    await self.ws.send(w.encode(w.Key(0x61 + self.keys % 26, down)))
                self.keys += 1
                await asyncio.sleep(every)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self) -> None:
        decoder = w.DisplayDecoder(w.Direction.TO_VIEWER)
        async for data in self.ws:
            if not isinstance(data, bytes):
                continue
            self.frame_bytes += len(data)
            decoder.feed(data)
            while not isinstance(message := decoder.next_event(), w.Sentinel):
                if isinstance(message, w.Sync):
                    self.frames.append(time.monotonic())
                    await self.ws.send(w.encode(w.Ack(message.frame_id)))

    def longest_gap(self, start: float, end: float) -> float:
        stamps = [start, *[t for t in self.frames if start <= t <= end], end]
        return max(b - a for a, b in itertools.pairwise(stamps))


async def api(world: World, method: str, path: str, *, body: object = None,
              local: str | None = None, token: str | None = None
              ) -> tuple[int, Any, dict[str, str]]:
    connector = aiohttp.TCPConnector(local_addr=(local, 0) if local else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(connector=connector) as http, http.request(
            method, world.gateway.url + path, json=body, ssl=tls(world),
            headers=headers) as r:
        return r.status, await r.json(), dict(r.headers)


def records(world: World, kind: str) -> list[dict[str, object]]:
    """The audit trail's records of one kind, as an officer exports them."""
    return world.admin.run("audit", "export", "--json", "--kind", kind).json()  # type: ignore
