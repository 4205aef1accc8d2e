"""`/metrics` (Prometheus text format) for the configured scrapers only, and `/api/v1/ready`.

Attacker-controlled here: the peer's address (from the TCP connection itself, never a header)
and nothing else; /metrics answers only addresses inside the gateway config's `metrics_allow`
networks (default: loopback), and each refusal is audited. Readiness says only which part is
not ready, never why in detail.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.common import ctx, source
from gateway.audit.kinds import MetricsRefused, Who, to_event
from gateway.datadir import METRICS_ALLOW_DEFAULT
from gateway.monitoring.metrics import metrics_of

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (a bare address is a /32 or /128); ValueError names the bad one."""
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"metrics_allow: {value!r} is not an address or network") from None
    return tuple(nets)


def allowed(address: str | None, networks: Iterable[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


async def metrics(request: web.Request) -> web.Response:
    c = ctx(request)
    remote = source(request)
    networks = parse_networks(getattr(c.config, "metrics_allow", METRICS_ALLOW_DEFAULT))
    if not allowed(remote, networks):
        await c.audit.aappend(to_event(MetricsRefused(), Who(source=remote)))
        raise web.HTTPForbidden(text="Metrics are served only to the addresses in the gateway's "
                                     "metrics_allow setting: scrape from one of those.\n")
    body = generate_latest(metrics_of(c.extras).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                            "Cache-Control": "no-store"})


def problems(request: web.Request) -> list[str]:
    """What keeps this gateway from taking sessions now ([] = ready)."""
    c = ctx(request)
    found = []
    broker = c.extras.get("broker")
    if broker is None or broker.closing:
        found.append("sessions")
    if getattr(c.audit, "closed", True):
        found.append("audit")
    try:
        c.store.get_user("")
    except Exception as e:
        log.warning("readiness: the state database does not answer: %s", e)
        found.append("database")
    return found


async def ready(request: web.Request) -> web.Response:
    """Readiness (can take sessions now), unlike /api/v1/health (the process answers)."""
    missing = problems(request)
    if missing:
        return web.json_response({"status": "not-ready", "not_ready": missing}, status=503)
    return web.json_response({"status": "ready"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/ready", ready)
