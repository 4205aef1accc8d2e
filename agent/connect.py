"""`staffroom agent connect`: key login, tunnel, loopback viewer, and resume after a blip.

The agent holds the only connection to the gateway; the browser page talks to the agent on
127.0.0.1 only. Display frames are relayed unchanged in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from agent.cli_support import CliError, progress
from agent.login import Credentials, LoginDenied, clean, handshake, server_end_point
from agent.nodelay import no_delay
from agent.tls import client_context, explain_tls_error
from agent.viewer_server import ViewerServer
from gateway.wire import display, receipt, recheck

log = logging.getLogger(__name__)

# Close codes the gateway uses after End: 4000 + EndCode.
END_CLOSE_BASE = 4000
NORMAL_ENDS = {display.EndCode.NORMAL, display.EndCode.IDLE_TIMEOUT, display.EndCode.TIME_LIMIT}
# Refusals of a resume worth retrying until the grace ends: the gateway has not yet seen the drop,
# or it is (re)starting.
RETRY_CODES = frozenset({"session-connected", "busy", "gateway-unavailable"})
MAX_RESUME_DELAY = 5.0
# A first login refused at its Hello for the network's login rate: many teachers behind one
# address (a school's or a mobile carrier's NAT) connecting at once. Nothing was asked for or
# checked yet, so the agent asks again after a short random wait, as the teacher would have to,
# for up to LOGIN_RETRY_FOR seconds.
LOGIN_RETRY_CODES = frozenset({"too-many-attempts"})
LOGIN_RETRY_FOR = 60.0
NOT_RESUMED = ("The connection to the gateway was lost and the session could not be resumed "
               "in time: run `staffroom agent connect` again.")


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
        ws = await connect(url, ssl=tls, max_size=32 * 1024 * 1024, compression=None,
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
    no_delay(ws.transport)  # keys and Acks are small frames: never held back by Nagle
    return ws


async def _login(ws: ClientConnection, identity: Identity, options: ConnectOptions,
                 resume: str | None) -> Any:
    async def sign(data: bytes) -> bytes:
        return await asyncio.to_thread(identity.sign, data)

    assert options.credentials is not None
    return await handshake(ws, user=identity.user, certificate_der=identity.certificate_der,
                           posture=options.posture(), sign=sign,
                           credentials=options.credentials, resume=resume)


async def _first_login(identity: Identity, options: ConnectOptions
                       ) -> tuple[ClientConnection, Any]:
    """The tunnel and its Welcome; a refusal is a CliError with the gateway's sentence."""
    deadline = time.monotonic() + LOGIN_RETRY_FOR
    while True:
        ws = await _open(options)
        try:
            return ws, await _login(ws, identity, options, resume=None)
        except LoginDenied as e:
            await ws.close()
            wait = random.uniform(1.0, 4.0)  # spread out: the others behind the address retry too
            if not (e.at_hello and e.code in LOGIN_RETRY_CODES) \
                    or time.monotonic() + wait > deadline:
                raise CliError(str(e)) from None
            progress(f"Many logins from your network right now; trying again in "
                     f"{wait:.0f} s…")
            await asyncio.sleep(wait)


async def run_session(identity: Identity, options: ConnectOptions,
                      on_viewer_url: Callable[[str], None]) -> int:
    """Connect, serve the viewer, relay until the session ends. Returns the exit code."""
    ws, welcome = await _first_login(identity, options)
    grace = float(welcome.policy.get("reconnect_grace_seconds", 45))
    identity = replace(identity, sign=_one_at_a_time(identity.sign))
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
    interval = float(welcome.policy.get("posture_recheck_seconds") or 0)
    reports = asyncio.create_task(_posture_reports(current, identity, options, welcome.session,
                                                   interval)) if interval > 0 else None
    try:
        while True:
            code, reason = await _relay(current[0], viewer)
            if code is not None:
                return _report_end(code, reason)
            progress(f"The connection to the gateway dropped; resuming (up to {grace:.0f} s)…")
            resumed = await _resume(identity, options, secret, grace)
            if resumed is None:
                raise CliError(NOT_RESUMED)
            current[0], secret = resumed
            # The page keeps its canvas; ask the gateway for a fresh key frame for it.
            await current[0].send(display.encode(display.Resume(display.VERSION, 0)))
            progress("Resumed the same session.")
    finally:
        if reports is not None:
            reports.cancel()
        await viewer.stop()
        with contextlib.suppress(Exception):
            await current[0].close()


async def _posture_reports(current: list[ClientConnection], identity: Identity,
                           options: ConnectOptions, session: str, interval: float) -> None:
    """Send a fresh signed posture report about every `interval` seconds (jittered) and at once
    when the antivirus state changes (looked at every interval/4, at most every minute)."""
    rng = random.SystemRandom()
    poll = max(1.0, min(60.0, interval / 4))
    seq = 0
    due = time.monotonic() + recheck.next_delay(interval, rng.random())
    try:
        last = recheck.antivirus_state(await asyncio.to_thread(options.posture))
    except Exception as e:
        log.warning("could not collect the posture report: %s", e)
        last = b""
    while True:
        await asyncio.sleep(max(0.2, min(poll, due - time.monotonic())))
        try:
            posture = await asyncio.to_thread(options.posture)
        except Exception as e:  # a collector failing must not end the session by itself
            log.warning("could not collect the posture report: %s", e)
            due = max(due, time.monotonic() + poll)  # and must not make us spin
            continue
        state = recheck.antivirus_state(posture)
        changed, last = state != last, state
        if not changed and time.monotonic() < due:
            continue
        seq += 1
        ws = current[0]
        try:
            data = recheck.transcript(session, seq, server_end_point(ws), posture)
            signature = await asyncio.to_thread(identity.sign, data)
            await ws.send(recheck.encode(recheck.PostureUpdate(
                seq, posture, signature, "changed" if changed else "interval")))
        except Exception as e:  # a dropped tunnel, a token pulled out: the next one follows
            log.info("posture report %d not sent (%s)", seq, e)
        due = time.monotonic() + recheck.next_delay(interval, rng.random())


async def _relay(ws: ClientConnection, viewer: ViewerServer) -> tuple[int | None, str]:
    """Frames down to the page until the tunnel closes; (End code, text) or (None, "") on a
    drop."""
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                await viewer.push(frame)
            elif (data := receipt.from_tunnel_frame(frame)) is not None:
                await _keep_receipt(data, viewer)
    except ConnectionClosed:
        pass
    code = ws.close_code
    if code is not None and END_CLOSE_BASE <= code < END_CLOSE_BASE + 100:
        return code - END_CLOSE_BASE, clean(ws.close_reason or "")
    if code == 1000:
        return int(display.EndCode.NORMAL), clean(ws.close_reason or "The session ended.")
    return None, ""


async def _keep_receipt(data: bytes, viewer: ViewerServer) -> None:
    """The gateway's signed work receipt: saved under $STAFFROOM_HOME/receipts and offered to
    the page (which shows a download link with the end of the session)."""
    try:
        body, _ = receipt.read(data)
    except receipt.ReceiptError as e:
        log.warning("the gateway sent a receipt that cannot be read: %s", e)
        return
    folder = receipts_dir()
    name = f"receipt-{body['session']}.json"
    if all(c.isalnum() or c in "-_." for c in name):
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            progress(f"Work receipt saved: {folder / name} (check it with `staffroom reports "
                     f"verify-receipt {folder / name}`).")
    await viewer.push(display.encode(display.Receipt(data)))


def receipts_dir() -> Path:
    return Path(os.environ.get("STAFFROOM_HOME") or Path.home() / ".config" / "staffroom") \
        / "receipts"


def resume_status(attempt: int, left: float) -> str:
    """The line shown before each resume attempt after the first."""
    return (f"Connection to the gateway lost; resuming… (attempt {attempt}, "
            f"{max(0, int(left))} s left)")


def next_delay(delay: float) -> float:
    """Backoff between resume attempts: doubling from 0.5 s, at most 5 s."""
    return min(delay * 2, MAX_RESUME_DELAY)


async def _resume(identity: Identity, options: ConnectOptions, secret: str,
                  grace: float) -> tuple[ClientConnection, str] | None:
    """Retry the resume through the same gateway address until the grace ends: the gateway may
    be restarting (its desktops and the session's resume right outlive it)."""
    deadline = time.monotonic() + grace
    delay = 0.5
    attempt = 0
    while (left := deadline - time.monotonic()) > 0:
        attempt += 1
        if attempt > 1:
            progress(resume_status(attempt, left))
        try:
            ws = await asyncio.wait_for(_open(options), max(1.0, left))
            try:
                welcome = await asyncio.wait_for(
                    _login(ws, identity, options, resume=secret), max(1.0, left))
            except BaseException:
                with contextlib.suppress(Exception):
                    await ws.close()
                raise
            return ws, welcome.resume_token or secret
        except LoginDenied as e:
            if e.code not in RETRY_CODES:  # refused for good: say why, in the gateway's words
                raise CliError(str(e)) from None
        except (CliError, ConnectionClosed, OSError, TimeoutError) as e:
            log.info("resume attempt %d failed: %s", attempt, e)
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = next_delay(delay)
    return None


def _one_at_a_time(sign: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Re-checks and resumes both sign: one PKCS#11 operation at a time."""
    lock = threading.Lock()

    def locked(data: bytes) -> bytes:
        with lock:
            return sign(data)
    return locked


def _report_end(code: int, reason: str) -> int:
    text = reason or "The session ended."
    progress(f"Session ended: {text}")
    return 0 if code in NORMAL_ENDS else 1


def open_browser(url: str) -> None:
    with contextlib.suppress(Exception):
        webbrowser.open(url, new=1)


def now() -> datetime:
    return datetime.now(UTC)
