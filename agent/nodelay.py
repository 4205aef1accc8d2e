"""Nagle off on the agent's sockets (the tunnel to the gateway, the page's loopback WebSocket).

A keystroke, an Ack and a glyph's tile are each one small frame; with Nagle's algorithm a small
frame can wait for the previous one's ACK (up to the peer's delayed-ACK time, 40 ms on Linux).
asyncio already sets TCP_NODELAY on the TCP transports it makes; this says so on every socket
the agent relays through, so a change of transport or library cannot lose it silently
(tests/core/test_no_delay.py checks the live sockets). Nothing here is attacker-controlled.
"""

from __future__ import annotations

import socket
from typing import Any


def no_delay(transport: Any) -> bool:
    """Set TCP_NODELAY on the transport's TCP socket; False when it has none (a Unix socket,
    a closed transport)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True
