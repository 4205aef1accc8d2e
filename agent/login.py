"""The agent's side of the login handshake over the tunnel (a thin shell over gateway.wire.login).

The transcript the token signs includes the SHA-256 of the TLS certificate this connection
actually received, so a relay through any other TLS endpoint fails at the gateway.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.wire.login import (
    Challenge,
    Denied,
    Hello,
    Login,
    LoginConnection,
    LoginProtocolError,
    Welcome,
    transcript,
)
from gateway.wire.tlsbinding import end_point_of_der

HANDSHAKE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Second factors, asked for only when the gateway's challenge names them."""

    password: Callable[[], str | None]
    totp: Callable[[], str | None]


class LoginDenied(Exception):
    """``at_hello``: refused before the challenge (no factor was asked for or checked)."""

    def __init__(self, code: str, message: str, *, at_hello: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.at_hello = at_hello


def server_end_point(ws: Any) -> bytes:
    """RFC 5929 tls-server-end-point of this connection (SHA-256 of the server's certificate)."""
    ssl_object: ssl.SSLObject | None = ws.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        raise LoginProtocolError("the tunnel is not TLS")
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise LoginProtocolError("the gateway sent no certificate")
    return end_point_of_der(der)


def clean(text: str, limit: int = 300) -> str:
    """Text from the peer, made safe for a terminal (no control characters)."""
    return "".join(c if c.isprintable() else " " for c in text[:limit])


async def handshake(
    ws: Any,
    *,
    user: str,
    certificate_der: bytes,
    posture: dict[str, Any],
    sign: Callable[[bytes], Awaitable[bytes]],
    credentials: Credentials,
    resume: str | None = None,
) -> Welcome:
    """Run the handshake on an open websockets connection; raises LoginDenied on refusal."""
    conn = LoginConnection("agent")
    binding = server_end_point(ws)
    await ws.send(conn.send(Hello(user=user, certificate=certificate_der, resume=resume)))
    message = conn.receive(await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT))
    if isinstance(message, Denied):
        raise LoginDenied(message.code, clean(message.message), at_hello=True)
    assert isinstance(message, Challenge)
    password = credentials.password() if "password" in message.factors and not resume else None
    code = credentials.totp() if "totp" in message.factors and not resume else None
    signature = await sign(transcript(message.nonce, binding, posture, user, resume))
    await ws.send(conn.send(Login(posture=posture, signature=signature, password=password,
                                  totp=code)))
    reply = conn.receive(await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT))
    if isinstance(reply, Denied):
        raise LoginDenied(reply.code, clean(reply.message))
    assert isinstance(reply, Welcome)
    return reply
