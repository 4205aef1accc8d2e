"""Composition root: wires the state, the CA, the audit log, the policies and the HTTP app.

Nothing imports this module; it imports everything it wires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from pathlib import Path

from aiohttp import web

from gateway.api.common import CONTEXT
from gateway.api.errors import error_middleware
from gateway.api.routes import add_routes
from gateway.api.session import bearer_middleware
from gateway.audit.kinds import (
    DesktopAdopted,
    DesktopForgotten,
    GatewayStarted,
    GatewayStopped,
    RecordingDeleted,
    TlsReloaded,
    Who,
    to_event,
)
from gateway.audit.log import AuditLogError
from gateway.audit.open import open_audit
from gateway.cluster.open import open_bus
from gateway.console.pages import add_routes as add_console_routes
from gateway.context import GatewayContext
from gateway.datadir import DataDir
from gateway.display import SOURCES_BECAUSE, compiled
from gateway.health import watchdog
from gateway.live.broker import SessionBroker
from gateway.live.desktop_policy import desktop_settings, settings_lookup
from gateway.live.nodes import NodeLink
from gateway.live.tunnel import tunnel
from gateway.malloc_arenas import TrimPacer, free_bytes, trim
from gateway.monitoring.endpoints import add_routes as add_monitoring_routes
from gateway.monitoring.endpoints import parse_networks
from gateway.monitoring.metrics import metrics_of
from gateway.net.site import GATE, Gate, GatedSite, add_hsts, gate_middleware
from gateway.pki.ca import CAError, SchoolCA
from gateway.pki.publish import publish_crl
from gateway.pki.renew import describe
from gateway.policy.load import load_policies
from gateway.recording.keys import load_or_create_recording_key
from gateway.recording.store import (
    claim,
    delete,
    expired,
    list_recordings,
    recordings_root,
    unclaim,
)
from gateway.reports import receipt_key
from gateway.store.base import StoreError
from gateway.store.desktops import DesktopRecord
from gateway.store.open import open_store
from gateway.tlsconfig import server_context
from gateway.workspace.adoption import DesktopRegistry
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.manager import WorkspaceManager
from gateway.workspace.vnc_allow import VncAllowList

log = logging.getLogger(__name__)


def _log_display_build() -> None:
    """Say whether the display path runs compiled (gateway.display.compiled): without it a
    scroll or a drag costs 10-25 % more CPU, which an operator sizing servers should know."""
    ok, text = compiled.describe(SOURCES_BECAUSE)
    log.log(logging.INFO if ok else logging.WARNING, "%s", text)


class StartupError(Exception):
    """The gateway cannot start; the message is one sentence saying what to do."""


def open_context(data_dir: Path, ca_passphrase: bytes | None = None,
                 node: str = "local") -> GatewayContext:
    data = DataDir(data_dir)
    if not data.config_file.exists():
        raise StartupError(
            f"{data_dir} is not a Staffroom data directory: create one with "
            f"`staffroom init {data_dir} --hostname NAME`."
        )
    config = data.read_config()
    try:
        ca = SchoolCA.load(data.ca_dir, passphrase=ca_passphrase)
    except CAError as e:
        raise StartupError(str(e)) from None
    try:
        policies = load_policies(data.policies)
    except Exception as e:
        raise StartupError(f"The policy is invalid, so the gateway will not start: {e}") from None
    try:
        parse_networks(config.metrics_allow)
    except ValueError as e:
        raise StartupError(f"{data.config_file}: {e}: fix it and start again.") from None
    try:
        store = open_store(data, config)  # first: an unreachable database is named as such
    except StoreError as e:
        raise StartupError(str(e)) from None
    try:
        audit = open_audit(data, config, node)
    except AuditLogError as e:
        store.close()
        raise StartupError(f"The audit log cannot be opened, so the gateway will not start: "
                           f"{e}") from None
    context = GatewayContext(data=data, config=config, store=store, audit=audit,
                             ca=ca, policies=policies, node=node)
    audit.on_write = metrics_of(context.extras).audit_write_seconds.observe
    # A DATA_DIR from before recordings had their own key gets one now (older recordings keep
    # verifying with the audit key they name).
    context.extras["recording_key"] = load_or_create_recording_key(data.root)
    return context


def build_app(context: GatewayContext) -> web.Application:
    app = web.Application(middlewares=[gate_middleware, error_middleware, bearer_middleware],
                          client_max_size=4 * 1024 * 1024)
    app.on_response_prepare.append(add_hsts)
    app[CONTEXT] = context
    gate = context.extras.get("gate")
    if isinstance(gate, Gate):
        app[GATE] = gate
    add_routes(app)
    add_console_routes(app)
    add_monitoring_routes(app)
    app.router.add_get("/tunnel", tunnel)
    for hook in context.extras.get("app_hooks", ()):
        hook(app)
    return app


def reload_tls(context: GatewayContext) -> None:
    """SIGHUP: serve the TLS certificate on disk (after `staffroom tls renew`) to new
    connections; audited when it changed."""
    tls = context.extras.get("tls")
    if tls is None:
        return
    try:
        serial, not_after = describe(context.data.tls_cert)
        if serial == context.extras.get("tls_serial"):
            return
        tls.load_cert_chain(str(context.data.tls_cert), str(context.data.tls_key))
    except (OSError, ValueError, ssl.SSLError) as e:
        log.error("TLS certificate reload refused, keeping the previous one: %s", e)
        return
    context.extras.pop("tls_end_point", None)  # the login's channel binding follows
    context.extras["tls_serial"] = serial
    context.audit.append(to_event(TlsReloaded(serial=serial, not_after=not_after.isoformat())))
    log.info("TLS certificate %s reloaded (valid until %s)", serial, not_after)


def on_sighup(context: GatewayContext) -> None:
    reload_policies(context)
    reload_tls(context)


def reload_policies(context: GatewayContext) -> None:
    """SIGHUP: load the policy folder again; on error keep the old policy and say why."""
    try:
        context.policies = load_policies(context.data.policies)
    except Exception as e:
        log.error("policy reload refused, keeping the previous policy: %s", e)
        return
    log.info("policy reloaded from %s", context.data.policies)


def vnc_allowed(context: GatewayContext) -> VncAllowList:
    """gateway.json's vnc_desktops (existing desktops CIOs may assign), or refuse to start."""
    try:
        return VncAllowList.parse(context.config.vnc_desktops)
    except InvalidAssignment as e:
        raise StartupError(f"{context.data.config_file}: {e}") from None


KEEPALIVE_SECONDS = 60.0  # an idle connection of a known operator is closed after this
CRL_REFRESH = 6 * 3600.0  # well inside the CRL's 7-day lifetime


async def _refresh_crl(context: GatewayContext) -> None:
    """Re-sign the CRL regularly so relying parties never see an expired one."""
    while True:
        await asyncio.sleep(CRL_REFRESH)
        try:
            publish_crl(context)
        except OSError as e:
            log.error("could not re-sign the CRL: %s", e)


RETENTION_CHECK = 24 * 3600.0
# glibc keeps what the frame path frees (multi-MB frames, which its dynamic mmap threshold puts
# on the heap) and hands it back only when asked: forty sessions held 1.1 GiB without this,
# 0.46 GiB with it (docs/PERFORMANCE.md, issue 11 part AC). Asked every TRIM_EVERY seconds, and
# at the next TRIM_CHECK once TRIM_ABOVE more is free (a burst of key frames: forty teachers
# starting at once; gateway.malloc_arenas.TrimPacer); not every second always, as the pages
# given back cost a page fault each when the next frames take them again.
TRIM_EVERY = 10.0
TRIM_CHECK = 1.0
TRIM_ABOVE = 128 << 20


def apply_retention(context: GatewayContext) -> list[str]:
    """Delete recordings past their policy's `[recording] retention_days`, auditing each
    deletion before it happens. Returns the ids deleted."""
    now = context.clock()
    deleted = []
    for info in list_recordings(recordings_root(context.data.root,
                                                context.config.recordings_dir)):
        user = context.store.get_user(info.user)
        policy = context.policies.resolve(info.user, user.role if user else "teacher",
                                          info.school or None).policy
        if expired([info], now, policy.recording.retention_days):
            # Nodes sharing one recordings location sweep it each: one of them claims it.
            claimed = claim(info.path, context.node)
            if claimed is None:
                continue
            try:
                # A deletion frees space: on a full disk the audit reserve records it.
                context.audit.append(to_event(
                    RecordingDeleted(info.id, "retention", policy.recording.retention_days),
                    Who(subject=info.user, school=info.school or None, session=info.session)),
                    use_reserve=True)
            except BaseException:
                unclaim(claimed, info.path)
                raise
            delete(info.path, claimed)
            deleted.append(info.id)
    context.audit.keep_reserve()
    return deleted


async def _give_back_memory() -> None:
    """The pages malloc holds free go back to the system (in a thread: after a burst of key
    frames one call takes tens of ms)."""
    pacer = TrimPacer(TRIM_EVERY, TRIM_ABOVE)
    pacer.trimmed(time.monotonic(), free_bytes())
    while True:
        await asyncio.sleep(TRIM_CHECK)
        if pacer.due(time.monotonic(), free_bytes()):  # free_bytes: 12 µs
            await asyncio.to_thread(trim)
            pacer.trimmed(time.monotonic(), free_bytes())


async def _retention(context: GatewayContext) -> None:
    while True:
        try:
            await asyncio.to_thread(apply_retention, context)
        except (OSError, AuditLogError, StoreError) as e:
            log.error("recording retention failed: %s", e)
        await asyncio.sleep(RETENTION_CHECK)


def desktop_registry(context: GatewayContext) -> DesktopRegistry:
    """Desktops are recorded in the Store so they outlive this process (docs/ADMINS.md,
    "Gateway restarts"); adopting or forgetting one is audited before it takes effect."""

    async def adopted(record: DesktopRecord) -> None:
        await context.audit.aappend(to_event(
            DesktopAdopted(f":{record.display}", record.node, context.node),
            Who(actor=record.user_id, subject=record.user_id)))

    async def forgotten(record: DesktopRecord, why: str) -> None:
        await context.audit.aappend(to_event(
            DesktopForgotten(f":{record.display}", record.node, why),
            Who(subject=record.user_id)))

    return DesktopRegistry(context.store, context.node, on_adopted=adopted,
                           on_forgotten=forgotten)


async def serve(context: GatewayContext, host: str, port: int,
                ready: asyncio.Event | None = None) -> None:
    """Serve HTTPS until SIGINT/SIGTERM (or cancellation), then stop cleanly."""
    if not context.data.crl.exists():
        publish_crl(context)
    # Each desktop starts with its own user's policy (settings_for); the teachers' policy is
    # the fallback, e.g. for a re-adopted desktop whose user has since been deleted.
    defaults = desktop_settings(context.policies.resolve("", "teacher", None).policy)
    workspaces = WorkspaceManager(
        context.data.root, session_command=defaults.session_command,
        geometry=context.config.desktop_geometry,
        stop_unattached_after=defaults.stop_unattached_after,
        desktop_uids=context.config.desktop_uids, uid_store=context.store,
        home_url=defaults.home_url, vnc_allowed=vnc_allowed(context),
        allowed_hosts=defaults.allowed_hosts, home_quota_bytes=defaults.home_quota_bytes,
        printing=defaults.printing, clipboard=defaults.clipboard,
        registry=desktop_registry(context), settings_for=settings_lookup(context))
    await workspaces.adopt_recorded()  # desktops a stopped or dead gateway left running
    workspaces.start_reaper()
    crl_task = asyncio.create_task(_refresh_crl(context))
    retention_task = asyncio.create_task(_retention(context))
    trim_task = asyncio.create_task(_give_back_memory(), name="malloc-trim")
    watchdog_task = asyncio.create_task(watchdog(context, recordings_root(
        context.data.root, context.config.recordings_dir)))
    broker = SessionBroker(context, workspaces)
    broker.registry.clear_leftovers()
    bus = broker.bus = open_bus(context.data, context.config, context.node)
    bus_task = asyncio.create_task(NodeLink(broker, bus).run(), name="node-bus")
    receipt_key.for_gateway(context.extras, context.data.root)  # made now, not at a session's end
    context.extras["broker"] = broker
    gate = context.extras["gate"] = Gate()
    context.extras["served_port"] = port  # the console's origins follow what is served
    app = build_app(context)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=3,
                           keepalive_timeout=KEEPALIVE_SECONDS)
    await runner.setup()
    tls = context.extras["tls"] = server_context(context.data.tls_cert, context.data.tls_key)
    context.extras["tls_serial"] = describe(context.data.tls_cert)[0]
    site = GatedSite(runner, host, port, ssl_context=tls, gate=gate)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise StartupError(f"Cannot listen on {host}:{port} ({e.strerror}): pick another "
                           f"--listen address or stop the program using it.") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup, context)
    await context.audit.aappend(to_event(GatewayStarted(f"{host}:{port}")))
    log.info("gateway listening on https://%s:%d as node %s", host, port, context.node)
    _log_display_build()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("gateway stopping")
        crl_task.cancel()
        retention_task.cancel()
        trim_task.cancel()
        watchdog_task.cancel()
        bus_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bus_task
        await broker.shutdown()
        await bus.close()
        await runner.cleanup()
        await context.audit.aappend(to_event(GatewayStopped()))
        context.audit.close()
        context.store.close()
