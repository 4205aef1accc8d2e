"""`staffroom agent connect`: key login, tunnel, loopback viewer, and resume after a blip.

The agent holds the only connection to the gateway; the browser page talks to the agent on
127.0.0.1 only. Display frames are relayed unchanged in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from agent.cli_support import CliError, progress
from agent.login import Credentials, LoginDenied, clean, handshake
from agent.tls import client_context, explain_tls_error
from agent.viewer_server import ViewerServer
from gateway.wire import display

log = logging.getLogger(__name__)

# Close codes the gateway uses after End: 4000 + EndCode.
END_CLOSE_BASE = 4000
NORMAL_ENDS = {display.EndCode.NORMAL, display.EndCode.IDLE_TIMEOUT, display.EndCode.TIME_LIMIT}


@dataclass
class Identity:
    """What the token gives the login: the certificate and a way to sign with the key."""

    user: str
    certificate_der: bytes
    sign: Callable[[bytes], bytes]  # blocking PKCS#11 call; run in a thread


@dataclass
class ConnectOptions:
    gateway: str
    ca: str
    open_browser: bool = True
    posture: Callable[[], dict[str, Any]] = dict
    credentials: Credentials | None = None


def tunnel_url(gateway: str) -> str:
    base = gateway.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/tunnel"
    if base.startswith("wss://"):
        return base + "/tunnel"
    raise CliError(f"The gateway address {gateway!r} must start with https://.")


async def _open(options: ConnectOptions) -> ClientConnection:
    url = tunnel_url(options.gateway)
    tls = client_context(options.ca)
    try:
        return await connect(url, ssl=tls, max_size=32 * 1024 * 1024, compression=None,
                             open_timeout=15, ping_interval=15, ping_timeout=20)
    except (InvalidURI, InvalidStatus) as e:
        raise CliError(f"The gateway at {options.gateway} did not accept the tunnel ({e}).") \
            from None
    except OSError as e:
        import ssl

        if isinstance(e, ssl.SSLError):
            raise explain_tls_error(options.gateway, e) from None
        raise CliError(f"Cannot reach the gateway at {options.gateway} ({e.strerror or e}): "
                       "check the address and your internet connection.") from None
    except TimeoutError:
        raise CliError(f"The gateway at {options.gateway} did not answer in time.") from None


async def _login(ws: ClientConnection, identity: Identity, options: ConnectOptions,
                 resume: str | None) -> Any:
    async def sign(data: bytes) -> bytes:
        return await asyncio.to_thread(identity.sign, data)

    assert options.credentials is not None
    return await handshake(ws, user=identity.user, certificate_der=identity.certificate_der,
                           posture=options.posture(), sign=sign,
                           credentials=options.credentials, resume=resume)


async def run_session(identity: Identity, options: ConnectOptions,
                      on_viewer_url: Callable[[str], None]) -> int:
    """Connect, serve the viewer, relay until the session ends. Returns the exit code."""
    ws = await _open(options)
    try:
        welcome = await _login(ws, identity, options, resume=None)
    except LoginDenied as e:
        await ws.close()
        raise CliError(str(e)) from None
    grace = float(welcome.policy.get("reconnect_grace_seconds", 45))
    where = f" at {welcome.school}" if welcome.school else ""
    progress(f"Connected as {welcome.name} ({welcome.user}{where}); session {welcome.session}.")
    current: list[ClientConnection] = [ws]
    # The resume secret (never shown); each resume brings a new one.
    secret = welcome.resume_token or welcome.session

    async def send_up(frame: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await current[0].send(frame)

    viewer = ViewerServer(send_up=send_up)
    await viewer.start()
    on_viewer_url(viewer.url)
    try:
        while True:
            code, reason = await _relay(current[0], viewer)
            if code is not None:
                return _report_end(code, reason)
            progress(f"The connection to the gateway dropped; resuming (up to {grace:.0f} s)…")
            resumed = await _resume(identity, options, secret, grace)
            if resumed is None:
                raise CliError("The connection to the gateway was lost and could not be "
                               "resumed in time: run `staffroom agent connect` again.")
            current[0], secret = resumed
            # The page keeps its canvas; ask the gateway for a fresh key frame for it.
            await current[0].send(display.encode(display.Resume(display.VERSION, 0)))
            progress("Resumed the same session.")
    finally:
        await viewer.stop()
        with contextlib.suppress(Exception):
            await current[0].close()


async def _relay(ws: ClientConnection, viewer: ViewerServer) -> tuple[int | None, str]:
    """Frames down to the page until the tunnel closes; (End code, text) or (None, "") on a
    drop."""
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                await viewer.push(frame)
    except ConnectionClosed:
        pass
    code = ws.close_code
    if code is not None and END_CLOSE_BASE <= code < END_CLOSE_BASE + 100:
        return code - END_CLOSE_BASE, clean(ws.close_reason or "")
    if code == 1000:
        return int(display.EndCode.NORMAL), clean(ws.close_reason or "The session ended.")
    return None, ""


async def _resume(identity: Identity, options: ConnectOptions, secret: str,
                  grace: float) -> tuple[ClientConnection, str] | None:
    deadline = time.monotonic() + grace
    delay = 0.5
    while time.monotonic() < deadline:
        try:
            ws = await _open(options)
            welcome = await _login(ws, identity, options, resume=secret)
            return ws, welcome.resume_token or secret
        except LoginDenied as e:
            if e.code != "session-connected":  # the gateway has not yet seen the drop
                raise CliError(str(e)) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except (CliError, ConnectionClosed, OSError, TimeoutError):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return None


def _report_end(code: int, reason: str) -> int:
    text = reason or "The session ended."
    progress(f"Session ended: {text}")
    return 0 if code in NORMAL_ENDS else 1


def open_browser(url: str) -> None:
    with contextlib.suppress(Exception):
        webbrowser.open(url, new=1)


def now() -> datetime:
    return datetime.now(UTC)
