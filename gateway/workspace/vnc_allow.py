"""Which existing desktops (provider ``vnc``) a CIO may point a teacher at: the board's allow-list.

Attacker-controlled here: the HOST:PORT a CIO types (a CIO is trusted only within their school) —
a name is resolved and *every* address must be on the list, and the gateway then connects to the
checked address, not to the name again. Entries come from gateway.json (the board's).
By default only the gateway host's own loopback addresses are allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.workspace.base import InvalidAssignment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ENTRIES = 1024
RESOLVE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class VncTarget:
    """One allow-list entry: addresses (a network), one port or any, and whether RFB "None"
    authentication (no password at all) is accepted from desktops there."""

    network: Network
    port: int | None = None
    none_auth: bool = False

    def matches(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        return address in self.network and (self.port is None or self.port == port)

    def __str__(self) -> str:
        text = str(self.network)
        return text if self.port is None else f"{text} port {self.port}"


def _entry(item: object) -> VncTarget:
    none_auth = False
    if isinstance(item, dict):
        none_auth = item.get("allow_none_auth", False)
        item = item.get("address")
        if not isinstance(none_auth, bool):
            raise InvalidAssignment("vnc_desktops: allow_none_auth must be true or false.")
    if not isinstance(item, str) or not item or len(item) > 100:
        raise InvalidAssignment(f"vnc_desktops: {item!r} is not an address like 10.0.0.5:5900.")
    text, port = item, None
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        text, port_text = inner, rest.removeprefix(":") if rest else None
    elif text.count(":") == 1:
        text, port_text = text.split(":")
    else:
        port_text = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise InvalidAssignment(f"vnc_desktops: {item!r} does not end in a TCP port.")
        port = int(port_text)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidAssignment(
            f"vnc_desktops: {item!r} is not an IP address or network (names are not allowed: "
            "they could change)."
        ) from None
    return VncTarget(network, port, none_auth)


@dataclass(frozen=True, slots=True)
class VncAllowList:
    entries: tuple[VncTarget, ...]

    @classmethod
    def default(cls) -> VncAllowList:
        """The gateway host's own loopback addresses, any port, a VNC password required."""
        return cls((VncTarget(ipaddress.ip_network("127.0.0.0/8")),
                    VncTarget(ipaddress.ip_network("::1/128"))))  # fmt: skip

    @classmethod
    def parse(cls, items: Iterable[object] | None) -> VncAllowList:
        """gateway.json's ``vnc_desktops`` (None: the default); a clear sentence when wrong."""
        if items is None:
            return cls.default()
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise InvalidAssignment("vnc_desktops must be a list of addresses.")
        entries = tuple(_entry(item) for item in items)
        if len(entries) > MAX_ENTRIES:
            raise InvalidAssignment(f"vnc_desktops may list at most {MAX_ENTRIES} entries.")
        return cls(entries)

    def match(self, address: str, port: int) -> VncTarget | None:
        ip = ipaddress.ip_address(address.partition("%")[0])
        for entry in self.entries:
            if entry.matches(ip, port):
                return entry
        return None


def refused(host: str, port: int) -> InvalidAssignment:
    return InvalidAssignment(
        f"The desktop address {host[:80]}:{port} is not on this gateway's list of existing "
        "desktops (vnc_desktops in gateway.json): ask the board's administrator to add it."
    )


async def check(allowed: VncAllowList, host: str, port: int) -> tuple[str, VncTarget]:
    """Resolve ``host``; every address must be allowed. Returns (address to use, its entry)."""
    try:
        ipaddress.ip_address(host.partition("%")[0])
        addresses = [host]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            raise InvalidAssignment(
                f"The desktop address {host[:80]} does not resolve: check the name."
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    found = [(address, allowed.match(address, port)) for address in addresses]
    if not found or any(entry is None for _, entry in found):
        raise refused(host, port)
    address, entry = found[0]
    assert entry is not None
    return address, entry
