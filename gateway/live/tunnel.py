"""The agent's tunnel endpoint (`/tunnel`, WebSocket over TLS): the login handshake, then the
session's display stream. A thin shell: decisions are in gateway.live.login and the policy modules.

Attacker-controlled here: every frame from the agent. The handshake has deadlines, frames are
bounded, a protocol violation closes the connection and is audited, and nothing a peer sends can
raise out of this handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aiohttp import WSMsgType, web
from cryptography import x509

from gateway.api.common import ctx, source
from gateway.api.errors import unavailable_sentence
from gateway.audit.events import AuditEvent
from gateway.audit.log import AuditWriteFailed
from gateway.context import GatewayContext
from gateway.live.login import LoginDecision, decide_login, factors_for
from gateway.live.recheck import record_decision
from gateway.monitoring.metrics import metrics_of
from gateway.policy.decide import decide_session_start
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

HELLO_TIMEOUT = 15.0
LOGIN_TIMEOUT = 180.0  # the teacher types a password
NONCE_TTL = timedelta(seconds=LOGIN_TIMEOUT + 10)
MAX_HANDSHAKE_FRAME = 64 * 1024


def server_cert_hash(c: GatewayContext) -> bytes:
    """Our own tls-server-end-point (SHA-256 of the DER certificate we serve)."""
    cached = c.extras.get("tls_end_point")
    if cached is None:
        cached = tls_server_end_point(x509.load_pem_x509_certificate(c.data.tls_cert.read_bytes()))
        c.extras["tls_end_point"] = cached
    return cached  # type: ignore[no-any-return]


async def _audit(c: GatewayContext, kind: str, outcome: str, *, user: str | None,
                 school: str | None, session: str | None, remote: str | None,
                 details: dict[str, Any]) -> None:
    await c.audit.aappend(AuditEvent(kind=kind, outcome=outcome, actor=user, subject=user,
                                     school=school, session=session, source=remote,
                                     details=details))


async def _receive_text(ws: web.WebSocketResponse, timeout: float) -> str:
    msg = await asyncio.wait_for(ws.receive(), timeout)
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
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, heartbeat=20.0)
    await ws.prepare(request)
    remote = source(request)
    conn = LoginConnection("gateway")
    hello: Hello | None = None
    try:
        message = conn.receive(await _receive_text(ws, HELLO_TIMEOUT))
        assert isinstance(message, Hello)  # the transition table admits nothing else here
        hello = message
        fence = c.extras["broker"].fence_mark(hello.user)  # before anything is read
        user = c.store.get_user(hello.user)
        role, school = (user.role, user.school) if user else ("teacher", None)
        resolved = c.policies.resolve(hello.user, role, school)
        policy = resolved.policy
        nonce = secrets.token_urlsafe(32)
        c.store.add_nonce(Nonce(nonce, "login", hello.user, c.clock() + NONCE_TTL))
        factors = factors_for(policy.auth.second_factor)
        await ws.send_str(conn.send(Challenge(nonce=nonce, factors=factors)))
        login = conn.receive(await _receive_text(ws, LOGIN_TIMEOUT))
        assert isinstance(login, Login)  # likewise
        decision = await _decide(c, hello, login, nonce, resolved)
        decision = record_decision(c.store, decision, totp_used="totp" in factors)
        await _audit(c, "session.login", "ok" if decision.allowed else "denied",
                     user=hello.user, school=school, session=hello.resume, remote=remote,
                     details={"code": decision.code, "serial": decision.cert_serial,
                              "resume": hello.resume is not None, **decision.details})
        metrics_of(c.extras).logins.labels("ok" if decision.allowed else "denied",
                                           decision.code).inc()
        if not decision.allowed:
            await ws.send_str(conn.send(Denied(decision.code, decision.reason)))
            await ws.close()
            return ws
        broker = c.extras["broker"]
        await broker.run(ws, conn=conn, hello=hello, user=c.store.get_user(hello.user),
                         policy=policy, decision=decision, remote=remote, fence=fence)
    except LoginProtocolError as e:
        await _audit(c, "tunnel.protocol_error", "denied",
                     user=hello.user if hello else None, school=None, session=None,
                     remote=remote, details={"error": str(e)[:200]})
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
                  resolved: ResolvedPolicy) -> LoginDecision:
    now = c.clock()
    taken = c.store.take_nonce(nonce, "login", now)
    if taken is None or taken.user_id != hello.user:
        return LoginDecision(False, "nonce", "The login took too long or was replayed: try "
                             "again.")
    try:
        serial = format(x509.load_der_x509_certificate(hello.certificate).serial_number, "x")
    except ValueError:
        serial = ""
    broker = c.extras["broker"]
    resuming = broker.can_resume(hello.user, hello.resume, serial)
    decision = decide_login(
        hello=hello, login=login, nonce=nonce, server_cert_hash=server_cert_hash(c),
        ca_cert=c.ca.certificate, record=c.store.get_cert(serial) if serial else None,
        user=c.store.get_user(hello.user), policy=resolved.policy, now=now, resuming=resuming,
    )
    if decision.allowed and not resuming:
        start = decide_session_start(resolved, now=now.astimezone(),
                                     active_sessions=broker.count(hello.user))
        if not start.allowed:
            return replace(decision, allowed=False, code=start.code, reason=start.reason,
                           details={**decision.details, "rule": start.rule})
    return decision

