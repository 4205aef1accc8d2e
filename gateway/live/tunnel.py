"""The agent's tunnel endpoint (`/tunnel`, WebSocket over TLS): the login handshake, then the
session's display stream. A thin shell: decisions are in gateway.live.login and the policy modules.

Attacker-controlled here: every frame from the agent. Before login: the Hello must come within
10 s and the Login within 180 s, each message is at most 16 KiB (the codec) and the whole
handshake at most gateway.net.gate's byte budget, and every Hello passes the login throttle
(per address and account) first. A protocol violation closes the connection and is audited, and
nothing a peer sends can raise out of this handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from dataclasses import replace
from datetime import timedelta

from aiohttp import WSMsgType, web
from cryptography import x509

from gateway.api.common import ctx, source
from gateway.api.errors import unavailable_sentence
from gateway.api.session import LOCKED_NOW
from gateway.audit.kinds import (
    PasswordRehashed,
    SessionLoginAllowed,
    SessionLoginDenied,
    TunnelProtocolError,
    TypedEvent,
    Who,
    to_event,
)
from gateway.audit.log import AuditWriteFailed
from gateway.auth.guard import admit, settle
from gateway.auth.pool import PoolBusy, pool_of
from gateway.context import GatewayContext
from gateway.live.login import (
    FACTOR_FAILURES,
    LoginDecision,
    LoginFacts,
    decide_login,
    factors_for,
    parse_certificate,
    serial_of,
)
from gateway.live.recheck import record_decision
from gateway.monitoring.metrics import metrics_of
from gateway.net.site import mark_known, start_handshake
from gateway.policy.effective import ResolvedPolicy
from gateway.store.base import Nonce, StoreUnavailable
from gateway.wire.login import (
    Challenge,
    Denied,
    Hello,
    Login,
    LoginConnection,
    LoginProtocolError,
)
from gateway.wire.tlsbinding import tls_server_end_point

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0  # from the WebSocket upgrade to the Hello
LOGIN_TIMEOUT = 180.0  # the teacher types a password
NONCE_TTL = timedelta(seconds=LOGIN_TIMEOUT + 10)
MAX_SESSION_FRAME = 4 * 1024 * 1024  # after login; before it gateway.net.gate's budget applies


def no_delay(transport: asyncio.BaseTransport | None) -> bool:
    """TCP_NODELAY on the tunnel's socket: frames and the agent's keys are small and must not
    wait behind Nagle's algorithm (aiohttp sets it too; this keeps it a guarantee). False when
    the transport has no TCP socket (closed, or behind a Unix-socket proxy)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


def server_cert_hash(c: GatewayContext) -> bytes:
    """Our own tls-server-end-point (SHA-256 of the DER certificate we serve)."""
    cached = c.extras.get("tls_end_point")
    if cached is None:
        cached = tls_server_end_point(x509.load_pem_x509_certificate(c.data.tls_cert.read_bytes()))
        c.extras["tls_end_point"] = cached
    return cached  # type: ignore[no-any-return]


async def _audit(c: GatewayContext, event: TypedEvent, *, user: str | None,
                 school: str | None, session: str | None, remote: str | None) -> None:
    await c.audit.aappend(to_event(event, Who(actor=user, subject=user, school=school,
                                              session=session, source=remote)))


async def _receive_text(ws: web.WebSocketResponse) -> str:
    msg = await ws.receive()
    if msg.type == WSMsgType.TEXT:
        return str(msg.data)
    if msg.type == WSMsgType.BINARY:
        raise LoginProtocolError("expected a text frame during the login handshake")
    raise ConnectionResetError("the agent closed the connection")


async def tunnel(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    if request.headers.get("Origin"):
        # Browsers never talk to the tunnel: only the agent does (no cross-site WebSocket).
        raise web.HTTPForbidden(reason="browsers may not open the tunnel")
    ws = web.WebSocketResponse(max_msg_size=MAX_SESSION_FRAME, heartbeat=20.0,
                               compress=False)  # frames are compressed already (no deflate)
    await ws.prepare(request)
    no_delay(request.transport)
    start_handshake(request)  # from here the peer's bytes count against the handshake budget
    remote = source(request)
    conn = LoginConnection("gateway")
    hello: Hello | None = None
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            message = conn.receive(await _receive_text(ws))
        assert isinstance(message, Hello)  # the transition table admits nothing else here
        hello = message
        fence = c.extras["broker"].fence_mark(hello.user)  # before anything is read
        verdict = await admit(c, remote, hello.user, via="tunnel")
        if not verdict.allowed:
            await ws.send_str(conn.send(Denied(verdict.code, verdict.reason)))
            await ws.close()
            return ws
        user = c.store.get_user(hello.user)
        role, school = (user.role, user.school) if user else ("teacher", None)
        resolved = c.policies.resolve(hello.user, role, school)
        policy = resolved.policy
        nonce = secrets.token_urlsafe(32)
        c.store.add_nonce(Nonce(nonce, "login", hello.user, c.clock() + NONCE_TTL))
        factors = factors_for(policy.auth.second_factor)
        await ws.send_str(conn.send(Challenge(nonce=nonce, factors=factors)))
        async with asyncio.timeout(LOGIN_TIMEOUT):
            login = conn.receive(await _receive_text(ws))
        assert isinstance(login, Login)  # likewise
        decision = await _decide(c, hello, login, nonce, resolved, remote)
        decision = record_decision(c.store, decision, totp_used="totp" in factors)
        decided = SessionLoginAllowed if decision.allowed else SessionLoginDenied
        await _audit(c, decided(code=decision.code, serial=decision.cert_serial,
                                resume=hello.resume is not None, **decision.details),
                     user=hello.user, school=school, session=decision.resume_session,
                     remote=remote)
        metrics_of(c.extras).logins.labels("ok" if decision.allowed else "denied",
                                           decision.code).inc()
        if decision.allowed and decision.rehashed and decision.user is not None:
            # Only the hash column: the row read before the login is never written back.
            c.store.update_user_fields(hello.user, {"password_hash": decision.user.password_hash})
            await _audit(c, PasswordRehashed(), user=hello.user, school=school,
                         session=None, remote=remote)
        if not decision.allowed:
            await ws.send_str(conn.send(Denied(decision.code, decision.reason)))
            await ws.close()
            return ws
        mark_known(request)
        broker = c.extras["broker"]
        await broker.run(ws, conn=conn, hello=hello, user=c.store.get_user(hello.user),
                         policy=policy, decision=decision, remote=remote, fence=fence)
    except LoginProtocolError as e:
        await _audit(c, TunnelProtocolError(error=str(e)[:200]),
                     user=hello.user if hello else None, school=None, session=None,
                     remote=remote)
        await ws.close(code=1002, message=b"protocol error")
    except (AuditWriteFailed, StoreUnavailable) as e:
        await _refuse_unavailable(ws, conn, str(e))
    except (TimeoutError, ConnectionResetError):
        await ws.close()
    except asyncio.CancelledError:
        await ws.close(code=1001, message=b"gateway shutting down")
        raise
    return ws


async def _refuse_unavailable(ws: web.WebSocketResponse, conn: LoginConnection,
                              problem: str) -> None:
    """Fail closed: nothing can be audited or stored, so no session starts (and the teacher is
    told why; health says so too)."""
    with contextlib.suppress(LoginProtocolError, ConnectionError, RuntimeError):
        await ws.send_str(conn.send(Denied("gateway-unavailable", unavailable_sentence(problem))))
    await ws.close()


async def _decide(c: GatewayContext, hello: Hello, login: Login, nonce: str,
                  resolved: ResolvedPolicy, remote: str | None) -> LoginDecision:
    """Gather the facts (the certificate parsed once), decide in the pool, count the outcome
    against the throttle."""
    now = c.clock()
    taken = c.store.take_nonce(nonce, "login", now)
    cert = parse_certificate(hello.certificate)
    serial = serial_of(cert)
    broker = c.extras["broker"]
    facts = LoginFacts(
        hello=hello, login=login, nonce=nonce,
        nonce_ok=taken is not None and taken.user_id == hello.user, certificate=cert,
        record=c.store.get_cert(serial) if serial else None, ca_cert=c.ca.certificate,
        server_cert_hash=server_cert_hash(c), user=c.store.get_user(hello.user),
        resolved=resolved, resume=broker.resume_target(hello.resume),
        active_sessions=broker.count(hello.user), now=now.astimezone())
    try:
        decision = await pool_of(c.extras).run(decide_login, facts)
    except PoolBusy as e:
        return LoginDecision(False, "busy", str(e), cert_serial=serial)
    if decision.allowed or decision.code in FACTOR_FAILURES:
        school = facts.user.school if facts.user else None
        locked = await settle(c, remote, hello.user, ok=decision.allowed, via="tunnel",
                              school=school)
        if locked:
            return replace(decision, code="locked", reason=LOCKED_NOW)
    return decision
