"""Which connections to close, before anyone on them is known (pure: `now` is passed in).

Attacker-controlled here: how many TCP/TLS connections a peer opens, how long it keeps them
silent, and how many bytes it sends before logging in. Limits (GateLimits): at most
`max_unknown` connections at once whose peer has not authenticated (and `per_address` from one
address) — a new connection over either cap closes the oldest idle unknown one instead of being
refused, so a pile of idle connections cannot stop a new login; an unknown connection idle (no
request in progress) for `idle_after` seconds is closed; one in the login handshake may send at
most `handshake_bytes` in all.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GateLimits:
    max_unknown: int = 512
    per_address: int = 64
    idle_after: float = 15.0
    handshake_bytes: int = 40 * 1024  # Hello + Login (16 KiB each at most) and framing


@dataclass(slots=True)
class Conn:
    address: str
    opened: float
    last_active: float
    busy: int = 0  # requests in progress
    known: bool = False  # an authenticated operator or a logged-in session is on it
    budget: int | None = None  # bytes it may still send (during the login handshake)


class ConnectionTable:
    def __init__(self, limits: GateLimits | None = None) -> None:
        self.limits = limits or GateLimits()
        self.conns: dict[Hashable, Conn] = {}
        self.evicted = 0

    def unknown(self) -> int:
        return sum(1 for c in self.conns.values() if not c.known)

    def opened(self, key: Hashable, address: str, now: float) -> list[Hashable]:
        """A new connection; the connections to close to make room for it."""
        self.conns[key] = Conn(address, now, now)
        close: list[Hashable] = []
        same = [k for k, c in self.conns.items() if not c.known and c.address == address]
        if len(same) > self.limits.per_address:
            close += self._oldest_idle(same, len(same) - self.limits.per_address, key)
        unknown = [k for k, c in self.conns.items() if not c.known and k not in close]
        if len(unknown) > self.limits.max_unknown:
            close += self._oldest_idle(unknown, len(unknown) - self.limits.max_unknown, key)
        self.evicted += len(close)
        return close

    def _oldest_idle(self, keys: list[Hashable], n: int, new: Hashable) -> list[Hashable]:
        idle = sorted((k for k in keys if k != new and self.conns[k].busy == 0),
                      key=lambda k: self.conns[k].last_active)
        chosen = idle[:n]
        if len(chosen) < n:  # every other one is mid-request: the newcomer waits its turn
            chosen.append(new)
        return chosen

    def closed(self, key: Hashable) -> None:
        self.conns.pop(key, None)

    def request_started(self, key: Hashable, now: float) -> None:
        conn = self.conns.get(key)
        if conn is not None:
            conn.busy += 1
            conn.last_active = now

    def request_ended(self, key: Hashable, now: float) -> None:
        conn = self.conns.get(key)
        if conn is not None:
            conn.busy = max(0, conn.busy - 1)
            conn.last_active = now

    def mark_known(self, key: Hashable) -> None:
        conn = self.conns.get(key)
        if conn is not None:
            conn.known, conn.budget = True, None

    def start_handshake(self, key: Hashable) -> None:
        conn = self.conns.get(key)
        if conn is not None and not conn.known:
            conn.budget = self.limits.handshake_bytes

    def received(self, key: Hashable, size: int) -> bool:
        """Count bytes from the peer; False when the connection must be closed. Bytes alone do
        not count as activity: a peer trickling a request's headers is still idle."""
        conn = self.conns.get(key)
        if conn is None or conn.budget is None:
            return True
        conn.budget -= size
        return conn.budget >= 0

    def sweep(self, now: float) -> list[Hashable]:
        """Unknown connections idle for too long."""
        limit = self.limits.idle_after
        return [k for k, c in self.conns.items()
                if not c.known and c.busy == 0 and now - c.last_active >= limit]
