"""The only way out of a desktop's network namespace: gateway relays to `allowed_hosts` entries.

Attacker-controlled here: connections and bytes from the desktop's processes — each relay goes to
one fixed policy destination; at most MAX_CONNECTIONS at once per desktop, bounded buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.net.address import not_one_host
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.netns import NetNamespace

log = logging.getLogger(__name__)

MAX_RULES = 64  # listed destinations per policy
MAX_LISTENERS = 128  # relayed (address, port) pairs per desktop, after name resolution
MAX_CONNECTIONS = 64  # open relayed connections per desktop
CONNECT_TIMEOUT = 5.0
RESOLVE_TIMEOUT = 3.0
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One ``allowed_hosts`` entry: a host (IP literal or DNS name) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the relay listens inside the namespace; it connects to the same address outside."""

    address: str
    port: int
    rule: EgressRule


def parse_allowed_hosts(entries: Iterable[str]) -> tuple[tuple[EgressRule, ...], tuple[str, ...]]:
    """Policy entries → (rules, entries that cannot be relayed: bare hosts without a port).

    A bare host would need every port relayed; we list it back so the caller can warn, and it
    stays unreachable (closed by default) rather than opened wider than the policy meant.
    """
    rules: list[EgressRule] = []
    skipped: list[str] = []
    for entry in entries:
        host, port = _split(entry)
        if port is None:
            skipped.append(entry)
            continue
        _check_host(host, entry)
        rules.append(EgressRule(host.lower(), port))
    rules = list(dict.fromkeys(rules))
    if len(rules) > MAX_RULES:
        raise InvalidAssignment(f"At most {MAX_RULES} allowed_hosts entries can be relayed.")
    return tuple(rules), tuple(skipped)


def _split(entry: str) -> tuple[str, int | None]:
    if not isinstance(entry, str) or not entry:
        raise InvalidAssignment(f"{entry!r} is not a host or host:port.")
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket:
            raise InvalidAssignment(f"{entry!r} is not a host or host:port.")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            raise InvalidAssignment(f"{entry!r} is not a host or host:port.")
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host, port_text = entry, None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidAssignment(f"{entry!r} does not end in a TCP port (1-65535).")
    return host, int(port_text)


def _check_host(host: str, entry: str) -> None:
    if not_one_host(host):
        raise InvalidAssignment(f"{entry!r} is not a single host.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        if not (0 < len(host) <= 253 and all(_label_ok(label) for label in labels)):
            raise InvalidAssignment(f"{entry!r} is not a host or host:port.") from None


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() \
        and not label.startswith("-") and not label.endswith("-")  # fmt: skip


async def resolve(rules: Iterable[EgressRule]) -> list[Listener]:
    """Name → addresses now (at desktop start); an unresolvable name is skipped with a warning."""
    loop = asyncio.get_running_loop()
    found: dict[tuple[str, int], Listener] = {}
    for rule in rules:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await loop.getaddrinfo(rule.host, rule.port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            log.warning("allowed host %s does not resolve; it stays unreachable", rule)
            continue
        for _family, _type, _proto, _name, sockaddr in infos:
            address = str(sockaddr[0]).partition("%")[0]
            found.setdefault((address, rule.port), Listener(address, rule.port, rule))
    if len(found) > MAX_LISTENERS:
        raise InvalidAssignment(f"allowed_hosts resolve to more than {MAX_LISTENERS} addresses.")
    return list(found.values())


def _listening_socket(listener: Listener) -> socket.socket:
    family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener.address, listener.port))
        sock.listen(16)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class EgressRelay:
    """Listeners inside one namespace, each piping to its destination from the gateway."""

    def __init__(self, label: str) -> None:
        self.label = label  # "desktop :N" for logs
        self._servers: list[asyncio.Server] = []
        self._pipes: set[asyncio.Task[None]] = set()
        self._open = 0

    async def start(self, netns: NetNamespace, listeners: list[Listener]) -> None:
        def bind_all() -> list[socket.socket]:
            made: list[socket.socket] = []
            try:
                made.extend(_listening_socket(item) for item in listeners)
            except OSError:
                for sock in made:
                    sock.close()
                raise
            return made

        socks = await asyncio.to_thread(netns.run, bind_all)
        for item, sock in zip(listeners, socks, strict=True):
            server = await asyncio.start_server(
                lambda r, w, item=item: self._accept(item, r, w), sock=sock, limit=CHUNK
            )
            self._servers.append(server)

    async def _accept(
        self, item: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._open >= MAX_CONNECTIONS:
            log.warning("%s: relay to %s refused, %d open", self.label, item.rule, self._open)
            writer.close()
            return
        self._open += 1
        task = asyncio.current_task()
        if task is not None:
            self._pipes.add(task)
        try:
            await self._relay(item, reader, writer)
        finally:
            self._open -= 1
            if task is not None:
                self._pipes.discard(task)

    async def _relay(
        self, item: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(
                    item.address, item.port, limit=CHUNK
                )
        except (OSError, TimeoutError):
            log.info("%s: %s did not answer", self.label, item.rule)
            writer.close()
            return
        log.info("%s: connection relayed to %s", self.label, item.rule)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF; drain() keeps at most one chunk plus the transport's buffer in memory."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.IncompleteReadError):
        writer.close()
